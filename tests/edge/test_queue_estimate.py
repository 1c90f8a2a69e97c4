"""Wait estimates from constructed histories: a number only when the history supports it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from civiq.edge.queue.estimate import CounterLoad, Departure, estimate_wait_s, mean_service_s

NOW = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
HOUR = 3600.0


def dep(service: str, minutes_ago: float, service_s: float, counter: str = "c1") -> Departure:
    return Departure(service, counter, NOW - timedelta(minutes=minutes_ago), service_s)


def test_unknown_only_without_any_history() -> None:
    loads = [CounterLoad("c1", ("A",), busy=True)]
    assert estimate_wait_s(3, "A", [], loads, {"A": 4}, NOW, HOUR) is None
    two = [dep("A", 1, 200), dep("A", 2, 200)]  # too few for the recent basis: the day's history (the same two)
    assert estimate_wait_s(3, "A", two, loads, {"A": 4}, NOW, HOUR) == 750.0  # (3 + 0.75) * 200
    other = [dep("B", m, 400) for m in (1, 2, 3)]  # nothing of A at all: the center's counter times
    assert estimate_wait_s(3, "A", other, loads, {"A": 4}, NOW, HOUR) == 1500.0


def test_before_opening_and_after_lunch_from_the_days_history() -> None:
    yesterday = [dep("A", 60 * 20 + m, 300) for m in range(0, 60, 10)]  # yesterday afternoon, 20 h ago
    closed = [CounterLoad("c1", ("A",), False, state="closed"), CounterLoad("c2", ("A",), False, state="closed")]
    # before opening: both counters will open; 4 ahead at 300 s on two counters (none idle yet: half a service)
    assert estimate_wait_s(4, "A", yesterday, closed, {"A": 4}, NOW, HOUR) == 712.5  # (4 + 0.75) * 300 / 2
    morning = [dep("A", 150 + m, 600) for m in range(0, 60, 10)]  # this morning, before a 2.5 h lunch
    open_ = [CounterLoad("c1", ("A",), True), CounterLoad("c2", ("A",), True)]
    assert mean_service_s(morning, "A", NOW, HOUR) is None  # nothing recent...
    assert estimate_wait_s(2, "A", yesterday + morning, open_, {"A": 2}, NOW, HOUR) == 825.0  # ...the morning's
    too_old = [dep("A", 60 * 40, 300)] * 5  # beyond the 36 h memory: no basis
    assert estimate_wait_s(2, "A", too_old, open_, {"A": 2}, NOW, HOUR) is None


def test_old_samples_and_other_services_do_not_count_in_the_recent_basis() -> None:
    hist = [dep("A", 61, 100), dep("A", 90, 100), dep("B", 1, 100), dep("B", 2, 100), dep("A", 5, 400)]
    assert mean_service_s(hist, "A", NOW, HOUR) is None
    hist += [dep("A", 6, 200), dep("A", 7, 300)]
    assert mean_service_s(hist, "A", NOW, HOUR) == 300.0


def test_no_counter_for_the_service_is_unknown_one_on_break_counts() -> None:
    hist = [dep("A", m, 120) for m in (1, 2, 3)]
    assert estimate_wait_s(2, "A", hist, [CounterLoad("c2", ("B",), busy=False)], {"A": 3}, NOW, HOUR) is None
    assert estimate_wait_s(2, "A", hist, [], {"A": 3}, NOW, HOUR) is None
    away = [CounterLoad("c1", ("A",), False, state="break"), CounterLoad("c2", ("B",), False)]
    assert estimate_wait_s(2, "A", hist, away, {"A": 3}, NOW, HOUR) == 330.0  # (2 + 0.75) * 120


def test_two_busy_dedicated_counters() -> None:
    hist = [dep("A", m, 300) for m in (5, 15, 25)]
    loads = [CounterLoad("c1", ("A",), True), CounterLoad("c2", ("A",), True)]
    # 2 counters at 300 s each: 4 ahead + 3/4 of a service in hand (a ticket in progress is, on average, a
    # longer one: the inspection paradox, (1 + cv²) / 2 of a counter time with the field's cv ≈ 0.7)
    assert estimate_wait_s(4, "A", hist, loads, {"A": 5}, NOW, HOUR) == 712.5


def test_idle_counter_and_nobody_ahead_means_now() -> None:
    hist = [dep("A", m, 300) for m in (5, 15, 25)]
    loads = [CounterLoad("c1", ("A",), False)]
    assert estimate_wait_s(0, "A", hist, loads, {"A": 1}, NOW, HOUR) == 0.0
    assert estimate_wait_s(2, "A", hist, loads, {"A": 3}, NOW, HOUR) == 600.0


def test_shared_counter_serves_the_older_tickets_of_its_other_services_first() -> None:
    hist = [dep("A", m, 300) for m in (5, 15, 25)] + [dep("B", m, 100) for m in (6, 16, 26)]
    shared = [CounterLoad("c1", ("A", "B"), True)]
    alone = estimate_wait_s(3, "A", hist, shared, {"A": 4}, NOW, HOUR)
    busy_b = estimate_wait_s(3, "A", hist, shared, {"A": 4, "B": 6}, NOW, HOUR)
    assert alone == 1125.0  # (3 + 0.75) * 300
    assert busy_b == 1725.0  # the six B tickets (100 s each) are older: called first, longest wait first
    # B also has a counter of its own: ours does about half of B's line
    two = [*shared, CounterLoad("c2", ("B",), True)]
    assert estimate_wait_s(3, "A", hist, two, {"A": 4, "B": 6}, NOW, HOUR) == 1425.0


def test_a_rule_in_force_counts() -> None:
    """A counter that takes A only under a rule ("A first once its oldest waits 20 min") helps A when A's
    oldest ticket has waited half that; the counter it helps is taken from its own service."""
    hist = [dep("A", m, 300) for m in (5, 15, 25)] + [dep("C", m, 300) for m in (6, 16, 26)]
    loads = [CounterLoad("c1", ("A",), True), CounterLoad("c5", ("C",), True, rules=(("A", 20.0),))]
    calm = estimate_wait_s(4, "A", hist, loads, {"A": 4, "C": 2}, NOW, HOUR, oldest_s={"A": 300.0})
    pressed = estimate_wait_s(4, "A", hist, loads, {"A": 4, "C": 2}, NOW, HOUR, oldest_s={"A": 900.0})
    assert calm == 1425.0  # c1 alone
    assert pressed == 1012.5  # c5 helps, after the two C tickets it has waiting: (4 + 2 + 0.75) * 300 / 2
    c_now = estimate_wait_s(1, "C", hist, loads, {"A": 4, "C": 2}, NOW, HOUR, oldest_s={"A": 900.0})
    assert c_now == 1125.0  # c5 splits: (1 C + 4 A shared with c1 -> 2) + 0.75, one counter
