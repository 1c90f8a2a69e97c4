"""An honest wait estimate: the work ahead of a ticket ÷ the counters that will do it.

Pure functions over a history of *departures* (a ticket leaving a counter: completed, no-show or transferred,
with the counter time it took). For a new ticket of service S with ``ahead`` tickets of S before it:

* **counter time per ticket** of a service (:func:`basis_s`), the first that has data: its departures in the
  last ``window_s`` seconds (at least ``min_samples``), else its last :data:`HISTORY_SAMPLES` departures of the
  last :data:`DAY_S` (the day's history: after lunch, this morning's), else of the last :data:`MEMORY_S`
  (before opening: yesterday's), else
  every service's departures of that memory (a center-wide basis). No departure at all: unknown;
* **the counters that will serve it**: the open counters whose profile lists S; when none is open, those on
  break; when none is on break either (before opening), the closed ones, as if they opened now. Counters that
  could only take S through a priority rule do not count. None at all: unknown;
* **the work ahead**: the ``ahead`` tickets of S, plus the tickets of the other services of those counters that
  are waiting now: the counters call the longest-waiting ticket among their services, and every ticket waiting
  now is older than a new one. A shared service is counted for the share of its counters that are among S's
  (a line two other counters also serve is not all done by ours);
* a counter whose priority rule for another service is (about to be) in force (that service's oldest ticket
  has waited half the rule's minutes) counts as serving that service too;
* estimate = (work ahead + r · time of S) / number of counters, with r = :data:`RESIDUAL` = 0.75 when every one
  of them is busy (the ticket in hand is, on average, a longer one: the inspection paradox,
  ``(1 + cv²) / 2`` with the field's cv ≈ 0.7), 0 when one is idle. Nobody ahead and an idle counter: 0.

"Unknown" (None) is left for a center with no departure in memory, or a service no counter lists.

>>> from datetime import UTC, datetime, timedelta
>>> now = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
>>> hist = [Departure("A", "c1", now - timedelta(minutes=m), 300.0) for m in (5, 15, 25)]
>>> loads = [CounterLoad("c1", ("A",), busy=True), CounterLoad("c2", ("A",), busy=True)]
>>> estimate_wait_s(4, "A", hist, loads, {"A": 5}, now, window_s=3600)  # (4 + 0.75) * 300 / 2
712.5
>>> estimate_wait_s(4, "A", hist[:2], loads, {"A": 5}, now, window_s=3600)  # too few recent: the day's
712.5
>>> estimate_wait_s(4, "A", [], loads, {"A": 5}, now, window_s=3600) is None
True
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

MIN_SAMPLES = 3
MEMORY_S = 36 * 3600.0  # departures older than this are forgotten (the engine prunes them)
DAY_S = 12 * 3600.0  # "the day's history": departures this recent are preferred to yesterday's
HISTORY_SAMPLES = 30  # the fallback basis: a service's last departures in memory
RESIDUAL = 0.75  # of a counter time left on the tickets in hand when every counter is busy


@dataclass(frozen=True)
class Departure:
    """A ticket left a counter at ``at`` after ``service_s`` seconds of counter time."""

    service: str
    counter: str
    at: datetime
    service_s: float


@dataclass(frozen=True)
class CounterLoad:
    """A counter as the estimator sees it."""

    counter: str
    services: tuple[str, ...]
    busy: bool  # a ticket is in hand
    state: str = "open"  # "open" | "break" | "closed"
    rules: tuple[tuple[str, float], ...] = ()  # its priority rules: (service, over_minutes)

    def takes(self, oldest_s: Mapping[str, float]) -> tuple[str, ...]:
        """Its services, plus those of its rules that are (about to be) in force: the oldest ticket has waited
        at least half the rule's minutes."""
        extra = [s for s, m in self.rules if s not in self.services and oldest_s.get(s, 0.0) >= 30.0 * m]
        return (*self.services, *extra)


def mean_service_s(departures: Iterable[Departure], service: str, now: datetime, window_s: float,
                   min_samples: int = MIN_SAMPLES) -> float | None:
    """Mean counter time per ``service`` ticket over the window, or None with too few samples."""
    times = [d.service_s for d in departures
             if d.service == service and 0 <= (now - d.at).total_seconds() <= window_s and d.service_s >= 0]
    if len(times) < max(1, min_samples):
        return None
    return sum(times) / len(times)


def history_service_s(departures: Iterable[Departure], service: str | None, now: datetime,
                      last: int = HISTORY_SAMPLES) -> float | None:
    """Mean counter time of the last ``last`` departures of ``service`` (None: of any service), from the last
    :data:`DAY_S` (today's) if there are any, else from the last :data:`MEMORY_S`; None when there is none."""
    found = [(age, d.service_s) for d in departures
             if 0 <= (age := (now - d.at).total_seconds()) <= MEMORY_S and d.service_s >= 0
             and (service is None or d.service == service)]
    today = [x for x in found if x[0] <= DAY_S]
    use = heapq.nsmallest(last, today or found)
    return sum(s for _, s in use) / len(use) if use else None


def basis_s(departures: Sequence[Departure], service: str, now: datetime, window_s: float,
            min_samples: int = MIN_SAMPLES) -> float | None:
    """Counter time per ticket of ``service``: recent, else the day's history, else the center's; or None."""
    for m in (mean_service_s(departures, service, now, window_s, min_samples),
              history_service_s(departures, service, now), history_service_s(departures, None, now)):
        if m is not None:
            return max(m, 1.0)  # a history of zero-second services: one second rather than infinite speed
    return None


def serving(service: str, counters: Sequence[CounterLoad],
            oldest_s: Mapping[str, float] | None = None) -> list[CounterLoad]:
    """The counters expected to serve ``service``: open ones, else on break, else closed (before opening)."""
    for state in ("open", "break", "closed"):
        found = [c for c in counters if c.state == state and service in c.takes(oldest_s or {})]
        if found:
            return found
    return []


def estimate_wait_s(ahead: int, service: str, departures: Iterable[Departure],
                    counters: Iterable[CounterLoad], waiting: Mapping[str, int], now: datetime,
                    window_s: float, min_samples: int = MIN_SAMPLES,
                    oldest_s: Mapping[str, float] | None = None) -> float | None:
    """Seconds until a ticket with ``ahead`` people before it is called, or None when unknown.
    ``oldest_s``: how long the oldest ticket of each service has waited (for the counters' rules)."""
    deps = departures if isinstance(departures, Sequence) else list(departures)
    pool = list(counters)
    old = oldest_s or {}
    mine = serving(service, pool, old)
    if not mine:
        return None
    m_s = basis_s(deps, service, now, window_s, min_samples)
    if m_s is None:
        return None
    idle = any(not c.busy and c.state == "open" for c in mine)
    if ahead <= 0 and idle:
        return 0.0
    state = mine[0].state
    tier = [c for c in pool if c.state == state]
    ids = {c.counter for c in mine}
    work = max(0, ahead) * m_s
    for s in dict.fromkeys(s for c in mine for s in c.takes(old)):
        q = waiting.get(s, 0)
        if s == service or q <= 0:
            continue
        with_s = [c for c in tier if s in c.takes(old)]
        share = sum(1 for c in with_s if c.counter in ids) / len(with_s)
        m_other = basis_s(deps, s, now, window_s, min_samples) or m_s
        work += q * m_other * share
    residual = 0.0 if idle else RESIDUAL * m_s
    return round((work + residual) / len(mine), 1)
