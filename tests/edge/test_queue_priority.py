"""Priority tickets and the clerk's out-of-order operations on the real engine (SQLite file, fake clock)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from civiq.clock import FakeClock
from civiq.contract import EventType, QueueSnapshot, WorkProfile
from civiq.edge.queue import EdgeStore, QueueEngine, QueueError, ServiceDef, TicketStatus
from civiq.edge.queue.profiles import PriorityOrder

SERVICES = {"A": ServiceDef("A", "Đất đai", "Land"), "B": ServiceDef("B", "Hộ tịch", "Civil status")}
COUNTERS = {"c1": WorkProfile(services=["A", "B"]), "c2": WorkProfile(services=["A"])}
CLASSES = ("elderly", "disabled", "pregnant", "merit")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 5, 1, 0, tzinfo=UTC))  # 08:00 in Ho Chi Minh City


def make(tmp_path: Path, clock: FakeClock, order: PriorityOrder | None = None, **kw: object) -> QueueEngine:
    return QueueEngine(EdgeStore(tmp_path / "q.db"), clock, SERVICES, COUNTERS, priority=order or PriorityOrder(),
                       priority_classes=CLASSES, **kw)


def events(eng: QueueEngine, t: EventType) -> list:
    return [e for e in eng.store.events() if e.type == t]


def issue(eng: QueueEngine, clock: FakeClock, *specs: str) -> list[str]:
    """``"A"`` a normal A ticket, ``"A*"`` an elderly one; one minute apart."""
    out = []
    for spec in specs:
        out.append(eng.issue(spec[0], priority="elderly" if spec.endswith("*") else None).label)
        clock.advance(60)
    return out


def test_rule_first_puts_priority_ahead_of_every_normal_ticket_oldest_first(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    issue(eng, clock, "A", "B", "A", "B*", "A*")
    t = eng.ticket("A002")
    assert t is not None and t.ahead == 2 and t.priority is None  # A001 and the elderly A003 are before it
    late = eng.issue("A", priority="pregnant")
    assert late.ahead == 1 and late.priority == "pregnant"  # a new priority ticket passes every normal one
    assert [x.label for x in eng.waiting("A")] == ["A003", "A004", "A001", "A002"]
    # c1 serves A and B: the oldest priority ticket (B002) first, whatever the service, then A003, A004
    assert [eng.call_next("c1").label for _ in range(5)] == ["B002", "A003", "A004", "A001", "B001"]
    calls = events(eng, EventType.ticket_called)
    assert [c.data.get("priority") for c in calls] == ["elderly", "elderly", "pregnant", None, None]
    issued = events(eng, EventType.ticket_issued)
    assert [e.data.get("priority") for e in issued] == [None, None, None, "elderly", "elderly", "pregnant"]


def test_max_in_row_lets_one_normal_ticket_through_after_k_priority_calls(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock, PriorityOrder("first", max_in_row=2))
    issue(eng, clock, "A", "A", "A*", "A*", "A*", "A*", "A*")
    order = [eng.call_next("c2").label for _ in range(7)]
    assert order == ["A003", "A004", "A001", "A005", "A006", "A002", "A007"]
    # the run is per counter and part of the fold: a restart decides the same way
    eng2 = make(tmp_path, clock, PriorityOrder("first", max_in_row=2))
    assert eng2._counters["c2"].priority_run == 1  # noqa: SLF001
    # with only priority tickets left, the limit does not stop the counter
    issue(eng2, clock, "A*", "A*", "A*")
    assert [eng2.call_next("c2").label for _ in range(3)] == ["A008", "A009", "A010"]


def test_rule_boost_credits_minutes_not_the_head_of_the_line(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock, PriorityOrder("boost", boost_minutes=15))
    eng.issue("A")  # 08:00
    clock.advance(10 * 60)
    eng.issue("A")  # 08:10
    clock.advance(10 * 60)
    p = eng.issue("A", priority="merit")  # 08:20, counts as 08:05
    assert p.ahead == 1
    assert [eng.call_next("c2").label for _ in range(3)] == ["A001", "A003", "A002"]


def test_unknown_or_disabled_class_is_refused_without_an_event(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    with pytest.raises(QueueError, match="unknown or disabled priority class 'vip'"):
        eng.issue("A", priority="vip")
    assert eng.last_seq == 0


def test_out_of_order_call_is_audited_and_atomic_between_two_counters(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    issue(eng, clock, "A", "A", "A", "A")
    eng.call_next("c1")  # A001 in hand at c1
    t = eng.call_ticket("c1", "a003", by="keypad:k1")  # c1 completes A001 and takes A003 out of order
    assert t.label == "A003" and t.status is TicketStatus.called and t.counter == "c1"
    call = events(eng, EventType.ticket_called)[-1]
    assert call.data["out_of_order"] is True and call.data["by"] == "keypad:k1" and call.data["ticket"] == "A003"
    assert events(eng, EventType.ticket_completed)[-1].data["ticket"] == "A001"
    assert [x.label for x in eng.waiting("A")] == ["A002", "A004"]
    # two counters ask for the same ticket at the same instant: exactly one gets it
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def call(counter: str) -> None:
        barrier.wait()
        try:
            results[counter] = eng.call_ticket(counter, "A004", by=f"api:{counter}").counter
        except QueueError as e:
            results[counter] = str(e)

    threads = [threading.Thread(target=call, args=(c,)) for c in ("c1", "c2")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(5)
    winners = [c for c, r in results.items() if r == c]
    assert len(winners) == 1
    loser = ({"c1", "c2"} - set(winners)).pop()
    assert "A004 is called" in str(results[loser])
    assert sum(1 for e in events(eng, EventType.ticket_called) if e.data["ticket"] == "A004") == 1
    with pytest.raises(QueueError, match="ticket A999 is unknown"):
        eng.call_ticket("c2", "A999", by="api")


def test_hold_then_call_back_at_another_counter(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    issue(eng, clock, "A*", "A", "B")
    eng.call_next("c1")  # A001 (elderly)
    held = eng.hold("c1", by="keypad:k1")
    assert held.status is TicketStatus.held and held.counter == "c1"
    assert eng.counter("c1").ticket is None
    ev = events(eng, EventType.ticket_held)[-1]
    assert ev.data == {"ticket": "A001", "service": "A", "counter": "c1", "day": "2026-01-05",
                       "service_s": 0.0, "by": "keypad:k1", "priority": "elderly"}
    snap = eng.snapshot()
    assert snap.services["A"].held == 1 and snap.services["A"].waiting == 1 and snap.counters["c1"].held == ["A001"]
    assert eng.call_next("c1").label == "A002"  # held tickets are out of the line
    clock.advance(300)
    with pytest.raises(QueueError, match="counter c2 has no held ticket"):
        eng.call_held("c2", by="api")
    back = eng.call_held("c2", "A001", by="gateway:abc")
    assert back.counter == "c2" and back.status is TicketStatus.called
    call = events(eng, EventType.ticket_called)[-1]
    assert call.data["from_hold"] is True and call.data["held_s"] == 300.0 and call.data["held_at"] == "c1"
    assert call.data["wait_s"] is None and call.data["by"] == "gateway:abc" and call.data["priority"] == "elderly"
    assert eng.snapshot().services["A"].held == 0 and eng.snapshot().counters["c2"].priority == "elderly"
    # call_ticket on a held ticket is a call back too
    eng.hold("c2", by="api")
    assert eng.call_ticket("c1", "A001", by="api").counter == "c1"
    assert events(eng, EventType.ticket_called)[-1].data.get("from_hold") is True


def test_a_ticket_still_held_at_day_end_becomes_a_no_show(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    issue(eng, clock, "A")
    eng.call_next("c1")
    eng.hold("c1", by="api")
    clock.advance(24 * 3600)
    assert eng.roll_day() == 1
    ns = events(eng, EventType.ticket_no_show)[-1]
    assert ns.data["ticket"] == "A001" and ns.data["reason"] == "day_end"
    assert eng.held() == []


def test_recall_cooldown_refuses_with_the_time_left_then_the_limit_ends_in_no_show(tmp_path: Path,
                                                                                   clock: FakeClock) -> None:
    eng = make(tmp_path, clock, max_recalls=2, recall_cooldown_s=15)
    issue(eng, clock, "A")
    eng.call_next("c2")
    clock.advance(5)
    with pytest.raises(QueueError, match=r"recall of A001 refused: called 5 s ago, wait 10 s more"):
        eng.recall("c2")
    assert events(eng, EventType.ticket_recalled) == []
    clock.advance(10)
    assert eng.recall("c2", by="keypad:k2").recalls == 1
    assert events(eng, EventType.ticket_recalled)[-1].data["by"] == "keypad:k2"
    with pytest.raises(QueueError, match="wait 15 s more"):
        eng.recall("c2")  # the cooldown counts from the last recall too
    clock.advance(15)
    eng.recall("c2")
    clock.advance(15)
    r = eng.recall("c2")
    assert r.no_show and events(eng, EventType.ticket_no_show)[-1].data["reason"] == "recalls"


def test_snapshot_counts_priority_by_class_and_round_trips_the_contract(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    eng.issue("A", priority="elderly")
    eng.issue("A", priority="disabled")
    eng.issue("A", priority="elderly")
    eng.issue("B")
    snap = eng.snapshot()
    assert snap.services["A"].priority_waiting == 3 and snap.services["B"].priority_waiting == 0
    assert snap.services["A"].priority_by_class == {"disabled": 1, "elderly": 2}
    again = QueueSnapshot.model_validate_json(snap.to_json())
    assert again == snap
    old = QueueSnapshot.model_validate_json(b'{"ts": "2026-01-05T01:00:00Z", "day": "2026-01-05", '
                                            b'"services": {"A": {"waiting": 2}}, "counters": {"c1": {"state": "open"}}}')
    assert old.services["A"].priority_waiting == 0 and old.counters["c1"].held == []
