"""Which counter should take which service in the next hour: the load-balancing advisor.

:func:`advise` takes the live :class:`~civiq.contract.QueueSnapshot` of a center, the work profiles in force,
a :class:`~civiq.gateway.balance.forecast.Forecast` of its history, the time and each counter's *skills* (the
services its staff can serve, from the edge config, sent in the birth), and returns an :class:`Advice`:
predicted waits per service with the current profiles and with the recommended ones, a
:class:`~civiq.contract.Policy` to push (or None), staff actions a manager can take (open a closed counter, put
a clerk skilled in a short service at a counter) with their expected effect on the p95 wait, and reasons in
Vietnamese and English. docs/load-balancing.md explains the method; in short:

1. **Scenario**: the people waiting now per service, the counters' states, the forecast arrival rate per
   service for every hour of the horizon ``H`` (scaled by how the last hour compared with its forecast, so a
   surge the history did not predict shows up), counter times per ticket (mean and variance, no-show recalls
   included; per counter × service where there are enough samples).
2. **Candidates**, always including "leave as is" and "longest wait first over each counter's skills":
   the profiles in force; the configured (home) profiles; every skill in every counter's profile; home
   profiles plus rules "help with X when its oldest ticket waits more than 10 / 20 min" for each skill X; the
   profiles in force plus the worst service on every counter skilled for it. Every candidate keeps the rules of
   the profile in force and of the home profile, and is *repaired* so that no service with people waiting or
   expected is left without a counter while a present counter is skilled for it.
3. **Evaluation**: each candidate is played on ``replications`` simulated hours
   (:mod:`civiq.gateway.balance.simulate`) with **common random numbers**, the next ticket chosen by the edge
   engine's own :func:`~civiq.workprofile.choose_next`. Score = (mean wait + p95 wait) / 2 over every
   ticket waiting now or issued in the horizon.
4. **Hysteresis**: a change is recommended only if the score drops by more than ``min_gain_ratio`` **and**
   ``min_gain_s`` (or the profiles in force leave a waiting service without a counter). Otherwise ``policy`` is
   None and the edge keeps what it has.
5. **Staff actions** (when the best policy still leaves a long p95): open a closed counter with its skills; put
   a clerk skilled in the worst service at the open counter that can spare the most time. Each is simulated on
   the same draws and advised only if it lowers the p95 by at least 2 minutes and 10 %.

>>> from datetime import UTC, datetime
>>> from civiq.contract import QueueSnapshot, ServiceQueue, CounterState, WorkProfile
>>> from civiq.gateway.balance.forecast import build_forecast
>>> now = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
>>> snap = QueueSnapshot(ts=now, day="2026-01-05", services={"A": ServiceQueue(waiting=0)},
...                      counters={"c1": CounterState(state="open", services=["A"])})
>>> a = advise(snap, {"c1": WorkProfile(services=["A"])}, build_forecast([]), now, version=2)
>>> a.change, a.policy is None
(False, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from civiq.contract import CounterStateName, Policy, PriorityRule, QueueSnapshot, WorkProfile
from civiq.errors import GatewayError
from civiq.gateway.balance.forecast import Forecast
from civiq.gateway.balance.simulate import Draws, Outcome, Scenario, draw, percentile, run

__all__ = ["Advice", "AdviceError", "OpenCounter", "Reason", "ServicePrediction", "StaffAction", "advise",
           "BREAK_CAPACITY", "lwf_over_skills"]

BREAK_CAPACITY = 0.75  # a counter on break is back within the horizon: on average 3/4 of it is worked
DEFAULT_SERVICE_S = 600.0  # counter time per ticket when a center has no history at all
HELP_AFTER_MIN = (10.0, 20.0)  # the "help when the oldest waits more than N minutes" candidates
PRIORITY_AFTER_MIN = (5.0, 15.0)  # the "the bottleneck service first once its oldest waits N min" candidates
ACTION_MIN_GAIN_S = 120.0  # a staff action must lower the p95 by at least this and ACTION_MIN_GAIN_RATIO
ACTION_MIN_GAIN_RATIO = 0.10


class AdviceError(GatewayError, ValueError):
    """Inputs the advisor cannot work with (the message says which)."""


@dataclass(frozen=True)
class Reason:
    vi: str
    en: str


@dataclass(frozen=True)
class ServicePrediction:
    service: str
    arrivals_per_h: float
    waiting: int
    counters: float  # equivalent counters serving it (share of each counter's time the simulation gave it)
    utilization: float
    wait_now_s: float
    mean_wait_s: float
    p95_wait_s: float


@dataclass(frozen=True)
class OpenCounter:
    counter: str
    profile: WorkProfile
    mean_wait_s_before: float
    mean_wait_s_after: float


@dataclass(frozen=True)
class StaffAction:
    """Something only a manager can do, with its simulated effect on the p95 wait of the next hour.

    ``kind``: ``open`` (open closed ``counter`` with ``services``), ``move`` (a clerk who can serve ``service``
    works at ``counter``: move one there or train its clerk), ``extend`` (keep ``counter`` open ``minutes``
    longer than the day's last arrivals)."""

    kind: str
    counter: str
    services: tuple[str, ...]
    service: str | None
    p95_wait_s_before: float
    p95_wait_s_after: float
    mean_wait_s_before: float
    mean_wait_s_after: float
    reason: Reason
    minutes: float | None = None


@dataclass(frozen=True)
class Advice:
    at: datetime
    horizon_min: float
    current: dict[str, ServicePrediction]
    recommended: dict[str, ServicePrediction]
    mean_wait_s_current: float  # over the tickets waiting now and issued in the horizon
    mean_wait_s_recommended: float
    change: bool
    policy: Policy | None  # None: keep the profiles in force
    profiles: dict[str, WorkProfile]  # recommended profile per counter (the current one when no change)
    open_counter: OpenCounter | None = None
    reasons: list[Reason] = field(default_factory=list)
    actions: list[StaffAction] = field(default_factory=list)
    p95_wait_s_current: float = 0.0
    p95_wait_s_recommended: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)  # candidate -> score (s), for the curious
    chosen: str = "keep"


def _fmt_min(s: float) -> str:
    return f"{s / 60:.0f}"


def _key(profiles: Mapping[str, WorkProfile]) -> tuple:
    return tuple(sorted((k, tuple(p.services), tuple((r.service, r.over_minutes) for r in p.rules))
                        for k, p in profiles.items()))


def _merge_rules(*lists: Sequence[PriorityRule]) -> list[PriorityRule]:
    out: list[PriorityRule] = []
    for rules in lists:
        for r in rules:
            if all(x.service != r.service for x in out):
                out.append(r)
    return out


def lwf_over_skills(profile: WorkProfile, skills: Sequence[str]) -> WorkProfile:
    """The profile's services, then every other skill: the counter calls the longest wait among all of them.

    >>> lwf_over_skills(WorkProfile(services=["B"]), ["A", "B", "D"]).services
    ['B', 'A', 'D']
    """
    return WorkProfile(services=list(dict.fromkeys([*profile.services, *skills])), rules=list(profile.rules))


@dataclass
class _Eval:
    """A candidate's outcomes over the replications."""

    name: str
    profiles: dict[str, WorkProfile]
    outs: list[Outcome]

    @property
    def mean_s(self) -> float:
        return sum(o.mean_wait_s for o in self.outs) / len(self.outs)

    @property
    def p95_s(self) -> float:
        return sum(o.p95_wait_s for o in self.outs) / len(self.outs)

    @property
    def score(self) -> float:
        return 0.5 * (self.mean_s + self.p95_s)


def advise(snapshot: QueueSnapshot, profiles: Mapping[str, WorkProfile], stats: Forecast, now: datetime,
           horizon_min: float = 60, open_counters_possible: Sequence[str] | None = None, *,
           skills: Mapping[str, Sequence[str]] | None = None, home: Mapping[str, WorkProfile] | None = None,
           version: int = 1, min_gain_ratio: float = 0.10, min_gain_s: float = 120.0, replications: int = 5,
           seed: int | None = None, risk_p95_min: float = 20.0, staff_actions: bool = True,
           default_service_s: float = DEFAULT_SERVICE_S) -> Advice:
    """Advise a center (see the module docstring).

    ``profiles``: the work profile in force per counter (with its rules). ``skills``: the services each
    counter's staff can serve (the config's profile and ``skills``; the profile in force is always allowed).
    ``home``: the configured profiles (default: ``profiles``). ``open_counters_possible``: closed counters that
    could be opened (None: every counter the snapshot shows closed; ``[]``: none). ``version``: the version of
    the Policy returned. ``seed``: of the simulation's random numbers (default: from ``now``, reproducible).
    """
    if not horizon_min or horizon_min <= 0 or not math.isfinite(horizon_min):
        raise AdviceError(f"horizon_min must be a positive number of minutes, got {horizon_min!r}")
    if version < 1:
        raise AdviceError(f"policy version must be 1 or more, got {version}")
    if not (0 <= min_gain_ratio < 1) or min_gain_s < 0:
        raise AdviceError("min_gain_ratio must be in [0, 1) and min_gain_s non-negative")
    if replications < 1:
        raise AdviceError(f"replications must be 1 or more, got {replications}")
    skills = skills or {}
    horizon_s = horizon_min * 60.0

    # ---- counters: state, profiles in force, home profiles, allowed services
    states = {k: v.state for k, v in snapshot.counters.items()}
    all_counters = list(dict.fromkeys([*profiles, *snapshot.counters]))
    current: dict[str, WorkProfile] = {}
    for k in all_counters:
        if k in profiles:
            current[k] = profiles[k]
        elif snapshot.counters[k].services:
            current[k] = WorkProfile(services=list(snapshot.counters[k].services))
    homes = {k: (home or {}).get(k) or current[k] for k in current}
    services = list(dict.fromkeys([*snapshot.services, *(s for p in current.values() for s in p.services),
                                   *(s for p in homes.values() for s in p.services), *stats.services]))
    known = set(services)
    for k, extra in skills.items():
        unknown = [s for s in extra if s not in known]
        if unknown:
            raise AdviceError(f"skills of counter {k}: unknown service(s) {', '.join(unknown)}")
    allowed = {k: list(dict.fromkeys([*current[k].services, *homes[k].services, *skills.get(k, ())]))
               for k in current}
    state_of = {k: str(states.get(k, CounterStateName.open)) for k in current}
    present = [k for k in current if state_of[k] != "closed"]
    closed = [k for k in current if state_of[k] == "closed"]
    openable = closed if open_counters_possible is None else [k for k in open_counters_possible if k in closed]

    # ---- demand: hourly forecast over the horizon, scaled by how the last hour compared with its forecast
    recent_ok = stats.now is not None and abs((stats.now - now).total_seconds()) <= 15 * 60
    segments: dict[str, list[tuple[float, float, float]]] = {}
    unknown_rate: list[str] = []
    cuts = [0.0]
    t = now
    while (t - now).total_seconds() < horizon_s:
        nxt = min(now + timedelta(seconds=horizon_s), t.replace(minute=0, second=0, microsecond=0)
                  + timedelta(hours=1))
        cuts.append((nxt - now).total_seconds())
        t = nxt
    for s in services:
        rec = stats.recent_per_h.get(s) if recent_ok else None
        last_h = stats.mean_arrivals_per_hour(s, now - timedelta(minutes=stats.recent_min), now)
        segs = []
        for a, b in zip(cuts, cuts[1:], strict=False):
            hist = stats.arrivals_per_hour(s, now + timedelta(seconds=a))
            if hist is None:
                per_h = rec if rec is not None else 0.0
            elif rec is None:
                per_h = hist
            elif last_h and last_h > 0:
                per_h = hist * min(2.0, max(0.5, rec / last_h))
            else:
                per_h = hist if rec == 0 else 0.5 * (hist + rec)
            segs.append((a, b, max(0.0, float(per_h)) / 3600.0))
        if stats.curve(s, now) is None and rec is None:
            unknown_rate.append(s)
        segments[s] = segs
    q0 = {s: (snapshot.services[s].waiting if s in snapshot.services else 0) for s in services}
    oldest = {s: (snapshot.services[s].oldest_wait_s if s in snapshot.services else 0.0) for s in services}
    known_times = [t for s in services if (t := stats.time_for(s)) is not None and t.mean_s > 0]
    fallback = sum(t.mean_s for t in known_times) / len(known_times) if known_times else default_service_s
    mean, scv = {}, {}
    for s in services:
        ts = stats.time_for(s)
        mean[s] = ts.mean_s if ts is not None and ts.mean_s > 0 else fallback
        scv[s] = min(4.0, ts.scv) if ts is not None and ts.n >= 5 else 1.0
    pair_mean = {}
    for k in current:
        for s in allowed[k]:
            ts = stats.time_for(s, k)
            if ts is not None and ts.mean_s > 0 and ts is not stats.time_for(s):
                pair_mean[(k, s)] = ts.mean_s
    in_hand = {}
    for k, c in snapshot.counters.items():
        if c.ticket:
            prefix = c.ticket.rstrip("0123456789")
            if prefix in known:
                in_hand[k] = prefix
    sc = Scenario(start=now, horizon_s=horizon_s, services=tuple(services), segments=segments, waiting=q0,
                  oldest_s=oldest, mean_s=mean, scv=scv, counters=state_of, in_hand=in_hand,
                  pair_mean_s=pair_mean, break_max_s=2 * (1 - BREAK_CAPACITY) * horizon_s)
    demand = {s for s in services if q0[s] > 0 or any(r > 0 for _, _, r in segments[s])}
    base = seed if seed is not None else int(now.timestamp()) // 60
    draws: list[Draws] = [draw(sc, base * 31 + r) for r in range(replications)]

    # ---- candidates
    def repair(prof: dict[str, WorkProfile]) -> tuple[dict[str, WorkProfile], list[str]]:
        """Give every service with demand a present counter when one is skilled for it."""
        out = dict(prof)
        stranded = []
        for s in services:
            if s not in demand or any(s in out[k].services for k in present):
                continue
            able = [k for k in present if s in allowed[k]]
            if able:
                stranded.append(s)
                for k in able:
                    out[k] = WorkProfile(services=[*out[k].services, s], rules=list(out[k].rules))
        return out, stranded

    rules_of = {k: _merge_rules(current[k].rules, homes[k].rules) for k in current}
    cands: dict[str, dict[str, WorkProfile]] = {}
    keep, stranded_now = repair(dict(current))
    cands["keep"] = keep
    cands["home"] = {k: WorkProfile(services=list(homes[k].services), rules=rules_of[k]) for k in current}
    cands["skills"] = {k: lwf_over_skills(WorkProfile(services=list(homes[k].services), rules=rules_of[k]),
                                          allowed[k]) for k in current}
    for after in HELP_AFTER_MIN:
        cands[f"help{after:g}"] = {
            k: WorkProfile(services=list(homes[k].services),
                           rules=_merge_rules(rules_of[k], [PriorityRule(service=s, over_minutes=after)
                                                            for s in allowed[k] if s not in homes[k].services]))
            for k in current}

    evals: dict[str, _Eval] = {}
    seen: dict[tuple, str] = {}

    def evaluate(name: str, prof: dict[str, WorkProfile], extra_open: Sequence[str] = ()) -> _Eval:
        key = (_key(prof), tuple(extra_open))
        if key in seen:
            return evals[seen[key]]
        ev = _Eval(name, prof, [run(sc, d, prof, extra_open) for d in draws])
        seen[key] = name
        evals[name] = ev
        return ev

    evaluate("keep", keep)
    worst = max((s for s in services if s in demand), default=None,
                key=lambda s: sum(percentile(o.by_service[s], 95) for o in evals["keep"].outs))
    if worst is not None:
        cands["focus"] = {k: (WorkProfile(services=[*keep[k].services, worst], rules=list(keep[k].rules))
                              if worst in allowed[k] and worst not in keep[k].services else keep[k])
                          for k in current}
    for name, prof in cands.items():
        if name != "keep":
            evaluate(name, repair(prof)[0])
    # the service with the worst tail under the best candidate so far goes first where it is allowed, once its
    # oldest ticket has waited a few minutes (capacity shifts to the bottleneck; the others are served by LWF)
    lead = min(evals.values(), key=lambda e: e.score)
    tail = max((s for s in services if s in demand), default=None,
               key=lambda s: sum(percentile(o.by_service[s], 95) for o in lead.outs))
    if tail is not None:
        for after in PRIORITY_AFTER_MIN:
            prof = {k: (WorkProfile(services=list(p.services), rules=[
                        PriorityRule(service=tail, over_minutes=after), *(r for r in p.rules if r.service != tail)])
                        if tail in allowed[k] else p) for k, p in lead.profiles.items()}
            evaluate(f"first{after:g}:{tail}", repair(prof)[0])
    cur = evals["keep"]
    best = min(evals.values(), key=lambda e: (e.score, e.name != "keep"))
    gain = cur.score - best.score
    forced = bool(stranded_now)
    change = forced and best.name == "keep" or (best.name != "keep"
                                               and gain > max(min_gain_ratio * cur.score, min_gain_s))
    if not change and forced:
        change = True
    rec = best if (change and best.name != "keep") else cur
    if _key(rec.profiles) == _key(current):
        change = False

    def table(ev: _Eval) -> dict[str, ServicePrediction]:
        out = {}
        n = len(ev.outs)
        for s in services:
            arrivals_h = sum((b - a) * r for a, b, r in segments[s]) / horizon_s * 3600
            share = 0.0
            for k in present:
                if s not in ev.profiles[k].services and all(r.service != s for r in ev.profiles[k].rules):
                    continue
                w_ks = sum(o.work_s.get((k, s), 0.0) for o in ev.outs)
                w_k = sum(v for o in ev.outs for (kk, _), v in o.work_s.items() if kk == k)
                if w_k > 0:
                    share += w_ks / w_k
                elif s in ev.profiles[k].services:
                    share += 1.0 / len(ev.profiles[k].services)
            work = (arrivals_h * horizon_s / 3600 + q0[s]) * mean[s]
            util = work / (share * horizon_s) if share > 0 else (math.inf if work > 0 else 0.0)
            waits = [w for o in ev.outs for w in o.by_service[s]]
            out[s] = ServicePrediction(
                s, round(arrivals_h, 2), q0[s], round(share, 2), round(util, 3) if math.isfinite(util) else util,
                round(sum(o.wait_now_s[s] for o in ev.outs) / n, 1),
                round(sum(waits) / len(waits), 1) if waits else 0.0, round(percentile(waits, 95), 1))
        return out

    cur_table, rec_table = table(cur), table(rec)
    reasons: list[Reason] = []
    if unknown_rate:
        names = ", ".join(unknown_rate)
        reasons.append(Reason(f"Chưa có số liệu lượt đến cho dịch vụ {names}: coi như không có lượt mới.",
                              f"No arrival history for {names}: assumed no new arrivals."))
    new_profiles = dict(current)
    if change:
        new_profiles = dict(rec.profiles)
        for k in current:
            added = [s for s in new_profiles[k].services if s not in current[k].services]
            dropped = [s for s in current[k].services if s not in new_profiles[k].services]
            helps = [r.service for r in new_profiles[k].rules
                     if all(x.service != r.service for x in current[k].rules)]
            if added:
                a = ", ".join(added)
                reasons.append(Reason(f"Quầy {k} nhận thêm dịch vụ {a}.", f"Counter {k} also takes {a}."))
            if dropped:
                d = ", ".join(dropped)
                reasons.append(Reason(f"Quầy {k} thôi nhận dịch vụ {d}.", f"Counter {k} stops taking {d}."))
            if helps:
                h = ", ".join(f"{r.service} (> {r.over_minutes:g} phút)" for r in new_profiles[k].rules
                              if r.service in helps)
                he = ", ".join(f"{r.service} (> {r.over_minutes:g} min)" for r in new_profiles[k].rules
                               if r.service in helps)
                reasons.append(Reason(f"Quầy {k} giúp {h} khi vé cũ nhất chờ lâu.",
                                      f"Counter {k} helps with {he} when its oldest ticket waits that long."))
        for s in stranded_now:
            reasons.append(Reason(f"Dịch vụ {s} đang có người chờ mà không quầy nào nhận: giao cho quầy có "
                                  f"chuyên môn.", f"Nobody serves {s} while people wait for it: given to the "
                                                  f"counters skilled for it."))
        reasons.append(Reason(
            f"Dự báo {horizon_min:g} phút tới: chờ trung bình {_fmt_min(cur.mean_s)} → {_fmt_min(rec.mean_s)} "
            f"phút, 95% người chờ dưới {_fmt_min(cur.p95_s)} → {_fmt_min(rec.p95_s)} phút.",
            f"Next {horizon_min:g} min: mean wait {_fmt_min(cur.mean_s)} → {_fmt_min(rec.mean_s)} min, p95 "
            f"{_fmt_min(cur.p95_s)} → {_fmt_min(rec.p95_s)} min."))
    else:
        reasons.append(Reason(
            f"Giữ phân công hiện tại: chờ trung bình dự báo {_fmt_min(cur.mean_s)} phút, 95% dưới "
            f"{_fmt_min(cur.p95_s)} phút; phương án tốt nhất chỉ giảm {max(0.0, gain) / 60:.1f} phút.",
            f"Keep the current profiles: predicted mean wait {_fmt_min(cur.mean_s)} min, p95 "
            f"{_fmt_min(cur.p95_s)} min; the best alternative saves only {max(0.0, gain) / 60:.1f} min."))

    # ---- staff actions
    actions: list[StaffAction] = []
    open_advice: OpenCounter | None = None

    def worth(before: _Eval, after: _Eval) -> bool:
        d = before.p95_s - after.p95_s
        return d >= ACTION_MIN_GAIN_S and d >= ACTION_MIN_GAIN_RATIO * before.p95_s

    if staff_actions and rec.p95_s > risk_p95_min * 60 * 0.5:
        best_open: _Eval | None = None
        best_open_k = ""
        for k in openable:
            prof = dict(rec.profiles)
            prof[k] = lwf_over_skills(homes[k], allowed[k])
            ev = evaluate(f"open:{k}", prof, (k,))
            if worth(rec, ev) and (best_open is None or ev.score < best_open.score):
                best_open, best_open_k = ev, k
        if best_open is not None:
            k = best_open_k
            svc = tuple(best_open.profiles[k].services)
            sv = ", ".join(svc)
            actions.append(StaffAction(
                "open", k, svc, None, round(rec.p95_s, 1), round(best_open.p95_s, 1), round(rec.mean_s, 1),
                round(best_open.mean_s, 1),
                Reason(f"Mở quầy {k} (dịch vụ {sv}): 95% người chờ dưới {_fmt_min(rec.p95_s)} → "
                       f"{_fmt_min(best_open.p95_s)} phút (giảm {_fmt_min(rec.p95_s - best_open.p95_s)} phút).",
                       f"Open counter {k} ({sv}): p95 wait {_fmt_min(rec.p95_s)} → {_fmt_min(best_open.p95_s)} "
                       f"min ({_fmt_min(rec.p95_s - best_open.p95_s)} min less).")))
            open_advice = OpenCounter(k, WorkProfile(services=list(svc)), round(rec.mean_s, 1),
                                      round(best_open.mean_s, 1))
        # the service with the longest p95, if it is long: a clerk skilled in it at another open counter
        short = max(services, key=lambda s: rec_table[s].p95_wait_s)
        if rec_table[short].p95_wait_s > risk_p95_min * 60:
            spare = sorted((k for k in present if short not in allowed[k] and state_of[k] == "open"),
                           key=lambda k: max((rec_table[s].p95_wait_s for s in rec.profiles[k].services),
                                             default=0.0))[:2]
            best_move: _Eval | None = None
            best_k = ""
            for k in spare:
                prof = dict(rec.profiles)
                prof[k] = WorkProfile(services=[short, *prof[k].services], rules=list(prof[k].rules))
                ev = evaluate(f"move:{k}", prof)
                if worth(rec, ev) and (best_move is None or ev.score < best_move.score):
                    best_move, best_k = ev, k
            if best_move is not None:
                k = best_k
                actions.append(StaffAction(
                    "move", k, tuple(best_move.profiles[k].services), short, round(rec.p95_s, 1),
                    round(best_move.p95_s, 1), round(rec.mean_s, 1), round(best_move.mean_s, 1),
                    Reason(f"Dịch vụ {short} thiếu người làm: điều một cán bộ biết làm {short} sang quầy {k} "
                           f"(hoặc bồi dưỡng cán bộ quầy {k}): 95% người chờ dưới {_fmt_min(rec.p95_s)} → "
                           f"{_fmt_min(best_move.p95_s)} phút.",
                           f"{short} is short of skilled staff: move a clerk who can serve {short} to counter {k} "
                           f"(or train counter {k}'s clerk): p95 wait {_fmt_min(rec.p95_s)} → "
                           f"{_fmt_min(best_move.p95_s)} min.")))
        # people still waiting when the arrivals stop (the day's closing): keep a counter open longer
        closing = max((b for s in services for a, b, r in segments[s] if r > 0), default=0.0)
        if 0 < closing < horizon_s:
            late = [[(t, s) for t, s in o.calls if t > closing] for o in rec.outs]
            n_late = sum(len(x) for x in late) / len(late)
            if n_late >= 1:
                over = sum(max((t for t, _ in x), default=closing) - closing for x in late) / len(late)
                minutes = max(5, math.ceil(over / 60 / 5) * 5)
                by_s: dict[str, int] = {}
                for x in late:
                    for _, s in x:
                        by_s[s] = by_s.get(s, 0) + 1
                s_max = max(by_s, key=lambda s: by_s[s])
                k = max((k for k in present if s_max in rec.profiles[k].services), default=None,
                        key=lambda k: sum(o.work_s.get((k, s_max), 0.0) for o in rec.outs))
                if k is not None:
                    at = (now + timedelta(seconds=closing)).astimezone(ZoneInfo(stats.tz)).strftime("%H:%M")
                    actions.append(StaffAction(
                        "extend", k, tuple(rec.profiles[k].services), s_max, round(rec.p95_s, 1),
                        round(rec.p95_s, 1), round(rec.mean_s, 1), round(rec.mean_s, 1),
                        Reason(f"Khoảng {n_late:.0f} người (chủ yếu {s_max}) còn chờ lúc {at}: quầy {k} làm thêm "
                               f"khoảng {minutes:g} phút để phục vụ hết.",
                               f"About {n_late:.0f} people (mostly {s_max}) will still wait at {at}: keep counter "
                               f"{k} open about {minutes:g} min longer to serve them."), minutes=minutes))
    reasons.extend(a.reason for a in actions)
    if not actions and any(rec_table[s].utilization >= 1 for s in services):
        over = ", ".join(s for s in services if rec_table[s].utilization >= 1)
        reasons.append(Reason(f"Quá tải dịch vụ {over}: cần thêm cán bộ, hàng chờ sẽ còn tăng.",
                              f"{over} overloaded: more staff is needed, the line will keep growing."))
    unserved = [s for s in services if s in demand and not any(s in allowed[k] for k in present)]
    if unserved:
        u = ", ".join(unserved)
        reasons.append(Reason(f"Không quầy nào đang mở có thể nhận dịch vụ {u}: cần mở quầy hoặc điều cán bộ.",
                              f"No open counter can serve {u}: open a counter or move a clerk."))

    policy = None
    if change:
        policy = Policy(version=version, issued_at=now, counters=dict(new_profiles),
                        reason=" ".join(r.en for r in reasons))
    return Advice(at=now, horizon_min=horizon_min, current=cur_table, recommended=rec_table,
                  mean_wait_s_current=round(cur.mean_s, 1), mean_wait_s_recommended=round(rec.mean_s, 1),
                  change=change, policy=policy, profiles=new_profiles, open_counter=open_advice,
                  reasons=reasons, actions=actions, p95_wait_s_current=round(cur.p95_s, 1),
                  p95_wait_s_recommended=round(rec.p95_s, 1),
                  scores={n: round(e.score, 1) for n, e in evals.items()}, chosen=rec.name if change else "keep")
