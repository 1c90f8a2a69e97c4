"""The daily CSV drop of ratings for the one-stop system (setting ``ratings_drop_dir``; docs/reports.md).

After each local day ends, :class:`RatingsDrop` writes ``ratings-<center>-<YYYY-MM-DD>.csv`` for every center
into the drop folder (atomically: a temporary file renamed over the old one). It keeps the last
``ratings_drop_days`` ended days up to date: when a late event of such a day arrives (an edge that was
offline sends its outbox), that day's file is written again, whole. What was written is remembered (a
fingerprint per file: the count and latest arrival of the day's ``ticket.rated`` / ``ticket.completed``
events) in ``<data_dir>/ratings-drop.json``, so a restart re-writes nothing that did not change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from civiq.clock import local_day
from civiq.gateway.reports.periods import period_of
from civiq.gateway.reports.ratings import drop_name, write_atomic, write_drop

log = logging.getLogger(__name__)
DROP_TYPES = ("ticket.rated", "ticket.completed")


class RatingsDrop:
    def __init__(self, store: Any, out_dir: Path, names: Callable[[str], Mapping[str, Any]], *,
                 state_file: Path | None = None, days: int = 7, every_s: float = 60.0) -> None:
        self.store = store
        self.out_dir = Path(out_dir)
        self.names = names
        self.days = days
        self.every_s = every_s
        self.state_file = state_file
        self._next = 0.0
        self._done: dict[str, list[float]] = {}
        if state_file is not None:
            try:
                self._done = {k: list(v) for k, v in json.loads(state_file.read_text()).items()}
            except (OSError, ValueError, AttributeError):
                self._done = {}

    def tick(self, now: datetime, mono: float) -> list[Path]:
        """Called often (the gateway's loop); works at most every ``every_s`` seconds. Returns files written."""
        if mono < self._next:
            return []
        self._next = mono + self.every_s
        today = date.fromisoformat(local_day(now, self.store.tz))
        return self.run([today - timedelta(days=i) for i in range(1, self.days + 1)])

    def run(self, days: list[date], force: bool = False) -> list[Path]:
        """Write the files of ``days`` for every center whose day changed since it was last written (all of
        them with ``force``)."""
        written: list[Path] = []
        for center in self.store.centers():
            for d in days:
                since, until = period_of("day", d).bounds(self.store.tz)
                fp = list(self.store.fingerprint(center, since, until, DROP_TYPES))
                name = drop_name(center, d.isoformat())
                if not force and self._done.get(name) == fp and (self.out_dir / name).exists():
                    continue
                try:
                    written.append(write_drop(self.store, center, d, self.names(center), self.out_dir))
                except OSError as e:
                    log.error("ratings drop %s: cannot write it (%s)", self.out_dir / name, e.strerror)
                    continue
                self._done[name] = fp
        if written:
            oldest = (min(days) - timedelta(days=self.days)).isoformat()
            self._done = {k: v for k, v in self._done.items() if k[-14:-4] >= oldest}  # ...-YYYY-MM-DD.csv
            if self.state_file is not None:
                try:
                    write_atomic(self.state_file, json.dumps(self._done).encode())
                except OSError as e:
                    log.warning("ratings drop state %s: %s", self.state_file, e.strerror)
        return written
