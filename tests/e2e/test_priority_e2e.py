"""Priority tickets and clerk operations end to end: a simulated center (emulated dispenser, keypads, printer) on a
real Mosquitto, a real gateway with its SQLite store and web API, and the center page in headless Chromium.

A citizen presses the "elderly" priority button then the land-office button; the counter calls that ticket
first; a manager calls a specific civil-status ticket out of order from the gateway; the clerk holds it and
calls it back on the keypad; a second recall inside the cooldown is refused and the dashboard hears why.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from civiq.edge.devices.printer.render import ticket_job
from tests.browser import HAVE_CHROMIUM, WHY_NOT, checked_page, chromium
from tests.conftest import wait_for
from tests.e2e.system import ADMIN, ApiClient, SimCenter, base_url, gateway_settings, start_gateway

CID = "xa-uu"


@pytest.fixture
def stack() -> Iterator[list]:
    things: list = []
    yield things
    for t in reversed(things):
        try:
            t.stop()
        except Exception:  # noqa: BLE001 - stop the rest anyway
            pass


def command(api: ApiClient, counter: str, action: str, **body: str) -> dict:
    """Send a counter command through the gateway and wait for the edge's answer."""
    sent = api.post(f"/api/v1/centers/{CID}/counters/{counter}/{action}", body)
    return wait_for(lambda: (lambda r: None if r.get("pending") else r)(
        api.get(f"/api/v1/centers/{CID}/commands/{sent['id']}")), timeout=10, what=f"the answer to {action}")


def test_priority_ticket_out_of_order_call_hold_and_cooldown_reach_the_dashboard(tmp_path: Path, broker,  # noqa: ANN001
                                                                                 stack: list) -> None:
    gw = start_gateway(gateway_settings(tmp_path / "gw", broker.port))
    stack.append(gw)
    center = SimCenter(tmp_path, broker.port, CID).start()
    stack.append(center)
    sim, engine, agent = center.agent.sim, center.agent.engine, center.agent
    api = ApiClient(base_url(gw)).login()
    wait_for(lambda: (gw.view.center(CID) or {}).get("nodes"), timeout=10, what="the center online")

    sim.press_button("B")  # B001, a normal ticket
    sim.press_button("A", priority="elderly")  # the elderly button, then land office: a priority A001
    tickets = sim.emulator_of("p1").wait_tickets(2, timeout=10)
    a001 = engine.ticket("A001")
    assert a001.priority == "elderly" and "A001" in tickets[1].all_text()
    label = agent.ticket_print(a001).priority_label
    assert label == "ƯU TIÊN · Người cao tuổi"
    # the priority line is on the paper: the job sent for A001 is the one rendered with it, not without
    plain = agent.ticket_print(engine.ticket("B001"))
    assert len(ticket_job(agent.ticket_print(a001))) > len(ticket_job(plain))
    c = wait_for(lambda: (lambda c: c if c["services"].get("A", {}).get("priority_waiting") == 1 else None)(
        api.get(f"/api/v1/centers/{CID}")), timeout=10, what="the gateway counts the priority ticket")
    assert c["services"]["A"]["priority_by_class"] == {"elderly": 1}
    assert c["priority_classes"]["elderly"]["name_vi"] == "Người cao tuổi"

    sim.press_key("k1", "next")  # c1 serves A and B: the elderly citizen first, though B001 came earlier
    wait_for(lambda: sim.shown("d1") == "A001", timeout=5, what="A001 on c1's display")
    sim.press_button("B")
    sim.press_button("B")  # B002, B003
    wait_for(lambda: len(engine.waiting("B")) == 3, timeout=5)

    # a manager calls B003 at c1 from the dashboard, out of order
    r = command(api, "c1", "call", ticket="b003")
    assert r["ok"] and r["data"]["ticket"] == "B003"
    wait_for(lambda: sim.shown("d1") == "B003", timeout=5, what="B003 on c1's display")
    # the clerk parks B003 (a missing paper) and calls it back on the keypad
    sim.press_key("k1", "hold")
    wait_for(lambda: (gw.view.center(CID) or {})["counters"]["c1"]["held"] == ["B003"], timeout=10,
             what="the gateway shows B003 held at c1")
    assert gw.view.center(CID)["services"]["B"]["held"] == 1
    wait_for(lambda: sim.shown("d1").strip() == "", timeout=5, what="c1's display blank while B003 is parked")
    sim.press_key("k1", "call_held")
    wait_for(lambda: sim.shown("d1") == "B003", timeout=5, what="B003 back on c1's display")
    assert engine.counter("c1").ticket == "B003"

    recent = wait_for(lambda: (lambda r: r if len(r) >= 5 else None)(gw.view.center(CID)["recent"]),
                      timeout=10, what="five recent items")
    by_seq = sorted(recent, key=lambda x: x["seq"])
    kinds = [(x["type"], x["ticket"], x.get("priority"), bool(x.get("out_of_order")), bool(x.get("from_hold")))
             for x in by_seq]
    assert kinds == [("ticket.issued", "A001", "elderly", False, False), ("ticket.called", "A001", "elderly", False, False),
                     ("ticket.called", "B003", None, True, False), ("ticket.held", "B003", None, False, False),
                     ("ticket.called", "B003", None, False, True)]
    assert by_seq[2]["by"] == f"gateway:{r['id']}" and by_seq[3]["by"] == "keypad:k1"
    audit = api.get(f"/api/v1/centers/{CID}/audit")["actions"]
    assert [(x["type"], x["ticket"]) for x in audit] == [(x[0], x[1]) for x in kinds if x[0] != "ticket.called"
                                                         or x[3] or x[4]]  # the stored events, every node

    # a recall right after the call back is inside the 10 s cooldown: refused, and the dashboard says why
    refused = command(api, "c1", "recall")
    assert not refused["ok"] and "recall of B003 refused" in refused["error"] and "wait" in refused["error"]

    if not HAVE_CHROMIUM:
        pytest.skip(WHY_NOT)
    url = base_url(gw)
    with chromium() as browser, checked_page(browser) as page:
        page.goto(f"{url}/login?next=/centers/{CID}")
        page.fill("#user", ADMIN[0])
        page.fill("#password", ADMIN[1])
        page.click("#login-form button[type=submit]")
        page.wait_for_selector('#recent tr[data-type="ticket.held"]')
        assert "Người cao tuổi" in page.text_content('#recent tr[data-ticket="A001"][data-type="ticket.issued"] .prio')
        ooo = page.locator('#recent tr.audited [data-mark="out_of_order"]')
        assert ooo.count() == 1 and ooo.text_content() == "Gọi ngoài thứ tự"
        assert page.locator('#recent tr.audited [data-mark="from_hold"]').count() == 1
        # a disabled citizen's ticket shows as priority waiting in the services table, live
        sim.press_button("A")  # A002
        sim.press_button("A", priority="disabled")  # A003
        page.wait_for_selector('[data-service="A"] [data-field="priority_waiting"]:text("★ 1 ưu tiên")')
        title = page.get_attribute('[data-service="A"] [data-field="priority_waiting"]', "title")
        assert title == "Người khuyết tật: 1"
        # the clerk calls A002 by number from the center page: the input, then the button
        page.fill('[data-counter="c2"] .call-form input', "a002")
        page.click('[data-counter="c2"] .call-form button')
        page.wait_for_selector('[data-counter="c2"] [data-field="ticket"]:text("A002")', timeout=10_000)
        page.wait_for_selector('#toast:text("Đã thực hiện")', timeout=10_000)
        assert engine.counter("c2").ticket == "A002"


def test_local_counter_api_calls_holds_and_refuses_a_recall_inside_the_cooldown(tmp_path: Path, broker,  # noqa: ANN001
                                                                                stack: list) -> None:
    import json
    import urllib.error
    import urllib.request

    from civiq.edge.web import agent_app, agent_routes
    from civiq.webthread import WebThread

    center = SimCenter(tmp_path, broker.port, "xa-api").start()
    stack.append(center)
    from civiq.edge.sim.api import sim_routes

    server = WebThread(agent_app(agent_routes(center.agent) + sim_routes(center.agent.sim)), host="127.0.0.1",
                       port=0).start()
    stack.append(server)
    engine = center.agent.engine

    def post(path: str, body: dict | None = None) -> tuple[int, dict]:
        req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", method="POST",
                                     data=json.dumps(body).encode() if body is not None else b"")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    assert post("/api/issue/A?priority=merit") == (200, {"ok": True})
    assert engine.ticket("A001").priority == "merit"
    status, body = post("/api/issue/A?priority=vip")
    assert status == 409 and "no ticket issued" in body["error"]
    post("/api/issue/B")
    status, body = post("/api/counters/c1/call", {"ticket": "B001"})
    assert status == 200 and body["ticket"]["ticket"] == "B001" and body["ticket"]["status"] == "called"
    call = [e for e in engine.store.events() if e.type == "ticket.called"][-1]
    assert call.data["out_of_order"] is True and call.data["by"] == "api"
    status, body = post("/api/counters/c1/recall")
    assert status == 409 and body["retry_after_s"] > 0 and "recall of B001 refused" in body["error"]
    assert post("/api/counters/c1/hold")[0] == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/held", timeout=5) as r:
        assert json.loads(r.read()) == [{"ticket": "B001", "service": "B", "status": "held", "counter": "c1",
                                         "priority": None}]
    status, body = post("/api/counters/c2/call_held", {"ticket": "B001"})
    assert status == 200 and body["ticket"]["counter"] == "c2"
    status, body = post("/api/counters/c1/call", {})
    assert status == 409 and "needs its number" in body["error"]
    assert post("/api/counters/c1/jump")[0] == 404
    # the simulator's API presses the priority button, then the service button
    assert post("/sim/press/B?priority=disabled") == (200, {"ok": True})
    wait_for(lambda: engine.ticket("B002") is not None, timeout=5, what="B002 from /sim/press")
    assert engine.ticket("B002").priority == "disabled"
    status, body = post("/sim/press/B?priority=merit")  # the sim center has no merit button
    assert status == 404 and "no dispenser priority button for class 'merit" in body["error"]
    assert post("/sim/key/k1/hold") == (200, {"ok": True})  # c1 holds nothing (B001 went to c2): refused, logged
    assert engine.held() == []


def test_serial_call_pad_on_the_agent_issue_key_typed_call_hold_and_cooldown(tmp_path: Path, broker,  # noqa: ANN001
                                                                             stack: list) -> None:
    """A reception desk and a counter on one RS-485 bus (ASCII boards + call pads), through the whole agent."""
    from civiq.dev.broker import free_port
    from civiq.edge.cli import make_agent
    from civiq.edge.config import load_config
    from civiq.edge.sim.example import sim_center_yaml

    text = sim_center_yaml(broker.port, center="xa-pad", http_port=free_port(), state_dir=tmp_path / "state")
    text = text.replace("protocol: modbus, port: /dev/civiq-rs485, baudrate: 9600, address: 1, digits: 4",
                        "protocol: ascii, port: /dev/civiq-rs485, baudrate: 9600, address: 1, width: 8")
    text = text.replace("protocol: modbus, port: /dev/civiq-rs485, baudrate: 9600, address: 2, digits: 4",
                        "protocol: ascii, port: /dev/civiq-rs485, baudrate: 9600, address: 2, width: 8")
    text = text.replace("keypads:\n", "keypads:\n  - {id: k3, counter: c2, kind: serial, port: /dev/civiq-rs485, "
                        "address: 11, issue: [{code: '1', service: A, priority: pregnant}]}\n")
    path = tmp_path / "pad.yaml"
    path.write_text(text, encoding="utf-8")
    agent = make_agent(load_config(path), simulate=True)
    agent.start()

    class Stop:
        def stop(self) -> None:
            try:
                agent.stop()
            finally:
                agent.sim.stop()

    stack.append(Stop())
    sim, engine = agent.sim, agent.engine
    pad = sim.emulators["/dev/civiq-rs485"].pads[11]
    sim.press_button("A")  # A001, normal
    sim.press_key("k3", "1")  # the reception key: a pregnant woman's priority ticket A002, printed
    wait_for(lambda: engine.ticket("A002") is not None, timeout=5, what="A002 issued from the call pad")
    assert engine.ticket("A002").priority == "pregnant"
    assert sim.emulator_of("p1").wait_tickets(2, timeout=10)[1].all_text().count("A002") == 1
    issued = [e for e in engine.store.events() if e.type == "ticket.issued"][-1]
    assert issued.data["by"] == "keypad:k3"
    sim.press_key("k3", "call", ticket="A001")  # typed on the pad, then X: out of order (A002 is first in line)
    wait_for(lambda: sim.shown("d2") == "A001" and pad.lcd == "A001", timeout=5, what="A001 on c2's board and pad")
    call = [e for e in engine.store.events() if e.type == "ticket.called"][-1]
    assert call.data["out_of_order"] is True and call.data["by"] == "keypad:k3"
    sim.press_key("k3", "recall")  # inside the 10 s cooldown: refused, the pad says how long to wait
    wait_for(lambda: pad.lcd.startswith("CHO "), timeout=5, what="the cooldown on the pad's LCD")
    assert pad.lcd.endswith("S") and [e for e in engine.store.events() if e.type == "ticket.recalled"] == []
    sim.press_key("k3", "hold")
    wait_for(lambda: pad.lcd == "GIU A001", timeout=5, what="GIU A001 on the pad")
    wait_for(lambda: sim.shown("d2") == "", timeout=5, what="c2's board blank")
    sim.press_key("k3", "call_held")  # nothing typed: the oldest held here
    wait_for(lambda: pad.lcd == "A001" and engine.counter("c2").ticket == "A001", timeout=5)
    assert [e for e in engine.store.events() if e.type == "ticket.called"][-1].data["from_hold"] is True
