"""The day simulator drives the real queue engine, and its queue agrees with queueing theory."""

from __future__ import annotations

import pytest

from bench.loadsim import (
    PROFILES,
    STRATEGIES,
    DaySim,
    erlang_day,
    fcfs_waits,
    simulate,
    validate_erlang_c,
)
from civiq.gateway.balance import erlang_c


def test_engine_waits_equal_the_fcfs_recursion_ticket_by_ticket() -> None:
    day = erlang_day(counters=3, rho=0.8, mean_s=60, hours=4)
    sim = simulate(day, "profiles", seed=7)
    ref = fcfs_waits(day, seed=7)
    assert sim.tickets == len(ref) > 500
    assert sim.unserved == 0
    # the engine rounds waits to 0.1 s; anything more is a different queue discipline
    assert max(abs(a[1] - b[1]) for a, b in zip(sim.waits, ref, strict=True)) <= 0.051
    assert sum(1 for _, w in sim.waits if w > 0) > 100  # a real queue formed


def test_arrival_and_service_draws_reproduce_erlang_c() -> None:
    day = erlang_day(counters=3, rho=0.7, mean_s=60, hours=20)
    means = []
    for seed in range(1, 121):
        w = [x for at, x in fcfs_waits(day, seed) if at >= 1.5 * 3600]
        means.append(sum(w) / len(w))
    exact = erlang_c(3, 2.1) / (3 / 60 - 2.1 / 60)
    assert abs(sum(means) / len(means) - exact) / exact < 0.04


def test_short_engine_validation_against_erlang_c() -> None:
    """The CI version of the benchmark's validation (6 simulated days instead of 80: 15% instead of 5%;
    the sampling error of 6 days is about 9%, 95% CI +-19%)."""
    v = validate_erlang_c(counters=3, rho=0.7, mean_s=60, hours=16, seeds=range(1, 7))
    assert v.customers > 10000
    assert v.fcfs_max_diff_s <= 0.051
    assert v.rel_error < 0.15, v


def test_every_strategy_serves_the_whole_day_with_the_same_citizens() -> None:
    day = PROFILES["land_rush"]
    results = {s: simulate(day, s, seed=3) for s in STRATEGIES if s != "advisor"}
    counts = {r.tickets for r in results.values()}
    assert len(counts) == 1 and counts.pop() > 100  # common random numbers: same citizens everywhere
    for r in results.values():
        assert r.unserved == 0
        assert r.served + r.no_shows == r.tickets
        assert r.no_shows > 0
    # the land rush overloads the land counters when they keep to their service; pooling is the bound
    assert results["pooled"].mean_wait_s < results["profiles"].mean_wait_s < results["dedicated"].mean_wait_s
    assert results["dedicated"].by_service["A"] > 3 * results["dedicated"].by_service["B"]


def test_fqm_issues_into_per_counter_lines() -> None:
    sim = DaySim(PROFILES["balanced"], "fqm", seed=2)
    r = sim.run()
    assert set(sim.engine.services) == {"K1", "K2", "K3", "K4", "K5", "K6"}
    assert r.unserved == 0 and r.tickets > 100


def test_closed_counter_stays_closed_and_breaks_happen() -> None:
    sim = DaySim(PROFILES["short_staffed"], "profiles", seed=1, keep_events=True)
    r = sim.run()
    assert sim.engine.counter("c4").state == "closed"
    called_at = {e.data["counter"] for e in r.events if e.type == "ticket.called"}
    assert "c4" not in called_at
    breaks = [e for e in r.events if e.type == "counter.break"]
    assert len(breaks) == 10  # 5 staffed counters x 2 breaks


def test_unknown_strategy_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown strategy 'fastest'"):
        DaySim(PROFILES["balanced"], "fastest")
