"""Shared fixtures: a real Mosquitto on a free port, a fake clock, temporary state dirs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from civiq.clock import FakeClock
from civiq.dev.broker import Mosquitto
from civiq.mqttclient import make_client


@pytest.fixture
def broker(tmp_path) -> Iterator[Mosquitto]:  # noqa: ANN001
    """A real Mosquitto for one test; ``broker.stop()`` / ``broker.start()`` keep the port and, as a
    production broker does, the persistent sessions (saved on a clean stop)."""
    b = Mosquitto(workdir=tmp_path, persistent=True).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def clock() -> FakeClock:
    # 08:00 local time in Ho Chi Minh City on a Monday
    return FakeClock(datetime(2026, 1, 5, 1, 0, tzinfo=UTC))


def wait_for(cond: Callable[[], object], timeout: float = 10.0, interval: float = 0.01, what: str = "") -> object:
    """Poll ``cond`` until it returns something truthy; fail the test with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}")
        time.sleep(interval)


class Recorder:
    """A plain paho subscriber that records every message (topic, payload, retain)."""

    def __init__(self, host: str, port: int, topics: list[str] | str = "#", persistent: bool = False) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.arrivals: list[tuple[float, str]] = []  # (monotonic time, topic) of each message
        self.lock = threading.Lock()
        # persistent: a durable session, so the broker queues for us while we are disconnected
        self.client = make_client(f"rec-{id(self)}", clean_start=not persistent)
        self.client.reconnect_delay_set(0.1, 1)
        self.topics = [topics] if isinstance(topics, str) else topics
        self.connected = threading.Event()
        self.subscribed = threading.Event()

        def on_connect(c, u, f, rc, p=None):  # noqa: ANN001
            for t in self.topics:
                c.subscribe(t, qos=1)
            self.connected.set()

        def on_message(c, u, m):  # noqa: ANN001
            with self.lock:
                self.messages.append((m.topic, m.payload, bool(m.retain)))
                self.arrivals.append((time.monotonic(), m.topic))

        def on_subscribe(c, u, mid, rc, p=None):  # noqa: ANN001
            self.subscribed.set()

        self.client.on_subscribe = on_subscribe
        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.connected.wait(10), "recorder could not connect"
        assert self.subscribed.wait(10), "recorder's subscription was not acknowledged"

    def on(self, suffix: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def recorder(broker: Mosquitto) -> Iterator[Callable[..., Recorder]]:
    made: list[Recorder] = []

    def make(topics: list[str] | str = "#", persistent: bool = False) -> Recorder:
        r = Recorder(broker.host, broker.port, topics, persistent)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def hook():  # noqa: ANN201 - tests.e2e.system.Webhook, imported late (it pulls in the whole edge)
    """A real HTTP server recording every alert POSTed to it (a webhook channel's receiver)."""
    from tests.e2e.system import Webhook

    h = Webhook()
    yield h
    h.close()


# ------------------------------------------------------------------------------------------- test tiers
# `make check` runs the fast tier: unit tests and doctests, nothing that starts a broker, a browser, a TSDB,
# a whole agent process or a fresh venv (`pytest -m "not integration"`). `make test` runs everything.
INTEGRATION_DIRS = ("e2e", "reliability", "bench")
INTEGRATION_FIXTURES = {"broker", "recorder", "browser", "page", "alertmanager", "edge_venv"}
# modules whose every test drives a browser, kills processes or waits on the wire's real time (pty at 19200 baud)
INTEGRATION_MODULES = {"test_reports_browser", "test_watchdog", "test_queue_crash", "test_printer_stored",
                       "test_printer_paper"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        path = Path(str(item.path))
        rel = path.relative_to(tests_dir).parts if path.is_relative_to(tests_dir) else ()
        fixtures = set(getattr(item, "fixturenames", ()))
        if (rel and rel[0] in INTEGRATION_DIRS) or fixtures & INTEGRATION_FIXTURES or path.stem in INTEGRATION_MODULES \
                or item.get_closest_marker("install") or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.integration)
