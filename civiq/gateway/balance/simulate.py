"""Evaluate candidate work profiles by simulating a center's next hour, from its live state and its forecast.

The advisor (:mod:`civiq.gateway.balance.advisor`) asks "what would the waits be over the next ``H`` minutes if
the counters worked with these profiles?" for a handful of candidate policies, and compares the answers. A
:class:`Scenario` holds what is known now: the people waiting per service (count and oldest wait), which
counters are open, on break or closed and what they have in hand, the forecast arrival rate per service over
the horizon (piecewise by hour) and the counter time per ticket (mean and squared coefficient of variation,
per counter × service where known).

:func:`draw` makes the random part of one *replication*: the arrivals over the horizon (a Poisson process per
service), a unit-mean counter-time factor per ticket (lognormal with the service's variance), the remaining part
of the ticket each busy counter has in hand, and when each counter on break comes back. :func:`run` plays one
replication under one set of profiles. **Common random numbers**: every candidate is played on the *same*
draws, so the difference between two candidates is the policy, not the luck of the draw.

Who is called next is decided by :func:`civiq.workprofile.choose_next`, the very function the edge's
queue engine uses: the rules, the service order and "longest wait first" are production's. Each service's line
is first come, first served, so only its oldest ticket can be chosen: the chooser sees the head of every line.
Not modelled: priority classes (elderly first, ...), pinned transfers, recalls (their time is in the counter
time per called ticket), citizens who give up.

Tickets issued within the horizon are followed until called, at most one more horizon (no new arrivals then);
a ticket still waiting at the end counts with the wait it has so far. A ticket waiting now counts with its whole
wait (what it had waited already included), like the benchmark's and the dashboard's figures.

>>> from datetime import UTC, datetime
>>> from civiq.contract import WorkProfile
>>> now = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
>>> sc = Scenario(start=now, horizon_s=3600, services=("A",), segments={"A": ((0.0, 3600.0, 10 / 3600),)},
...               waiting={"A": 4}, oldest_s={"A": 600.0}, mean_s={"A": 300.0}, scv={"A": 0.5},
...               counters={"c1": "open", "c2": "open"})
>>> d = draw(sc, seed=1)
>>> one = run(sc, d, {"c1": WorkProfile(services=["A"])})
>>> two = run(sc, d, {"c1": WorkProfile(services=["A"]), "c2": WorkProfile(services=["A"])})
>>> two.mean_wait_s < one.mean_wait_s and two.tickets == one.tickets
True
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from civiq.contract import WorkProfile
from civiq.workprofile import WaitingTicket, choose_next

__all__ = ["Draws", "Outcome", "Scenario", "draw", "percentile", "run"]

POLL_S = 60.0  # an idle counter presses "next" again this often (time-triggered rules fire)


@dataclass(frozen=True)
class Scenario:
    """What the advisor knows now about a center (see the module docstring). Times in seconds from ``start``."""

    start: datetime
    horizon_s: float
    services: tuple[str, ...]
    segments: Mapping[str, Sequence[tuple[float, float, float]]]  # service -> (from s, to s, arrivals per s)
    waiting: Mapping[str, int]
    oldest_s: Mapping[str, float]
    mean_s: Mapping[str, float]
    scv: Mapping[str, float]
    counters: Mapping[str, str]  # counter -> "open" | "break" | "closed"
    in_hand: Mapping[str, str] = field(default_factory=dict)  # counter -> service of the ticket in hand
    pair_mean_s: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (counter, service) -> mean
    break_max_s: float = 1800.0  # a counter on break is back uniformly within this

    def counter_time(self, counter: str, service: str) -> float:
        return self.pair_mean_s.get((counter, service), self.mean_s[service])


@dataclass(frozen=True)
class Draws:
    """The random part of one replication (shared by every candidate: common random numbers)."""

    arrivals: tuple[tuple[float, str, float], ...]  # (at s, service, unit-mean counter-time factor), by time
    backlog: dict[str, tuple[tuple[float, float], ...]]  # service -> (since s (<= 0), factor), oldest first
    residual: dict[str, float]  # counter -> seconds left on the ticket in hand
    back_s: dict[str, float]  # counter on break -> when it is back


def _factor(rng: random.Random, scv: float) -> float:
    if scv <= 1e-6:
        return 1.0
    sig2 = math.log1p(scv)
    return rng.lognormvariate(-sig2 / 2, math.sqrt(sig2))


def draw(sc: Scenario, seed: int) -> Draws:
    """One replication's arrivals, counter-time factors, residual services and break returns."""
    rng = random.Random(seed)
    arrivals: list[tuple[float, str, float]] = []
    backlog: dict[str, tuple[tuple[float, float], ...]] = {}
    for s in sc.services:  # a stream per service, in a fixed order: the same draws whatever the policy
        n = max(0, int(sc.waiting.get(s, 0)))
        oldest = max(0.0, float(sc.oldest_s.get(s, 0.0)))
        backlog[s] = tuple((-oldest * (n - i) / n, _factor(rng, sc.scv[s])) for i in range(n))
        for a, b, rate in sc.segments.get(s, ()):
            if rate <= 0:
                continue
            t = a
            while True:
                t += rng.expovariate(rate)
                if t >= b:
                    break
                arrivals.append((t, s, _factor(rng, sc.scv[s])))
    arrivals.sort(key=lambda x: x[0])
    residual = {}
    back = {}
    for k in sorted(sc.counters):
        u = rng.random()
        s = sc.in_hand.get(k)
        if s is not None and s in sc.mean_s:
            residual[k] = u * sc.counter_time(k, s) * _factor(rng, sc.scv[s])
        if sc.counters[k] == "break":
            back[k] = u * sc.break_max_s
    return Draws(tuple(arrivals), backlog, residual, back)


@dataclass
class Outcome:
    """One replication under one set of profiles."""

    waits: list[float]  # every ticket's wait (s): waiting now + issued in the horizon
    by_service: dict[str, list[float]]
    wait_now_s: dict[str, float]  # per service: the wait of a ticket issued now
    work_s: dict[tuple[str, str], float]  # (counter, service) -> counter time started within the horizon
    left: dict[str, int]  # tickets still waiting when the run stopped
    tickets: int = 0
    calls: list[tuple[float, str]] = field(default_factory=list)  # (when, service) of every call

    @property
    def mean_wait_s(self) -> float:
        return sum(self.waits) / len(self.waits) if self.waits else 0.0

    @property
    def p95_wait_s(self) -> float:
        return percentile(self.waits, 95)


def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); 0 for no data.

    >>> percentile([1, 2, 3, 4], 50)
    2
    """
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))]


def run(sc: Scenario, d: Draws, profiles: Mapping[str, WorkProfile],
        extra_open: Sequence[str] = ()) -> Outcome:
    """Play one replication: ``profiles`` per counter (a counter without one does not call); ``extra_open``:
    closed counters that open now."""
    H = sc.horizon_s
    stop = 2 * H
    start = sc.start
    # each line: (since s, seq, counter-time factor, the ticket as choose_next sees it), oldest first
    lines: dict[str, deque[tuple[float, int, float, WaitingTicket]]] = {s: deque() for s in sc.services}
    seq = 0
    for s in sc.services:
        for since, f in d.backlog.get(s, ()):
            seq += 1
            lines[s].append((since, seq, f, WaitingTicket(s, s, start + timedelta(seconds=since), seq)))
    tickets = seq
    present = {k for k, st in sc.counters.items() if k in profiles and (st != "closed" or k in extra_open)}
    idle: list[str] = []
    heap: list[tuple[float, int, str]] = []  # (time a counter becomes free, tie, counter)
    n = 0
    for k in sorted(present):
        away = sc.counters[k] == "break" and k not in extra_open
        free_at = d.back_s.get(k, 0.0) if away else d.residual.get(k, 0.0)
        n += 1
        heap.append((free_at, n, k))
    heapq.heapify(heap)
    rules = any(p.rules for k, p in profiles.items() if k in present)
    takes = {k: tuple(dict.fromkeys([*profiles[k].services, *(r.service for r in profiles[k].rules)]))
             for k in present}
    waits: list[float] = []
    calls: list[tuple[float, str]] = []
    by_service: dict[str, list[float]] = {s: [] for s in sc.services}
    work: dict[tuple[str, str], float] = {}
    first_call: dict[str, float] = {}  # service -> when its last ticket waiting now is called
    last_backlog = {s: (lines[s][-1][1] if lines[s] else 0) for s in sc.services}
    early: dict[str, list[float]] = {s: [] for s in sc.services}  # waits of tickets issued in the first 15 min
    waiting_total = tickets
    tickets_at_start = tickets

    def call(k: str, t: float) -> bool:
        nonlocal waiting_total, n
        if waiting_total <= 0:
            return False
        heads = [q[0][3] for s in takes[k] if (q := lines.get(s))]
        if not heads:
            return False
        choice = choose_next(k, profiles[k], heads, start + timedelta(seconds=t))
        if choice is None:
            return False
        s = choice.service
        since, sq, f, _ = lines[s].popleft()
        waiting_total -= 1
        w = t - since
        calls.append((t, s))
        waits.append(w)
        by_service[s].append(w)
        if sq == last_backlog[s]:
            first_call[s] = t
        if sq > tickets_at_start and since < 900:
            early[s].append(w)
        dur = f * sc.counter_time(k, s)
        if t < H:
            work[(k, s)] = work.get((k, s), 0.0) + min(dur, H - t)
        n += 1
        heapq.heappush(heap, (t + dur, n, k))
        return True

    ai = 0
    arrivals = d.arrivals
    next_poll = POLL_S if rules else math.inf
    while True:
        t_arr = arrivals[ai][0] if ai < len(arrivals) else math.inf
        t_free = heap[0][0] if heap else math.inf
        t = min(t_arr, t_free, next_poll)
        if t >= stop or (t == math.inf) or (t_arr == math.inf and waiting_total == 0 and t_free == math.inf):
            break
        if t_free <= t_arr and t_free <= next_poll:
            _, _, k = heapq.heappop(heap)
            if not call(k, t_free):
                idle.append(k)
        elif t_arr <= next_poll:
            _, s, f = arrivals[ai]
            ai += 1
            seq += 1
            tickets += 1
            waiting_total += 1
            lines[s].append((t_arr, seq, f, WaitingTicket(s, s, start + timedelta(seconds=t_arr), seq)))
            for k in list(idle):
                if call(k, t_arr):
                    idle.remove(k)
                    break
        else:
            for k in list(idle):
                if call(k, next_poll):
                    idle.remove(k)
            next_poll += POLL_S
        if ai >= len(arrivals) and waiting_total == 0:
            break
    end = min(stop, max(H, t if math.isfinite(t) else H))
    left = {}
    for s, q in lines.items():
        left[s] = len(q)
        for since, _, _, _ in q:
            waits.append(end - since)
            by_service[s].append(end - since)
    wait_now = {}
    for s in sc.services:
        if last_backlog[s]:
            wait_now[s] = first_call.get(s, end)
        elif early[s]:
            wait_now[s] = sum(early[s]) / len(early[s])
        else:
            wait_now[s] = 0.0
    return Outcome(waits, by_service, wait_now, work, left, tickets, calls)
