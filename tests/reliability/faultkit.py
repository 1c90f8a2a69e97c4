"""Shared helpers of the reliability tests: CI vs soak sizes, hypothesis settings, a Mosquitto on any config,
an in-process gateway on a fake clock.

``make soak`` sets ``CIVIQ_SOAK=1`` and runs ``pytest -m slow``: every long test reads its size from
:func:`soak` so the same test runs short in CI and long in the soak.

>>> soak(10, 100) in (10, 100)
True
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from hypothesis import HealthCheck, settings

from civiq.clock import FakeClock
from civiq.dev.broker import free_port, wait_port
from civiq.gateway.service import Gateway
from civiq.gateway.settings import GatewaySettings
from tests.conftest import wait_for

SOAK = os.environ.get("CIVIQ_SOAK", "").strip().lower() not in ("", "0", "false", "no")


def soak(ci: float, long: float) -> float:
    """``long`` under ``CIVIQ_SOAK=1`` (``make soak``), else ``ci``."""
    return long if SOAK else ci


def fuzz(ci: int = 150, long: int = 3000) -> settings:
    """Hypothesis settings of a fuzz test: bounded in CI, ``long`` examples under CIVIQ_SOAK."""
    return settings(max_examples=int(soak(ci, long)), deadline=None, derandomize=not SOAK, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


class ConfMosquitto:
    """A Mosquitto started on a complete config file of ours (the shipped production config, say)."""

    def __init__(self, conf: Path, ports: list[int], log: Path) -> None:
        self.conf, self.ports, self.log = conf, ports, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> ConfMosquitto:
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(self.conf)], stdout=f, stderr=f)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while True:
                try:
                    wait_port("127.0.0.1", port, 0.5)
                    break
                except TimeoutError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"mosquitto did not start:\n{self.log.read_text()[-2000:]}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def start_gateway(broker, clock: FakeClock, tmp_path: Path) -> Gateway:  # noqa: ANN001
    """A real Gateway on ``broker``: alerts clear after 30 s of the fake clock, its start-up grace already past."""
    settings = GatewaySettings.load(data_dir=tmp_path / "gw", mqtt={"host": broker.host, "port": broker.port,
                                                                    "keepalive": 5},
                                    http={"port": free_port()}, heartbeat_timeout_s=45,
                                    alerts={"clear_after_s": 30, "mqtt": False})
    gw = Gateway(settings, clock=clock, channels=[]).start()
    assert gw.ingest.wait_ready(10)
    wait_for(lambda: not gw.alerts.stale, what="the gateway's data is fresh")
    clock.advance(46)  # past the grace that follows a (re)connected gateway
    return gw


def advance_past_hold_down(gw: Gateway, clock: FakeClock, key: str, hold_s: float = 31) -> None:
    """Step the fake clock past ``clear_after_s`` once the engine itself has seen alert ``key`` go inactive
    (``clearing``): stepping before that would start the hold-down at the later time, and no recovery would
    ever come on a clock nobody moves again."""
    wait_for(lambda: any(v.key == key and v.clearing for v in gw.alerts.active()), timeout=10,
             what=f"the alert engine to see {key} fine again")
    clock.advance(hold_s)
