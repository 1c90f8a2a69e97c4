"""Which procedure a QR board shows now: the items take turns, ``cycle_seconds`` each, on the injected clock.

    >>> from civiq.clock import FakeClock
    >>> clock = FakeClock()
    >>> c = QrCycler([QrItem("Đất đai", "Land", "https://a"), QrItem("Hộ tịch", "Civil status", "https://b")],
    ...              clock, cycle_seconds=8)
    >>> c.current().title_en; clock.advance(8); c.current().title_en
    'Land'
    'Civil status'
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from civiq.clock import Clock


@dataclass(frozen=True)
class QrItem:
    """One procedure: its name in Vietnamese and English and its page on the public service portal."""

    title_vi: str
    title_en: str
    url: str

    @property
    def title(self) -> str:
        return f"{self.title_vi} / {self.title_en}" if self.title_en else self.title_vi


class QrCycler:
    def __init__(self, items: Sequence[QrItem], clock: Clock, cycle_seconds: float) -> None:
        if not cycle_seconds or cycle_seconds <= 0:
            raise ValueError(f"cycle_seconds must be > 0, not {cycle_seconds!r}")
        self.clock = clock
        self.cycle_seconds = float(cycle_seconds)
        self._lock = threading.Lock()
        self._items: tuple[QrItem, ...] = tuple(items)
        self._t0 = clock.monotonic()

    @property
    def items(self) -> tuple[QrItem, ...]:
        return self._items

    def set_items(self, items: Sequence[QrItem]) -> None:
        """Replace the list (config reload); the cycle starts again from the first item."""
        with self._lock:
            self._items = tuple(items)
            self._t0 = self.clock.monotonic()

    def _pick(self) -> tuple[int, QrItem] | None:
        with self._lock:
            if not self._items:
                return None
            elapsed = max(0.0, self.clock.monotonic() - self._t0)
            i = int(elapsed // self.cycle_seconds) % len(self._items)
            return i, self._items[i]

    def index(self) -> int | None:
        picked = self._pick()
        return None if picked is None else picked[0]

    def current(self) -> QrItem | None:
        """The item to show now (``None`` when there is nothing to show)."""
        picked = self._pick()
        return None if picked is None else picked[1]

    def seconds_left(self) -> float:
        """Seconds until the next item: when to wake up to switch."""
        elapsed = max(0.0, self.clock.monotonic() - self._t0)
        return self.cycle_seconds - (elapsed % self.cycle_seconds)
