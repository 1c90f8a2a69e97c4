"""An honest wait estimate: people ahead ÷ the effective service rate of the counters that serve them.

Pure functions over a recent history of *departures* (a ticket leaving a counter: completed, no-show or
transferred, with the counter time it took). For a service S:

* the mean time a counter spends per S ticket comes from S's departures in the last ``window_s`` seconds;
  with fewer than ``min_samples`` of them the answer is **None** ("unknown"): we do not guess;
* each *open* counter whose profile lists S contributes a share of its capacity to S: ``1/k`` where ``k`` is
  the number of its services that currently have people waiting (S included). Counters that could only take
  S through a priority rule do not count, closed and on-break counters do not count;
* rate = Σ shares / mean service time (tickets per second);
* estimate = (ahead + r) / rate, where r = 0.5 (the residual half-service of the ticket in hand) when every
  eligible counter is busy, 0 when one is idle. Nobody ahead and an idle counter: 0.

No eligible open counter, or no recent history: None.

>>> from datetime import UTC, datetime, timedelta
>>> now = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
>>> hist = [Departure("A", "c1", now - timedelta(minutes=m), 300.0) for m in (5, 15, 25)]
>>> loads = [CounterLoad("c1", ("A",), busy=True), CounterLoad("c2", ("A",), busy=True)]
>>> estimate_wait_s(4, "A", hist, loads, {"A": 5}, now, window_s=3600)
675.0
>>> estimate_wait_s(4, "A", hist[:2], loads, {"A": 5}, now, window_s=3600) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

MIN_SAMPLES = 3


@dataclass(frozen=True)
class Departure:
    """A ticket left a counter at ``at`` after ``service_s`` seconds of counter time."""

    service: str
    counter: str
    at: datetime
    service_s: float


@dataclass(frozen=True)
class CounterLoad:
    """An open counter as the estimator sees it (pass only open counters)."""

    counter: str
    services: tuple[str, ...]
    busy: bool  # a ticket is in hand


def mean_service_s(departures: Iterable[Departure], service: str, now: datetime, window_s: float,
                   min_samples: int = MIN_SAMPLES) -> float | None:
    """Mean counter time per ``service`` ticket over the window, or None with too few samples."""
    times = [d.service_s for d in departures
             if d.service == service and 0 <= (now - d.at).total_seconds() <= window_s and d.service_s >= 0]
    if len(times) < max(1, min_samples):
        return None
    return sum(times) / len(times)


def service_rate(service: str, mean_s: float, counters: Iterable[CounterLoad],
                 waiting: Mapping[str, int]) -> float:
    """Tickets of ``service`` per second the open ``counters`` can be expected to serve."""
    if mean_s <= 0:
        mean_s = 1.0  # a history of zero-second services: treat as one second rather than infinite speed
    share = 0.0
    for c in counters:
        if service not in c.services:
            continue
        demanded = {s for s in c.services if waiting.get(s, 0) > 0} | {service}
        share += 1.0 / len(demanded)
    return share / mean_s


def estimate_wait_s(ahead: int, service: str, departures: Iterable[Departure],
                    counters: Iterable[CounterLoad], waiting: Mapping[str, int], now: datetime,
                    window_s: float, min_samples: int = MIN_SAMPLES) -> float | None:
    """Seconds until a ticket with ``ahead`` people before it is called, or None when unknown."""
    eligible = [c for c in counters if service in c.services]
    if not eligible:
        return None
    mean_s = mean_service_s(departures, service, now, window_s, min_samples)
    if mean_s is None:
        return None
    rate = service_rate(service, mean_s, eligible, waiting)
    if rate <= 0:
        return None
    idle = any(not c.busy for c in eligible)
    if ahead <= 0 and idle:
        return 0.0
    residual = 0.0 if idle else 0.5
    return round((max(0, ahead) + residual) / rate, 1)
