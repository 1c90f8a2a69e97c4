"""Clerks signing in through a running agent on emulated hardware and a real Mosquitto: the serial call pad's
sign-in key with a good and a wrong code (real frames on a pty), a GPIO sign-out key (MockFactory pins), a
`counter` command from the gateway (sign_in, complete with a dossier code) and the local counter API. What is
checked is what leaves on the wire (events, command results, the birth) and what the counter's pad and board
show."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civiq.contract import CounterCmd, cmd_topic
from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from civiq.edge.devices.display.asciiframe import FrameParser, encode_frame
from civiq.edge.devices.keypad import CODE_REPLY_LEN
from civiq.edge.sim.example import sim_center_yaml
from civiq.edge.sim.keypad import CallPadState
from civiq.edge.web import agent_app, agent_routes
from civiq.webthread import WebThread
from tests.conftest import wait_for

CID = "xa-clerk"
CLERKS = """clerks:
  lan: {name: "Nguyễn Thị Lan", code: "4821"}
  minh: {name: "Trần Văn Minh", code: "05093", short_name: "A.MINH"}
"""


@pytest.fixture
def center(tmp_path: Path, broker, recorder) -> Iterator[tuple[Any, Any]]:  # noqa: ANN001
    text = sim_center_yaml(broker.port, center=CID, http_port=free_port(), state_dir=tmp_path / "state")
    text = text.replace("protocol: modbus, port: /dev/civiq-rs485, baudrate: 9600, address: 2, digits: 4",
                        "protocol: ascii, port: /dev/civiq-rs485, baudrate: 9600, address: 2, width: 8")
    text = text.replace("protocol: modbus, port: /dev/civiq-rs485, baudrate: 9600, address: 1, digits: 4",
                        "protocol: modbus, port: /dev/civiq-bus2, baudrate: 9600, address: 1, digits: 4")
    text = text.replace("hold: 21, call_held: 4}", "hold: 21, call_held: 4, sign_out: 18}")
    text = text.replace("keypads:\n", "keypads:\n  - {id: k3, counter: c2, kind: serial, port: /dev/civiq-rs485, "
                        "address: 11}\n")
    path = tmp_path / "clerk.yaml"
    path.write_text(text + CLERKS, encoding="utf-8")
    rec = recorder(f"civiq/v1/{CID}/#")
    agent = make_agent(load_config(path), simulate=True)
    agent.flash_s = 0.5
    agent.start()
    try:
        wait_for(lambda: agent.link.connected, timeout=10, what="the agent connected")
        yield agent, rec
    finally:
        try:
            agent.stop()
        finally:
            agent.sim.stop()


def events(rec: Any, type_: str) -> list[dict]:
    return [d["data"] for d in map(json.loads, rec.on("/event")) if d["type"] == type_]


def test_keypad_sign_in_good_and_wrong_code_gateway_command_and_counter_api(center: tuple[Any, Any]) -> None:
    agent, rec = center
    sim, engine = agent.sim, agent.engine
    pad = sim.emulators["/dev/civiq-rs485"].pads[11]
    birth = wait_for(lambda: [b for b in map(json.loads, rec.on("/status")) if b.get("online")], timeout=10)[-1]
    assert birth["clerks"] == {"lan": "Nguyễn Thị Lan", "minh": "Trần Văn Minh"}  # names only, never a code
    served = {d["id"]: d["counter"] for d in birth["devices"]}  # the dashboard names each device's counter
    assert (served["k3"], served["d2"], served["p1"]) == ("c2", "c2", None)

    # a wrong code: refused, "Sai mã" on the pad and c2's text board for a moment, counted, no event
    sim.press_key("k3", "sign_in", ticket="1111")
    wait_for(lambda: pad.lcd == "Sai ma" and sim.shown("d2") == "Sai ma", timeout=5, what="Sai ma on c2")
    assert agent.wrong_codes == 1 and engine.signed_in() == {}
    wait_for(lambda: pad.lcd == "" and sim.shown("d2") == "", timeout=5, what="c2 blank again")
    # the right code: signed in, the clerk's short name shown, then the counter's ticket again
    sim.press_key("k3", "sign_in", ticket="4821")
    wait_for(lambda: events(rec, "clerk.signed_in"), timeout=10, what="clerk.signed_in on the broker")
    assert events(rec, "clerk.signed_in") == [{"counter": "c2", "clerk": "lan", "by": "keypad:k3"}]
    wait_for(lambda: pad.lcd == "LAN", timeout=5, what="LAN on the pad")
    sim.press_button("B")
    sim.press_key("k3", "next")
    called = wait_for(lambda: events(rec, "ticket.called"), timeout=10, what="B001 called")
    assert called[0]["ticket"] == "B001" and called[0]["clerk"] == "lan"
    wait_for(lambda: pad.lcd == "B001", timeout=5, what="B001 on the pad")
    assert agent.wrong_codes == 1

    # the gateway signs minh in at c1 and completes c2's ticket with its dossier code
    def command(**kw: Any) -> dict:
        cmd = CounterCmd(id=f"cmd-{len(rec.on('/cmd_result'))}", **kw)
        rec.client.publish(cmd_topic(CID, "pi-1", "counter"), cmd.to_json(), qos=1).wait_for_publish(5)
        return wait_for(lambda: [r for r in map(json.loads, rec.on("/cmd_result")) if r["id"] == cmd.id],
                        timeout=10, what=f"the answer to {kw['action']}")[0]

    r = command(counter="c1", action="sign_in", clerk="minh")
    assert r["ok"] and r["data"]["clerk"] == "minh"
    wait_for(lambda: len(events(rec, "clerk.signed_in")) == 2, timeout=10)
    assert events(rec, "clerk.signed_in")[1]["by"] == f"gateway:{r['id']}"
    r = command(counter="c2", action="complete", dossier="H29.22-241205-0001")
    assert r["ok"] and r["data"]["ticket"] == "B001"
    done = wait_for(lambda: events(rec, "ticket.completed"), timeout=10)[0]
    assert (done["dossier"], done["clerk"], done["counter"]) == ("H29.22-241205-0001", "lan", "c2")
    r = command(counter="c1", action="sign_in", clerk="nobody")
    assert not r["ok"] and "unknown clerk 'nobody'" in r["error"]

    # the GPIO keypad's sign-out key at c1
    sim.press_key("k1", "sign_out")
    out = wait_for(lambda: events(rec, "clerk.signed_out"), timeout=10, what="minh signed out")
    assert out == [{"counter": "c1", "clerk": "minh", "by": "keypad:k1", "reason": "manual"}]

    # the counter API (a clerk's PC): a code, a wrong code, who is where, a dossier that is too long
    from civiq.edge.sim.api import sim_routes

    server = WebThread(agent_app(agent_routes(agent) + sim_routes(sim)), host="127.0.0.1", port=0).start()
    try:
        def post(path: str, body: dict | None = None) -> tuple[int, dict]:
            req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", method="POST",
                                         data=json.dumps(body or {}).encode())
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        assert post("/api/counters/c1/sign_in", {"code": "4821"}) == (
            200, {"ok": True, "counter": "c1", "action": "sign_in", "clerk": "lan"})
        status, body = post("/api/counters/c2/sign_in", {"code": "9999"})
        assert status == 409 and "wrong sign-in code" in body["error"] and agent.wrong_codes == 2
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/clerks", timeout=5) as resp:
            assert json.loads(resp.read()) == {"c1": {"clerk": "lan", "name": "Nguyễn Thị Lan"}}
        sim.press_button("A")
        post("/api/counters/c1/next")
        status, body = post("/api/counters/c1/complete", {"dossier": "x" * 41})
        assert status == 409 and "dossier code" in body["error"]
        assert post("/api/counters/c1/sign_out")[0] == 200
        assert post("/sim/key/k3/sign_in?code=05093") == (200, {"ok": True})  # the simulator types on the pad
        wait_for(lambda: engine.signed_in() == {"c2": "minh"}, timeout=10, what="minh signed in on k3")
    finally:
        server.stop()
    moved = wait_for(lambda: [d for d in events(rec, "clerk.signed_out") if d["reason"] == "signed_in_elsewhere"],
                     timeout=10, what="lan moved from c2 to c1")
    assert moved == [{"counter": "c2", "clerk": "lan", "by": "api", "reason": "signed_in_elsewhere"}]
    wait_for(lambda: len(events(rec, "clerk.signed_out")) == 3, timeout=10)


def test_the_pad_answers_the_code_read_with_a_real_frame() -> None:
    pad = CallPadState(11)
    pad.type("05093")
    reply = pad.handle(FrameParser().feed(encode_frame(11, "I"))[0])  # STX 11 I "05093   " ETX HH
    assert reply == encode_frame(11, "I", b"05093   ") and len(reply) == CODE_REPLY_LEN
    assert pad.entry == ""  # read and cleared: a second read gets nothing (the agent then says Sai mã)
    assert pad.handle(FrameParser().feed(encode_frame(11, "I"))[0]) == encode_frame(11, "I", b" " * 8)
