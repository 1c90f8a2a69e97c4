"""Commands from the gateway through a real Mosquitto: handled off the network thread, answered on cmd_result,
bad input counted and answered, never fatal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Recorder, wait_for

from civiq.clock import FakeClock
from civiq.contract import (
    CmdResult,
    Command,
    DisplayCmd,
    Health,
    Policy,
    PolicyCmd,
    QueueSnapshot,
    Status,
    cmd_topic,
    parse_payload,
)
from civiq.dev.broker import Mosquitto
from civiq.edge.link import CommandRunner, EdgeLink, recover_id, to_result
from civiq.edge.queue.store import EdgeStore

CENTER, NODE = "hcm-q1", "pi-1"


class Handler:
    """Records every call (and the thread it ran on) and answers like an engine would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Command, str]] = []

    def __call__(self, name: str, cmd: Command) -> object:
        self.calls.append((name, cmd, threading.current_thread().name))
        if isinstance(cmd, DisplayCmd):
            if cmd.text == "boom":
                raise RuntimeError("display bus dead")
            return {"shown": cmd.text}
        return None


@pytest.fixture
def setup(broker: Mosquitto, clock: FakeClock, recorder, tmp_path: Path) -> Iterator[tuple]:
    handler = Handler()
    store = EdgeStore(tmp_path / "edge.db")
    link = EdgeLink(store, center=CENTER, node=NODE, host=broker.host, port=broker.port, clock=clock,
                    on_command=handler, backoff_min=0.05, backoff_max=0.3)
    rec = recorder(f"civiq/v1/{CENTER}/{NODE}/#")
    link.start()
    wait_for(lambda: link.connected, what="link connected")
    wait_for(lambda: rec.on("/status"), what="birth")
    yield link, handler, rec, store
    link.stop(timeout=1)


def send(rec: Recorder, name: str, payload: bytes | str, retain: bool = False) -> None:
    rec.client.publish(cmd_topic(CENTER, NODE, name), payload, qos=1, retain=retain).wait_for_publish(5)


def results(rec: Recorder) -> dict[str, CmdResult]:
    return {r.id: r for r in (parse_payload(CmdResult, p) for p in rec.on("/cmd_result"))}


def result_for(rec: Recorder, rid: str) -> CmdResult:
    return wait_for(lambda: results(rec).get(rid), what=f"result {rid}")  # type: ignore[return-value]


def test_valid_display_command_runs_in_worker_and_is_answered(setup) -> None:
    link, handler, rec, _ = setup
    send(rec, "display", DisplayCmd(id="r1", device="led-3", text="A001 → quầy 3").to_json())
    r = result_for(rec, "r1")
    assert r.ok and r.cmd == "display" and r.error is None and r.data == {"shown": "A001 → quầy 3"}
    name, cmd, thread = handler.calls[0]
    assert name == "display" and isinstance(cmd, DisplayCmd) and cmd.device == "led-3"
    assert thread == "civiq-link-cmd", "handlers must not run on paho's network thread"
    assert link.stats["commands"] == 1 and link.stats["bad_commands"] == 0


def test_bad_commands_are_counted_answered_and_harmless(setup, clock: FakeClock) -> None:
    link, handler, rec, store = setup
    send(rec, "display", b"{not json")  # no id to answer to: counted and logged only
    send(rec, "display", b"\xff\xfe\x00")  # not UTF-8
    send(rec, "display", b'{"id": "r2", "text": "A002", "seconds": -5}')  # wrong field
    send(rec, "display", b'["id", "r3"]')  # not an object (so no id either)
    send(rec, "format_disk", b'{"id": "r4"}')  # unknown command
    send(rec, "display", DisplayCmd(id="r5", text="boom").to_json())  # valid, the handler raises
    wait_for(lambda: link.stats["bad_commands"] == 5, what="5 bad commands counted")

    r2 = result_for(rec, "r2")
    assert not r2.ok and "seconds" in r2.error
    r4 = result_for(rec, "r4")
    assert not r4.ok and "unknown command 'format_disk'" in r4.error
    r5 = result_for(rec, "r5")
    assert not r5.ok and r5.error == "RuntimeError: display bus dead"
    assert set(results(rec)) == {"r2", "r4", "r5"}
    assert [c[0] for c in handler.calls] == ["display"]  # only the valid one reached the handler

    # the link still works: commands and events
    send(rec, "display", DisplayCmd(id="r6", text="ok").to_json())
    assert result_for(rec, "r6").ok
    store.append("ticket.issued", {"ticket": "A001"}, clock.now())
    link.notify()
    assert link.wait_drained(5) and link.connected


def test_rebirth_command_republishes_birth_queue_and_health(setup, clock: FakeClock) -> None:
    link, handler, rec, store = setup
    link.publish_state("queue", QueueSnapshot(ts=clock.now(), day="2026-01-05", last_seq=7), retain=True)
    wait_for(lambda: rec.on("/queue"), what="first queue snapshot")
    store.append("ticket.issued", {"ticket": "A001"}, clock.now())  # not notified: stays pending
    clock.advance(30)
    send(rec, "rebirth", b'{"id": "rb1"}')
    assert result_for(rec, "rb1").ok
    births = wait_for(lambda: [s for s in (parse_payload(Status, p) for p in rec.on("/status")) if s.online][1:],
                      what="second birth")
    assert births[0].bdseq == 1
    wait_for(lambda: len(rec.on("/queue")) == 2 and rec.on("/health"), what="queue and health")
    assert parse_payload(QueueSnapshot, rec.on("/queue")[-1]).last_seq == 7
    health = parse_payload(Health, rec.on("/health")[-1])
    assert health.outbox.pending in (0, 1) and health.ts == clock.now()
    assert handler.calls == [], "rebirth is handled by the link itself"


def test_retained_policy_is_delivered_on_subscribe(broker: Mosquitto, clock: FakeClock, recorder,
                                                   tmp_path: Path) -> None:
    rec = recorder("civiq/v1/#")
    policy = PolicyCmd(id="p1", policy=Policy(version=3, counters={}))
    send(rec, "policy", policy.to_json(), retain=True)
    handler = Handler()
    link = EdgeLink(EdgeStore(tmp_path / "edge.db"), center=CENTER, node=NODE, host=broker.host,
                    port=broker.port, clock=clock, on_command=handler)
    link.start()
    try:
        wait_for(lambda: handler.calls, what="retained policy delivered")
        name, cmd, _ = handler.calls[0]
        assert name == "policy" and isinstance(cmd, PolicyCmd) and cmd.policy.version == 3
        assert result_for(rec, "p1").ok
    finally:
        link.stop()


# ------------------------------------------------------------------------------------------------ pure parts
def test_to_result_shapes() -> None:
    assert to_result("a", "display", None).ok
    assert to_result("a", "display", {"printed": 1}).data == {"printed": 1}
    r = to_result("a", "display", {"ok": False, "error": "paper out"})
    assert (r.ok, r.error) == (False, "paper out")
    r = to_result("a", "display", CmdResult(id="other", cmd="x", ok=True))
    assert (r.id, r.cmd) == ("a", "display")
    assert not to_result("a", "display", 42).ok


def test_recover_id() -> None:
    assert recover_id(b'{"id": "x1", "text": 5}') == "x1"
    assert recover_id(b'{"id": ""}') is None
    assert recover_id(b'{"id": 5}') is None
    assert recover_id(b"\xff") is None
    assert recover_id(b"[1]") is None


def test_runner_without_handler_answers_not_ok() -> None:
    sent: list[CmdResult] = []
    runner = CommandRunner(None, sent.append)
    r = runner.process("test_print", b'{"id": "t1"}')
    assert r is not None and not r.ok and "no handler" in (r.error or "")

