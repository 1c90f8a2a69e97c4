"""Load balancing between counters: forecast a center's load from its history, advise work profiles.

The gateway side only: it works on :mod:`civiq.contract` models (events, queue snapshots, work profiles,
policies) and :mod:`civiq.workprofile` (the edge's choice of the next ticket, which its simulation of the next
hour uses), and never imports :mod:`civiq.edge`. docs/load-balancing.md explains the method; bench/loadsim.py
checks it against a simulation that drives the real edge queue engine.
"""

from civiq.gateway.balance.advisor import (
    BREAK_CAPACITY,
    Advice,
    AdviceError,
    OpenCounter,
    Reason,
    ServicePrediction,
    StaffAction,
    advise,
    lwf_over_skills,
)
from civiq.gateway.balance.forecast import Forecast, TimeStats, build_forecast, time_stats
from civiq.gateway.balance.queueing import erlang_c, p_wait, predict, wq_mean, wq_p95

__all__ = [
    "BREAK_CAPACITY",
    "Advice",
    "AdviceError",
    "Forecast",
    "OpenCounter",
    "Reason",
    "ServicePrediction",
    "StaffAction",
    "TimeStats",
    "advise",
    "build_forecast",
    "lwf_over_skills",
    "erlang_c",
    "p_wait",
    "predict",
    "time_stats",
    "wq_mean",
    "wq_p95",
]
