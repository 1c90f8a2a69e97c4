"""Next-ticket choice: pinned first, then rules in order, then the longest wait among the profile's services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from civiq.contract import PriorityRule, WorkProfile
from civiq.edge.queue.profiles import WaitingTicket, choose_next, counters_serving

NOW = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def w(key: str, minutes_ago: float, seq: int, pinned: str | None = None) -> WaitingTicket:
    return WaitingTicket(key, key[0], NOW - timedelta(minutes=minutes_ago), seq, pinned)


def test_longest_waiting_among_profile_services_not_first_service_with_tickets() -> None:
    line = [w("A005", 3, 10), w("B002", 12, 4), w("C001", 60, 1)]
    # profile order says A first, but B's ticket has waited longer; C is not this counter's service
    assert choose_next("c1", WorkProfile(services=["A", "B"]), line, NOW).key == "B002"


def test_equal_waits_go_in_profile_order_then_issue_order() -> None:
    line = [w("A001", 5, 2), w("B001", 5, 1)]
    assert choose_next("c1", WorkProfile(services=["A", "B"]), line, NOW).key == "A001"
    assert choose_next("c1", WorkProfile(services=["B", "A"]), line, NOW).key == "B001"
    same = [w("A002", 5, 7), w("A001", 5, 3)]
    assert choose_next("c1", WorkProfile(services=["A"]), same, NOW).key == "A001"


def test_rule_triggers_only_past_its_threshold() -> None:
    prof = WorkProfile(services=["A"], rules=[PriorityRule(service="B", over_minutes=20)])
    line = [w("A001", 30, 1), w("B001", 19, 2)]
    assert choose_next("c1", prof, line, NOW).key == "A001"  # B under threshold, and not in services
    line = [w("A001", 30, 1), w("B001", 21, 2)]
    assert choose_next("c1", prof, line, NOW).key == "B001"  # rule beats the older A ticket


def test_rules_apply_in_order_written() -> None:
    prof = WorkProfile(services=["A"], rules=[PriorityRule(service="C", over_minutes=10),
                                              PriorityRule(service="B", over_minutes=10)])
    line = [w("B001", 40, 1), w("C001", 15, 2), w("A001", 50, 3)]
    assert choose_next("c1", prof, line, NOW).key == "C001"


def test_pinned_tickets_first_and_only_for_their_counter() -> None:
    line = [w("A001", 50, 1), w("B007", 2, 9, pinned="c2")]
    prof = WorkProfile(services=["A"], rules=[PriorityRule(service="A", over_minutes=1)])
    assert choose_next("c2", prof, line, NOW).key == "B007"  # even though B is not in c2's profile
    assert choose_next("c1", prof, line, NOW).key == "A001"
    assert choose_next("c1", WorkProfile(services=["B"]), line, NOW) is None  # pinned elsewhere


def test_nothing_waiting() -> None:
    assert choose_next("c1", WorkProfile(services=["A"]), [], NOW) is None


def test_counters_serving_ignores_rules() -> None:
    profiles = {"c1": WorkProfile(services=["A", "B"]),
                "c2": WorkProfile(services=["B"], rules=[PriorityRule(service="A", over_minutes=5)])}
    assert counters_serving("A", profiles) == ["c1"]
    assert counters_serving("B", profiles) == ["c1", "c2"]
