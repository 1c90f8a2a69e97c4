"""One process of a simulated edge fleet: N real :class:`~civiq.edge.link.EdgeLink` s, each over its own
:class:`~civiq.edge.queue.store.EdgeStore` file, driven by a test through stdin/stdout.

Why a process of its own: paho-mqtt 2.2 waits with ``select()``, which cannot watch a file descriptor numbered
1024 or more, and each link holds six (its MQTT socket, the socket pair paho wakes its loop with, and the
SQLite db, wal and shm files). One process therefore holds at most :data:`MAX_LINKS` links; a fleet of 500 is several of these workers (``test_faults_fleet.py``).

Protocol (one JSON object per stdout line, each with ``"event"`` and ``"t"``, the worker's ``time.monotonic()``,
which on Linux is the same clock in every process, so the test can subtract its own timestamps):

* start-up: every link connects, appends ``--before`` events and sees them acknowledged, then
  ``{"event": "ready", "links": N, "max_fd": .., "threads": ..}``.
* stdin ``outage``: wait until no link is connected (the test stopped the broker), append ``--during`` events
  to every store, answer ``{"event": "offline", "last": {"<center>/<node>": last_seq, ...}, "pending": ..}``,
  then watch: one ``{"event": "back", "node": .., "t": .., "bdseq": .., "attempts": ..}`` per link when it
  is connected again, and ``{"event": "drained", ..}`` once
  every link is back and every outbox is empty (or ``{"event": "timeout", "missing": [...]}``).
* stdin ``stop`` or end of input (the test, or its process, is gone): stop the links and exit.

Any failure is reported as ``{"event": "error", "error": "..."}`` and exit status 1. Example::

    python tests/reliability/fleet_worker.py --port 1883 --dir /tmp/w0 --worker 0 --links 50
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from civiq.clock import SystemClock  # noqa: E402
from civiq.edge.link import EdgeLink  # noqa: E402
from civiq.edge.link.mqtt import BDSEQ_KEY  # noqa: E402
from civiq.edge.queue.store import EdgeStore  # noqa: E402

FDS_PER_LINK = 6  # MQTT socket, paho's wake-up socket pair, SQLite db, -wal, -shm (measured)
SELECT_LIMIT = 1024  # select() cannot watch a descriptor >= FD_SETSIZE
MAX_LINKS = 150  # 900 descriptors for the links, room for the interpreter's own

_out_lock = threading.Lock()


def emit(event: str, **fields: object) -> None:
    """Write one protocol line (thread-safe, flushed at once)."""
    line = json.dumps({"event": event, "t": time.monotonic(), **fields}, separators=(",", ":"))
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent (the test) dies, whatever way it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def max_fd() -> int:
    """The highest open file descriptor number of this process."""
    return max(int(fd) for fd in os.listdir("/proc/self/fd"))


def node_id(worker: int, index: int) -> tuple[str, str]:
    """(center, node) of link ``index`` of worker ``worker``: ten nodes per center, unique in the fleet.

    >>> node_id(3, 42)
    ('fleet-w3-c4', 'pi-2')
    """
    return f"fleet-w{worker}-c{index // 10}", f"pi-{index % 10}"


def wait_until(cond: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


class Fleet:
    """The links of this worker and their stores."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.clock = SystemClock()
        self.names: list[str] = []
        self.stores: list[EdgeStore] = []
        self.links: list[EdgeLink] = []
        base = Path(args.dir)
        for i in range(args.links):
            center, node = node_id(args.worker, i)
            store = EdgeStore(base / f"{center}-{node}.db")
            self.names.append(f"{center}/{node}")
            self.stores.append(store)
            self.links.append(EdgeLink(store, center=center, node=node, host=args.host, port=args.port,
                                       clock=self.clock, keepalive=args.keepalive,
                                       backoff_min=args.backoff_min, backoff_max=args.backoff_max))
        self.first_try: list[bool] = []  # connected on its first attempt (so its backoff starts at 0)
        self.watcher: threading.Thread | None = None

    def append(self, count: int) -> None:
        for store, link in zip(self.stores, self.links, strict=True):
            for _ in range(count):
                n = store.last_seq() + 1
                store.append("ticket.issued", {"ticket": f"A{n:03d}", "service": "A"}, self.clock.now())
            link.notify()

    def not_connected(self) -> list[str]:
        return [n for n, link in zip(self.names, self.links, strict=True) if not link.connected]

    def pending(self) -> int:
        return sum(s.pending_count() for s in self.stores)

    def start(self) -> None:
        for link in self.links:
            link.start()
        t = self.args.timeout
        if not wait_until(lambda: not self.not_connected(), t):
            raise RuntimeError(f"not connected after {t} s: {self.not_connected()[:10]}")
        self.append(self.args.before)
        if not wait_until(lambda: self.pending() == 0, t):
            raise RuntimeError(f"{self.pending()} events still pending {t} s after start")
        self.first_try = [self.bdseq(i) == 1 for i in range(len(self.links))]
        emit("ready", links=len(self.links), first_try=sum(self.first_try), max_fd=max_fd(),
             threads=threading.active_count())

    def bdseq(self, i: int) -> int:
        """How many connection attempts link ``i`` has made (its birth/death sequence number)."""
        return int(self.stores[i].get_meta(BDSEQ_KEY, "0") or 0)

    def outage(self) -> None:
        t = self.args.timeout
        if not wait_until(lambda: not any(link.connected for link in self.links), t):
            raise RuntimeError(f"{len(self.links) - len(self.not_connected())} links still connected "
                               f"{t} s after the outage began")
        bdseq0 = [self.bdseq(i) for i in range(len(self.links))]
        self.append(self.args.during)  # the centers keep working while the broker is away
        emit("offline", last={n: s.last_seq() for n, s in zip(self.names, self.stores, strict=True)},
             pending=self.pending(), max_fd=max_fd(), threads=threading.active_count())
        self.watcher = threading.Thread(target=self._watch, args=(bdseq0,), name="fleet-watch", daemon=True)
        self.watcher.start()

    def _watch(self, bdseq0: list[int]) -> None:
        """Report each link's return as soon as it is seen (polled every 10 ms), then the drained outboxes.

        ``attempts``: connection attempts since the outage began, the successful one included; ``bdseq``: the
        successful attempt's number since the link started (with ``first_try``, it tells the test which
        backoff step the link was in when the broker came back)."""
        deadline = time.monotonic() + self.args.backoff_max + self.args.timeout
        waiting = set(range(len(self.links)))
        while waiting and time.monotonic() < deadline:
            for i in sorted(waiting):
                link = self.links[i]
                if link.connected:
                    waiting.discard(i)
                    b = self.bdseq(i)
                    emit("back", node=self.names[i], bdseq=b, attempts=b - bdseq0[i],
                         first_try=self.first_try[i], reconnects=link.stats["reconnects"])
            time.sleep(0.01)
        if waiting:
            emit("timeout", missing=[self.names[i] for i in sorted(waiting)])
            return
        if wait_until(lambda: self.pending() == 0 and not self.not_connected(), deadline - time.monotonic()):
            emit("drained", max_fd=max_fd(), threads=threading.active_count())
        else:
            emit("timeout", missing=self.not_connected(), pending=self.pending())

    def stop(self) -> None:
        """Stop every link (in parallel: each stop joins its threads) and close the stores."""
        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(lambda link: link.stop(clean=False, timeout=0.5), self.links))
        for s in self.stores:
            s.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True, help="directory for this worker's SQLite stores")
    p.add_argument("--worker", type=int, default=0, help="this worker's number (part of every center id)")
    p.add_argument("--links", type=int, default=50)
    p.add_argument("--before", type=int, default=2, help="events per link before the outage")
    p.add_argument("--during", type=int, default=3, help="events per link during the outage")
    p.add_argument("--backoff-min", type=float, default=0.5)
    p.add_argument("--backoff-max", type=float, default=30.0)
    p.add_argument("--keepalive", type=int, default=10)
    p.add_argument("--timeout", type=float, default=30.0, help="bound of every wait, seconds")
    args = p.parse_args(argv)
    if not 1 <= args.links <= MAX_LINKS:
        p.error(f"--links must be 1..{MAX_LINKS}: paho waits with select(), which cannot watch a descriptor "
                f">= {SELECT_LIMIT}, and each link holds {FDS_PER_LINK}")
    if args.before < 0 or args.during < 0:
        p.error("--before and --during must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    die_with_parent()
    fleet: Fleet | None = None
    code = 0
    try:
        fleet = Fleet(args)
        fleet.start()
        for line in sys.stdin:  # ends when the test closes our stdin (or dies)
            cmd = line.strip()
            if cmd == "outage":
                fleet.outage()
            elif cmd == "stop":
                break
            elif cmd:
                emit("error", error=f"unknown command {cmd!r} (known: outage, stop)")
    except Exception as e:  # report, never hang: the test reads this line and fails with it
        emit("error", error=f"{type(e).__name__}: {e}")
        code = 1
    finally:
        if fleet is not None:
            fleet.stop()
        emit("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
