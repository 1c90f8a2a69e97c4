"""One injectable clock for the whole system.

Everything that needs the time takes a :class:`Clock`. Production uses :class:`SystemClock`; tests and the
simulator use :class:`FakeClock` (advanced by hand) or :class:`ScaledClock` (runs N times faster than real
time), so days of queue activity run in seconds through the same code.

>>> c = FakeClock(datetime(2026, 1, 5, 1, 0, tzinfo=UTC))
>>> c.advance(90)
>>> c.now().isoformat()
'2026-01-05T01:01:30+00:00'
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Asia/Ho_Chi_Minh"


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for timeouts and intervals)."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that only moves when told to. Thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
        self._mono = 1000.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += max(0.0, seconds)

    def set(self, when: datetime) -> None:
        """Jump the wall clock (as NTP or a Pi without RTC would); the monotonic clock is unaffected."""
        with self._lock:
            self._now = when


class ScaledClock:
    """Wall time that runs ``speed`` times faster than real time from ``start``."""

    def __init__(self, start: datetime, speed: float = 60.0) -> None:
        self.start = start
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    def monotonic(self) -> float:
        return time.monotonic() * self.speed


def local_day(ts: datetime, tz: str = DEFAULT_TZ) -> str:
    """The local calendar day (``YYYY-MM-DD``) of a UTC timestamp; ticket numbers restart on it."""
    return ts.astimezone(ZoneInfo(tz)).date().isoformat()


def plausible(ts: datetime) -> bool:
    """False for wall clocks that are obviously wrong (a Pi without RTC booting in 1970)."""
    return ts.year >= 2024
