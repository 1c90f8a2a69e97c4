"""Queueing formulas the advisor (and the simulator's validation) use: Erlang C, Allen–Cunneen, a fluid backlog.

* :func:`erlang_c` — probability of waiting in M/M/c with offered load ``a = λ/μ`` Erlangs (exact);
* :func:`p_wait` — the same for a *real* number of servers ``c`` (a counter shared between services contributes
  a fraction): linear interpolation between ``floor(c)`` and ``ceil(c)`` servers at the same utilisation, and
  for ``c ≤ 1`` one server of speed ``c`` (``P = ρ``);
* :func:`wq_mean` / :func:`wq_p95` — Allen–Cunneen for M/G/c: ``Wq ≈ P_wait / (cμ − λ) · (ca² + cs²) / 2``;
  the tail ``P(Wq > t) ≈ P_wait · exp(−(cμ − λ) t / k)`` with ``k = (ca² + cs²) / 2``;
* :func:`predict` — a horizon of ``H`` seconds starting with ``q0`` people waiting: the fluid backlog
  ``Q(t) = max(0, q0 + (λ − cμ) t)`` and, for an arrival at ``t``, ``W(t) = max(Q(t)/(cμ), Wq_steady)``
  (the stationary term uses ``ρ`` capped at ``rho_cap``, so an overloaded hour is finite but very costly).

>>> round(erlang_c(3, 2.4), 4)
0.6472
>>> round(wq_mean(lam=0.02, mean_s=120, c=3, scv_s=1.0), 1)  # M/M/3 at rho = 0.8: Erlang C exactly
129.4
"""

from __future__ import annotations

import math
from dataclasses import dataclass

UNSERVED_WAIT_S = 4 * 3600.0  # the wait we charge to people no counter serves (keeps the objective finite)


def erlang_c(c: int, a: float) -> float:
    """P(an arrival waits) in M/M/c with offered load ``a`` Erlangs; 1 when ``a >= c``."""
    if c < 1:
        raise ValueError("erlang_c needs at least one server")
    if a <= 0:
        return 0.0
    if a >= c:
        return 1.0
    b = 1.0  # Erlang B by the stable recursion B(k) = a B(k-1) / (k + a B(k-1))
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho + rho * b)


def p_wait(c: float, rho: float) -> float:
    """Erlang C probability of waiting for a real number of servers ``c`` at utilisation ``rho``."""
    if rho <= 0:
        return 0.0
    if rho >= 1:
        return 1.0
    if c <= 1:
        return rho
    n = math.floor(c)
    frac = c - n
    lo = erlang_c(n, rho * n)
    if frac < 1e-9:
        return lo
    hi = erlang_c(n + 1, rho * (n + 1))
    return lo + frac * (hi - lo)


def wq_mean(lam: float, mean_s: float, c: float, scv_s: float, scv_a: float = 1.0) -> float:
    """Mean wait in queue (s), Allen–Cunneen; ``inf`` when ``λ ≥ cμ``."""
    if lam <= 0:
        return 0.0
    if c <= 0 or mean_s <= 0:
        return math.inf
    cap = c / mean_s
    if lam >= cap:
        return math.inf
    return p_wait(c, lam / cap) / (cap - lam) * (scv_a + scv_s) / 2.0


def wq_p95(lam: float, mean_s: float, c: float, scv_s: float, scv_a: float = 1.0) -> float:
    """95th percentile of the wait in queue (s), from the exponential tail of M/M/c scaled by Allen–Cunneen."""
    if lam <= 0:
        return 0.0
    if c <= 0 or mean_s <= 0:
        return math.inf
    cap = c / mean_s
    if lam >= cap:
        return math.inf
    pw = p_wait(c, lam / cap)
    if pw <= 0.05:
        return 0.0
    return math.log(pw / 0.05) / (cap - lam) * (scv_a + scv_s) / 2.0


@dataclass(frozen=True)
class Prediction:
    """Predicted waits (s) of one service over a horizon."""

    wait_now_s: float  # for a ticket issued now
    mean_wait_s: float  # mean over the horizon's arrivals
    p95_wait_s: float  # 95th percentile over the horizon's arrivals
    backlog_wait_s: float  # total further wait (person-seconds) of the people already waiting
    utilization: float  # (λ + q0/H) / (cμ)


def predict(lam: float, q0: int, c: float, mean_s: float, scv_s: float, horizon_s: float,
            steps: int = 12, rho_cap: float = 0.95) -> Prediction:
    """Fluid + stationary prediction for one service (``lam`` per second, ``c`` equivalent counters)."""
    q0 = max(0, int(q0))
    if lam <= 0 and q0 == 0:
        return Prediction(0.0, 0.0, 0.0, 0.0, 0.0)
    if c <= 1e-9 or mean_s <= 0:
        return Prediction(UNSERVED_WAIT_S, UNSERVED_WAIT_S, UNSERVED_WAIT_S, q0 * UNSERVED_WAIT_S, math.inf)
    cap = c / mean_s
    util = (lam + q0 / horizon_s) / cap
    lam_ss = min(lam, rho_cap * cap)
    ss_mean = wq_mean(lam_ss, mean_s, c, scv_s)
    ss_p95 = wq_p95(lam_ss, mean_s, c, scv_s)
    waits, tails = [], []
    for i in range(steps):
        t = (i + 0.5) * horizon_s / steps
        fluid = max(0.0, q0 + (lam - cap) * t) / cap
        waits.append(max(fluid, ss_mean))
        tails.append(max(fluid, ss_p95))
    tails.sort()
    p95 = tails[min(len(tails) - 1, math.ceil(0.95 * len(tails)) - 1)]
    mean = sum(waits) / len(waits)
    return Prediction(
        wait_now_s=max(q0 / cap, ss_mean),
        mean_wait_s=min(mean, UNSERVED_WAIT_S),
        p95_wait_s=min(p95, UNSERVED_WAIT_S),
        backlog_wait_s=q0 * (q0 + 1) / (2 * cap),
        utilization=util,
    )
