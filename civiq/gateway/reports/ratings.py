"""Every rating as one row, for the one-stop system: the JSON API, the "Đánh giá" sheet and the daily CSV drop.

A row (docs/api.md, ``GET /api/v1/ratings``)::

    {"id": "hcm-q1/pi-1/812", "ts", "center", "center_name", "ticket", "day", "service", "service_name",
     "counter", "counter_name", "clerk", "clerk_name", "score", "scale", "satisfied", "reasons",
     "reason_names", "dossier"}

``dossier`` is the rating's own, else the one its ticket's ``ticket.completed`` carried (joined by node,
ticket day and label), else null. Only valid ratings (score 1..scale, scale 4 or 5), the first per ticket.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from civiq.contract import satisfied
from civiq.gateway.reports.compute import EventRow, reason_ids, ticket_key, valid_rating
from civiq.gateway.reports.periods import Period


def rating_rows(events: Iterable[EventRow], names: Mapping[str, Any], *, center: str, tz: str,
                clerk: str | None = None) -> list[dict[str, Any]]:
    """The ratings among ``events`` (``ticket.rated``, plus ``ticket.completed`` for the dossier join), oldest
    first. ``clerk``: only that clerk's."""
    evs = sorted(events, key=lambda e: (e.ts, e.node, e.seq))
    dossiers: dict[tuple[str, str, str], str] = {}
    for e in evs:
        if e.type == "ticket.completed" and isinstance(e.data.get("dossier"), str):
            dossiers[ticket_key(e.node, e.data, e.ts, tz)] = e.data["dossier"][:40]
    services, counters = names.get("services") or {}, names.get("counters") or {}
    clerks, reasons = names.get("clerks") or {}, names.get("reasons") or {}
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for e in evs:
        if e.type != "ticket.rated":
            continue
        d = e.data
        sc = valid_rating(d)
        k = ticket_key(e.node, d, e.ts, tz)
        if sc is None or k in seen:
            continue
        seen.add(k)
        who = d.get("clerk") if isinstance(d.get("clerk"), str) else None
        if clerk is not None and who != clerk:
            continue
        score, scale = sc
        svc = str(d["service"]) if d.get("service") is not None else None
        ctr = str(d["counter"]) if d.get("counter") is not None else None
        rs = reason_ids(d)
        dossier = d.get("dossier") if isinstance(d.get("dossier"), str) else dossiers.get(k)
        out.append({
            "id": f"{center}/{e.node}/{e.seq}", "ts": e.ts.isoformat(), "center": center,
            "center_name": names.get("center_name") or center, "ticket": k[2], "day": k[1],
            "service": svc, "service_name": services.get(svc) if svc else None,
            "counter": ctr, "counter_name": counters.get(ctr) if ctr else None,
            "clerk": who, "clerk_name": clerks.get(who) if who else None,
            "score": score, "scale": scale, "satisfied": satisfied(score, scale),
            "reasons": rs, "reason_names": [reasons.get(r) or r for r in rs], "dossier": dossier,
        })
    return out


def ratings_from_store(store: Any, center: str, since: datetime, until: datetime, names: Mapping[str, Any],
                       *, clerk: str | None = None) -> list[dict[str, Any]]:
    """Rating rows of ``center`` with ``since <= ts < until`` from a series store."""
    events = store.events_between(center, since, until, types=("ticket.rated", "ticket.completed"))
    return rating_rows(events, names, center=center, tz=store.tz, clerk=clerk)


def drop_name(center: str, day: date | str) -> str:
    return f"ratings-{center}-{day}.csv"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the whole new one, never half: a temporary
    file in the same folder, flushed and fsynced, then renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_drop(store: Any, center: str, day: date | str, names: Mapping[str, Any], out_dir: Path) -> Path:
    """Write ``ratings-<center>-<day>.csv`` (every rating of that local day, UTF-8 with BOM) atomically into
    ``out_dir``; returns its path. Re-writing it later (late events) replaces it whole."""
    from civiq.gateway.reports.export import ratings_csv
    from civiq.gateway.reports.periods import period_of

    p: Period = period_of("day", day)
    since, until = p.bounds(store.tz)
    rows = ratings_from_store(store, center, since, until, names)
    path = Path(out_dir) / drop_name(center, p.first.isoformat())
    write_atomic(path, ratings_csv(rows, store.tz))
    return path


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
