"""The numbers a center is scored on, computed from the gateway's stored event log (docs/reports.md defines
each one).

:func:`compute` takes the events of one center (``StoredEvent`` rows, oldest first, as
:meth:`SeriesStore.events_between` returns them) and the center's display names, and returns a JSON-ready
report: the center's ``total`` row, one row per ``services`` / ``counters`` / ``clerks``, a ``timeline`` (per
hour for a day, per day for a week or month) and the satisfaction breakdown. :func:`report_from_store` reads
the period's events from the store and calls it.

Every number is exact: counts are counts of events, means use :func:`math.fsum` (exactly rounded, so the
order of the events does not change the last digit), percentiles are nearest-rank (:func:`percentile`).

>>> percentile([10, 20, 30, 40], 50), percentile([10, 20, 30, 40], 90), percentile([], 50) is None
(20, 40, True)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from civiq.contract import satisfied
from civiq.gateway.reports.periods import Period

NO_CLERK_VI = "(chưa đăng nhập)"  # the clerk row of counter work done while nobody was signed in
NO_CLERK_EN = "(not signed in)"
OVER_15_S = 15 * 60
OVER_30_S = 30 * 60
TYPES = ("ticket.issued", "ticket.called", "ticket.completed", "ticket.no_show", "ticket.transferred",
         "ticket.rated")


class EventRow(Protocol):
    node: str
    seq: int
    ts: datetime
    type: str
    wait_s: float | None
    service_s: float | None
    data: dict[str, Any]


def percentile(values: list[float], p: int) -> float | None:
    """Nearest-rank percentile of ``values`` (need not be sorted): the smallest value with at least ``p`` % of
    the values at or below it, i.e. the ``ceil(p * n / 100)``-th smallest. None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(1, -(-p * len(s) // 100))
    return s[k - 1]


def score_on_5(score: int, scale: int) -> float:
    """A score on the 1..5 scale: 5-level scores as they are, 4-level ones stretched linearly (1 -> 1,
    4 -> 5: 1 + (score - 1) * 4 / 3), so a mean over centers with either keypad stays comparable."""
    return float(score) if scale == 5 else 1 + (score - 1) * 4 / 3


def valid_rating(d: Mapping[str, Any]) -> tuple[int, int] | None:
    """``(score, scale)`` of a ``ticket.rated`` payload, or None when it is not a usable rating."""
    score, scale = d.get("score"), d.get("scale")
    if isinstance(score, bool) or isinstance(scale, bool) or not isinstance(score, int) or scale not in (4, 5):
        return None
    return (score, scale) if 1 <= score <= scale else None


def reason_ids(d: Mapping[str, Any]) -> list[str]:
    """The reason ids of a rating; anything but a list of strings (a device can send anything) gives none."""
    rs = d.get("reasons")
    return [r[:64] for r in rs if isinstance(r, str)] if isinstance(rs, list) else []


def ticket_key(node: str, d: Mapping[str, Any], ts: datetime, tz: str) -> tuple[str, str, str]:
    """How events of one ticket are joined: (node, the ticket's ``day``, label). Events without ``day`` use
    their own local day."""
    day = d.get("day")
    if not isinstance(day, str):
        day = ts.astimezone(ZoneInfo(tz)).date().isoformat()
    return node, day, str(d.get("ticket"))


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _key(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)[:64]


class _Acc:
    """Running totals of one row."""

    __slots__ = ("issued", "served", "no_show", "transferred", "priority_served", "waits", "service",
                 "ratings", "satisfied", "scores5", "reasons")

    def __init__(self) -> None:
        self.issued = self.served = self.no_show = self.transferred = self.priority_served = 0
        self.waits: list[float] = []
        self.service: list[float] = []
        self.ratings = self.satisfied = 0
        self.scores5: list[float] = []
        self.reasons: Counter[str] = Counter()

    def row(self, with_issued: bool) -> dict[str, Any]:
        w, s = self.waits, self.service
        nw = len(w)
        return {
            "issued": self.issued if with_issued else None,
            "served": self.served,
            "no_show": self.no_show,
            "transferred": self.transferred,
            "priority_served": self.priority_served,
            "waits": nw,
            "wait_mean_s": math.fsum(w) / nw if nw else None,
            "wait_p50_s": percentile(w, 50),
            "wait_p90_s": percentile(w, 90),
            "wait_over_15m": sum(1 for x in w if x > OVER_15_S),
            "wait_over_30m": sum(1 for x in w if x > OVER_30_S),
            "wait_over_15m_share": sum(1 for x in w if x > OVER_15_S) / nw if nw else None,
            "wait_over_30m_share": sum(1 for x in w if x > OVER_30_S) / nw if nw else None,
            "service_n": len(s),
            "service_mean_s": math.fsum(s) / len(s) if s else None,
            "service_p50_s": percentile(s, 50),
            "service_p90_s": percentile(s, 90),
            "ratings": self.ratings,
            "satisfied": self.satisfied,
            "satisfied_share": self.satisfied / self.ratings if self.ratings else None,
            "score_mean_5": math.fsum(self.scores5) / len(self.scores5) if self.scores5 else None,
            "reasons": dict(sorted(self.reasons.items())),
            "coverage": self.ratings / self.served if self.served else None,
        }


def _acc(group: dict[Any, _Acc], key: Any) -> _Acc:
    a = group.get(key)
    if a is None:
        a = group[key] = _Acc()
    return a


def _natural(key: str | None) -> tuple[int, list[Any]]:
    """Ids in a person's order: "2" before "10", "c2" before "c10"; None (no id) last."""
    if key is None:
        return (1, [])
    return (0, [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.findall(r"\d+|\D+", key)])


def compute(events: Iterable[EventRow], period: Period, names: Mapping[str, Any], *, center: str,
            tz: str, clerk: str | None = None, lang: str = "vi") -> dict[str, Any]:
    """The report of one center for ``period`` from its events (any order; events outside the period's
    bounds are skipped). ``names``: ``center_name``, ``services``, ``counters``, ``clerks``, ``reasons``
    (id -> name), as :meth:`LiveState.names` gives them. ``clerk``: only that clerk's work and ratings (a
    clerk's own report; ``issued`` is then None: issuing a ticket is nobody's counter work)."""
    since, until = period.bounds(tz)
    z = ZoneInfo(tz)
    by_day = period.kind == "day"
    total = _Acc()
    groups: dict[str, dict[str | None, _Acc]] = {"services": {}, "counters": {}, "clerks": {}}
    timeline: dict[str, _Acc] = {}
    scores: dict[int, Counter[int]] = {}
    priority: set[tuple[str, str, str]] = set()
    rated: set[tuple[str, str, str]] = set()
    ignored = 0
    evs = sorted((e for e in events if since <= e.ts < until and e.type in TYPES),
                 key=lambda e: (e.ts, e.node, e.seq))
    # priority tickets first: a completion is one whatever the order its issue and call arrived in
    for e in evs:
        if e.type in ("ticket.issued", "ticket.called") and e.data.get("priority"):
            priority.add(ticket_key(e.node, e.data, e.ts, tz))
    for e in evs:
        d = e.data
        t = e.type
        if clerk is not None and (t == "ticket.issued" or d.get("clerk") != clerk):
            continue
        local = e.ts.astimezone(z)
        bucket = f"{local.hour:02d}" if by_day else local.date().isoformat()
        accs = [total, _acc(timeline, bucket)]
        service, counter = _key(d.get("service")), _key(d.get("counter"))
        if service is not None:
            accs.append(_acc(groups["services"], service))
        if counter is not None and t != "ticket.issued":
            accs.append(_acc(groups["counters"], counter))
            # counter work is a clerk's (or nobody's, when no one was signed in)
            accs.append(_acc(groups["clerks"], _key(d.get("clerk"))))
        if t == "ticket.issued":
            for a in accs:
                a.issued += 1
        elif t == "ticket.called":
            w = _num(e.wait_s)
            if w is not None and not d.get("from_hold"):
                for a in accs:
                    a.waits.append(w)
        elif t == "ticket.completed":
            s = _num(e.service_s)
            prio = ticket_key(e.node, d, e.ts, tz) in priority
            for a in accs:
                a.served += 1
                if s is not None:
                    a.service.append(s)
                if prio:
                    a.priority_served += 1
        elif t == "ticket.no_show":
            for a in accs:
                a.no_show += 1
        elif t == "ticket.transferred":
            for a in accs:
                a.transferred += 1
        elif t == "ticket.rated":
            sc = valid_rating(d)
            k = ticket_key(e.node, d, e.ts, tz)
            if sc is None or k in rated:
                ignored += 1
                continue
            rated.add(k)
            score, scale = sc
            ok = satisfied(score, scale)
            reasons = reason_ids(d)
            scores.setdefault(scale, Counter())[score] += 1
            for a in accs:
                a.ratings += 1
                a.satisfied += ok
                a.scores5.append(score_on_5(score, scale))
                a.reasons.update(reasons)
    with_issued = clerk is None
    no_clerk = NO_CLERK_VI if lang == "vi" else NO_CLERK_EN

    def rows(kind: str, label: Mapping[str, str], none_name: str) -> list[dict[str, Any]]:
        out = []
        for key in sorted(groups[kind], key=_natural):
            name = none_name if key is None else label.get(key) or key
            out.append({"key": key, "name": name, **groups[kind][key].row(with_issued and kind == "services")})
        return out

    reason_names = dict(names.get("reasons") or {})
    seen_reasons = sorted(set().union(*(a.reasons for a in [total])))
    return {
        "center": center,
        "center_name": names.get("center_name") or center,
        "period": period.to_json(tz),
        "clerk": clerk,
        "clerk_name": (names.get("clerks") or {}).get(clerk) or clerk if clerk else None,
        "generated_at": datetime.now(UTC).isoformat(),
        "total": {"key": None, "name": names.get("center_name") or center, **total.row(with_issued)},
        "services": rows("services", names.get("services") or {}, "—"),
        "counters": rows("counters", names.get("counters") or {}, "—"),
        "clerks": rows("clerks", names.get("clerks") or {}, no_clerk),
        "timeline": [{"bucket": b, **timeline[b].row(with_issued)} for b in sorted(timeline)],
        "scores": {str(scale): {str(s): scores[scale][s] for s in range(1, scale + 1)} for scale in sorted(scores)},
        "reasons": {r: reason_names.get(r) or r for r in seen_reasons},
        "ratings_ignored": ignored,
    }


def report_from_store(store: Any, center: str, period: Period, names: Mapping[str, Any], *,
                      clerk: str | None = None, lang: str = "vi") -> dict[str, Any]:
    """:func:`compute` over the period's events in a :class:`~civiq.gateway.store.series.SeriesStore`."""
    since, until = period.bounds(store.tz)
    events = store.events_between(center, since, until, types=TYPES)
    return compute(events, period, names, center=center, tz=store.tz, clerk=clerk, lang=lang)
