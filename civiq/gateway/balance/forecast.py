"""What a center's history says about its load: arrival rates by local hour, counter times, no-shows.

Pure functions over contract :class:`~civiq.contract.Event` lists (the gateway's ingested events of one center).
Used events (see the ``Event`` docstring in :mod:`civiq.contract`):

* ``ticket.issued`` (``service``): one arrival, counted in its **local** hour (default Asia/Ho_Chi_Minh);
* ``ticket.completed`` (``service``, ``counter``, ``service_s``): one service time;
* ``ticket.no_show`` with a ``counter``: a citizen who did not come when called; its ``service_s`` is the
  counter time lost recalling them. A ``ticket.no_show`` with ``counter: null`` is a ticket that expired at day
  end (never called): it is counted in :attr:`Forecast.expired`, not as a no-show.

Other events and malformed data are skipped (never raised on): the history comes from the field.

Arrival rates: for every (local day, hour) slot that was *observed*, the count of arrivals. A past day with any
event is observed for all 24 hours (no arrival at 3 am is a real zero); the day of ``now`` is observed only for
the hours that have fully elapsed. The rate of an hour is the mean over the observed days, weighted by
``0.5 ** (age_days / half_life_days)`` (recent days count more). When a weekday has at least
``min_weekday_days`` observed days, it gets its own curve (Mondays are not Fridays); otherwise all days are
pooled. :attr:`Forecast.recent_per_h` is the rate of the last ``recent_min`` minutes before ``now``: the advisor
blends it in to see a surge the history did not predict.

>>> from datetime import UTC, datetime
>>> from civiq.contract import Event
>>> ev = [Event(seq=i + 1, ts=datetime(2026, 1, 5, 1, 10 * i, tzinfo=UTC), type="ticket.issued",
...             data={"service": "A"}) for i in range(3)]
>>> ev.append(Event(seq=4, ts=datetime(2026, 1, 5, 1, 40, tzinfo=UTC), type="ticket.completed",
...                 data={"service": "A", "counter": "c1", "service_s": 300}))
>>> f = build_forecast(ev, now=datetime(2026, 1, 6, 0, 0, tzinfo=UTC))
>>> f.arrivals_per_hour("A", datetime(2026, 1, 6, 1, 30, tzinfo=UTC))  # 08:30 local
3.0
>>> f.service_time["A"].mean_s
300.0
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from civiq.clock import DEFAULT_TZ
from civiq.contract import Event

__all__ = ["TimeStats", "Forecast", "assemble", "build_forecast", "classify", "time_stats"]

HOURS = 24


@dataclass(frozen=True)
class TimeStats:
    """Sample statistics of a duration (seconds): count, mean, variance (population)."""

    n: int
    mean_s: float
    var_s2: float

    @property
    def scv(self) -> float:
        """Squared coefficient of variation (variance / mean²): 1 for exponential times."""
        return self.var_s2 / (self.mean_s**2) if self.mean_s > 0 else 0.0


def time_stats(values: Iterable[float]) -> TimeStats | None:
    """Count, mean and variance of ``values``; None when empty.

    >>> time_stats([100, 200, 300])
    TimeStats(n=3, mean_s=200.0, var_s2=6666.666666666667)
    """
    xs = [float(v) for v in values]
    if not xs:
        return None
    mean = sum(xs) / len(xs)
    return TimeStats(len(xs), mean, sum((x - mean) ** 2 for x in xs) / len(xs))


@dataclass(frozen=True)
class Forecast:
    """What the history of one center says. Build it with :func:`build_forecast`."""

    tz: str
    now: datetime | None
    days: tuple[str, ...]  # local days observed (with at least one event), oldest first
    hourly: dict[str, tuple[float, ...]]  # service -> 24 arrivals/hour (local hours), all days weighted
    weekday_hourly: dict[int, dict[str, tuple[float, ...]]]  # weekday (0 = Monday) -> same, if enough days
    service_time: dict[str, TimeStats]  # completed tickets: time at the counter
    counter_time: dict[str, TimeStats]  # counter time per called ticket (completed + no-shows at a counter)
    counter_service_time: dict[tuple[str, str], TimeStats]  # (counter, service) with enough samples
    no_show_rate: dict[str, float]  # no-shows at a counter / tickets called
    expired: dict[str, int]  # tickets closed at day end without being called
    recent_per_h: dict[str, float]  # arrivals/hour over the last ``recent_min`` minutes before ``now``
    recent_min: float = 60.0
    services: tuple[str, ...] = field(default=())

    def curve(self, service: str, when: datetime) -> tuple[float, ...] | None:
        """The 24-hour arrival curve that applies to ``when`` (its weekday's if known, else all days)."""
        wd = when.astimezone(ZoneInfo(self.tz)).weekday()
        by_day = self.weekday_hourly.get(wd)
        if by_day is not None and service in by_day:
            return by_day[service]
        return self.hourly.get(service)

    def arrivals_per_hour(self, service: str, when: datetime) -> float | None:
        """Expected arrivals per hour of ``service`` in the local hour of ``when``; None without history."""
        c = self.curve(service, when)
        if c is None:
            return None
        return c[when.astimezone(ZoneInfo(self.tz)).hour]

    def mean_arrivals_per_hour(self, service: str, start: datetime, end: datetime) -> float | None:
        """Time-weighted mean of the hourly rate over ``[start, end)``; None without history."""
        if end <= start:
            return self.arrivals_per_hour(service, start)
        total = weight = 0.0
        t = start
        while t < end:
            nxt = min(end, t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
            r = self.arrivals_per_hour(service, t)
            if r is None:
                return None
            w = (nxt - t).total_seconds()
            total += r * w
            weight += w
            t = nxt
        return total / weight if weight else None

    def time_for(self, service: str, counter: str | None = None) -> TimeStats | None:
        """Counter time per called ticket of ``service`` (at ``counter`` when that pair has enough samples)."""
        if counter is not None and (counter, service) in self.counter_service_time:
            return self.counter_service_time[(counter, service)]
        return self.counter_time.get(service)


def _num(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) and f >= 0 else None


def _str(v: object) -> str | None:
    return v if isinstance(v, str) and v else None


# what one event adds to a forecast: (kind, service, counter, seconds); kinds below
ISSUED, CALLED, COMPLETED, NO_SHOW, EXPIRED = "issued", "called", "completed", "no_show", "expired"


def classify(type: str, data: object) -> tuple[str, str, str | None, float | None] | None:
    """What an event of ``type`` (the contract's event type string) with ``data`` adds to a forecast:
    ``(kind, service, counter, seconds)``, or None when it adds nothing but its day. The one place that
    decides it: :func:`build_forecast` and the ingest-time aggregates (:mod:`.aggregates`) both use it.

    >>> classify("ticket.completed", {"service": "A", "counter": "c1", "service_s": 300})
    ('completed', 'A', 'c1', 300.0)
    >>> classify("ticket.no_show", {"service": "A", "counter": None})  # expired at day end
    ('expired', 'A', None, None)
    >>> classify("ticket.called", {"service": "A", "from_hold": True}) is None  # a call back
    True
    """
    d = data if isinstance(data, dict) else {}
    service = _str(d.get("service"))
    if service is None:
        return None
    if type == "ticket.issued":
        return ISSUED, service, None, None
    if type == "ticket.called":
        return None if d.get("from_hold") else (CALLED, service, None, None)  # a call back is not a new citizen
    if type == "ticket.completed" or type == "ticket.no_show":
        counter = _str(d.get("counter"))
        if type == "ticket.no_show":
            return (EXPIRED, service, None, None) if counter is None else \
                (NO_SHOW, service, counter, _num(d.get("service_s")))
        return COMPLETED, service, counter, _num(d.get("service_s"))
    return None


def build_forecast(events: Iterable[Event], tz: str = DEFAULT_TZ, now: datetime | None = None,
                   half_life_days: float = 7.0, min_weekday_days: int = 3, min_pair_samples: int = 20,
                   recent_min: float = 60.0) -> Forecast:
    """Compute a :class:`Forecast` from a center's events (any order). ``now`` defaults to the latest event."""
    zone = ZoneInfo(tz)
    evs = sorted((e for e in events if isinstance(e, Event)), key=lambda e: (e.ts, e.seq))
    if now is None:
        now = evs[-1].ts if evs else None
    counts: dict[tuple[date, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    days: set[date] = set()
    done: dict[str, list[float]] = defaultdict(list)
    counter_t: dict[str, list[float]] = defaultdict(list)
    pair_t: dict[tuple[str, str], list[float]] = defaultdict(list)
    called: dict[str, int] = defaultdict(int)
    no_show: dict[str, int] = defaultdict(int)
    expired: dict[str, int] = defaultdict(int)
    recent: dict[str, int] = defaultdict(int)
    services: set[str] = set()
    recent_from = now - timedelta(minutes=recent_min) if now is not None else None
    for e in evs:
        if now is not None and e.ts > now:
            continue
        local = e.ts.astimezone(zone)
        days.add(local.date())
        c = classify(e.type.value, e.data)
        if c is None:
            continue
        kind, service, counter, secs = c
        if kind == ISSUED:
            services.add(service)
            counts[(local.date(), local.hour)][service] += 1
            if recent_from is not None and e.ts > recent_from:
                recent[service] += 1
        elif kind == CALLED:
            called[service] += 1
        elif kind == EXPIRED:
            expired[service] += 1
        else:
            if kind == NO_SHOW:
                no_show[service] += 1
            elif secs is not None:
                done[service].append(secs)
            if secs is not None:
                counter_t[service].append(secs)
                if counter is not None:
                    pair_t[(counter, service)].append(secs)
    return assemble(
        tz, now, days, counts, services,
        service_time={s: st for s, v in done.items() if (st := time_stats(v))},
        counter_time={s: st for s, v in counter_t.items() if (st := time_stats(v))},
        pair_time={k: st for k, v in pair_t.items() if (st := time_stats(v))},
        called=called, no_show=no_show, expired=expired,
        recent=recent if now is not None else None, half_life_days=half_life_days,
        min_weekday_days=min_weekday_days, min_pair_samples=min_pair_samples, recent_min=recent_min)


def assemble(tz: str, now: datetime | None, days: set[date], counts: Mapping[tuple[date, int], Mapping[str, int]],
             services: set[str], *, service_time: dict[str, TimeStats], counter_time: dict[str, TimeStats],
             pair_time: dict[tuple[str, str], TimeStats], called: Mapping[str, int], no_show: Mapping[str, int],
             expired: Mapping[str, int], recent: Mapping[str, int] | None, half_life_days: float = 7.0,
             min_weekday_days: int = 3, min_pair_samples: int = 20, recent_min: float = 60.0) -> Forecast:
    """The :class:`Forecast` of tallied history: ``days`` with any event, arrivals per ``(local day, hour)``
    and service, the time statistics, the calls/no-shows/expiries per service and the arrivals of the last
    ``recent_min`` minutes (None without a ``now``). :func:`build_forecast` tallies events; the gateway reads
    the tallies kept at ingest (:func:`civiq.gateway.balance.aggregates.read_forecast`)."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date() if now is not None else None
    now_hour = now.astimezone(zone).hour if now is not None else HOURS

    def observed(day: date) -> range:
        return range(now_hour) if day == today else range(HOURS)

    def curve_for(day_list: list[date]) -> dict[str, tuple[float, ...]]:
        out: dict[str, tuple[float, ...]] = {}
        for s in sorted(services):
            rates = []
            for h in range(HOURS):
                num = den = 0.0
                for day in day_list:
                    if h not in observed(day):
                        continue
                    age = (today - day).days if today else 0
                    w = 0.5 ** (max(0, age) / half_life_days)
                    num += w * counts.get((day, h), {}).get(s, 0)
                    den += w
                rates.append(num / den if den else 0.0)
            out[s] = tuple(rates)
        return out

    all_days = sorted(days)
    usable = [d for d in all_days if len(observed(d)) > 0]
    hourly = curve_for(usable) if usable else {}
    weekday: dict[int, dict[str, tuple[float, ...]]] = {}
    for wd in range(7):
        same = [d for d in usable if d.weekday() == wd]
        if len(same) >= max(1, min_weekday_days):
            weekday[wd] = curve_for(same)

    return Forecast(
        tz=tz, now=now, days=tuple(d.isoformat() for d in all_days), hourly=hourly, weekday_hourly=weekday,
        service_time=dict(service_time), counter_time=dict(counter_time),
        counter_service_time={k: st for k, st in pair_time.items() if st.n >= min_pair_samples},
        no_show_rate={s: no_show.get(s, 0) / called[s] for s in called if called[s] > 0},
        expired={s: n for s, n in expired.items() if n},
        recent_per_h={s: recent.get(s, 0) * 60.0 / recent_min for s in services} if recent is not None else {},
        recent_min=recent_min,
        services=tuple(sorted(services | set(counter_time))),
    )
