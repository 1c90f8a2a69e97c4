"""Crash-test worker: issues and calls tickets in a tight loop on a file DB until it is killed.

Usage: python tests/edge/queue_crash_worker.py DB_PATH SEED
"""

from __future__ import annotations

import random
import sys

from civiq.clock import SystemClock
from civiq.contract import WorkProfile
from civiq.edge.queue import EdgeStore, QueueEngine, ServiceDef

SERVICES = {p: ServiceDef(p, f"Dịch vụ {p}") for p in "AB"}
COUNTERS = {"c1": WorkProfile(services=["A", "B"]), "c2": WorkProfile(services=["B"]),
            "c3": WorkProfile(services=["A"])}


def main() -> None:
    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    eng = QueueEngine(EdgeStore(path), SystemClock(), SERVICES, COUNTERS)
    while True:
        r = rng.random()
        if r < 0.55:
            eng.issue(rng.choice("AB"))
        elif r < 0.9:
            eng.call_next(rng.choice(list(COUNTERS)))
        elif r < 0.95:
            counter = rng.choice(list(COUNTERS))
            if eng.counter(counter).ticket is not None:
                eng.transfer(counter, to_service=rng.choice("AB"))
        else:
            counter = rng.choice(list(COUNTERS))
            if eng.counter(counter).ticket is not None:
                eng.recall(counter)


if __name__ == "__main__":
    main()
