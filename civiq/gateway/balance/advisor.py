"""Which counter should take which service in the next hour: the load-balancing advisor.

:func:`advise` takes the live :class:`~civiq.contract.QueueSnapshot` of a center, the work profiles in force,
a :class:`~civiq.gateway.balance.forecast.Forecast` of its history and the time, and returns an :class:`Advice`:
predicted waits per service with the current profiles and with the recommended ones, a
:class:`~civiq.contract.Policy` to push (or None), whether to open a closed counter, and reasons in Vietnamese
and English. docs/load-balancing.md derives the method; in short:

1. **Demand** per service over the horizon ``H``: ``λ`` = the forecast's hourly rate for ``[now, now+H)``,
   averaged with the rate of the last hour when both exist (a surge the history did not predict shows up);
   ``q0`` = people waiting now; counter time per ticket (mean and variance, no-show recalls included) from
   history, per counter×service where there are enough samples.
2. **Capacity** of an assignment (counter → set of services): each open counter splits its time between its
   services. Counters call the longest-waiting ticket among their services, which tends to equalise the
   utilisation of services that share counters; we compute that split by multiplicative balancing
   (``x_ks ← x_ks · sqrt(ρ_s / ρ̄_k)``) and get ``c_s = Σ_k x_ks · m_s / m_ks`` equivalent counters per service.
   A counter on break counts as ``BREAK_CAPACITY`` of one.
3. **Waits** per service: Allen–Cunneen M/G/c with a real ``c`` plus a fluid backlog term
   (:func:`~civiq.gateway.balance.queueing.predict`). Objective: person-seconds of waiting over the horizon
   (arrivals weighted by ``λ``, plus the backlog's remaining wait), i.e. the arrival-weighted mean wait.
4. **Search**: best-improvement local search from the current assignment over "add a service", "drop a
   service", "swap one service for another" moves, a counter only ever getting services in its allowed set
   (its profile's services plus ``skills``). A move must gain at least 1 % to be taken.
5. **Rules**: services still at risk (predicted p95 above ``risk_p95_min``, or utilisation above 0.9) get a
   rule "take X first if its oldest waits more than ``rule_after_min`` minutes" on every counter allowed X but
   not assigned it: a safety valve the model does not credit (so the estimate stays conservative).
6. **Hysteresis**: a change is recommended only when the predicted mean wait drops by more than
   ``min_gain_ratio`` (10 %) **and** ``min_gain_s`` (2 min); otherwise ``policy`` is None and the edge keeps
   what it has, so advice does not flap.

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

from civiq.contract import CounterStateName, Policy, PriorityRule, QueueSnapshot, WorkProfile
from civiq.gateway.balance.forecast import Forecast
from civiq.gateway.balance.queueing import Prediction, predict

__all__ = ["Advice", "AdviceError", "OpenCounter", "Reason", "ServicePrediction", "advise", "BREAK_CAPACITY"]

BREAK_CAPACITY = 0.75  # a counter on break is expected back within the horizon
DEFAULT_SERVICE_S = 600.0  # counter time per ticket when a center has no history at all
MIN_MOVE_GAIN = 0.01
BALANCE_ROUNDS = 40

Assignment = dict[str, frozenset[str]]


class AdviceError(ValueError):
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
    counters: float  # equivalent counters serving it
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
class Advice:
    at: datetime
    horizon_min: float
    current: dict[str, ServicePrediction]
    recommended: dict[str, ServicePrediction]
    mean_wait_s_current: float  # arrival-weighted, over the horizon
    mean_wait_s_recommended: float
    change: bool
    policy: Policy | None  # None: keep the profiles in force
    profiles: dict[str, WorkProfile]  # recommended profile per counter (the current one when no change)
    open_counter: OpenCounter | None = None
    reasons: list[Reason] = field(default_factory=list)


@dataclass
class _Model:
    services: list[str]
    lam: dict[str, float]  # per second
    q0: dict[str, int]
    mean: dict[str, float]
    scv: dict[str, float]
    pair_mean: dict[tuple[str, str], float]
    weight: dict[str, float]  # counter capacity (1 open, BREAK_CAPACITY on break)
    horizon_s: float
    cache: dict[tuple, tuple[float, dict[str, Prediction], dict[str, float]]] = field(default_factory=dict)

    def split(self, asg: Assignment) -> dict[str, float]:
        """Equivalent counters per service under the utilisation-balancing split."""
        load = {s: (self.lam[s] + self.q0[s] / self.horizon_s) * self.mean[s] for s in self.services}
        x = {(k, s): self.weight[k] / len(ss) for k, ss in asg.items() for s in ss}
        ratio = {(k, s): self.mean[s] / self.pair_mean.get((k, s), self.mean[s]) for (k, s) in x}

        def servers() -> dict[str, float]:
            c = dict.fromkeys(self.services, 0.0)
            for (k, s), v in x.items():
                c[s] += v * ratio[(k, s)]
            return c

        for _ in range(BALANCE_ROUNDS):
            c = servers()
            rho = {s: (load[s] / c[s] if c[s] > 1e-12 else (1e6 if load[s] > 0 else 0.0)) for s in self.services}
            for k, ss in asg.items():
                if len(ss) < 2:
                    continue
                new = {s: x[(k, s)] * math.sqrt(rho[s]) for s in ss}
                tot = sum(new.values())
                if tot <= 0:
                    new = dict.fromkeys(ss, 1.0)
                    tot = float(len(ss))
                for s in ss:
                    x[(k, s)] = max(self.weight[k] * new[s] / tot, 1e-9)
        return servers()

    def evaluate(self, asg: Assignment) -> tuple[float, dict[str, Prediction], dict[str, float]]:
        """(mean wait per person over the horizon, predictions, equivalent counters) for an assignment."""
        key = tuple(sorted((k, tuple(sorted(v))) for k, v in asg.items()))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        c = self.split(asg)
        preds: dict[str, Prediction] = {}
        total = people = 0.0
        for s in self.services:
            p = predict(self.lam[s], self.q0[s], c[s], self.mean[s], self.scv[s], self.horizon_s)
            preds[s] = p
            arrivals = self.lam[s] * self.horizon_s
            total += arrivals * p.mean_wait_s + p.backlog_wait_s
            people += arrivals + self.q0[s]
        out = (total / people if people > 0 else 0.0, preds, c)
        self.cache[key] = out
        return out


def _fmt_min(s: float) -> str:
    return f"{s / 60:.0f}"


def _search(model: _Model, start: Assignment, allowed: Mapping[str, frozenset[str]],
            max_rounds: int = 25) -> tuple[Assignment, float]:
    best = dict(start)
    best_val = model.evaluate(best)[0]
    for _ in range(max_rounds):
        cand_best: Assignment | None = None
        cand_val = best_val
        for k in best:
            cur = best[k]
            extra = allowed[k] - cur
            moves: list[frozenset[str]] = [cur | {s} for s in extra]
            if len(cur) > 1:
                moves += [cur - {s} for s in cur]
            moves += [(cur - {s}) | {t} for s in cur for t in extra]
            for m in moves:
                trial = dict(best)
                trial[k] = frozenset(m)
                v = model.evaluate(trial)[0]
                if v < cand_val:
                    cand_val, cand_best = v, trial
        if cand_best is None or cand_val > best_val * (1 - MIN_MOVE_GAIN):
            break
        best, best_val = cand_best, cand_val
    return best, best_val


def advise(snapshot: QueueSnapshot, profiles: Mapping[str, WorkProfile], stats: Forecast, now: datetime,
           horizon_min: float = 60, open_counters_possible: Sequence[str] | None = None, *,
           skills: Mapping[str, Sequence[str]] | None = None, version: int = 1,
           min_gain_ratio: float = 0.10, min_gain_s: float = 120.0, risk_p95_min: float = 20.0,
           rule_after_min: float = 20.0, default_service_s: float = DEFAULT_SERVICE_S) -> Advice:
    """Advise a center (see the module docstring).

    ``profiles``: the work profile in force per counter. ``open_counters_possible``: closed counters that could
    be opened (None: every counter the snapshot shows closed; ``[]``: do not consider opening one).
    ``skills``: extra services each counter's staff may serve. ``version``: the version of the Policy returned.
    """
    if not horizon_min or horizon_min <= 0 or not math.isfinite(horizon_min):
        raise AdviceError(f"horizon_min must be a positive number of minutes, got {horizon_min!r}")
    if version < 1:
        raise AdviceError(f"policy version must be 1 or more, got {version}")
    if not (0 <= min_gain_ratio < 1) or min_gain_s < 0:
        raise AdviceError("min_gain_ratio must be in [0, 1) and min_gain_s non-negative")
    skills = skills or {}
    horizon_s = horizon_min * 60.0

    # ---- counters: state, weight, allowed services
    states = {k: v.state for k, v in snapshot.counters.items()}
    all_counters = list(dict.fromkeys([*profiles, *snapshot.counters]))
    current: dict[str, WorkProfile] = {}
    for k in all_counters:
        if k in profiles:
            current[k] = profiles[k]
        elif snapshot.counters[k].services:
            current[k] = WorkProfile(services=list(snapshot.counters[k].services))
    services = list(dict.fromkeys([*snapshot.services, *(s for p in current.values() for s in p.services),
                                   *stats.services]))
    known = set(services)
    for k, extra in skills.items():
        unknown = [s for s in extra if s not in known]
        if unknown:
            raise AdviceError(f"skills of counter {k}: unknown service(s) {', '.join(unknown)}")
    allowed = {k: frozenset(p.services) | frozenset(skills.get(k, ())) for k, p in current.items()}
    weight: dict[str, float] = {}
    for k in current:
        st = states.get(k, CounterStateName.open)
        if st is CounterStateName.open:
            weight[k] = 1.0
        elif st is CounterStateName.on_break:
            weight[k] = BREAK_CAPACITY
    closed = [k for k in current if k not in weight]
    candidates = closed if open_counters_possible is None else [k for k in open_counters_possible if k in closed]

    # ---- demand
    end = now + timedelta(seconds=horizon_s)
    recent_ok = stats.now is not None and abs((stats.now - now).total_seconds()) <= 15 * 60
    lam: dict[str, float] = {}
    unknown_rate: list[str] = []
    for s in services:
        hist = stats.mean_arrivals_per_hour(s, now, end)
        rec = stats.recent_per_h.get(s) if recent_ok else None
        if hist is not None and rec is not None:
            per_h = 0.5 * (hist + rec)
        elif hist is not None or rec is not None:
            per_h = hist if hist is not None else rec  # type: ignore[assignment]
        else:
            per_h = 0.0
            unknown_rate.append(s)
        lam[s] = max(0.0, float(per_h)) / 3600.0
    q0 = {s: (snapshot.services[s].waiting if s in snapshot.services else 0) for s in services}
    known_times = [t for s in services if (t := stats.time_for(s)) is not None and t.mean_s > 0]
    fallback = sum(t.mean_s for t in known_times) / len(known_times) if known_times else default_service_s
    mean, scv = {}, {}
    for s in services:
        t = stats.time_for(s)
        mean[s] = t.mean_s if t is not None and t.mean_s > 0 else fallback
        scv[s] = t.scv if t is not None and t.n >= 5 else 1.0
    pair_mean = {(k, s): t.mean_s for (k, s), t in stats.counter_service_time.items() if t.mean_s > 0}
    model = _Model(services, lam, q0, mean, scv, pair_mean, weight, horizon_s)

    # ---- current and best assignments among counters that work now
    cur_asg: Assignment = {k: frozenset(current[k].services) & known for k in weight
                           if frozenset(current[k].services) & known}
    cur_val, cur_preds, cur_c = model.evaluate(cur_asg)
    best_asg, best_val = _search(model, cur_asg, allowed)
    gain = cur_val - best_val
    change = gain > max(min_gain_ratio * cur_val, min_gain_s)
    rec_asg = best_asg if change else cur_asg
    rec_val, rec_preds, rec_c = model.evaluate(rec_asg)

    def table(preds: dict[str, Prediction], c: dict[str, float]) -> dict[str, ServicePrediction]:
        return {s: ServicePrediction(s, round(lam[s] * 3600, 2), q0[s], round(c[s], 2), round(preds[s].utilization, 3),
                                     round(preds[s].wait_now_s, 1), round(preds[s].mean_wait_s, 1),
                                     round(preds[s].p95_wait_s, 1)) for s in services}

    cur_table, rec_table = table(cur_preds, cur_c), table(rec_preds, rec_c)
    reasons: list[Reason] = []
    if unknown_rate:
        names = ", ".join(unknown_rate)
        reasons.append(Reason(f"Chưa có số liệu lượt đến cho dịch vụ {names}: coi như không có lượt mới.",
                              f"No arrival history for {names}: assumed no new arrivals."))

    # ---- recommended profiles (+ rules for services at risk)
    new_profiles: dict[str, WorkProfile] = dict(current)
    if change:
        at_risk = [s for s in services
                   if rec_table[s].p95_wait_s > risk_p95_min * 60 or rec_table[s].utilization > 0.9]
        for k, ss in rec_asg.items():
            old = current[k]
            order = [s for s in old.services if s in ss]
            order += sorted(ss - set(order), key=lambda s: -lam[s] * mean[s])
            rules = [r for r in old.rules if r.service not in ss]
            for s in at_risk:
                if s in allowed[k] and s not in ss and all(r.service != s for r in rules):
                    rules.append(PriorityRule(service=s, over_minutes=rule_after_min))
            new_profiles[k] = WorkProfile(services=order, rules=rules)
        for k in rec_asg:
            added = rec_asg[k] - cur_asg[k]
            dropped = cur_asg[k] - rec_asg[k]
            if added:
                a = ", ".join(sorted(added))
                reasons.append(Reason(f"Quầy {k} nhận thêm dịch vụ {a}.", f"Counter {k} also takes {a}."))
            if dropped:
                d = ", ".join(sorted(dropped))
                reasons.append(Reason(f"Quầy {k} thôi nhận dịch vụ {d}.", f"Counter {k} stops taking {d}."))
        for s in at_risk:
            reasons.append(Reason(
                f"Dịch vụ {s} có nguy cơ chờ lâu (p95 dự báo {_fmt_min(rec_table[s].p95_wait_s)} phút): "
                f"quầy khác nhận {s} trước khi vé cũ nhất chờ quá {rule_after_min:g} phút.",
                f"Service {s} is at risk (predicted p95 {_fmt_min(rec_table[s].p95_wait_s)} min): other counters "
                f"take {s} first once its oldest ticket waits over {rule_after_min:g} min."))
        reasons.append(Reason(
            f"Thời gian chờ trung bình dự báo {horizon_min:g} phút tới giảm từ {_fmt_min(cur_val)} còn "
            f"{_fmt_min(rec_val)} phút.",
            f"Predicted mean wait over the next {horizon_min:g} min drops from {_fmt_min(cur_val)} to "
            f"{_fmt_min(rec_val)} min."))
    else:
        reasons.append(Reason(
            f"Giữ phân công hiện tại: thời gian chờ trung bình dự báo {_fmt_min(cur_val)} phút; phương án tốt nhất "
            f"chỉ giảm {gain / 60:.1f} phút (cần > 10% và > {min_gain_s / 60:g} phút).",
            f"Keep the current profiles: predicted mean wait {_fmt_min(cur_val)} min; the best alternative saves "
            f"only {gain / 60:.1f} min (needs > {min_gain_ratio:.0%} and > {min_gain_s / 60:g} min)."))

    # ---- open another counter?
    open_advice: OpenCounter | None = None
    best_open_val = rec_val
    for k in candidates:
        model.weight[k] = 1.0
        trial = dict(rec_asg)
        trial[k] = frozenset(current[k].services) & known
        asg_k, val_k = _search(model, trial, allowed)
        del model.weight[k]
        model.cache.clear()
        if rec_val - val_k > max(min_gain_ratio * rec_val, min_gain_s) and val_k < best_open_val:
            best_open_val = val_k
            svc = [s for s in current[k].services if s in asg_k[k]]
            svc += sorted(asg_k[k] - set(svc))
            open_advice = OpenCounter(k, WorkProfile(services=svc), round(rec_val, 1), round(val_k, 1))
    if open_advice is not None:
        svc = ", ".join(open_advice.profile.services)
        reasons.append(Reason(
            f"Nên mở quầy {open_advice.counter} (dịch vụ {svc}): chờ trung bình dự báo giảm từ "
            f"{_fmt_min(open_advice.mean_wait_s_before)} còn {_fmt_min(open_advice.mean_wait_s_after)} phút.",
            f"Open counter {open_advice.counter} ({svc}): predicted mean wait drops from "
            f"{_fmt_min(open_advice.mean_wait_s_before)} to {_fmt_min(open_advice.mean_wait_s_after)} min."))
    elif any(rec_table[s].utilization >= 1 for s in services):
        over = ", ".join(s for s in services if rec_table[s].utilization >= 1)
        reasons.append(Reason(f"Quá tải dịch vụ {over}: cần thêm cán bộ, hàng chờ sẽ còn tăng.",
                              f"{over} overloaded: more staff is needed, the line will keep growing."))

    policy = None
    if change:
        policy = Policy(version=version, issued_at=now, counters=dict(new_profiles),
                        reason=" ".join(r.en for r in reasons))
    return Advice(at=now, horizon_min=horizon_min, current=cur_table, recommended=rec_table,
                  mean_wait_s_current=round(cur_val, 1), mean_wait_s_recommended=round(rec_val, 1),
                  change=change, policy=policy, profiles=new_profiles, open_counter=open_advice,
                  reasons=reasons)
