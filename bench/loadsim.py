"""A discrete-event simulation of a service center's day that drives the REAL edge queue engine.

Each run builds a :class:`~civiq.edge.queue.engine.QueueEngine` over an in-memory
:class:`~civiq.edge.queue.store.EdgeStore` and a :class:`~civiq.clock.FakeClock`. An event heap holds the
citizens' arrivals, the ends of services, breaks, polls and advice ticks; the clock is moved to each event's time
and the engine is called as the dispenser and the staff keypads would call it (``issue``, ``call_next``,
``no_show``, ``break_counter``, ``apply_policy``). So the next-ticket choice, the priority rules and the waits
measured are those of the production code; the simulator only decides *when* things happen.

Model (times local, Asia/Ho_Chi_Minh):

* arrivals: a Poisson process per service whose rate follows a piecewise-constant day curve
  (peaks 8-10h and 14-16h, no tickets at lunch) times the service's share of the day's tickets;
* counter time: lognormal per service (mean, coefficient of variation), or exponential; a counter serving a
  service outside its configured profile (a *skill*) is ``off_skill_factor`` slower;
* no-shows: with probability ``no_show_p`` the called citizen is absent; the counter loses ``recall_s``
  (the recalls) and closes the ticket as a no-show;
* breaks: a counter goes on break at a set local time once its ticket in hand is done, and is back after
  the break's minutes; closed counters stay closed all day;
* counters call whenever they are free; idle counters also poll every ``poll_s`` (pressing "next"), so
  time-triggered priority rules fire;
* the day ends when every ticket is served (tickets nobody can serve count as waiting until the last event).

Random numbers are drawn per ticket up front (arrival time, service time, no-show), so every strategy sees the
same citizens (common random numbers): differences between strategies are not sampling noise.

Strategies (:data:`STRATEGIES`):

* ``dedicated`` — each counter serves only the first service of its configured profile;
* ``fqm`` — "fewest waiting" as common queue-management systems do: at issue time the ticket is assigned to the
  counter with the fewest tickets waiting in *its own line* among the open counters allowed the service
  (profile + skills; counters on break only if no other). Modelled with one engine service per counter (a
  per-counter line, prefix ``K1``, ``K2``...) and a profile of that one line per counter; the counter time is
  drawn from the citizen's real service;
* ``profiles`` — the configured edge work profiles (ordered services + rules), the edge's default;
* ``advisor`` — starts from the configured profiles; every ``advise_every_min`` the gateway advisor is run on
  the engine's snapshot and the events so far (plus earlier days' history), and its policy, if any, is pushed
  with ``engine.apply_policy``;
* ``pooled`` — the bound: every counter serves every service at its home speed, one shared line.

>>> day = PROFILES["balanced"]
>>> r = simulate(day, "profiles", seed=1)
>>> r.tickets > 100 and r.mean_wait_s >= 0
True
"""

from __future__ import annotations

import heapq
import math
import random
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from civiq.clock import DEFAULT_TZ, FakeClock
from civiq.contract import Event, Policy, PriorityRule, WorkProfile
from civiq.edge.queue import EdgeStore, QueueEngine, QueueError, ServiceDef, Ticket
from civiq.gateway.balance import advise, build_forecast, erlang_c, lwf_over_skills

STRATEGIES = ("dedicated", "fqm", "profiles", "skills", "advisor", "pooled")
DEFAULT_DATE = date(2026, 1, 6)  # a Tuesday
END_OF_SIM = 23 * 3600.0  # local seconds: nothing runs past 23:00 (the engine's day ends at midnight)


# ============================================================================================ specifications
@dataclass(frozen=True)
class ServiceSpec:
    prefix: str
    name: str
    mean_s: float
    cv: float = 0.6  # lognormal coefficient of variation (ignored when exponential)
    share: float = 1.0  # relative share of the day's tickets
    exponential: bool = False


@dataclass(frozen=True)
class CounterSpec:
    id: str
    services: tuple[str, ...]  # configured profile, in order
    rules: tuple[tuple[str, float], ...] = ()  # (service, over_minutes)
    skills: tuple[str, ...] = ()  # more services the staff can serve (slower)
    breaks: tuple[tuple[str, float], ...] = ()  # ("HH:MM" local, minutes)
    closed: bool = False

    def profile(self) -> WorkProfile:
        return WorkProfile(services=list(self.services),
                           rules=[PriorityRule(service=s, over_minutes=m) for s, m in self.rules])

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.services, *self.skills]))


Slot = tuple[str, str, float]  # ("HH:MM", "HH:MM", relative rate)

DAY_CURVE: tuple[Slot, ...] = (
    ("07:30", "08:00", 1.0), ("08:00", "10:00", 2.0), ("10:00", "11:15", 1.0),
    ("13:30", "14:00", 1.0), ("14:00", "16:00", 1.8), ("16:00", "16:30", 0.8),
)


@dataclass(frozen=True)
class DayProfile:
    name: str
    services: tuple[ServiceSpec, ...]
    counters: tuple[CounterSpec, ...]
    tickets: float  # expected tickets in the day
    curve: tuple[Slot, ...] = DAY_CURVE
    no_show_p: float = 0.05
    recall_s: float = 90.0
    off_skill_factor: float = 1.2
    poll_s: float = 60.0
    description: str = ""

    def service(self, prefix: str) -> ServiceSpec:
        return next(s for s in self.services if s.prefix == prefix)


def _secs(hhmm: str) -> float:
    h, m = hhmm.split(":")
    return int(h) * 3600.0 + int(m) * 60.0


def tickets_for_peak(services: Sequence[ServiceSpec], counters: int, rho: float,
                     curve: Sequence[Slot] = DAY_CURVE) -> float:
    """Tickets per day that load ``counters`` pooled counters to utilisation ``rho`` at the day's peak."""
    weight_h = sum((_secs(b) - _secs(a)) / 3600 * w for a, b, w in curve)
    peak = max(w for _, _, w in curve)
    tot = sum(s.share for s in services)
    work = sum(s.share / tot * s.mean_s for s in services)  # counter-seconds per ticket
    return rho * counters * 3600.0 / (peak / weight_h * work)


def _center(shares: dict[str, float], closed: tuple[str, ...] = ()) -> tuple[tuple[ServiceSpec, ...],
                                                                            tuple[CounterSpec, ...]]:
    services = (
        ServiceSpec("A", "Đất đai (land)", 720, 0.7, shares["A"]),
        ServiceSpec("B", "Hộ tịch (civil status)", 300, 0.5, shares["B"]),
        ServiceSpec("C", "Kinh doanh (business)", 480, 0.6, shares["C"]),
        ServiceSpec("D", "BHXH (social insurance)", 360, 0.6, shares["D"]),
    )
    counters = (
        CounterSpec("c1", ("A",), skills=("B",), breaks=(("09:40", 15), ("15:00", 15))),
        CounterSpec("c2", ("A",), skills=("C",), breaks=(("10:00", 15), ("15:20", 15))),
        CounterSpec("c3", ("B",), skills=("A", "D"), breaks=(("09:20", 15), ("14:40", 15))),
        CounterSpec("c4", ("B", "D"), breaks=(("10:20", 15), ("15:40", 15))),
        CounterSpec("c5", ("C",), rules=(("A", 30),), skills=("A", "D"), breaks=(("09:00", 15), ("14:20", 15))),
        CounterSpec("c6", ("D",), rules=(("B", 25),), skills=("B", "C"), breaks=(("10:40", 15), ("16:00", 15))),
    )
    counters = tuple(replace(c, closed=c.id in closed) for c in counters)
    return services, counters


def _profiles() -> dict[str, DayProfile]:
    base = {"A": 0.2, "B": 0.4, "C": 0.15, "D": 0.25}
    svc, ctr = _center(base)
    balanced = DayProfile("balanced", svc, ctr, tickets_for_peak(svc, 6, 0.85),
                          description="load matches the configured profiles")
    rush = {"A": 0.45, "B": 0.3, "C": 0.1, "D": 0.15}
    svc_r, ctr_r = _center(rush)
    land = DayProfile("land_rush", svc_r, ctr_r, tickets_for_peak(svc_r, 6, 0.88),
                      description="land office rush: land is 45% of tickets")
    svc_s, ctr_s = _center(base, closed=("c4",))
    short = DayProfile("short_staffed", svc_s, ctr_s, tickets_for_peak(svc_s, 6, 0.75),
                       description="counter c4 (civil status + insurance) unstaffed all day")
    surge_curve = tuple((a, b, 3.4 if (a, b) == ("08:00", "10:00") else w) for a, b, w in DAY_CURVE)
    surge = DayProfile("morning_surge", svc, ctr, tickets_for_peak(svc, 6, 0.85) * 1.15, curve=surge_curve,
                       description="8-10h arrivals 1.7x the usual peak")
    # land is 40% of the tickets but only c1 and c2 can do it (c3 and c5 lost their land skill): at the peaks land
    # needs more skilled counter-hours than exist, whatever the profiles; the pooled bound ignores skills
    svc_k, ctr_k = _center({"A": 0.4, "B": 0.3, "C": 0.1, "D": 0.2})
    ctr_k = tuple(replace(c, skills=tuple(s for s in c.skills if s != "A"),
                          rules=tuple(r for r in c.rules if r[0] != "A")) for c in ctr_k)
    land_short = DayProfile("land_short", svc_k, ctr_k, tickets_for_peak(svc_k, 6, 0.8),
                            description="land 40% of tickets, only two counters skilled for it")
    return {p.name: p for p in (balanced, land, short, surge, land_short)}


PROFILES: dict[str, DayProfile] = _profiles()


# ============================================================================================ results
@dataclass(frozen=True)
class SimResult:
    profile: str
    strategy: str
    seed: int
    tickets: int
    served: int
    no_shows: int
    unserved: int
    mean_wait_s: float
    p95_wait_s: float
    share_over_30min: float
    policies_applied: int = 0
    by_service: dict[str, float] = field(default_factory=dict)  # mean wait per service
    estimates: tuple[tuple[float | None, float], ...] = ()  # (eta_s at issue, realized wait s) per ticket
    advise_s: tuple[float, ...] = ()  # wall time of each advisor call
    actions: tuple[tuple[str, str, str | None, float, float], ...] = ()  # staff actions advised (kind, counter,
    #   service, p95 before, p95 after), one per (kind, counter, service) per day, the first time advised
    staff_applied: int = 0
    waits: tuple[tuple[float, float], ...] = ()  # (issued at, local seconds; wait s) per ticket
    events: tuple[Event, ...] = ()


def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); 0 for no data."""
    if not xs:
        return 0.0
    s = sorted(xs)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


def summarize(waits: Sequence[float]) -> tuple[float, float, float]:
    """(mean, p95, share over 30 minutes) of a list of waits in seconds."""
    if not waits:
        return 0.0, 0.0, 0.0
    return (sum(waits) / len(waits), percentile(waits, 95), sum(1 for w in waits if w > 1800) / len(waits))


# ============================================================================================ the simulation
@dataclass
class _Citizen:
    at: float  # local seconds
    service: str
    base_s: float
    no_show: bool
    label: str = ""
    issued_at: float = 0.0
    line: str = ""
    called: bool = False


ARRIVE, DONE, BREAK, BACK, POLL, ADVISE = range(6)


def draw_citizens(day: DayProfile, seed: int) -> list[_Citizen]:
    """The day's citizens (Poisson arrivals per service and slot, their service times and no-shows)."""
    rng = random.Random(seed)
    weight_h = sum((_secs(b) - _secs(a)) / 3600 * w for a, b, w in day.curve)
    tot = sum(s.share for s in day.services)
    out: list[_Citizen] = []
    for s in day.services:
        per_h = day.tickets * s.share / tot / weight_h
        for a, b, w in day.curve:
            rate = per_h * w / 3600.0
            if rate <= 0:
                continue
            t = _secs(a)
            while True:
                t += rng.expovariate(rate)
                if t >= _secs(b):
                    break
                if s.exponential:
                    base = rng.expovariate(1.0 / s.mean_s)
                else:
                    sig2 = math.log(1 + s.cv**2)
                    base = rng.lognormvariate(math.log(s.mean_s) - sig2 / 2, math.sqrt(sig2))
                out.append(_Citizen(t, s.prefix, base, rng.random() < day.no_show_p))
    out.sort(key=lambda c: c.at)
    return out


class DaySim:
    """One simulated day of ``day`` under ``strategy``; :meth:`run` returns a :class:`SimResult`."""

    def __init__(self, day: DayProfile, strategy: str, seed: int = 1, on: date = DEFAULT_DATE,
                 history: Sequence[Event] = (), advise_every_min: float = 10.0, horizon_min: float = 60.0,
                 tz: str = DEFAULT_TZ, keep_events: bool = False, estimate_window_min: float = 60.0,
                 prior: Sequence[Event] = (), apply_staff: bool = False) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
        self.day, self.strategy, self.seed = day, strategy, seed
        self.history = list(history)
        self.advise_every_s = advise_every_min * 60
        self.horizon_min = horizon_min
        self.keep_events = keep_events or strategy == "advisor"
        self.midnight = datetime.combine(on, time(0, 0), ZoneInfo(tz)).astimezone(UTC)
        self.clock = FakeClock(self.midnight)
        self.t = 0.0
        self.counters = {c.id: c for c in day.counters}
        services = {s.prefix: ServiceDef(s.prefix, s.name) for s in day.services}
        all_svc = [s.prefix for s in day.services]
        if strategy == "fqm":
            self.lines = {c.id: f"K{i + 1}" for i, c in enumerate(day.counters)}
            services = {ln: ServiceDef(ln, f"line {cid}") for cid, ln in self.lines.items()}
            profiles = {cid: WorkProfile(services=[ln]) for cid, ln in self.lines.items()}
        elif strategy == "dedicated":
            profiles = {c.id: WorkProfile(services=[c.services[0]]) for c in day.counters}
        elif strategy == "pooled":
            profiles = {c.id: WorkProfile(services=all_svc) for c in day.counters}
        elif strategy == "skills":
            profiles = {c.id: lwf_over_skills(c.profile(), c.allowed) for c in day.counters}
        else:
            profiles = {c.id: c.profile() for c in day.counters}
        store = EdgeStore(":memory:")
        for e in prior:  # earlier days in the edge's log (what it knows at start-up: the estimate's history)
            store.append(e.type, dict(e.data), e.ts, e.clock)
        self.engine = QueueEngine(store, self.clock, services, profiles, tz=tz,
                                  estimate_window_min=estimate_window_min)
        self.apply_staff = apply_staff
        self.extra_skills: dict[str, set[str]] = {}  # staff moves applied: counter -> services now at home speed
        self.actions: dict[tuple[str, str, str | None], tuple[float, float]] = {}
        self.staff_applied = 0
        self.events: list[Event] = []
        if self.keep_events:
            self.engine.subscribe(self.events.append)
        self.heap: list[tuple[float, int, int, object]] = []
        self._n = 0
        self.citizens = draw_citizens(day, seed)
        self.by_label: dict[str, _Citizen] = {}
        self.busy: dict[str, _Citizen | None] = dict.fromkeys(self.counters)
        self.on_break: dict[str, bool] = dict.fromkeys(self.counters, False)
        self.pending_break: dict[str, float] = {}
        self.line_len: dict[str, int] = dict.fromkeys(self.counters, 0)
        self.waiting = 0
        self.pending_arrivals = len(self.citizens)
        self.waits: list[tuple[float, float, str]] = []
        self.served = self.no_shows = 0
        self.policies = 0
        self.eta_at_issue: dict[str, float | None] = {}
        self.called_wait: dict[str, float] = {}
        self.advise_s: list[float] = []
        self.rr = 0

    # ------------------------------------------------------------------------------------------ heap
    def push(self, t: float, kind: int, arg: object = None) -> None:
        self._n += 1
        heapq.heappush(self.heap, (t, self._n, kind, arg))

    def _move(self, t: float) -> None:
        if t > self.t:
            self.clock.advance(t - self.t)
            self.t = t

    # ------------------------------------------------------------------------------------------ counters
    def _factor(self, cid: str, service: str) -> float:
        if self.strategy == "pooled":
            return 1.0
        if service in self.counters[cid].services or service in self.extra_skills.get(cid, ()):
            return 1.0
        return self.day.off_skill_factor

    def _idle(self, cid: str) -> bool:
        return not self.counters[cid].closed and self.busy[cid] is None and not self.on_break[cid]

    def _call(self, cid: str) -> None:
        ticket = self.engine.call_next(cid)
        if ticket is not None:
            self._take(cid, ticket)

    def _dispatch(self) -> None:
        if self.waiting <= 0:
            return
        ids = list(self.counters)
        self.rr = (self.rr + 1) % len(ids)
        for cid in ids[self.rr:] + ids[:self.rr]:
            if self.waiting <= 0:
                break
            if self._idle(cid):
                self._call(cid)

    def _fqm_counter(self, service: str) -> str | None:
        ok = [c for c in self.day.counters if not c.closed and service in c.allowed]
        if not ok:
            return None
        present = [c for c in ok if not self.on_break[c.id]] or ok
        best = min(present, key=lambda c: (self.line_len[c.id], self.busy[c.id] is not None))
        return best.id

    # ------------------------------------------------------------------------------------------ handlers
    def _arrive(self, cz: _Citizen) -> None:
        self.pending_arrivals -= 1
        line = cz.service
        if self.strategy == "fqm":
            cid = self._fqm_counter(cz.service)
            if cid is None:
                return
            line = self.lines[cid]
            self.line_len[cid] += 1
        t = self.engine.issue(line)
        cz.label, cz.issued_at, cz.line = t.label, self.t, line
        self.eta_at_issue[t.label] = t.eta_s
        self.by_label[t.label] = cz
        self.waiting += 1
        self._dispatch()

    def _done(self, cid: str) -> None:
        cz = self.busy[cid]
        assert cz is not None
        self.busy[cid] = None
        if cz.no_show:
            self.engine.no_show(cid)
            self.no_shows += 1
        else:
            self.served += 1
        if cid in self.pending_break:
            minutes = self.pending_break.pop(cid)
            if not cz.no_show:
                self.engine.complete(cid)
            self._start_break(cid, minutes)
        elif cz.no_show:
            self._call(cid)
        else:
            ticket = self.engine.call_next(cid)  # completes the ticket in hand and calls the next, atomically
            if ticket is not None:
                self._take(cid, ticket)
        self._dispatch()

    def _take(self, cid: str, ticket: Ticket) -> None:
        cz = self.by_label[ticket.label]
        cz.called = True
        self.waiting -= 1
        if self.strategy == "fqm":
            self.line_len[cid] -= 1
        self.waits.append((cz.issued_at, float(ticket.wait_s or 0.0), cz.service))
        self.called_wait[cz.label] = float(ticket.wait_s or 0.0)
        self.busy[cid] = cz
        dur = self.day.recall_s if cz.no_show else cz.base_s * self._factor(cid, cz.service)
        self.push(self.t + dur, DONE, cid)

    def _start_break(self, cid: str, minutes: float) -> None:
        self.engine.break_counter(cid)
        self.on_break[cid] = True
        self.push(self.t + minutes * 60, BACK, cid)

    def _break(self, cid: str, minutes: float) -> None:
        if self.counters[cid].closed:
            return
        if self.busy[cid] is not None:
            self.pending_break[cid] = minutes
        else:
            self._start_break(cid, minutes)

    def _back(self, cid: str) -> None:
        self.on_break[cid] = False
        ticket = self.engine.call_next(cid)  # reopens the counter
        if ticket is not None:
            self._take(cid, ticket)
        self._dispatch()

    def _advise(self) -> None:
        now = self.clock.now()
        snap = self.engine.snapshot()
        profiles = {cid: self.engine.profile(cid) for cid in self.counters}
        stats = build_forecast([*self.history, *self.events], now=now)
        skills = {c.id: list(dict.fromkeys([*c.allowed, *self.extra_skills.get(c.id, ())])) for c in self.day.counters}
        home = {c.id: c.profile() for c in self.day.counters}
        t0 = _time.perf_counter()
        adv = advise(snap, profiles, stats, now, horizon_min=self.horizon_min, open_counters_possible=[],
                     skills=skills, home=home, version=self.engine.policy_version + 1, seed=self.seed * 7919 + int(self.t))
        self.advise_s.append(_time.perf_counter() - t0)
        for a in adv.actions:
            self.actions.setdefault((a.kind, a.counter, a.service), (a.p95_wait_s_before, a.p95_wait_s_after))
            if self.apply_staff and a.kind == "move" and a.service and not self.extra_skills:
                # the manager follows the advice once: a clerk skilled in the short service takes counter k
                self.extra_skills.setdefault(a.counter, set()).add(a.service)
                self.staff_applied += 1
                prof = self.engine.profile(a.counter)
                pol = dict(adv.policy.counters) if adv.policy is not None else {
                    cid: self.engine.profile(cid) for cid in self.counters}
                pol[a.counter] = WorkProfile(services=list(dict.fromkeys([a.service, *prof.services])),
                                             rules=list(prof.rules))
                adv = replace(adv, policy=Policy(version=self.engine.policy_version + 1, issued_at=now,
                                                 counters=pol, reason="staff move"))
        if adv.policy is not None:
            try:
                if self.engine.apply_policy(adv.policy):
                    self.policies += 1
            except QueueError:  # an advice the edge refuses is logged and skipped, as on a real edge
                pass
        self._dispatch()

    # ------------------------------------------------------------------------------------------ run
    def run(self) -> SimResult:
        for c in self.day.counters:
            if c.closed:
                self.engine.close_counter(c.id)
            for hhmm, minutes in c.breaks:
                self.push(_secs(hhmm), BREAK, (c.id, minutes))
        for cz in self.citizens:
            self.push(cz.at, ARRIVE, cz)
        first = self.citizens[0].at if self.citizens else 0.0
        last = self.citizens[-1].at if self.citizens else 0.0
        if self.strategy in ("profiles", "skills", "advisor"):
            self.push(first + self.day.poll_s, POLL)
        if self.strategy == "advisor":
            self.push(first, ADVISE)
        while self.heap:
            t, _, kind, arg = heapq.heappop(self.heap)
            if t > END_OF_SIM:
                break
            self._move(t)
            if kind == ARRIVE:
                self._arrive(arg)  # type: ignore[arg-type]
            elif kind == DONE:
                self._done(arg)  # type: ignore[arg-type]
            elif kind == BREAK:
                self._break(*arg)  # type: ignore[misc]
            elif kind == BACK:
                self._back(arg)  # type: ignore[arg-type]
            elif kind == POLL:
                self._dispatch()
                if self.pending_arrivals or any(b is not None for b in self.busy.values()):
                    self.push(t + self.day.poll_s, POLL)
            elif kind == ADVISE:
                self._advise()
                if t + self.advise_every_s < last:
                    self.push(t + self.advise_every_s, ADVISE)
        # tickets nobody could serve: they waited until the end
        unserved = [cz for cz in self.by_label.values() if not cz.called]
        all_waits = [w for _, w, _ in self.waits] + [self.t - cz.issued_at for cz in unserved]
        mean, p95, over = summarize(all_waits)
        by_service: dict[str, list[float]] = {}
        for _, w, s in self.waits:
            by_service.setdefault(s, []).append(w)
        estimates = tuple((eta, self.called_wait.get(label, self.t - self.by_label[label].issued_at))
                          for label, eta in self.eta_at_issue.items())
        return SimResult(
            profile=self.day.name, strategy=self.strategy, seed=self.seed, tickets=len(self.by_label),
            served=self.served, no_shows=self.no_shows, unserved=len(unserved), mean_wait_s=round(mean, 1),
            p95_wait_s=round(p95, 1), share_over_30min=round(over, 4), policies_applied=self.policies,
            by_service={s: round(sum(v) / len(v), 1) for s, v in sorted(by_service.items())},
            waits=tuple((a, w) for a, w, _ in self.waits), estimates=estimates, advise_s=tuple(self.advise_s),
            actions=tuple((k, c, s, b, a) for (k, c, s), (b, a) in self.actions.items()),
            staff_applied=self.staff_applied,
            events=tuple(self.events) if self.keep_events else (),
        )


def simulate(day: DayProfile, strategy: str, seed: int = 1, **kw: object) -> SimResult:
    """Run one day (see :class:`DaySim` for the keyword arguments)."""
    return DaySim(day, strategy, seed, **kw).run()  # type: ignore[arg-type]


def history_for(day: DayProfile, seed: int, days: int = 1, on: date = DEFAULT_DATE) -> list[Event]:
    """Events of ``days`` earlier days like ``day`` (configured profiles, other seeds): the gateway's history."""
    out: list[Event] = []
    for i in range(days, 0, -1):
        r = DaySim(day, "profiles", seed=seed * 1000 + i, on=on - timedelta(days=i), keep_events=True).run()
        out.extend(r.events)
    return out


# ============================================================================================ validation
def erlang_day(counters: int, rho: float, mean_s: float, hours: float, start_h: float = 1.0) -> DayProfile:
    """One service, ``counters`` universal counters, exponential counter times, constant Poisson arrivals at
    utilisation ``rho`` from ``start_h`` local for ``hours``; no breaks, no no-shows."""
    start, end = start_h * 3600.0, (start_h + hours) * 3600.0
    if end > END_OF_SIM:
        raise ValueError("the validation window must end before 23:00 local")
    lam_h = rho * counters * 3600.0 / mean_s
    hhmm = [f"{int(x // 3600):02d}:{int(x % 3600 // 60):02d}" for x in (start, end)]
    svc = (ServiceSpec("A", "A", mean_s, 1.0, 1.0, exponential=True),)
    ctr = tuple(CounterSpec(f"c{i + 1}", ("A",)) for i in range(counters))
    return DayProfile("erlang", svc, ctr, lam_h * hours, curve=((hhmm[0], hhmm[1], 1.0),), no_show_p=0.0)


def fcfs_waits(day: DayProfile, seed: int) -> list[tuple[float, float]]:
    """(arrival, wait) per citizen of a single-line day, by the Kiefer–Wolfowitz recursion: each arrival takes
    the counter that frees first. What a correct FCFS queue must produce on the same draws."""
    free = [0.0] * sum(1 for c in day.counters if not c.closed)
    out = []
    for cz in draw_citizens(day, seed):
        begin = max(heapq.heappop(free), cz.at)
        out.append((cz.at, begin - cz.at))
        heapq.heappush(free, begin + cz.base_s)
    return out


@dataclass(frozen=True)
class Validation:
    counters: int
    rho: float
    mean_s: float
    seeds: int
    customers: int
    sim_mean_wait_s: float  # engine-driven simulation, after the warm-up
    ci95_s: float  # half-width of the 95% confidence interval (across seeds)
    erlang_c_wait_s: float
    fcfs_max_diff_s: float  # largest |engine wait − FCFS recursion wait| on the same draws

    @property
    def rel_error(self) -> float:
        return abs(self.sim_mean_wait_s - self.erlang_c_wait_s) / self.erlang_c_wait_s


def _erlang_seed(args: tuple[int, float, float, float, int, float]) -> tuple[list[float], float]:
    counters, rho, mean_s, hours, seed, warmup_h = args
    day = erlang_day(counters, rho, mean_s, hours)
    r = simulate(day, "profiles", seed=seed, estimate_window_min=5.0)
    ref = fcfs_waits(day, seed)
    diff = max((abs(a[1] - b[1]) for a, b in zip(r.waits, ref, strict=True)), default=0.0)
    cut = 3600.0 + warmup_h * 3600
    return [w for at, w in r.waits if at >= cut], diff


def validate_erlang_c(counters: int = 3, rho: float = 0.7, mean_s: float = 60.0, hours: float = 20.0,
                      seeds: Sequence[int] = range(1, 9), warmup_h: float = 0.5, workers: int = 1) -> Validation:
    """The engine-driven simulation of an M/M/c day against Erlang C: ``Wq = C(c, a) / (cμ − λ)``."""
    jobs = [(counters, rho, mean_s, hours, s, warmup_h) for s in seeds]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as ex:
            parts = list(ex.map(_erlang_seed, jobs))
    else:
        parts = [_erlang_seed(j) for j in jobs]
    per_seed = [sum(w) / len(w) for w, _ in parts if w]
    waits = [x for w, _ in parts for x in w]
    sd = (sum((m - sum(per_seed) / len(per_seed)) ** 2 for m in per_seed) / max(1, len(per_seed) - 1)) ** 0.5
    lam = rho * counters / mean_s
    exact = erlang_c(counters, rho * counters) / (counters / mean_s - lam)
    return Validation(counters, rho, mean_s, len(per_seed), len(waits), sum(waits) / len(waits),
                      1.96 * sd / math.sqrt(len(per_seed)), exact, max(d for _, d in parts))
