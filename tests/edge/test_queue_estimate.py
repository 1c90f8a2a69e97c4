"""Wait estimates from constructed histories: a number only when the history supports it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from civiq.edge.queue.estimate import CounterLoad, Departure, estimate_wait_s, mean_service_s, service_rate

NOW = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
HOUR = 3600.0


def dep(service: str, minutes_ago: float, service_s: float, counter: str = "c1") -> Departure:
    return Departure(service, counter, NOW - timedelta(minutes=minutes_ago), service_s)


def test_unknown_without_history_or_with_too_few_samples() -> None:
    loads = [CounterLoad("c1", ("A",), busy=True)]
    assert estimate_wait_s(3, "A", [], loads, {"A": 4}, NOW, HOUR) is None
    two = [dep("A", 1, 200), dep("A", 2, 200)]
    assert estimate_wait_s(3, "A", two, loads, {"A": 4}, NOW, HOUR) is None


def test_old_samples_and_other_services_do_not_count() -> None:
    hist = [dep("A", 61, 100), dep("A", 90, 100), dep("B", 1, 100), dep("B", 2, 100), dep("A", 5, 400)]
    assert mean_service_s(hist, "A", NOW, HOUR) is None
    hist += [dep("A", 6, 200), dep("A", 7, 300)]
    assert mean_service_s(hist, "A", NOW, HOUR) == 300.0


def test_no_open_counter_for_the_service_is_unknown() -> None:
    hist = [dep("A", m, 120) for m in (1, 2, 3)]
    assert estimate_wait_s(2, "A", hist, [CounterLoad("c2", ("B",), busy=False)], {"A": 3}, NOW, HOUR) is None
    assert estimate_wait_s(2, "A", hist, [], {"A": 3}, NOW, HOUR) is None


def test_two_busy_dedicated_counters() -> None:
    hist = [dep("A", m, 300) for m in (5, 15, 25)]
    loads = [CounterLoad("c1", ("A",), True), CounterLoad("c2", ("A",), True)]
    # 2 counters at 300 s each: a ticket every 150 s; 4 ahead + half a service in progress
    assert estimate_wait_s(4, "A", hist, loads, {"A": 5}, NOW, HOUR) == 675.0


def test_idle_counter_and_nobody_ahead_means_now() -> None:
    hist = [dep("A", m, 300) for m in (5, 15, 25)]
    loads = [CounterLoad("c1", ("A",), False)]
    assert estimate_wait_s(0, "A", hist, loads, {"A": 1}, NOW, HOUR) == 0.0
    assert estimate_wait_s(2, "A", hist, loads, {"A": 3}, NOW, HOUR) == 600.0


def test_shared_counter_gives_only_a_share_when_its_other_service_has_demand() -> None:
    hist = [dep("A", m, 300) for m in (5, 15, 25)]
    shared = [CounterLoad("c1", ("A", "B"), True)]
    alone = estimate_wait_s(3, "A", hist, shared, {"A": 4}, NOW, HOUR)
    busy_b = estimate_wait_s(3, "A", hist, shared, {"A": 4, "B": 6}, NOW, HOUR)
    assert alone == 1050.0  # (3 + 0.5) * 300
    assert busy_b == 2100.0  # half the counter's time goes to B: twice as long, not the optimistic figure
    assert service_rate("A", 300, shared, {"A": 4, "B": 6}) == 1 / 600
