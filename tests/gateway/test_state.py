"""LiveState: birth/death with bdseq, heartbeat, stale gateway, read models, persistence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from civiq.contract import Event, Health, QueueSnapshot, Status
from civiq.gateway.state import Change, LiveState

T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
C, N = "hcm-q1", "pi-1"


def birth(bdseq: int, **kw: object) -> Status:
    return Status(online=True, bdseq=bdseq, ts=T0, version="0.1.0",
                  devices=[{"id": "printer-1", "kind": "printer"}, {"id": "led-1", "kind": "display"}], **kw)


def health(at: datetime, printer: str = "ok", pending: int = 0) -> Health:
    return Health(ts=at, host={"cpu_temp_c": 48.0},
                  devices=[{"id": "printer-1", "kind": "printer", "state": printer, "detail": "paper"},
                           {"id": "led-1", "kind": "display", "state": "ok"}],
                  outbox={"pending": pending})


def snapshot(at: datetime, day: str = "2026-01-05") -> QueueSnapshot:
    return QueueSnapshot(
        ts=at, day=day, last_seq=40,
        services={"a": {"waiting": 5, "oldest_wait_s": 600, "eta_s": 900, "served_today": 20, "issued_today": 25},
                  "b": {"waiting": 0, "oldest_wait_s": 0, "served_today": 3, "issued_today": 3}},
        counters={"1": {"state": "open", "ticket": "A020", "services": ["a"], "served_today": 15},
                  "2": {"state": "open", "services": ["a", "b"], "served_today": 8},
                  "3": {"state": "closed"}},
    )


@pytest.fixture
def state() -> LiveState:
    return LiveState()


def test_stale_will_after_new_birth_is_ignored(state: LiveState) -> None:
    assert state.apply_status(C, N, birth(7), T0)
    # the broker delivers the Last Will of connection 6 after the birth of connection 7
    assert state.apply_status(C, N, Status(online=False, bdseq=6), T0 + timedelta(seconds=1)) is False
    assert state.node(C, N)["status"] == "online"
    # the will of the current connection counts
    assert state.apply_status(C, N, Status(online=False, bdseq=7), T0 + timedelta(seconds=2))
    n = state.node(C, N)
    assert (n["status"], n["reason"], n["bdseq"]) == ("offline", "will", 7)
    # a clean stop says so
    state.apply_status(C, N, birth(8), T0 + timedelta(seconds=3))
    state.apply_status(C, N, Status(online=False, bdseq=8, clean=True), T0 + timedelta(seconds=4))
    assert state.node(C, N)["reason"] == "clean"


def test_heartbeat_timeout_and_recovery_by_traffic(state: LiveState) -> None:
    state.apply_status(C, N, birth(1), T0)
    state.apply_status(C, "pi-2", birth(1), T0)
    state.apply_health(C, "pi-2", health(T0 + timedelta(seconds=30)), T0 + timedelta(seconds=30))
    assert state.check_heartbeats(T0 + timedelta(seconds=44), 45) == []
    assert state.check_heartbeats(T0 + timedelta(seconds=46), 45) == [(C, N)]
    assert state.check_heartbeats(T0 + timedelta(seconds=47), 45) == []  # once per incident
    n = state.node(C, N)
    assert (n["status"], n["reason"]) == ("offline", "heartbeat")
    assert state.node(C, "pi-2")["status"] == "online"
    state.apply_health(C, N, health(T0 + timedelta(seconds=60)), T0 + timedelta(seconds=60))
    assert state.node(C, N)["status"] == "online"

    # but traffic does not undo a death: that needs a new birth
    state.apply_status(C, "pi-2", Status(online=False, bdseq=1), T0 + timedelta(seconds=61))
    state.apply_health(C, "pi-2", health(T0 + timedelta(seconds=62)), T0 + timedelta(seconds=62))
    assert state.node(C, "pi-2")["status"] == "offline"


def test_stale_gateway_shows_unknown_not_offline(state: LiveState) -> None:
    state.apply_status(C, N, birth(1), T0)
    state.mark_stale(True)
    assert state.node(C, N)["status"] == "unknown" and state.node(C, N)["stale"] is True
    assert state.overview()[0]["nodes_offline"] == 0 and state.overview()[0]["nodes_unknown"] == 1
    assert state.check_heartbeats(T0 + timedelta(minutes=10), 45) == []  # our silence, not theirs
    state.mark_stale(False, T0 + timedelta(minutes=10))
    assert state.node(C, N)["status"] == "online"
    assert state.check_heartbeats(T0 + timedelta(minutes=10, seconds=30), 45) == []  # grace after reconnect
    assert state.check_heartbeats(T0 + timedelta(minutes=11), 45) == [(C, N)]


def test_read_models(state: LiveState) -> None:
    state.set_center_name(C, "Trung tâm Phục vụ hành chính công Phường Sài Gòn")
    state.apply_status(C, N, birth(1), T0)
    state.apply_status(C, "pi-2", birth(1), T0)
    state.apply_status(C, "pi-2", Status(online=False, bdseq=1), T0)
    state.apply_queue(C, N, snapshot(T0), T0)
    state.apply_health(C, N, health(T0, printer="failed"), T0)
    state.apply_status("dn-hc", "pi-1", birth(3), T0)

    rows = {r["center"]: r for r in state.overview(now=T0)}
    r = rows[C]
    assert r["name"].startswith("Trung tâm")
    assert (r["waiting"], r["longest_wait_s"], r["counters_open"], r["counters_total"]) == (5, 600, 2, 3)
    assert (r["nodes_online"], r["nodes_offline"], r["devices_failing"]) == (1, 1, 1)
    assert (r["served_today"], r["issued_today"]) == (23, 28)
    assert rows["dn-hc"]["waiting"] == 0

    c = state.center(C)
    assert c["services"]["a"]["eta_s"] == 900 and c["counters"]["1"]["ticket"] == "A020"
    printer = next(d for d in c["devices"] if d["id"] == "printer-1" and d["node"] == N)
    assert (printer["state"], printer["state_code"], printer["kind"]) == ("failed", 2, "printer")
    assert state.center("nowhere") is None and state.node(C, "nope") is None

    # a snapshot from yesterday does not count as served today
    assert state.overview(now=T0 + timedelta(days=1))[0]["served_today"] == 0
    # an older snapshot than the one held is ignored
    assert state.apply_queue(C, N, snapshot(T0 - timedelta(seconds=5)), T0) is False


def test_events_update_devices_in_time_order(state: LiveState) -> None:
    state.apply_status(C, N, birth(1), T0)
    fault = Event(seq=1, ts=T0 + timedelta(seconds=10), type="device.fault",
                  data={"device": "printer-1", "kind": "printer", "state": "failed", "detail": "paper out"})
    recovered = Event(seq=2, ts=T0 + timedelta(seconds=20), type="device.recovered",
                      data={"device": "printer-1", "kind": "printer", "state": "ok"})
    state.apply_event(C, N, recovered, T0)
    state.apply_event(C, N, fault, T0)  # a replayed older event must not undo newer news
    assert state.device_state(C, N, "printer-1") == "ok"
    assert state.node(C, N)["last_seq"] == 2
    odd = Event(seq=3, ts=T0 + timedelta(seconds=30), type="device.fault", data={"device": "x", "state": "??"})
    state.apply_event(C, N, odd, T0)
    assert state.device_state(C, N, "x") == "failed"


def test_version_and_change_callbacks(state: LiveState) -> None:
    seen: list[Change] = []
    unsubscribe = state.subscribe(seen.append)
    state.subscribe(lambda ch: 1 / 0)  # a broken listener does not break the state
    v0 = state.version
    state.apply_status(C, N, birth(1), T0)
    state.apply_queue(C, N, snapshot(T0), T0)
    assert state.version == v0 + 2
    assert [(c.kind, c.center, c.node) for c in seen] == [("node", C, N), ("queue", C, N)]
    unsubscribe()
    state.apply_health(C, N, health(T0), T0)
    assert len(seen) == 2


def test_persisted_and_restored_stale_until_reconnected(state: LiveState) -> None:
    state.set_center_name(C, "Phường Sài Gòn")
    state.apply_status(C, N, birth(5), T0)
    state.apply_queue(C, N, snapshot(T0), T0)
    state.apply_health(C, N, health(T0, printer="degraded", pending=3), T0)

    back = LiveState.from_json(state.to_json())
    assert back.node(C, N)["status"] == "unknown"
    back.mark_stale(False, T0 + timedelta(minutes=1))
    assert back.center(C) == state.center(C)
    assert back.overview(now=T0) == state.overview(now=T0)
    # the bdseq survived: a stale will still cannot kill the node after a restart
    assert back.apply_status(C, N, Status(online=False, bdseq=4), T0) is False

    with pytest.raises(ValueError, match="saved"):
        LiveState.from_json('{"hello": 1}')
    with pytest.raises(ValueError, match="damaged"):
        LiveState.from_json("not json")


def test_a_device_names_its_counter_by_the_counters_name_and_keeps_it_over_a_restart(state: LiveState) -> None:
    st = Status(online=True, bdseq=1, ts=T0, version="0.1.0", counters={"1": "Quầy 1 - Đất đai"},
                devices=[{"id": "printer-1", "kind": "printer"}, {"id": "led-1", "kind": "display", "counter": "1"},
                         {"id": "led-2", "kind": "display", "counter": "9"}])
    state.apply_status(C, N, st, T0)
    devs = {d["id"]: d for d in state.node(C, N)["devices"]}
    assert (devs["led-1"]["counter"], devs["led-1"]["counter_name"]) == ("1", "Quầy 1 - Đất đai")
    assert devs["led-2"]["counter_name"] == "9"  # a counter the birth did not name: its id
    assert devs["printer-1"]["counter"] is None and devs["printer-1"]["counter_name"] is None  # the hall's
    restored = LiveState.from_json(state.to_json())
    assert {d["id"]: d["counter_name"] for d in restored.node(C, N)["devices"]}["led-1"] == "Quầy 1 - Đất đai"
