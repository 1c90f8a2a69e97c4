"""Shared fixtures: a real Mosquitto on a free port, an MQTT recorder, a fake clock, a webhook receiver, and the
test tiers. The parts themselves live in civiq/dev/harness.py, which the benchmarks use too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from civiq.clock import FakeClock
from civiq.dev.broker import Mosquitto
from civiq.dev.harness import Recorder, Webhook
from civiq.dev.harness import wait_for as wait_for  # tests import it from here


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
def hook() -> Iterator[Webhook]:
    """A real HTTP server recording every alert POSTed to it (a webhook channel's receiver)."""
    h = Webhook()
    yield h
    h.close()


# ------------------------------------------------------------------------------------------- test tiers
# `make check` runs the fast tier: unit tests and doctests, nothing that starts a broker, a browser, a TSDB,
# a whole agent process or a fresh venv (`pytest -m "not integration"`). `make test` runs everything.
INTEGRATION_DIRS = ("e2e", "reliability", "bench")
INTEGRATION_FIXTURES = {"broker", "recorder", "browser", "page", "alertmanager", "edge_venv", "vm", "victoria"}
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
