"""Edge start-up after a long event log: ``python -m bench.startup``.

The agent rebuilds its queue by folding the event log (:class:`~civiq.edge.queue.engine.QueueEngine`). A busy
center writes ~5,500 events a day (the ``morning_surge`` day of :mod:`bench.loadsim` scaled ×7, from the real
engine, as in the outbox replay bench), so months of history are hundreds of thousands of events; systemd
gives the agent 60 s (``TimeoutStartSec``) to say READY. This bench builds such a log in a real
:class:`~civiq.edge.queue.store.EdgeStore` file (the one day repeated ``--days`` times, timestamps and days
shifted, so every day's numbering restarts as it would) and times the engine's start-up three ways: the whole
log (no checkpoint: an upgrade that changed the engine's state, or the first start after this feature), a
checkpoint saved at the last event (a clean stop), and a checkpoint 5 minutes old (kill -9 or power loss
between two periodic checkpoints).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.common import fmt, md_table
from bench.replay import busy_day_events


def shifted(day: list[Any], days: int) -> list[tuple[Any, dict, Any, Any]]:
    """``day`` repeated ``days`` times: (type, data, ts, clock), timestamps and local days moved on."""
    out = []
    for k in range(days):
        shift = timedelta(days=k)
        for e in day:
            data = dict(e.data)
            if isinstance(data.get("day"), str):
                data["day"] = (date.fromisoformat(data["day"]) + shift).isoformat()
            out.append((e.type, data, e.ts + shift, e.clock))
    return out


def write(path: Path, events: list[tuple[Any, dict, Any, Any]]) -> None:
    from civiq.edge.queue.store import EdgeStore

    store = EdgeStore(path)
    with store.transaction() as tx:
        for args in events:
            tx.append(*args)
    store.ack(list(range(1, store.last_seq() + 1)))  # long delivered: only the log matters here
    store.close()


def engine_setup() -> tuple[dict, dict]:
    """The services and work profiles of the busy day (what the agent's config would hold)."""
    from dataclasses import replace

    from bench.loadsim import PROFILES
    from bench.replay import SCALE
    from civiq.contract import WorkProfile
    from civiq.edge.queue.engine import ServiceDef

    base = PROFILES["morning_surge"]
    counters = tuple(replace(c, id=f"{c.id}-{j}") for j in range(SCALE) for c in base.counters)
    services = {s.prefix: ServiceDef(s.prefix, s.name) for s in base.services}
    profiles = {c.id: WorkProfile(services=list(c.services)) for c in counters}
    return services, profiles


def start(path: Path) -> tuple[float, Any]:
    from civiq.clock import SystemClock
    from civiq.edge.queue.engine import QueueEngine
    from civiq.edge.queue.store import EdgeStore

    services, profiles = engine_setup()
    t0 = time.perf_counter()
    eng = QueueEngine(EdgeStore(path), SystemClock(), services, profiles)
    took = time.perf_counter() - t0
    return took, eng


def run(days: int = 30, log: Any = print) -> dict[str, Any]:
    from civiq.edge.queue.engine import CHECKPOINT_KEY

    tmp = Path(tempfile.mkdtemp(prefix="civiq-bench-startup-"))
    try:
        day = busy_day_events()
        per_day = len(day)
        events = shifted(day, days)
        n = len(events)
        log(f"  log: {days} days x {per_day:,} events = {n:,} events")
        db = tmp / "edge.db"
        write(db, events)
        full_s, eng = start(db)  # no checkpoint yet: the whole log
        assert eng.replayed == n and eng.restored_from is None, (eng.replayed, n)
        t0 = time.perf_counter()
        eng.checkpoint()
        save_s = time.perf_counter() - t0
        size = len(eng.store.get_meta(CHECKPOINT_KEY) or "")
        eng.store.close()
        clean_s, eng = start(db)  # a clean stop saved a checkpoint at the last event
        assert eng.replayed == 0 and eng.restored_from == n
        eng.store.close()
        # a crash 5 minutes after the last periodic checkpoint: the busiest day's events of 5 of its ~9 hours
        tail = max(1, per_day * 5 // (9 * 60))
        crash = tmp / "crash.db"
        write(crash, events[:-tail])
        _, eng = start(crash)
        eng.checkpoint()
        eng.store.close()
        write(crash, events[-tail:])
        crash_s, eng = start(crash)
        crash_replayed = eng.replayed
        assert crash_replayed == tail, (crash_replayed, tail)
        eng.store.close()
        rate = n / full_s
        log(f"  whole log {full_s:.2f} s ({rate:,.0f} ev/s); checkpoint at the end {clean_s * 1000:.0f} ms; "
            f"5 min old {crash_s * 1000:.0f} ms ({crash_replayed} events); saving one {save_s * 1000:.0f} ms, "
            f"{size / 1024:.0f} KiB")
        return {"days": days, "per_day": per_day, "events": n, "full_s": full_s, "rate": rate,
                "clean_s": clean_s, "crash_s": crash_s, "crash_replayed": crash_replayed, "save_s": save_s,
                "size": size}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def report(r: dict[str, Any]) -> str:
    year = 250 * r["per_day"]
    rows = [
        ["the whole log (no checkpoint)", f"{r['events']:,}", fmt(r["full_s"], 2), f"{r['rate']:,.0f}"],
        ["checkpoint at the last event (clean stop)", "0", fmt(r["clean_s"], 3), "–"],
        [f"checkpoint 5 min old (crash; {r['crash_replayed']:,} events after it)", f"{r['crash_replayed']:,}",
         fmt(r["crash_s"], 3), "–"],
    ]
    out = md_table(["start-up", "events folded", "seconds", "events/s"], rows)
    out += (f"\n\nLog: {r['days']} busy days × {r['per_day']:,} events = {r['events']:,} events. Saving a "
            f"checkpoint took {r['save_s'] * 1000:.0f} ms ({r['size'] / 1024:.0f} KiB in the store's `meta` "
            f"table; the agent saves one every 5 minutes when the log moved, and at every clean stop). At the "
            f"whole-log rate a year of such days ({year:,} events, 250 working days) would take "
            f"{year / r['rate']:.0f} s here; a Pi is several times slower than this machine (not measured here), "
            "which puts it near or past systemd's 60 s `TimeoutStartSec`. Without a usable checkpoint the agent asks systemd for more time "
            "(`EXTEND_TIMEOUT_USEC`) while it replays.")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    a = ap.parse_args(argv)
    print(report(run(a.days, log=lambda s: print(s, file=sys.stderr))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
