"""Outbox replay after an outage: ``python -m bench.replay``.

A busy center (~2,000 tickets a day: the ``morning_surge`` day of :mod:`bench.loadsim` scaled ×7 in tickets
and counters) loses its uplink. Its events are produced by the **real queue engine** under a FakeClock
(``bench.loadsim.DaySim``) and written, with their original timestamps, to a real
:class:`~civiq.edge.queue.store.EdgeStore` file, whose trigger queues every event in the outbox, exactly
as the agent does while offline. Then the network "comes back": an :class:`~civiq.edge.link.EdgeLink` per
center connects to Mosquitto and replays its outbox while a real gateway process (``civiq gateway run``)
ingests. Measured: time from the link's start to an empty outbox (every event acknowledged by the broker)
and to the last event committed in the gateway's series store, and the events/s of each.

Cases: the busiest hour of the day, the whole day, and ten such centers coming back at once after their
busiest hour (ten links in one process: pessimistic, real centers each have their own Pi).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import GatewayProc, broker, fmt, md_table, wait_until

SCALE = 7


def busy_day_events(seed: int = 1) -> list[Any]:
    """The events of a ~2,000-ticket day at one center, from the real engine (contract ``Event`` objects)."""
    from bench.loadsim import PROFILES, DaySim

    base = PROFILES["morning_surge"]
    counters = tuple(replace(c, id=f"{c.id}-{j}") for j in range(SCALE) for c in base.counters)
    day = replace(base, name="busy", tickets=base.tickets * SCALE, counters=counters)
    return list(DaySim(day, "profiles", seed=seed, keep_events=True).run().events)


def busiest_hour(events: list[Any], tz: str = "Asia/Ho_Chi_Minh") -> list[Any]:
    z = ZoneInfo(tz)
    hours = Counter(e.ts.astimezone(z).hour for e in events)
    h = hours.most_common(1)[0][0]
    return [e for e in events if e.ts.astimezone(z).hour == h]


def fill_outbox(path: Path, events: list[Any]) -> Any:
    """An EdgeStore whose outbox holds ``events`` (appended in one transaction, original timestamps)."""
    from civiq.edge.queue.store import EdgeStore

    store = EdgeStore(path)
    with store.transaction():
        for e in events:
            store.append(e.type, e.data, e.ts, e.clock)
    return store


def _stored(db: Path, centers: list[str]) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return 0
    try:
        marks = ",".join("?" * len(centers))
        q = f"SELECT count(*) FROM events WHERE center IN ({marks})"
        return int(con.execute(q, centers).fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        con.close()


def replay_case(name: str, port: int, gw: GatewayProc, tmp: Path, batches: list[list[Any]],
                tag: str) -> dict[str, Any]:
    from civiq.clock import SystemClock
    from civiq.edge.link import EdgeLink

    centers = [f"{tag}-{i}" for i in range(len(batches))]
    stores = [fill_outbox(tmp / c / "edge.db", evs) for c, evs in zip(centers, batches, strict=True)]
    total = sum(len(b) for b in batches)
    assert sum(s.pending_count() for s in stores) == total
    links = [EdgeLink(s, center=c, node="pi-1", host="127.0.0.1", port=port, clock=SystemClock(), keepalive=10)
             for s, c in zip(stores, centers, strict=True)]
    db = gw.dir / "data" / "series.db"
    t0 = time.monotonic()
    for lk in links:
        lk.start()
    try:
        wait_until(lambda: all(s.pending_count() == 0 for s in stores), 600, 0.005, f"{name}: outbox empty")
        t_drained = time.monotonic() - t0
        wait_until(lambda: _stored(db, centers) >= total, 600, 0.02, f"{name}: gateway stored all events")
        t_stored = time.monotonic() - t0
    finally:
        for lk in links:
            lk.stop()
        for s in stores:
            s.close()
    return {"case": name, "centers": len(batches), "events": total, "drained_s": t_drained,
            "stored_s": t_stored, "stored": _stored(db, centers)}


def run(log: Callable[[str], None] = print, quick: bool = False) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="civiq-bench-replay-"))
    day = busy_day_events()
    hour = busiest_hour(day)
    b = broker()
    gw = GatewayProc(b.port, tmp / "gw").start()
    out = []
    try:
        wait_until(lambda: any(k.endswith("connected") and v >= 1 for k, v in gw.metrics().items()), 60, 0.1,
                   "gateway connected")
        cases = [(f"busy center, busiest hour ({len(day):,} events/day)", [hour], "hour")]
        if not quick:
            cases += [("busy center, whole day", [day], "day"),
                      ("10 busy centers at once, busiest hour each", [hour] * 10, "ten")]
        for name, batches, tag in cases:
            r = replay_case(name, b.port, gw, tmp, batches, tag)
            out.append(r)
            log(f"  {name}: {r['events']:,} events, outbox empty in {r['drained_s']:.2f} s, stored in "
                f"{r['stored_s']:.2f} s")
    finally:
        gw.stop()
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def report(rows: list[dict[str, Any]]) -> str:
    return md_table(
        ["outage", "events in outbox", "outbox empty (s)", "events/s acked", "all stored at gateway (s)",
         "events/s end to end", "stored / sent"],
        [[r["case"], f"{r['events']:,}", fmt(r["drained_s"], 2), f"{r['events'] / r['drained_s']:,.0f}",
          fmt(r["stored_s"], 2), f"{r['events'] / r['stored_s']:,.0f}", f"{r['stored']:,}/{r['events']:,}"]
         for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the one-hour case only")
    a = ap.parse_args(argv)
    print(report(run(log=lambda s: print(s, file=sys.stderr), quick=a.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
