"""The alert engine: one alert per incident, one recovery, no storms; durable across restarts and outages.

Notifications are delivered to a real HTTP webhook receiver (http.server in a thread) through the engine's
SQLite outbox and sender threads; time is a FakeClock moved by the test.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from civiq.clock import FakeClock
from civiq.contract import ClockQuality, DeviceHealth, Health, HostHealth, OutboxHealth
from civiq.gateway.alerts import (
    HEALTH_KINDS,
    AlertEngine,
    AlertError,
    Condition,
    Thresholds,
    WebhookChannel,
    conditions_from_health,
    node_condition,
)
from tests.conftest import wait_for

C = "hcm-q1"


# ------------------------------------------------------------------------------------------ receiver
class Receiver:
    """A webhook receiver on a fixed port that can go down (connection refused) and come back."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        self.port = 0
        self.server: ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        rx = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with rx.lock:
                    rx.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def got(self) -> list[dict]:
        with self.lock:
            return list(self.bodies)


@pytest.fixture
def rx() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    if r.server:
        r.stop()


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock, rx: Receiver) -> Iterator:
    made: list[AlertEngine] = []

    def _make(channels: list | None = None, **kw: object) -> AlertEngine:
        chans = channels if channels is not None else [WebhookChannel(rx.url, timeout=2)]
        e = AlertEngine(tmp_path / "alerts.db", clock, chans, retry_base_s=1, **kw)
        made.append(e)
        return e

    yield _make
    for e in made:
        try:
            e.close()
        except Exception:  # noqa: BLE001 - already closed by the test
            pass


def run(engine: AlertEngine, clock: FakeClock, seconds: int, conditions: list[Condition] | None = None) -> None:
    """What the gateway does: every second, feed the current conditions (if any) and tick."""
    for _ in range(seconds):
        clock.advance(1)
        if conditions:
            engine.evaluate(conditions)
        engine.tick()


def delivered(engine: AlertEngine, rx: Receiver, n: int) -> list[dict]:
    """Wait until the outbox is empty and the receiver holds exactly the ``n`` notifications created."""
    assert len(engine.notifications()) == n, [(x.key, x.state, x.note) for x in engine.notifications()]
    wait_for(lambda: engine.pending_deliveries() == 0 and len(rx.got()) >= n, timeout=10,
             what=f"{n} deliveries")
    got = rx.got()
    assert len(got) == n, got
    return got


def offline(node: str = "pi-1") -> Condition:
    return node_condition(C, node, online=False, reason="heartbeat timeout")


def online(node: str = "pi-1") -> Condition:
    return node_condition(C, node, online=True)


# ------------------------------------------------------------------------------------------ incidents
def test_node_offline_one_alert_then_one_recovery(make, clock: FakeClock, rx: Receiver) -> None:
    e = make()
    run(e, clock, 60, [offline()])  # reported offline 60 times
    [alert] = delivered(e, rx, 1)
    assert alert["state"] == "firing" and alert["kind"] == "node_offline" and alert["node"] == "pi-1"
    assert "Mất kết nối máy trạm" in alert["text"] and "Edge node offline" in alert["text"]
    assert [a.state for a in e.active()] == ["firing"]

    run(e, clock, 29, [online()])  # hold-down: not yet
    assert len(e.notifications()) == 1
    assert e.active()[0].clearing
    run(e, clock, 120, [online()])
    got = delivered(e, rx, 2)
    assert got[1]["state"] == "resolved" and got[1]["key"] == f"{C}/pi-1/node_offline"
    assert "ĐÃ KHẮC PHỤC / RESOLVED" in got[1]["text"]
    assert e.active() == []
    [inc] = e.history()
    assert inc.state == "resolved" and inc.notified and inc.resolved_at is not None


def test_raise_after_ignores_a_short_blip(make, clock: FakeClock, rx: Receiver) -> None:
    e = make(raise_after_s=10)
    run(e, clock, 5, [offline()])
    assert [a.state for a in e.active()] == ["pending"]
    run(e, clock, 60, [online()])
    assert e.notifications() == [] and e.active() == [] and e.history() == []
    run(e, clock, 10, [offline()])  # seen at t+1 .. t+10: 9 s active
    assert e.notifications() == []
    run(e, clock, 1, [offline()])
    assert [n.state for n in e.notifications()] == ["firing"]


def test_flapping_every_5s_for_2_minutes_is_one_alert_and_one_recovery(make, clock: FakeClock,
                                                                       rx: Receiver) -> None:
    """With the default hold-down (clear_after_s=30) a 5 s flap never clears: exactly 1 alert + 1 recovery."""
    e = make()
    for i in range(24):  # 24 x 5 s = 2 minutes
        run(e, clock, 5, [offline() if i % 2 == 0 else online()])
    run(e, clock, 60, [online()])
    got = delivered(e, rx, 2)
    assert [g["state"] for g in got] == ["firing", "resolved"]


def test_slow_flapping_is_damped_to_the_documented_bound(make, clock: FakeClock, rx: Receiver) -> None:
    """A flap slower than the hold-down: flap_max-1 alerts and recoveries, one flapping notice, one final."""
    e = make(clear_after_s=30, flap_window_s=600, flap_max=3)
    for i in range(16):  # 40 s offline / 40 s online for ~10 minutes: 8 real incidents
        run(e, clock, 40, [offline() if i % 2 == 0 else online()])
    assert [h.flapping for h in e.history()].count(True) >= 6
    run(e, clock, 700, [online()])  # stable for more than the flap window
    got = delivered(e, rx, 2 * (3 - 1) + 2)
    assert [(g["state"], g["note"]) for g in got] == [
        ("firing", ""), ("resolved", ""), ("firing", ""), ("resolved", ""),
        ("firing", "flapping"), ("resolved", "stable")]
    assert "FLAPPING" in got[4]["text"] and "CHẬP CHỜN" in got[4]["text"]
    run(e, clock, 1200, [online()])
    assert len(e.notifications()) == 6


def test_flapping_that_settles_on_firing_ends_with_one_firing(make, clock: FakeClock, rx: Receiver) -> None:
    e = make(clear_after_s=0, flap_max=3)
    for i in range(8):
        run(e, clock, 10, [offline() if i % 2 == 0 else online()])
    run(e, clock, 650, [offline()])
    notes = [(n.state, n.note) for n in e.notifications()]
    assert notes == [("firing", ""), ("resolved", ""), ("firing", ""), ("resolved", ""),
                     ("firing", "flapping"), ("firing", "stable")]
    assert not e.active()[0].flapping


# ------------------------------------------------------------------------------------------ operators
def test_silence_suppresses_then_notifies_once(make, clock: FakeClock, rx: Receiver) -> None:
    e = make()
    until = clock.now() + timedelta(hours=1)
    s = e.silence(C, "pi-1", until=until, reason="thay máy in / replacing the printer", user="tech-an")
    assert [x.id for x in e.silences()] == [s.id]

    run(e, clock, 10, [offline("pi-1"), offline("pi-2")])
    # pi-2 is not in the silence: it alerts; pi-1 is tracked but quiet
    got = delivered(e, rx, 1)
    assert got[0]["node"] == "pi-2"
    assert {a.node: a.silenced for a in e.active()} == {"pi-1": True, "pi-2": False}
    # a printer problem that comes and goes inside the silence is never announced
    paper = Condition(key=f"{C}/pi-1/printer-1/printer_paper_out", center=C, node="pi-1", device="printer-1",
                      kind="printer_paper_out", severity="critical", active=True, summary="paper out")
    e.evaluate([paper])
    run(e, clock, 60, [paper.model_copy(update={"active": False})])

    run(e, clock, 3600, [offline("pi-1"), offline("pi-2")])
    assert e.silences() == []
    got = delivered(e, rx, 2)
    assert (got[1]["node"], got[1]["state"], got[1]["note"]) == ("pi-1", "firing", "after_silence")
    run(e, clock, 120, [offline("pi-1"), offline("pi-2")])
    assert len(e.notifications()) == 2


def test_silence_on_a_notified_incident_sends_its_recovery_at_the_end(make, clock: FakeClock,
                                                                      rx: Receiver) -> None:
    e = make()
    run(e, clock, 5, [offline()])
    s = e.silence(C, until=clock.now() + timedelta(minutes=30), reason="bảo trì", user="tech-binh")
    run(e, clock, 120, [online()])  # fixed during maintenance: quiet
    assert len(e.notifications()) == 1
    e.unsilence(s.id, user="tech-binh")
    got = delivered(e, rx, 2)
    assert [(g["state"], g["note"]) for g in got] == [("firing", ""), ("resolved", "")]


def test_acknowledge_stops_reminders(make, clock: FakeClock, rx: Receiver) -> None:
    e = make(renotify_s=600)
    run(e, clock, 601, [offline()])
    assert [(n.state, n.note) for n in e.notifications()] == [("firing", ""), ("firing", "reminder")]
    view = e.acknowledge(f"{C}/pi-1/node_offline", "oncall-chi")
    assert view.acked_by == "oncall-chi"
    run(e, clock, 3000, [offline()])
    delivered(e, rx, 2)
    assert e.active()[0].acked_by == "oncall-chi"
    assert e.history()[0].acked_by == "oncall-chi"
    with pytest.raises(AlertError, match="no open alert"):
        e.acknowledge(f"{C}/pi-9/node_offline", "oncall-chi")
    with pytest.raises(AlertError, match="name"):
        e.acknowledge(f"{C}/pi-1/node_offline", " ")


# ------------------------------------------------------------------------------------------ durability
def test_restart_does_not_renotify_and_keeps_incidents(make, clock: FakeClock, rx: Receiver) -> None:
    e = make()
    run(e, clock, 10, [offline("pi-1"), offline("pi-2")])
    delivered(e, rx, 2)
    e.acknowledge(f"{C}/pi-2/node_offline", "oncall-chi")
    e.close()

    e2 = make()
    assert {(a.node, a.state, a.notified) for a in e2.active()} == {("pi-1", "firing", True),
                                                                      ("pi-2", "firing", True)}
    assert {a.node: a.acked_by for a in e2.active()} == {"pi-1": None, "pi-2": "oncall-chi"}
    run(e2, clock, 60, [offline("pi-1"), offline("pi-2")])
    assert len(e2.notifications()) == 2 and len(rx.got()) == 2
    run(e2, clock, 40, [online("pi-1"), offline("pi-2")])
    got = delivered(e2, rx, 3)
    assert (got[2]["node"], got[2]["state"]) == ("pi-1", "resolved")


def test_notification_pending_at_shutdown_is_delivered_after_restart(make, clock: FakeClock,
                                                                    rx: Receiver) -> None:
    rx.stop()
    e = make()
    run(e, clock, 3, [offline()])
    wait_for(lambda: e.delivery_errors(), what="a failed delivery attempt")
    assert e.pending_deliveries() == 1
    e.close()

    rx.start()
    e2 = make()
    got = delivered(e2, rx, 1)
    assert got[0]["state"] == "firing"


def test_channel_down_then_up_is_delivered_late_exactly_once(make, clock: FakeClock, rx: Receiver) -> None:
    down = Receiver()
    down.stop()  # its port refuses connections
    e = make([WebhookChannel(down.url, timeout=2, name="down"), WebhookChannel(rx.url, timeout=2, name="up")])
    run(e, clock, 1, [offline()])
    # the healthy channel is not held up by the dead one
    wait_for(lambda: len(rx.got()) == 1, what="delivery to the healthy channel")
    wait_for(lambda: "down" in e.delivery_errors(), what="a failed attempt on the dead channel")
    # the receiver has the body before the sender has recorded the 2xx: wait for the record, not a moment
    wait_for(lambda: e.pending_deliveries("up") == 0, what="the healthy channel's delivery recorded")
    assert e.pending_deliveries("down") == 1

    run(e, clock, 40, [online()])  # a recovery queues up behind the first one, in order
    wait_for(lambda: len(rx.got()) == 2, what="the recovery on the healthy channel")
    down.start()

    def handled() -> tuple[float | None] | None:
        """The sender has dealt with whatever was due: the next attempt lies ahead, or nothing is left."""
        s = e.next_attempt_in("down")
        return (s,) if s is None or s > 0 else None

    for _ in range(20):  # move the fake clock only while the sender waits for it (no race with real time)
        (s,) = wait_for(handled, what="the dead channel's due attempt")
        if s is None:
            break
        run(e, clock, math.ceil(s))  # the gateway ticks every second until the next attempt is due
    wait_for(lambda: e.pending_deliveries() == 0, what="every delivery recorded")
    assert [b["state"] for b in down.got()] == ["firing", "resolved"]
    run(e, clock, 300)
    assert len(down.got()) == 2 and len(rx.got()) == 2
    assert len({b["notification_id"] for b in down.got()}) == 2
    down.stop()


def test_stale_gateway_does_not_storm(make, clock: FakeClock, rx: Receiver) -> None:
    nodes = [f"pi-{i:02d}" for i in range(20)]
    e = make(grace_s=60)
    run(e, clock, 5, [offline("pi-00")] + [online(n) for n in nodes[1:]])
    delivered(e, rx, 1)

    e.set_stale(True)  # broker lost: heartbeats time out for every node
    run(e, clock, 300, [offline(n) for n in nodes])
    assert len(e.notifications()) == 1

    e.set_stale(False)  # back: fresh data shows only pi-07 down, and pi-00 back up
    fresh = [offline("pi-07")] + [online(n) for n in nodes if n != "pi-07"]
    run(e, clock, 50, fresh)
    assert len(e.notifications()) == 2  # pi-00's recovery after the hold-down; pi-07 waits out the grace
    run(e, clock, 60, fresh)
    got = delivered(e, rx, 3)
    assert sorted((g["node"], g["state"]) for g in got[1:]) == [("pi-00", "resolved"), ("pi-07", "firing")]


def test_the_start_up_grace_holds_only_nodes_not_heard_since(make, clock: FakeClock, rx: Receiver) -> None:
    e = make(grace_s=60, stale=True)  # a gateway (re)starting: stale until its broker link is up
    e.set_stale(False)  # connected: the grace starts
    run(e, clock, 2, [online("pi-01"), offline("pi-02")])  # pi-01 heard (a birth, a beat); pi-02 only silent
    run(e, clock, 10, [offline("pi-01"), offline("pi-02")])  # pi-01 falls silent 2 s after the start
    assert [(n.key, n.state) for n in e.notifications()] == [(f"{C}/pi-01/node_offline", "firing")]
    run(e, clock, 55, [offline("pi-01"), offline("pi-02")])  # pi-02, never heard since the start, waits
    got = delivered(e, rx, 2)
    assert [(g["node"], g["state"]) for g in got] == [("pi-01", "firing"), ("pi-02", "firing")]


def test_stale_holds_recoveries(make, clock: FakeClock, rx: Receiver) -> None:
    e = make()
    run(e, clock, 2, [offline()])
    e.set_stale(True)
    run(e, clock, 120, [online()])
    assert [n.state for n in e.notifications()] == ["firing"]
    e.set_stale(False)
    assert [n.state for n in e.notifications()] == ["firing", "resolved"]


def test_resolve_missing_clears_a_removed_device(make, clock: FakeClock, rx: Receiver) -> None:
    e = make(clear_after_s=0)
    h = Health(ts=clock.now(), devices=[DeviceHealth(id="led-3", kind="display", state="offline")])
    conds = conditions_from_health(C, "pi-1", h)
    e.evaluate(conds + [offline()])
    assert {a.kind for a in e.active()} == {"display_not_answering", "node_offline"}
    # the display was removed from the config: the next Health does not mention it
    h2 = Health(ts=clock.now())
    conds2 = conditions_from_health(C, "pi-1", h2)
    e.evaluate(conds2)
    cleared = e.resolve_missing(C, "pi-1", [c.key for c in conds2], kinds=HEALTH_KINDS)
    assert cleared == [f"{C}/pi-1/led-3/display_not_answering"]
    assert {a.kind for a in e.active()} == {"node_offline"}


# ------------------------------------------------------------------------------------------ health mapping
def _health(**kw: object) -> Health:
    return Health(ts=datetime(2026, 1, 5, 1, 0, tzinfo=UTC), **kw)


def _active(conds: list[Condition]) -> set[tuple[str | None, str]]:
    return {(c.device, c.kind) for c in conds if c.active}


def test_paper_out_is_one_alert_and_one_recovery(make, clock: FakeClock, rx: Receiver) -> None:
    e = make()
    out = _health(devices=[DeviceHealth(id="printer-1", kind="printer", state="failed",
                                        detail="printer is out of paper")])
    for _ in range(20):  # a Health every 15 s for 5 minutes
        run(e, clock, 15, conditions_from_health(C, "pi-1", out))
    [alert] = delivered(e, rx, 1)
    assert (alert["kind"], alert["device"], alert["severity"]) == ("printer_paper_out", "printer-1", "critical")
    assert "Máy in hết giấy / Printer out of paper" in alert["text"]
    ok = _health(devices=[DeviceHealth(id="printer-1", kind="printer", state="ok")])
    for _ in range(4):
        run(e, clock, 15, conditions_from_health(C, "pi-1", ok))
    got = delivered(e, rx, 2)
    assert got[1]["state"] == "resolved" and got[1]["kind"] == "printer_paper_out"


def test_printer_mapping() -> None:
    def printer(state: str, detail: str = "") -> list[Condition]:
        h = _health(devices=[DeviceHealth(id="printer-1", kind="printer", state=state, detail=detail)])
        return [c for c in conditions_from_health(C, "pi-1", h) if c.device]

    out = printer("failed", "printer is out of paper")
    assert _active(out) == {("printer-1", "printer_paper_out")}
    assert "printer_paper_near_end" not in {c.kind for c in out}  # unknown: left as it was
    assert _active(printer("failed", "PAPER_OUT")) == {("printer-1", "printer_paper_out")}
    assert _active(printer("degraded", "paper near end")) == {("printer-1", "printer_paper_near_end")}
    assert _active(printer("failed", "printer cover is open")) == {("printer-1", "printer_cover_open")}
    assert _active(printer("failed", "printer reports it is offline")) == {("printer-1", "device_failed")}
    off = printer("offline", "no answer on /dev/ttyUSB0")
    assert [(c.kind, c.active) for c in off] == [("device_offline", True)]
    ok = printer("ok")
    assert _active(ok) == set() and {c.kind for c in ok} == {
        "printer_paper_out", "printer_paper_near_end", "printer_cover_open", "device_offline", "device_failed"}
    assert all(c.key.startswith(f"{C}/pi-1/printer-1/") for c in ok)
    near = printer("degraded", "paper near end")[0]
    assert near.severity == "warning" and "Máy in sắp hết giấy" in near.summary


def test_other_devices_and_host_mapping() -> None:
    h = _health(
        devices=[DeviceHealth(id="led-1", kind="display", state="offline", detail="no reply from address 3"),
                 DeviceHealth(id="keypad-1", kind="keypad", state="failed", detail="bus shorted"),
                 DeviceHealth(id="qr-1", kind="qrboard", state="offline")],
        host=HostHealth(cpu_temp_c=82.5, disk_used_pct=95, clock_offset_s=-12.0, clock=ClockQuality.synced),
        outbox=OutboxHealth(pending=5, oldest_s=900),
    )
    conds = conditions_from_health(C, "pi-1", h)
    assert _active(conds) == {("led-1", "display_not_answering"), ("keypad-1", "device_failed"),
                              ("qr-1", "device_offline"), (None, "cpu_hot"), (None, "disk_almost_full"),
                              (None, "clock_skew"), (None, "outbox_backlog")}
    by_kind = {c.kind: c for c in conds if c.device is None}
    assert by_kind["clock_skew"].detail == "clock synced, offset -12.0 s"
    assert by_kind["disk_almost_full"].key == f"{C}/pi-1/disk_almost_full"

    calm = _health(host=HostHealth(cpu_temp_c=55, disk_used_pct=90, clock_offset_s=0.2),
                   outbox=OutboxHealth(pending=3, oldest_s=2))
    assert _active(conditions_from_health(C, "pi-1", calm)) == set()
    suspect = _health(host=HostHealth(clock=ClockQuality.suspect))
    assert _active(conditions_from_health(C, "pi-1", suspect)) == {(None, "clock_skew")}
    # missing metrics are unknown, not fine: no condition at all
    assert {c.kind for c in conditions_from_health(C, "pi-1", _health())} == {"outbox_backlog", "clock_skew"}
    strict = Thresholds(outbox_pending_max=2, cpu_temp_c_max=50)
    assert _active(conditions_from_health(C, "pi-1", calm, strict)) == {(None, "outbox_backlog"),
                                                                        (None, "cpu_hot")}


def test_bad_input_gets_a_clear_error(make, clock: FakeClock) -> None:
    e = make([])
    with pytest.raises(AlertError, match="Condition"):
        e.evaluate([{"key": "x"}])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="kind"):
        Condition(key="k", center=C, node="pi-1", kind="printer_on_fire", severity="critical", active=True,
                  summary="?")
    with pytest.raises(AlertError, match="not in the future"):
        e.silence(C, until=clock.now() - timedelta(minutes=1), user="tech-an")
    with pytest.raises(AlertError, match="timezone"):
        e.silence(C, until=datetime(2030, 1, 1), user="tech-an")
    with pytest.raises(AlertError, match="no active silence"):
        e.unsilence(12345)
    with pytest.raises(AlertError, match="flap_max"):
        AlertEngine(":memory:", clock, [], flap_max=1, start=False)
    assert e.active() == []
