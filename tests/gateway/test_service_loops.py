"""The gateway's threads: the light loop (alert timers, systemd watchdog) never waits for the advisor."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from civiq.dev.broker import free_port
from civiq.gateway.service import Gateway
from civiq.gateway.settings import GatewaySettings
from tests.conftest import wait_for


class Pings:
    """Stands in for systemd's notify socket: when the watchdog was pinged."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def ready(self, status: str = "") -> None:
        pass

    def stopping(self) -> None:
        pass

    def watchdog(self) -> None:
        self.times.append(time.monotonic())


def test_a_slow_advisor_pass_does_not_starve_the_watchdog(broker, tmp_path: Path) -> None:  # noqa: ANN001
    settings = GatewaySettings.load(data_dir=tmp_path / "gw", http={"port": free_port()},
                                    mqtt={"host": broker.host, "port": broker.port}, balance={"interval_s": 1})
    pings = Pings()
    gw = Gateway(settings, channels=[], notifier=pings)
    in_pass, release = threading.Event(), threading.Event()

    def slow_pass() -> None:  # 100 centers with 28 days of history each, say
        in_pass.set()
        release.wait(10)

    gw._advise_all = slow_pass  # type: ignore[method-assign]
    gw.start()
    try:
        assert in_pass.wait(10), "the advisor never ran"
        t0 = time.monotonic()
        wait_for(lambda: len([t for t in pings.times if t > t0]) >= 4, timeout=8,
                 what="watchdog pings while the advisor pass runs")
        during = [t for t in pings.times if t > t0]
        assert max(b - a for a, b in zip(during, during[1:], strict=False)) < 2.0
        assert not release.is_set() and in_pass.is_set()  # all of that inside one advisor pass
    finally:
        release.set()
        gw.stop()
