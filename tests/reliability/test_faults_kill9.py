"""kill -9 of the edge agent at random moments while it issues and calls tickets, many times in a row.

A real agent process (``civiq edge run --simulate``), pressed through its local API; a real gateway ingest
(``Ingest`` + ``SeriesStore`` on Mosquitto) on the other side. After every kill the agent is started again on the
same state directory. At the end: SQLite integrity ok, the event log gap-free, every seq stored once at the
gateway, and no ticket number (day, label) issued twice. 8 kills in CI, 100 under ``CIVIQ_SOAK=1``.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from civiq.clock import SystemClock
from civiq.dev.broker import free_port
from civiq.gateway.ingest import Ingest
from civiq.gateway.settings import GatewaySettings
from civiq.gateway.state import LiveState
from civiq.gateway.store.series import SeriesStore
from tests.conftest import wait_for
from tests.e2e.centers import write_center
from tests.e2e.test_edge_agent import _env, _http
from tests.reliability.faultkit import soak

CENTER, NODE = "test-xa", "pi-1"


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_agent_left_behind():  # noqa: ANN202
    """Whatever assertion fails, no agent process outlives the test."""
    yield
    while _STARTED:
        p = _STARTED.pop()
        if p.poll() is None:
            p.kill()
            p.wait(10)


def start_agent(config: Path, http_port: int, log: Path | None = None) -> subprocess.Popen:
    err = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    p = subprocess.Popen([sys.executable, "-m", "civiq", "edge", "run", str(config), "--simulate"], env=_env(),
                         stdout=subprocess.DEVNULL, stderr=err)
    _STARTED.append(p)

    def up() -> bool:
        if p.poll() is not None:
            raise AssertionError(f"agent exited with {p.returncode}")
        try:
            return bool(_http(http_port, "/api/state"))
        except OSError:
            return False

    wait_for(up, timeout=30, interval=0.05, what="the agent's local API")
    return p


@pytest.mark.slow
@pytest.mark.timeout(soak(120, 1800))
def test_kill9_many_times_nothing_lost_nothing_reused(tmp_path: Path, broker) -> None:  # noqa: ANN001
    kills = int(soak(8, 100))
    rng = random.Random(20260105)
    settings = GatewaySettings(gateway_id="gw-k9", mqtt={"host": broker.host, "port": broker.port, "keepalive": 5},
                               data_dir=tmp_path / "gw")
    store = SeriesStore(settings.db_path)
    ingest = Ingest(settings, LiveState(), store, clock=SystemClock()).start()
    assert ingest.wait_ready(10)
    http_port = free_port()
    config = write_center(tmp_path, broker.port, http_port=http_port)
    state_db = tmp_path / f"state-{CENTER}-{NODE}" / "edge.db"
    pressed = 0
    try:
        for _ in range(kills):
            proc = start_agent(config, http_port)
            stop = threading.Event()
            counts = {"n": 0}

            def burst(stop: threading.Event = stop, counts: dict = counts) -> None:
                i = 0
                while not stop.is_set():
                    try:
                        _http(http_port, f"/sim/press/{'AB'[i % 2]}", "POST")
                        if i % 3 == 2:
                            _http(http_port, f"/sim/key/k{1 + i % 2}/next", "POST")
                    except OSError:
                        return
                    counts["n"] += 1
                    i += 1

            t = threading.Thread(target=burst)
            t.start()
            wait_for(lambda c=counts: c["n"] >= 2, timeout=20, what="presses under way")
            stop.wait(rng.uniform(0.05, 0.8))  # a random point in the middle of the writes
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            stop.set()
            t.join(10)
            pressed += counts["n"]
        final_log = tmp_path / "final-agent.log"
        final = start_agent(config, http_port, final_log)  # a clean run sends what the last kill left
        try:
            db = sqlite3.connect(state_db)
            wait_for(lambda: db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0, timeout=30,
                     what="the outbox drained after the last restart")
            last = db.execute("SELECT max(seq) FROM events").fetchone()[0]
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            seqs = [r[0] for r in db.execute("SELECT seq FROM events ORDER BY seq")]
            assert seqs == list(range(1, last + 1)), "the event log has a gap"
            db.close()
        finally:
            final.send_signal(signal.SIGTERM)
            try:
                final.wait(15)  # the edge unit's TimeoutStopSec
            except subprocess.TimeoutExpired:
                final.send_signal(signal.SIGABRT)  # faulthandler: every thread's stack to the log
                final.wait(10)
                raise AssertionError("the agent did not stop within 15 s of SIGTERM:\n"
                                     + final_log.read_text(errors="replace")[-6000:]) from None
        wait_for(lambda: store.event_count(CENTER) >= last, timeout=30, what=f"all {last} events at the gateway")
        assert ingest.wait_idle(10)
        assert store.event_count(CENTER) == last
        assert store.gaps() == {}
        now = datetime.now(UTC)
        issued = store.events_between(CENTER, now - timedelta(days=3), now + timedelta(days=1),
                                      types=["ticket.issued"])
        labels = [(e.data["day"], e.data["ticket"]) for e in issued]
        assert len(labels) == len(set(labels)), "a ticket number was issued twice"
        assert len(labels) > kills, "too few tickets issued for the test to mean anything"
    finally:
        ingest.stop()
        store.close()
    print(f"\nRESULT kill -9: {kills} kills, {pressed} API calls, {last} events, {len(labels)} tickets: "
          "integrity ok, no gap, none lost, none reused")
