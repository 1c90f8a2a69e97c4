"""Ratings through a running simulated agent and a real Mosquitto: a citizen presses a GPIO rating key
(MockFactory) after the clerk's "done", and exactly one ``ticket.rated`` reaches the broker; a press
outside the window is ignored and counted in the pad's health; the RS-485 pad lights its keys."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civiq.contract import Event, EventType, Health, Status, parse_payload
from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from civiq.edge.sim.api import sim_routes
from civiq.edge.web import agent_app, agent_routes
from civiq.webthread import WebThread
from tests.conftest import wait_for
from tests.e2e.rating_center import write_rating_center

PREFIX = "civiq/v1/test-xa/pi-1"


@pytest.fixture
def agent(tmp_path: Path, broker) -> Iterator[Any]:  # noqa: ANN001
    cfg = load_config(write_rating_center(tmp_path, broker.port))
    a = make_agent(cfg, simulate=True)
    a.start()
    server = WebThread(agent_app(agent_routes(a) + sim_routes(a.sim)), port=free_port()).start()
    a.test_url = f"http://127.0.0.1:{server.port}"
    try:
        yield a
    finally:
        a.stop()
        server.stop()
        a.sim.stop()


def rated(rec) -> list[Event]:  # noqa: ANN001
    evs = [parse_payload(Event, p) for p in rec.on("/event")]
    return list({e.seq: e for e in evs if e.type == EventType.ticket_rated}.values())


def post(url: str) -> dict:
    req = urllib.request.Request(url, method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_a_gpio_key_after_done_makes_one_rated_event_on_the_broker(agent, recorder) -> None:  # noqa: ANN001
    rec = recorder(f"{PREFIX}/#")
    sim = agent.sim
    birth = parse_payload(Status, wait_for(lambda: rec.on("/status"), what="birth")[0])
    assert birth.rating_scale == 5 and birth.rating_reasons["wait"].name_vi == "Chờ đợi lâu"
    assert {d.id: d.kind for d in birth.devices if d.kind == "ratingpad"} == {
        "r1": "ratingpad", "r2": "ratingpad", "rp1": "ratingpad", "rp2": "ratingpad"}

    sim.rate("r1", 5)  # nobody served yet: ignored, counted
    sim.press_button("A")
    sim.press_key("k1", "next")
    wait_for(lambda: agent.engine.counter("c1").ticket == "A001", what="A001 called at c1")
    lamp = sim.pin_factory.pin(18)
    assert lamp.state == 0  # dark: nothing to rate
    sim.press_key("k1", "done")
    wait_for(lambda: lamp.state == 1, what="the rating lamp of c1 lit")
    sim.rate("r1", 4)
    sim.rate("r1", 1)  # a second press: the ticket has its rating
    (ev,) = wait_for(lambda: rated(rec), what="ticket.rated on the broker")
    assert ev.data == {"ticket": "A001", "service": "A", "counter": "c1", "day": ev.data["day"], "score": 4,
                       "scale": 5, "reasons": [], "clerk": None, "by": "keys:r1"}
    assert lamp.state == 0  # thanked: dark again

    # the counts: in the pad's health detail (published), in /api/rating
    def r1_health() -> str:
        for p in rec.on("/health"):
            for d in parse_payload(Health, p).devices:
                if d.id == "r1" and "ignored outside a rating window 1" in d.detail and "repeats 1" in d.detail:
                    return d.detail
        agent._publish_health()  # noqa: SLF001 - the next 15 s health report, now
        return ""

    assert "ratings 1" in wait_for(r1_health, what="r1's counts in a health report")
    with urllib.request.urlopen(f"{agent.test_url}/api/rating", timeout=10) as r:
        api = json.loads(r.read())
    assert api["devices"]["r1"]["outside_window"] == 1 and api["devices"]["r1"]["ratings"] == 1
    assert api["windows"]["c1"]["state"] == "done" and api["scale"] == 5
    # what `civiq edge doctor` prints for it (it reads the running agent's /api/health)
    from civiq.edge.doctor import _describe, _device_findings

    lines = [f.line() for f in _device_findings(agent.health().model_dump(mode="json")["devices"],
                                                 _describe(agent.cfg))]
    assert "✔ ratingpad r1 (rating at counter c1, GPIO keys): ratings 1, ignored outside a rating window 1, " \
           "repeats 1" in lines
    assert any(line.startswith("✔ ratingpad r2 (rating at counter c2, RS-485 address 21 on /dev/civiq-rating)")
               for line in lines)
    assert len(rated(rec)) == 1


def test_the_rs485_pad_lights_its_keys_and_rates_with_reasons_through_the_sim_api(agent, recorder) -> None:  # noqa: ANN001
    rec = recorder(f"{PREFIX}/event")
    sim, pad = agent.sim, agent.sim.rating_pad("r2")
    agent.counter_action("c2", "sign_in", clerk="lan")  # the rating says who served
    sim.press_button("B")
    sim.press_key("k2", "next")
    wait_for(lambda: agent.engine.counter("c2").ticket == "B001", what="B001 called at c2")
    agent.counter_action("c2", "complete", dossier="H29.22-241205-0001")  # done, with the dossier code
    wait_for(lambda: pad.lamp == "1", what="the pad's score keys lit")
    assert post(f"{agent.test_url}/sim/rate/r2?score=2&reasons=wait,attitude") == {"ok": True}
    (ev,) = wait_for(lambda: rated(rec), timeout=15, what="ticket.rated with reasons")
    assert (ev.data["ticket"], ev.data["score"], ev.data["reasons"], ev.data["by"]) == (
        "B001", 2, ["wait", "attitude"], "pad:r2")
    assert (ev.data["clerk"], ev.data["dossier"], ev.data["counter"]) == ("lan", "H29.22-241205-0001", "c2")
    assert pad.lamps[:2] == ["1", "2"] and pad.lamp == "3"  # score keys, reason keys, thank you


# not "this machine" for the agent: three devices on the LAN
TABLET, STRANGER, C2_TABLET = "127.0.0.3", "127.0.0.2", "127.0.0.4"


def post_from(port: int, path: str, body: dict, source: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def test_only_the_tablets_in_rating_allow_may_rate_from_the_lan(tmp_path: Path, broker) -> None:  # noqa: ANN001
    cfg = load_config(write_rating_center(tmp_path, broker.port, allow=(TABLET,), c2_tablet=(C2_TABLET,)))
    agent = make_agent(cfg, simulate=True)
    server = WebThread(agent_app(agent_routes(agent))).start()
    try:
        agent.on_dispenser_press("A")
        agent.counter_action("c2", "next")
        agent.counter_action("c2", "done")
        status, body = post_from(server.port, "/api/rate/c2", {"score": 1}, STRANGER)
        assert status == 403, body  # anyone else on the LAN: refused before it counts for anything
        assert agent.rating.window("c2")["state"] == "open"
        status, body = post_from(server.port, "/api/rate/c2", {"score": 5}, TABLET)
        assert status == 200 and body["result"] == "recorded" and body["ticket"] == "A001", body
        status, body = post_from(server.port, "/api/rate/c2", {"score": 1}, TABLET)
        assert status == 409 and body["result"] == "repeat", body  # one rating per ticket
        status, body = post_from(server.port, "/api/rate/c1", {"score": 4}, TABLET)
        assert status == 409 and body["result"] == "no_window", body  # nobody served at c1
        assert post_from(server.port, "/api/counters/c2/next", {}, TABLET)[0] == 403  # it may rate, only that
        # counter c2's own tablet (its page's allow) rates at c2 only
        agent.on_dispenser_press("B")
        agent.counter_action("c1", "next")
        agent.counter_action("c1", "done")
        status, body = post_from(server.port, "/api/rate/c1", {"score": 1}, C2_TABLET)
        assert status == 403 and "may not rate at counter c1" in body["error"], body
        agent.on_dispenser_press("A")
        agent.counter_action("c2", "next")
        agent.counter_action("c2", "done")
        status, body = post_from(server.port, "/api/rate/c2", {"score": 4}, C2_TABLET)
        assert status == 200 and body["result"] == "recorded", body
        with pytest.raises(urllib.error.HTTPError) as nope:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/rate/c9", timeout=10)
        assert nope.value.code == 404  # no rating page for that counter
    finally:
        server.stop()
        agent.hall.close()
        agent.hw.close()
        agent.sim.stop()
        agent.store.close()


def test_a_center_without_a_rating_section_has_no_rating(tmp_path: Path, broker) -> None:  # noqa: ANN001
    from tests.e2e.centers import write_center

    agent = make_agent(load_config(write_center(tmp_path, broker.port)), simulate=True)
    server = WebThread(agent_app(agent_routes(agent) + sim_routes(agent.sim))).start()
    try:
        assert agent.rating is None and agent.link.rating_scale is None and agent.link.rating_reasons == {}
        with pytest.raises(urllib.error.HTTPError) as nope:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/rating", timeout=10)
        assert nope.value.code == 404
        with pytest.raises(urllib.error.HTTPError) as nope:
            post(f"http://127.0.0.1:{server.port}/sim/rate/r1?score=4")
        assert nope.value.code == 404 and "no rating device 'r1'" in nope.value.read().decode()
    finally:
        server.stop()
        agent.hall.close()
        agent.hw.close()
        agent.sim.stop()
        agent.store.close()
