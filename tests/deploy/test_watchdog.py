"""The systemd notify protocol, end to end: real agent and gateway processes talk to a unix datagram socket
standing in for systemd (``$NOTIFY_SOCKET``), exactly as they would under ``Type=notify`` + ``WatchdogSec=``.

systemd kills a service whose WATCHDOG=1 pings stop for WatchdogSec; the tests set WATCHDOG_USEC=2 s and
check that pings arrive well within that while the main loop works, and stop when it hangs (the agent's
``CIVIQ_TEST_HOOKS=1`` test hook: SIGUSR2 sets ``agent.hung``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from civiq.dev.harness import NotifySocket
from tests.conftest import wait_for
from tests.e2e.centers import write_center

REPO = Path(__file__).resolve().parents[2]
WATCHDOG_S = 2.0  # WatchdogSec the tests pretend systemd has


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(tmp_path / "notify.sock")
    yield s
    s.close()


def spawn(args: list[str], notify: NotifySocket, **extra_env: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIVIQ_", "WATCHDOG_", "NOTIFY_"))}
    env.update(NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC=str(int(WATCHDOG_S * 1e6)), **extra_env)
    return subprocess.Popen([sys.executable, "-m", "civiq", *args], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


def ready_then_pings(notify: NotifySocket, proc: subprocess.Popen, pings: int, timeout: float) -> list[float]:
    """Wait for READY=1, then for ``pings`` WATCHDOG=1 after it; return their arrival times."""
    def ready() -> float | None:
        assert proc.poll() is None, f"the process exited early: {proc.stderr.read() if proc.stderr else ''}"
        t = notify.times_of("READY=1")
        return t[0] if t else None

    t_ready = wait_for(ready, timeout=timeout, what="READY=1")

    def enough() -> list[float] | None:
        times = notify.times_of("WATCHDOG=1", after=t_ready)
        return times if len(times) >= pings else None

    return wait_for(enough, timeout=timeout, what=f"{pings} WATCHDOG=1 after READY=1")


def assert_regular(times: list[float], max_gap: float) -> None:
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) <= max_gap, f"watchdog pings {max(gaps):.2f} s apart (systemd allows {WATCHDOG_S} s)"
    assert times[-1] - times[0] >= 0.1 * (len(times) - 1), "pings came in a burst, not over time"


def test_edge_agent_is_ready_pings_the_watchdog_and_stops_pinging_when_its_loop_hangs(
        broker, notify: NotifySocket, tmp_path: Path) -> None:
    cfg = write_center(tmp_path, broker.port)
    proc = spawn(["edge", "run", str(cfg), "--simulate", "--api-port", "0"], notify, CIVIQ_TEST_HOOKS="1")
    try:
        pings = ready_then_pings(notify, proc, pings=6, timeout=20)
        # the agent pings every loop turn, far more often than half of WatchdogSec
        assert_regular(pings, max_gap=WATCHDOG_S / 2)

        proc.send_signal(signal.SIGUSR2)  # test hook: the scheduler loop hangs
        hung_at = time.monotonic()
        # systemd would act after WatchdogSec without a ping: watch that long (plus a margin) for one
        time.sleep(WATCHDOG_S + 0.5)
        late = notify.times_of("WATCHDOG=1", after=hung_at + 0.5)  # one turn may have been under way
        assert late == [], f"{len(late)} watchdog pings after the loop hung: systemd would never restart it"
        assert proc.poll() is None, "the hung agent should still be running (systemd is the one to kill it)"
    finally:
        code, err = stop(proc)
    assert notify.times_of("STOPPING=1"), "no STOPPING=1 on SIGTERM"
    assert code == 0, err


def test_edge_agent_is_ready_without_a_broker(notify: NotifySocket, tmp_path: Path) -> None:
    """The center must run when the network is down: READY=1 must not wait for MQTT (Type=notify would
    otherwise fail the start after TimeoutStartSec and restart the agent in a loop)."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    cfg = write_center(tmp_path, dead_port)
    proc = spawn(["edge", "run", str(cfg), "--simulate", "--api-port", "0"], notify)
    try:
        pings = ready_then_pings(notify, proc, pings=3, timeout=20)
        assert_regular(pings, max_gap=WATCHDOG_S / 2)
    finally:
        code, err = stop(proc)
    assert code == 0, err


def test_a_long_log_asks_systemd_for_time_and_a_clean_stop_saves_a_checkpoint(notify: NotifySocket,
                                                                              tmp_path: Path) -> None:
    """Start-up replays the event log: months of a busy center would outlast TimeoutStartSec (60 s) on a Pi,
    and systemd would kill every start. The agent asks for more time while it replays without a checkpoint,
    and every clean stop saves one, so the next start replays only what came after."""
    from datetime import UTC, datetime

    from civiq.contract import ClockQuality, EventType
    from civiq.edge.queue.engine import CHECKPOINT_KEY, REPLAY_PAGE
    from civiq.edge.queue.store import EdgeStore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    cfg = write_center(tmp_path, dead_port)
    db = tmp_path / "state-test-xa-pi-1" / "edge.db"
    db.parent.mkdir(parents=True)
    store = EdgeStore(db)
    now = datetime.now(UTC)
    with store.transaction() as tx:  # last year's log, as far as the fold is concerned
        for i in range(2 * REPLAY_PAGE + 100):
            tx.append(EventType.device_fault, {"device": "p1", "kind": "printer", "state": "degraded",
                                               "detail": f"old {i}"}, now, ClockQuality.synced)
    store.ack(list(range(1, store.last_seq() + 1)))  # long delivered
    logged = store.last_seq()
    store.close()

    def start_and_stop() -> tuple[list[str], str]:
        t0 = time.monotonic()
        first = len(notify.messages)
        proc = spawn(["edge", "run", str(cfg), "--simulate", "--api-port", "0"], notify)
        try:
            wait_for(lambda: notify.times_of("WATCHDOG=1", after=max(notify.times_of("READY=1", after=t0),
                                                                       default=float("inf"))),
                     timeout=30, what="READY=1, then a watchdog ping")
        finally:
            code, err = stop(proc)
        assert code == 0, err
        with notify.lock:
            return [m for _, m in notify.messages[first:]], err

    messages, _ = start_and_stop()
    ready_at = next(i for i, m in enumerate(messages) if "READY=1" in m.splitlines())
    extends = [m for m in messages[:ready_at] if "EXTEND_TIMEOUT_USEC=30000000" in m.splitlines()]
    assert len(extends) >= 2, f"no EXTEND_TIMEOUT_USEC during a {logged}-event replay: {messages[:ready_at]}"
    store = EdgeStore(db)
    assert store.get_meta(CHECKPOINT_KEY), "no checkpoint after a clean stop"
    store.close()
    messages, _ = start_and_stop()  # from the checkpoint: nothing long to replay, no extension asked
    ready_at = next(i for i, m in enumerate(messages) if "READY=1" in m.splitlines())
    assert not [m for m in messages[:ready_at] if "EXTEND_TIMEOUT_USEC" in m], messages[:ready_at]


def test_gateway_is_ready_and_pings_the_watchdog(broker, notify: NotifySocket, tmp_path: Path) -> None:
    settings = tmp_path / "gateway.yaml"
    settings.write_text(f"gateway_id: gw-test\ndata_dir: {tmp_path / 'gw'}\n"
                        f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\nhttp: {{host: 127.0.0.1, port: 0}}\n")
    proc = spawn(["gateway", "run", "--config", str(settings)], notify)
    try:
        pings = ready_then_pings(notify, proc, pings=3, timeout=20)
        assert_regular(pings, max_gap=WATCHDOG_S)
    finally:
        code, err = stop(proc)
    assert notify.times_of("STOPPING=1"), "no STOPPING=1 on SIGTERM"
    assert code == 0, err
