"""Broker outages with many edges: several whole agents through a longer outage, and a fleet of edge links in
several worker processes reconnecting after a broker restart (100 in CI, 500 under ``CIVIQ_SOAK=1``)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from civiq.contract import Event, parse_payload
from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from tests.conftest import wait_for
from tests.e2e.centers import write_center
from tests.reliability.faultkit import soak


def arrivals(rec) -> dict[str, list[int]]:  # noqa: ANN001
    """Per node (``center/node``): seqs in order of first arrival."""
    out: dict[str, list[int]] = {}
    with rec.lock:
        msgs = list(rec.messages)
    for t, p, _ in msgs:
        parts = t.split("/")
        if parts[-1] != "event":
            continue
        seqs = out.setdefault(f"{parts[2]}/{parts[3]}", [])
        seq = parse_payload(Event, p).seq
        if seq not in seqs:
            seqs.append(seq)
    return out


@pytest.mark.slow
@pytest.mark.timeout(soak(120, 1800))
def test_several_agents_through_a_long_outage(tmp_path: Path, broker, recorder) -> None:  # noqa: ANN001
    rec = recorder("civiq/v1/+/+/event", persistent=True)
    outage = soak(8, 600)  # the issue: a broker down for 10 minutes
    agents = []
    try:
        for i, (center, node) in enumerate([("xa-a", "pi-1"), ("xa-a", "pi-2"), ("xa-b", "pi-1")]):
            (tmp_path / str(i)).mkdir()
            cfg = load_config(write_center(tmp_path / str(i), broker.port, center=center, node=node,
                                           http_port=free_port()), env={})
            a = make_agent(cfg, simulate=True)
            a.start()
            agents.append(a)
        for a in agents:
            a.sim.press_button("A")
        wait_for(lambda: all(a.link.connected and a.store.pending_count() == 0 for a in agents), timeout=20)
        broker.stop()
        wait_for(lambda: not any(a.link.connected for a in agents), what="every agent sees the outage")
        end = time.monotonic() + outage
        n = 0
        while time.monotonic() < end:
            for a in agents:
                a.sim.press_button("AB"[n % 2])
                if n % 3 == 2:
                    a.sim.press_key("k1", "next")
            n += 1
            time.sleep(0.25)
        offline = {f"{a.cfg.center.id}/{a.cfg.node.id}": a.store.last_seq() for a in agents}
        assert all(a.store.pending_count() >= 5 for a in agents)
        broker.start()
        t0 = time.monotonic()
        wait_for(lambda: {k: v for k, v in arrivals(rec).items()} == {k: list(range(1, v + 1))
                                                                      for k, v in offline.items()},
                 timeout=60, what="every node's events once, in order")
        took = time.monotonic() - t0
        wait_for(lambda: all(a.store.pending_count() == 0 for a in agents), what="outboxes drained")
    finally:
        for a in agents:
            a.stop()
            a.sim.stop()
    total = sum(offline.values())
    print(f"\nRESULT outage: {len(agents)} agents, {outage:.0f} s down, {total} events; all in order {took:.1f} s "
          "after the broker came back")


WORKER = Path(__file__).with_name("fleet_worker.py")
REPO = Path(__file__).resolve().parents[2]


class FleetWorker:
    """One ``fleet_worker.py`` process; a reader thread turns its stdout lines into a queue of dicts."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name, self.log = name, log
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        with open(log, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, str(WORKER), *args], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, cwd=REPO, env=env, text=True)
        self.lines: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []  # every line read so far by expect()
        threading.Thread(target=self._read, name=f"read-{name}", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.lines.put({"event": "junk", "line": line})
        self.lines.put({"event": "exit"})

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def expect(self, event: str, timeout: float) -> dict:
        """The next ``event`` line; fails the test on an error, a timeout line, an exit or after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.name}: no {event!r} within {timeout:.0f} s{self.tail()}") from None
            self.seen.append(msg)
            if msg["event"] == event:
                return msg
            if msg["event"] in ("error", "timeout", "exit", "junk"):
                raise AssertionError(f"{self.name} while waiting for {event!r}: {msg}{self.tail()}")

    def tail(self) -> str:
        return "\n--- worker stderr:\n" + self.log.read_text(errors="replace")[-1500:]

    def close(self, timeout: float = 15.0) -> None:
        """Ask the worker to stop its links; kill it if it has not exited within ``timeout``."""
        try:
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.close()  # end of input: the worker stops its links and exits
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def fleet_workers() -> Iterator[list[FleetWorker]]:
    """Workers the test starts; none outlives the test (closed, then killed if they hang)."""
    workers: list[FleetWorker] = []
    try:
        yield workers
    finally:
        for w in workers:
            w.close()
        assert all(w.proc.poll() is not None for w in workers)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (``q`` in 0..100).

    >>> percentile([3.0, 1.0, 2.0], 50)
    2.0
    """
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def histogram(values: list[float], width: float) -> str:
    """A text histogram, one ``[lo, hi) s: count`` bucket a line."""
    counts: dict[int, int] = {}
    for v in values:
        counts[int(v // width)] = counts.get(int(v // width), 0) + 1
    return "\n".join(f"  {k * width:5.1f}-{(k + 1) * width:5.1f} s {n:4d} {'#' * max(1, n // 2)}"
                     for k, n in sorted(counts.items()))


@pytest.mark.slow
@pytest.mark.timeout(soak(90, 900))
def test_fleet_reconnects_after_a_broker_restart(tmp_path: Path, broker, recorder,  # noqa: ANN001
                                                  fleet_workers: list[FleetWorker]) -> None:
    """100 edge links in 2 processes (500 in 5 under ``CIVIQ_SOAK=1``) through a broker restart: each link
    comes back within its own full-jitter backoff cap (so all within ``backoff_max``), not all at once, and
    every event appended before and during the outage arrives once, in order.

    Several processes because paho 2.2 waits with select(), which cannot watch a descriptor >= 1024: one
    process holds at most ~150 links (6 descriptors each). See docs/reliability.md."""
    n_workers, per_worker = int(soak(2, 5)), int(soak(50, 100))
    before, during = 2, 3
    backoff_min, backoff_max = 0.5, 30.0
    outage = soak(4, 60)
    slack = soak(2.0, 5.0)  # handshake and polling on 2 loaded cores
    n = n_workers * per_worker
    rec = recorder("civiq/v1/+/+/event", persistent=True)
    t_begin = time.monotonic()
    for w in range(n_workers):
        (tmp_path / f"w{w}").mkdir()
        fleet_workers.append(FleetWorker(f"worker {w}", [
            "--host", broker.host, "--port", str(broker.port), "--dir", str(tmp_path / f"w{w}"),
            "--worker", str(w), "--links", str(per_worker), "--before", str(before), "--during", str(during),
            "--backoff-min", str(backoff_min), "--backoff-max", str(backoff_max), "--keepalive", "10",
            "--timeout", str(soak(30, 90))], tmp_path / f"w{w}.log"))
    ready = [w.expect("ready", soak(40, 120)) for w in fleet_workers]
    assert sum(r["links"] for r in ready) == n
    assert all(r["max_fd"] < 1024 for r in ready), f"a worker passed paho's select() limit: {ready}"
    wait_for(lambda: sum(len(v) for v in arrivals(rec).values()) == n * before, timeout=30, interval=0.2,
             what="the events from before the outage")

    broker.stop()
    t_down = time.monotonic()
    for w in fleet_workers:
        w.send("outage")
    last: dict[str, int] = {}
    for w in fleet_workers:
        last.update(w.expect("offline", 30)["last"])
    assert len(last) == n and all(v == before + during for v in last.values()), last
    time.sleep(max(0.0, t_down + outage - time.monotonic()))  # the outage itself: the broker stays down
    t0 = time.monotonic()  # the restart: every delay below is measured from here
    broker.start()
    started = time.monotonic() - t0  # until the broker accepts connections again

    done = [w.expect("drained", backoff_max + 60) for w in fleet_workers]
    drained = max(d["t"] for d in done) - t0
    assert all(d["max_fd"] < 1024 for d in done), f"a worker passed paho's select() limit: {done}"
    backs = [m for w in fleet_workers for m in w.seen if m["event"] == "back"]
    assert sorted(m["node"] for m in backs) == sorted(last), "every link reported back once"
    delay = {m["node"]: m["t"] - t0 for m in backs}
    expected = {node: list(range(1, seq + 1)) for node, seq in last.items()}
    wait_for(lambda: arrivals(rec) == expected, timeout=30, interval=0.5,
             what="every (node, seq) from 1 to the last, once each, in order")
    total = time.monotonic() - t_begin

    # bounded: each link within the cap of the backoff step it was sleeping in when the broker came back
    # (the attempt before the successful one); links whose first connection needed a retry only by backoff_max
    over = {}
    for m in backs:
        cap = min(backoff_max, backoff_min * 2 ** max(0, m["bdseq"] - 1)) if m["first_try"] else backoff_max
        if delay[m["node"]] > cap + slack:
            over[m["node"]] = (round(delay[m["node"]], 2), cap, m["bdseq"])
    assert not over, f"links back later than their backoff cap (delay, cap, attempt): {over}"
    values = sorted(delay.values())
    assert values[-1] <= backoff_max + slack
    # jittered: spread over seconds, never a herd in one instant
    p10, p50, p90 = (percentile(values, q) for q in (10, 50, 90))
    assert p90 - p10 >= soak(1.0, 5.0), f"reconnects bunched together: p10 {p10:.2f} s, p90 {p90:.2f} s"
    herd = max(sum(1 for v in values if a <= v < a + 0.1) for a in values)
    assert herd <= 0.25 * n, f"{herd} of {n} links reconnected within 100 ms of each other"
    attempts = sorted(m["attempts"] for m in backs)
    print(f"\nRESULT fleet: {n} links in {n_workers} processes, broker down {outage:.0f} s, backoff "
          f"{backoff_min}-{backoff_max} s full jitter; broker up in {started:.2f} s; "
          f"all back {values[-1]:.1f} s after the restart "
          f"(min {values[0]:.2f}, p10 {p10:.2f}, p50 {p50:.2f}, p90 {p90:.2f} s; at most {herd} within 100 ms), "
          f"outboxes drained {drained:.1f} s; {n * (before + during)} events, every (node, seq) once in order; "
          f"attempts during the outage {attempts[0]}-{attempts[-1]} (median {attempts[len(attempts) // 2]}); "
          f"max fd {max(r['max_fd'] for r in ready)}, threads/worker {max(r['threads'] for r in ready)}; "
          f"test {total:.1f} s\nreconnect delays after the restart:\n{histogram(values, soak(0.5, 2.0))}")
