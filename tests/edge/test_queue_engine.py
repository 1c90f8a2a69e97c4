"""The queue engine on real SQLite files with a fake clock: what a citizen and a counter would see."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from civiq.clock import FakeClock
from civiq.contract import ClockQuality, Event, EventType, Policy, PriorityRule, WorkProfile
from civiq.edge.queue import EdgeStore, QueueEngine, QueueError, ServiceDef, TicketStatus
from civiq.edge.queue.profiles import PriorityOrder

SERVICES = {
    "A": ServiceDef("A", "Đất đai", "Land"),
    "B": ServiceDef("B", "Hộ tịch", "Civil status"),
    "C": ServiceDef("C", "Kinh doanh", "Business"),
}
COUNTERS = {
    "c1": WorkProfile(services=["A", "B"]),
    "c2": WorkProfile(services=["B"]),
    "c3": WorkProfile(services=["A"], rules=[PriorityRule(service="C", over_minutes=20)]),
}


def make(tmp_path: Path, clock: FakeClock, counters: dict | None = None, **kw: object) -> QueueEngine:
    return QueueEngine(EdgeStore(tmp_path / "queue.db"), clock, SERVICES, counters or COUNTERS, **kw)


def events(eng: QueueEngine, type_: EventType | None = None) -> list[Event]:
    return [e for e in eng.store.events() if type_ is None or e.type == type_]


# --------------------------------------------------------------------------------------------- numbering
def test_labels_are_prefix_and_daily_number_per_service(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    labels = [eng.issue(s).label for s in "AABAC"]
    assert labels == ["A001", "A002", "B001", "A003", "C001"]
    t = eng.ticket("A003")
    assert t is not None and t.status is TicketStatus.waiting and t.ahead == 2 and t.day == "2026-01-05"
    issued = events(eng, EventType.ticket_issued)
    assert [e.seq for e in issued] == [1, 2, 3, 4, 5]
    assert issued[3].data == {"ticket": "A003", "service": "A", "number": 3, "day": "2026-01-05",
                              "ahead": 2, "eta_s": None}


def test_numbers_restart_at_local_midnight_and_old_waiting_tickets_are_closed(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 1, 5, 16, 59, 30, tzinfo=UTC))  # 23:59:30 in Ho Chi Minh City
    eng = make(tmp_path, clock)
    assert [eng.issue("A").label for _ in range(3)] == ["A001", "A002", "A003"]
    eng.call_next("c3")  # A001 in hand at midnight
    clock.advance(30)  # 17:00:00 UTC = 00:00 local, next day
    t = eng.issue("A")
    assert (t.label, t.day) == ("A001", "2026-01-06")
    # yesterday's A002/A003 did not wait overnight: they were closed, so this A001 is first in line
    assert t.ahead == 0
    closed = events(eng, EventType.ticket_no_show)
    assert [(e.data["ticket"], e.data["day"], e.data["reason"]) for e in closed] == [
        ("A002", "2026-01-05", "day_end"), ("A003", "2026-01-05", "day_end")]
    snap = eng.snapshot()
    assert snap.day == "2026-01-06" and snap.services["A"].waiting == 1 and snap.services["A"].issued_today == 1
    # the ticket in hand from yesterday is still there and completes normally; labels never collide
    done = eng.complete("c3")
    assert (done.label, done.day) == ("A001", "2026-01-05")
    assert eng.call_next("c3").day == "2026-01-06"


def test_snapshot_day_changes_at_midnight_without_events(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 1, 5, 16, 0, tzinfo=UTC))
    eng = make(tmp_path, clock)
    eng.issue("B")
    assert eng.snapshot().services["B"].issued_today == 1
    clock.advance(3600)
    snap = eng.snapshot()
    assert snap.day == "2026-01-06" and snap.services["B"].issued_today == 0


# --------------------------------------------------------------------------------------------- calls
def test_call_next_completes_current_and_records_wait_and_service_times(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    eng.issue("A")
    clock.advance(120)
    eng.issue("A")
    clock.advance(60)
    first = eng.call_next("c1")
    assert (first.label, first.status, first.counter, first.wait_s) == ("A001", TicketStatus.called, "c1", 180.0)
    clock.advance(300)
    second = eng.call_next("c1")
    assert second.label == "A002" and second.wait_s == 360.0
    done = events(eng, EventType.ticket_completed)
    assert [(e.data["ticket"], e.data["counter"], e.data["service_s"]) for e in done] == [("A001", "c1", 300.0)]
    called = events(eng, EventType.ticket_called)
    assert [(e.data["ticket"], e.data["wait_s"]) for e in called] == [("A001", 180.0), ("A002", 360.0)]
    assert eng.ticket("A001").status is TicketStatus.completed
    assert eng.call_next("c1") is None  # nobody left: A002 completed, counter idle
    assert eng.counter("c1").ticket is None and eng.counter("c1").served_today == 2


def test_impossible_requests_raise_clear_errors(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    with pytest.raises(QueueError, match="unknown service 'Z'"):
        eng.issue("Z")
    with pytest.raises(QueueError, match="unknown counter 'c9'"):
        eng.call_next("c9")
    with pytest.raises(QueueError, match="no ticket in hand"):
        eng.complete("c1")
    with pytest.raises(QueueError, match="no ticket in hand"):
        eng.recall("c1")
    eng.close_counter("c1")
    eng.issue("A")
    with pytest.raises(QueueError, match="c1 is closed"):
        eng.call_next("c1")
    with pytest.raises(QueueError):
        eng.break_counter("c1")
    with pytest.raises(QueueError, match="unknown service"):
        QueueEngine(EdgeStore(tmp_path / "x.db"), clock, SERVICES, {"c1": WorkProfile(services=["Q"])})
    with pytest.raises(QueueError):
        eng.device_event("ticket.issued", {})
    assert eng.ticket("A001").status is TicketStatus.waiting  # the failed calls changed nothing
    assert [e.type for e in events(eng)] == [EventType.counter_closed, EventType.ticket_issued]


def test_concurrent_calls_from_eight_counters_never_share_a_ticket(tmp_path: Path, clock: FakeClock) -> None:
    counters = {f"k{i}": WorkProfile(services=["A", "B"]) for i in range(8)}
    eng = make(tmp_path, clock, counters)
    for i in range(60):
        eng.issue("AB"[i % 2])
    got: dict[str, list[str]] = {c: [] for c in counters}
    issuing_done = threading.Event()
    start = threading.Barrier(10)
    finished: list[str] = []
    lock = threading.Lock()

    def issuer(service: str) -> None:
        start.wait()
        for _ in range(70):
            eng.issue(service)
        with lock:
            finished.append(service)
            if len(finished) == 2:  # both issuers done: only then may an empty queue end a caller
                issuing_done.set()

    def caller(counter: str) -> None:
        start.wait()
        while True:
            t = eng.call_next(counter)
            if t is not None:
                got[counter].append(t.label)
            elif issuing_done.is_set() and not any(eng.waiting(s) for s in "AB"):
                return

    threads = [threading.Thread(target=issuer, args=(s,)) for s in "AB"]
    threads += [threading.Thread(target=caller, args=(c,)) for c in counters]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert not any(th.is_alive() for th in threads)
    labels = [lbl for lst in got.values() for lbl in lst]
    assert len(labels) == 200 and len(set(labels)) == 200
    issued = [e.data["ticket"] for e in events(eng, EventType.ticket_issued)]
    assert sorted(issued) == sorted(labels)
    assert sorted(issued) == [f"{s}{n:03d}" for s in "AB" for n in range(1, 101)]
    called = Counter(e.data["ticket"] for e in events(eng, EventType.ticket_called))
    assert max(called.values()) == 1
    assert [e.seq for e in events(eng)] == list(range(1, eng.last_seq + 1))


# --------------------------------------------------------------------------------------------- recall, transfer
def test_recall_then_no_show_after_the_limit(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock, max_recalls=2)
    eng.issue("A")
    eng.issue("A")
    eng.call_next("c1")
    r1, r2 = eng.recall("c1"), eng.recall("c1")
    assert (r1.recalls, r1.no_show, r2.recalls, r2.no_show) == (1, False, 2, False)
    clock.advance(90)
    r3 = eng.recall("c1")
    assert r3.no_show and r3.ticket.status is TicketStatus.no_show and r3.ticket.label == "A001"
    assert eng.counter("c1").ticket is None
    ns = events(eng, EventType.ticket_no_show)[-1]
    assert ns.data["reason"] == "recalls" and ns.data["service_s"] == 90.0 and ns.data["recalls"] == 2
    assert [e.data["recalls"] for e in events(eng, EventType.ticket_recalled)] == [1, 2]
    assert eng.call_next("c1").label == "A002"
    assert eng.no_show("c1").status is TicketStatus.no_show


def test_transfer_to_another_service_keeps_label_and_place(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    eng.issue("A")  # A001 at t0
    clock.advance(60)
    eng.issue("B")  # B001 at t0+60
    eng.call_next("c3")  # A001 to the land counter
    clock.advance(120)
    moved = eng.transfer("c3", to_service="B")
    assert (moved.label, moved.service, moved.status, moved.ahead) == ("A001", "B", TicketStatus.waiting, 0)
    tr = events(eng, EventType.ticket_transferred)[0]
    assert tr.data == {"ticket": "A001", "service": "A", "counter": "c3", "day": "2026-01-05",
                       "service_s": 120.0, "to_service": "B", "to_counter": None}
    assert [t.label for t in eng.waiting("B")] == ["A001", "B001"]  # original issue time: ahead of B001
    assert eng.snapshot().services["B"].oldest_wait_s == 180.0
    again = eng.call_next("c2")
    assert again.label == "A001" and again.wait_s == 0.0  # waited 0 s in its second line


def test_transfer_to_a_counter_pins_it(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    eng.issue("A")
    clock.advance(10)
    eng.issue("A")
    eng.call_next("c1")  # A001
    with pytest.raises(QueueError, match="needs a service or a counter"):
        eng.transfer("c1")
    with pytest.raises(QueueError, match="already at counter c1"):
        eng.transfer("c1", to_counter="c1")
    eng.transfer("c1", to_counter="c2")  # c2 does not serve A, but it is pinned there
    assert eng.call_next("c1").label == "A002"  # c1 may not take back the older, pinned A001
    assert eng.call_next("c3") is None
    assert eng.call_next("c2").label == "A001"


def test_closing_a_counter_unpins_its_transfers(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    eng.issue("A")
    eng.call_next("c1")
    eng.transfer("c1", to_counter="c2")
    eng.close_counter("c2")
    assert eng.ticket("A001").pinned_to is None
    assert eng.call_next("c3").label == "A001"


# --------------------------------------------------------------------------------------------- counters
def test_close_and_break_complete_the_ticket_in_hand_and_next_ends_a_break(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    for _ in range(3):
        eng.issue("A")
    eng.call_next("c1")
    view = eng.break_counter("c1")
    assert (view.state, view.ticket) == ("break", None)
    assert eng.ticket("A001").status is TicketStatus.completed
    snap = eng.snapshot()
    assert snap.counters["c1"].state == "break" and snap.counters["c1"].served_today == 1
    t = eng.call_next("c1")  # back from the break
    assert t.label == "A002" and eng.counter("c1").state == "open"
    assert [e.type for e in events(eng)][-2:] == [EventType.counter_opened, EventType.ticket_called]
    eng.close_counter("c1")
    assert eng.ticket("A002").status is TicketStatus.completed
    assert eng.close_counter("c1").state == "closed"  # idempotent: no second event
    assert len(events(eng, EventType.counter_closed)) == 1
    eng.open_counter("c1")
    assert eng.call_next("c1").label == "A003"


# --------------------------------------------------------------------------------------------- profiles, policy
def test_profile_rule_takes_an_overdue_service_first(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    eng.issue("C")
    clock.advance(60)
    eng.issue("A")
    eng.issue("A")
    assert eng.call_next("c3").label == "A001"  # C waited 1 min: rule not triggered, C not in services
    clock.advance(20 * 60)
    assert eng.call_next("c3").label == "C001"  # C001 has now waited 21 min: the rule takes it
    assert eng.call_next("c1").label == "A002"


def test_longest_wait_across_the_profile(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    eng.issue("B")
    clock.advance(30)
    eng.issue("A")
    assert eng.call_next("c1").label == "B001"  # c1 lists A first, but B001 has waited longer


def test_policy_replaces_profiles_ignores_old_versions_and_survives_restart(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    eng.issue("A")
    assert eng.call_next("c2") is None  # c2 serves B only
    pol = Policy(version=3, counters={"c2": WorkProfile(services=["A", "B"]), "zz": WorkProfile(services=["A"])},
                 reason="land peak")
    assert eng.apply_policy(pol) is True
    assert eng.apply_policy(Policy(version=3, counters={"c2": WorkProfile(services=["C"])})) is False
    assert eng.apply_policy(Policy(version=2, counters={"c2": WorkProfile(services=["C"])})) is False
    with pytest.raises(QueueError, match="unknown service"):
        eng.apply_policy(Policy(version=4, counters={"c1": WorkProfile(services=["Q"])}))
    applied = events(eng, EventType.policy_applied)
    assert len(applied) == 1 and applied[0].data["version"] == 3 and applied[0].data["ignored_counters"] == ["zz"]
    assert eng.snapshot().counters["c2"].services == ["A", "B"]
    assert eng.call_next("c2").label == "A001"
    eng.store.close()
    again = make(tmp_path, clock)
    assert again.policy_version == 3 and again.profile("c2").services == ["A", "B"]
    assert again.profile("c1").services == ["A", "B"]  # not named: configured profile
    assert again.apply_policy(Policy(version=3)) is False


# --------------------------------------------------------------------------------------------- estimate
def test_eta_unknown_without_any_history_then_honest_from_service_times(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock, {"c1": WorkProfile(services=["A"]), "c2": WorkProfile(services=["A"])})
    for _ in range(6):
        eng.issue("A")
    assert eng.snapshot().services["A"].eta_s is None
    assert eng.ticket("A006").eta_s is None
    for _ in range(3):  # three services of 240 s at c1
        eng.call_next("c1")
        clock.advance(240)
    eng.call_next("c1")  # completes A003, calls A004
    eng.call_next("c2")  # A005
    t = eng.issue("A")  # A007: A006 ahead, both counters busy, 240 s each -> one every 120 s
    assert t.ahead == 1 and t.eta_s == 210.0  # (1 + 0.75 left in hand) * 240 / 2
    assert eng.snapshot().services["A"].eta_s == 330.0  # a newcomer would have 2 ahead
    clock.advance(240)
    eng.close_counter("c2")  # completes A005 after 240 s
    assert eng.ticket("A007").eta_s == 420.0  # one counter left: the estimate gets longer, honestly
    clock.advance(2 * 3600)  # no departure in the last hour (lunch): the day's history still says 240 s
    assert eng.ticket("A007").eta_s == 420.0


# --------------------------------------------------------------------------------------------- clock
def test_clock_jump_back_never_reuses_numbers(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    eng.issue("A")
    eng.issue("A")
    clock.set(datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC))  # Pi rebooted without RTC
    t = eng.issue("A")
    assert (t.label, t.day) == ("A003", "2026-01-05")
    evs = events(eng)
    assert evs[-2].type == EventType.clock_jump and evs[-2].data["reason"] == "implausible"
    assert evs[-1].clock == ClockQuality.suspect
    clock.set(datetime(2026, 1, 4, 1, 0, tzinfo=UTC))  # plausible, but a day behind
    t = eng.issue("A")
    assert (t.label, t.day) == ("A004", "2026-01-05")
    assert events(eng)[-1].clock == ClockQuality.suspect
    assert len(events(eng, EventType.clock_jump)) == 1  # one incident, one jump event
    eng.call_next("c3")
    assert events(eng)[-1].data["wait_s"] == 0.0  # never negative
    clock.set(datetime(2026, 1, 5, 2, 0, tzinfo=UTC))  # NTP fixed it
    t = eng.issue("A")
    assert t.label == "A005" and events(eng)[-1].clock == ClockQuality.unsynced
    eng.store.close()
    again = make(tmp_path, clock)  # a restart with the clock back in 1970 keeps the day too
    clock.set(datetime(1970, 1, 1, tzinfo=UTC))
    assert again.issue("A").label == "A006" and again.day == "2026-01-05"
    keys = [(e.data["day"], e.data["ticket"]) for e in events(again, EventType.ticket_issued)]
    assert len(keys) == len(set(keys)) == 6


def test_clock_quality_hook_is_used_when_the_clock_is_plausible(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock, clock_quality=lambda: ClockQuality.synced)
    eng.issue("A")
    assert events(eng)[-1].clock == ClockQuality.synced


# --------------------------------------------------------------------------------------------- restart
def test_restart_rebuilds_the_exact_same_snapshot(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    for s in "AABBCAAB":
        eng.issue(s)
        clock.advance(37)
    eng.call_next("c1")
    clock.advance(200)
    eng.call_next("c1")
    clock.advance(250)
    eng.call_next("c1")
    clock.advance(220)
    eng.call_next("c1")
    eng.call_next("c3")
    clock.advance(100)
    eng.complete("c3")  # a third A service time: the estimate has enough history
    eng.call_next("c2")
    eng.recall("c2")
    eng.transfer("c2", to_counter="c3")
    eng.call_next("c2")
    eng.break_counter("c3")
    eng.apply_policy(Policy(version=1, counters={"c3": WorkProfile(services=["A", "C"])}))
    eng.device_event("device.fault", {"device": "p1", "kind": "printer", "state": "failed", "detail": "paper out"})
    clock.advance(45)
    before = eng.snapshot()
    assert before.services["A"].eta_s is not None  # the estimate part is exercised too
    eng.store.close()
    after = make(tmp_path, clock).snapshot()
    assert after == before
    assert after.last_seq == len(events(make(tmp_path, clock)))


# --------------------------------------------------------------------------------------------- subscribers
def test_subscribers_get_committed_events_in_order_outside_the_lock(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    seen: list[Event] = []
    lock_free: list[bool] = []

    def probe(ev: Event) -> None:
        # another thread must be able to take the engine lock while we run
        t = threading.Thread(target=lambda: lock_free.append(eng._lock.acquire(timeout=2) and not eng._lock.release()))
        t.start()
        t.join()
        seen.append(ev)

    def broken(ev: Event) -> None:
        raise RuntimeError("display unplugged")

    eng.subscribe(broken)
    unsubscribe = eng.subscribe(probe)
    eng.issue("A")
    eng.call_next("c1")
    eng.call_next("c1")  # completed + nothing called: one event
    assert [(e.seq, e.type) for e in seen] == [(1, EventType.ticket_issued), (2, EventType.ticket_called),
                                               (3, EventType.ticket_completed)]
    assert lock_free == [True, True, True]
    assert seen == events(eng)  # what subscribers got is what the log holds
    unsubscribe()
    eng.issue("B")
    assert len(seen) == 3


def test_device_events_share_the_log(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    eng.issue("A")
    ev = eng.device_event(EventType.device_fault, {"device": "p1", "kind": "printer", "state": "failed",
                                                   "detail": "hết giấy"})
    assert ev.seq == 2 and events(eng)[-1].data["detail"] == "hết giấy"
    with pytest.raises(QueueError, match="not JSON"):
        eng.device_event("device.recovered", {"device": object()})
    assert eng.snapshot().last_seq == 2


# --------------------------------------------------------------------------------------------- checkpoint
def full_state(eng: QueueEngine) -> dict:
    """Everything the fold holds, plus the orders a citizen would see (line, counters)."""
    from civiq.edge.queue.engine import _STATE

    state = {k: getattr(eng, k) for k in _STATE}
    return {**state, "line_order": list(eng._line), "counter_order": list(eng._counters),  # noqa: SLF001
            "held_order": list(eng._held), "snapshot": eng.snapshot(),  # noqa: SLF001
            "waiting": [eng.waiting(s) for s in SERVICES], "held": eng.held()}


# priority tickets, holds and the recall cooldown are part of the random operations (tests/edge/test_queue_priority.py
# covers them one by one)
PRIO = {"priority": PriorityOrder("first", max_in_row=2), "priority_classes": ("elderly", "disabled"),
        "recall_cooldown_s": 20}


def busy_days(eng: QueueEngine, clock: FakeClock, rng, steps: int) -> None:  # noqa: ANN001
    """``steps`` random operations, as counters and citizens would do them, with time (and nights) passing."""
    counter = lambda: rng.choice(list(COUNTERS))  # noqa: E731
    actions = [  # (weight, what)
        (35, lambda: eng.issue(rng.choice("ABC"))),
        (5, lambda: eng.issue(rng.choice("ABC"), priority=rng.choice(["elderly", "disabled"]), by="dispenser")),
        (2, lambda: eng.call_ticket(counter(), rng.choice([t.label for s in "ABC" for t in eng.waiting(s)] or ["A001"]),
                                    by="keypad:k1")),
        (4, lambda: eng.hold(counter(), by="api")),
        (8, lambda: eng.call_held(counter(), rng.choice([t.label for t in eng.held()] or [None]), by="gateway:x1")),
        (25, lambda: eng.call_next(counter())),
        (8, lambda: eng.complete(counter())),
        (4, lambda: eng.recall(counter())),
        (3, lambda: eng.no_show(counter())),
        (3, lambda: eng.transfer(counter(), to_service=rng.choice("ABC"))),
        (2, lambda: eng.transfer(counter(), to_counter=counter())),
        (2, lambda: eng.break_counter(counter())),
        (2, lambda: eng.close_counter(counter())),
        (3, lambda: eng.open_counter(counter())),
        (1, lambda: eng.apply_policy(Policy(version=eng.policy_version + 1,
                                            counters={"c2": WorkProfile(services=rng.sample("ABC", 2))}))),
        (1, lambda: eng.device_event("device.fault", {"device": "p1", "kind": "printer", "state": "failed"})),
        (1, lambda: clock.advance(-3600)),  # an NTP correction backwards
        (10, lambda: None),
    ]
    for _ in range(steps):
        [act] = rng.choices([a for _, a in actions], weights=[w for w, _ in actions])
        try:
            act()
        except QueueError:
            pass  # nothing to call, a closed counter...: refused, as at a real counter
        clock.advance(rng.choice([5, 30, 90, 400, 3 * 3600]))  # now and then a night passes


def test_checkpoint_plus_tail_rebuilds_exactly_what_the_whole_log_does(tmp_path: Path) -> None:
    import random
    import shutil

    rng = random.Random(7)
    clock = FakeClock(datetime(2026, 1, 5, 1, 0, tzinfo=UTC))
    eng = make(tmp_path, clock, **PRIO)
    for round_ in range(12):
        busy_days(eng, clock, rng, rng.randint(5, 60))
        if round_ % 3 != 2:
            eng.checkpoint()  # sometimes the tail after it is long, sometimes empty
        busy_days(eng, clock, rng, rng.randint(0, 40))
        live = full_state(eng)
        eng.store.close()
        restarted = make(tmp_path, clock, **PRIO)  # checkpoint + tail
        assert restarted.restored_from is not None and restarted.replayed < restarted.last_seq
        copy = tmp_path / f"full-{round_}"
        copy.mkdir()
        shutil.copy(tmp_path / "queue.db", copy / "queue.db")
        whole = QueueEngine(EdgeStore(copy / "queue.db"), clock, SERVICES, COUNTERS)
        whole.store.set_meta("engine.checkpoint", "")
        whole.store.close()
        whole = QueueEngine(EdgeStore(copy / "queue.db"), clock, SERVICES, COUNTERS, **PRIO)  # the whole log
        assert whole.restored_from is None and whole.replayed == whole.last_seq
        assert full_state(restarted) == live
        assert full_state(whole) == live
        whole.store.close()
        eng = restarted
    assert eng.last_seq > 300 and len({e.data["day"] for e in events(eng, EventType.ticket_issued)}) >= 3
    calls = events(eng, EventType.ticket_called)
    assert any(e.data.get("priority") for e in calls) and any(e.data.get("out_of_order") for e in calls)
    assert any(e.data.get("from_hold") for e in calls) and events(eng, EventType.ticket_held)


def test_a_checkpoint_that_does_not_fit_is_ignored_and_the_log_replayed(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    for s in "AABC":
        eng.issue(s)
    eng.call_next("c1")
    eng.checkpoint()
    before = eng.snapshot()
    eng.store.close()
    # another estimate window: the fold would differ, so the whole log is replayed
    other = make(tmp_path, clock, estimate_window_min=30)
    assert other.restored_from is None and other.snapshot() == before
    other.store.close()
    # another set of counters (one added): replayed too, the new counter is there, open
    more = make(tmp_path, clock, counters={**COUNTERS, "c4": WorkProfile(services=["C"])})
    assert more.restored_from is None and more.counter("c4").state.value == "open"
    more.store.set_meta("engine.checkpoint", '{"fingerprint": "garbage"')  # torn or damaged: not JSON
    more.store.close()
    again = make(tmp_path, clock)
    assert again.restored_from is None and again.snapshot() == before
    again.checkpoint()
    again.store.close()
    fast = make(tmp_path, clock)
    assert fast.restored_from == fast.last_seq and fast.replayed == 0 and fast.snapshot() == before
