"""LiveState applies priority tickets, out-of-order calls, holds and call backs (the contract's new events and
snapshot fields), keeps the recent list and the edge's command answers, and survives a restart with them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from civiq.contract import CmdResult, Event, QueueSnapshot, Status
from civiq.gateway.state import LiveState

T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
C, N = "hcm-q1", "pi-1"


def ev(seq: int, type_: str, minutes: float = 0, **data: object) -> Event:
    return Event(seq=seq, ts=T0 + timedelta(minutes=minutes), type=type_, data=data)


def test_priority_hold_and_out_of_order_events_and_snapshot_fields() -> None:
    s = LiveState()
    s.apply_status(C, N, Status(online=True, bdseq=1, ts=T0, priority_classes={
        "elderly": {"name_vi": "Người cao tuổi", "name_en": "Elderly"}}), T0)
    s.apply_queue(C, N, QueueSnapshot(ts=T0, day="2026-01-05", services={
        "A": {"waiting": 4, "priority_waiting": 2, "priority_by_class": {"elderly": 2}, "held": 1}},
        counters={"c1": {"state": "open", "ticket": "A003", "priority": "elderly", "held": ["A001"]}}), T0)
    events = [
        ev(1, "ticket.issued", 0, ticket="A001", service="A", number=1, day="2026-01-05"),  # normal: not listed
        ev(2, "ticket.issued", 1, ticket="A002", service="A", number=2, priority="elderly", by="dispenser"),
        ev(3, "ticket.called", 2, ticket="A001", service="A", counter="c1", wait_s=120, recalls=0),
        ev(4, "ticket.held", 3, ticket="A001", service="A", counter="c1", by="keypad:k1"),
        ev(5, "ticket.called", 4, ticket="A003", service="A", counter="c1", out_of_order=True, by="gateway:ab12",
           priority="elderly"),
        ev(6, "ticket.called", 5, ticket="A001", service="A", counter="c2", from_hold=True, held_at="c1", by="api"),
        ev(7, "ticket.completed", 6, ticket="A001", service="A", counter="c2", service_s=60),  # not listed
    ]
    for e in events:
        s.apply_event(C, N, e, T0)
    s.apply_event(C, N, events[4], T0)  # a replayed duplicate is listed once
    c = s.center(C)
    assert c is not None
    assert c["services"]["A"]["priority_waiting"] == 2 and c["services"]["A"]["held"] == 1
    assert c["services"]["A"]["priority_by_class"] == {"elderly": 2}
    assert c["counters"]["c1"]["priority"] == "elderly" and c["counters"]["c1"]["held"] == ["A001"]
    assert c["priority_classes"] == {"elderly": {"name_vi": "Người cao tuổi", "name_en": "Elderly"}}
    recent = c["recent"]
    assert [(x["seq"], x["type"]) for x in recent] == [(6, "ticket.called"), (5, "ticket.called"),
                                                       (4, "ticket.held"), (3, "ticket.called"), (2, "ticket.issued")]
    assert recent[0]["from_hold"] is True and recent[0]["held_at"] == "c1" and recent[0]["counter"] == "c2"
    assert recent[1]["out_of_order"] is True and recent[1]["by"] == "gateway:ab12" and recent[1]["priority"] == "elderly"
    assert "out_of_order" not in recent[3] and "priority" not in recent[3]
    # the edge's answer to a command, kept for the page that sent it
    s.apply_cmd_result(C, N, CmdResult(id="ab12", cmd="counter", ok=False,
                                       error="recall of A003 refused: called 3 s ago, wait 7 s more"), T0)
    assert s.cmd_result(C, "ab12")["error"].startswith("recall of A003 refused")
    assert s.cmd_result("other-center", "ab12") is None and s.cmd_result(C, "nope") is None
    again = LiveState.from_json(s.to_json())
    assert again.center(C)["recent"] == recent and again.center(C)["priority_classes"] == c["priority_classes"]


def test_an_older_edge_without_the_new_fields_reads_as_none() -> None:
    s = LiveState()
    s.apply_queue(C, N, QueueSnapshot.model_validate({"ts": T0.isoformat(), "day": "2026-01-05",
                                                      "services": {"A": {"waiting": 3}},
                                                      "counters": {"c1": {"state": "open", "ticket": "A001"}}}), T0)
    c = s.center(C)
    assert c["services"]["A"]["priority_waiting"] == 0 and c["services"]["A"]["held"] == 0
    assert c["counters"]["c1"]["held"] == [] and c["counters"]["c1"]["priority"] is None and c["recent"] == []
    # a state saved by an older gateway (no recent list) loads
    old = s.to_json().replace(', "recent": {}', "").replace(', "priority_names": {}', "")
    assert '"recent"' not in old
    assert LiveState.from_json(old).center(C)["recent"] == []


def test_contract_round_trip_of_the_new_command_and_event() -> None:
    from civiq.contract import ContractError, CounterCmd, EventType, parse_payload

    cmd = CounterCmd(id="x1", counter="c1", action="call", ticket="B012")
    assert parse_payload(CounterCmd, cmd.to_json()) == cmd
    for action in ("hold", "call_held"):
        assert parse_payload(CounterCmd, f'{{"id": "x", "counter": "c1", "action": "{action}"}}').ticket is None
    try:
        parse_payload(CounterCmd, '{"id": "x", "counter": "c1", "action": "jump"}')
    except ContractError as e:
        assert "action" in str(e)
    else:
        raise AssertionError("an unknown action must be refused")
    held = ev(9, "ticket.held", 0, ticket="A001", service="A", counter="c1", by="api")
    assert parse_payload(Event, held.to_json()).type is EventType.ticket_held


def test_daily_summary_counts_priority_tickets_their_wait_and_out_of_order_actions(tmp_path) -> None:  # noqa: ANN001
    from civiq.gateway.store.series import SeriesStore

    store = SeriesStore(tmp_path / "series.db", retention_days=30)
    try:
        evs = [
            ev(1, "ticket.issued", 0, ticket="A001", service="A"),
            ev(2, "ticket.issued", 1, ticket="A002", service="A", priority="elderly", by="dispenser"),
            ev(3, "ticket.called", 2, ticket="A002", service="A", counter="c1", wait_s=60, priority="elderly"),
            ev(4, "ticket.called", 9, ticket="A001", service="A", counter="c2", wait_s=540, out_of_order=True,
               by="api"),
            ev(5, "ticket.held", 10, ticket="A001", service="A", counter="c2", by="api"),
            ev(6, "ticket.called", 12, ticket="A001", service="A", counter="c2", wait_s=None, from_hold=True),
        ]
        store.add_events([(C, N, e) for e in evs], T0)
        s = store.daily_summary(C, "2026-01-05")
        assert (s["priority_issued"], s["out_of_order"], s["held"]) == (1, 1, 1)
        assert s["avg_wait_priority_s"] == 60 and s["avg_wait_s"] == 300  # the call back's null wait is not averaged
    finally:
        store.close()
