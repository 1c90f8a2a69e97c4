"""kill -9 the queue at random moments: the log stays intact, gap-free, and no ticket is issued twice."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

from conftest import wait_for

from civiq.clock import SystemClock
from civiq.contract import EventType, WorkProfile
from civiq.edge.queue import EdgeStore, QueueEngine, ServiceDef

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("queue_crash_worker.py")


def committed_seq(db: Path) -> int:
    """The last committed seq, read through a separate connection (as another process would)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute("SELECT max(seq) FROM events").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0)


def test_kill_nine_in_a_tight_loop_loses_nothing_and_reuses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    rng = random.Random()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    kills = 0
    for round_ in range(5):
        proc = subprocess.Popen([sys.executable, str(WORKER), str(db), str(rng.randrange(10**6))], env=env,
                                stderr=subprocess.PIPE)
        try:
            target = committed_seq(db) + rng.randint(5, 120)
            wait_for(lambda t=target, p=proc: committed_seq(db) >= t or p.poll() is not None, timeout=15,
                     what=f"worker to commit up to seq {target}")
            assert proc.poll() is None, f"worker died on its own: {proc.stderr.read().decode()[-2000:]}"
            if round_ % 2:  # half the time, kill at a sub-millisecond random moment rather than right away
                for _ in range(rng.randint(0, 20000)):
                    pass
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        finally:
            proc.kill()
            proc.wait(timeout=10)
            proc.stderr.close()
    assert kills == 5

    store = EdgeStore(db)
    assert store.integrity_ok()
    evs = list(store.events())
    n = len(evs)
    assert n > 50
    assert [e.seq for e in evs] == list(range(1, n + 1))  # gap-free
    assert store.last_seq() == n and store.pending_count() == n  # every event is queued for sending, once
    issued = [(e.data["day"], e.data["ticket"]) for e in evs if e.type == EventType.ticket_issued]
    assert len(issued) == len(set(issued)), "a (day, label) was issued twice"
    numbers: dict[tuple[str, str], list[int]] = defaultdict(list)
    for e in evs:
        if e.type == EventType.ticket_issued:
            numbers[(e.data["day"], e.data["service"])].append(e.data["number"])
    for nums in numbers.values():
        assert nums == list(range(1, len(nums) + 1))  # daily numbers continue after each crash
    # a ticket is called again only after a transfer put it back in the line
    calls = Counter(e.data["ticket"] for e in evs if e.type == EventType.ticket_called)
    transfers = Counter(e.data["ticket"] for e in evs if e.type == EventType.ticket_transferred)
    assert all(calls[t] <= 1 + transfers[t] for t in calls)
    # the engine rebuilds from what survived and keeps going
    eng = QueueEngine(store, SystemClock(), {p: ServiceDef(p, p) for p in "AB"},
                      {"c1": WorkProfile(services=["A", "B"]), "c2": WorkProfile(services=["B"]),
                       "c3": WorkProfile(services=["A"])})
    assert eng.last_seq == n
    day = eng.day
    t = eng.issue("A")
    assert t.number == len(numbers.get((day, "A"), [])) + 1
