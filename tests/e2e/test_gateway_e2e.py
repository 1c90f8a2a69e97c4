"""The gateway end to end, with real parts: Mosquitto, edge agents on emulated hardware (in-process and as
``civiq edge run --simulate`` processes), the gateway's SQLite files, and a real HTTP webhook for on-call.

* on-call hears each incident once: kill -9 of an edge process, a printer out of paper, a flapping printer;
* a gateway restart keeps the live state, the alert state (without announcing again) and the history;
* a policy pushed by the gateway changes what the edge's counter calls next.

Timings are the product's real ones (edge health every 15 s), except the gateway's heartbeat timeout (20 s
rather than 45 s) and the on-call test's alert hold-down (clear_after_s 12 s rather than 30 s: still longer
than the flapping printer's period, which is what it must damp).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from civiq.contract import EventType, Policy, PriorityRule, WorkProfile
from civiq.gateway.service import Gateway, load_secret
from civiq.gateway.web import ticket_token
from tests.conftest import wait_for
from tests.e2e.system import (
    ApiClient,
    EdgeProcess,
    SimCenter,
    Webhook,
    base_url,
    gateway_settings,
    start_gateway,
)

KEEPALIVE_S = 5  # the centers' MQTT keepalive (tests/e2e/centers.py)
HEARTBEAT_S = 20.0  # > the edge's 15 s health interval
CLEAR_AFTER_S = 12.0  # > the flapping printer's 2 s period


@pytest.fixture
def stack() -> Iterator[list]:
    """Things to stop at the end, newest first (edges before the gateway)."""
    things: list = []
    yield things
    for t in reversed(things):
        try:
            t.stop()
        except Exception:  # noqa: BLE001 - stop the rest anyway
            pass


def node_status(gw: Gateway, center: str) -> str | None:
    c = gw.view.center(center)
    return c["nodes"][0]["status"] if c and c["nodes"] else None


# ------------------------------------------------------------------------------------------ on-call
def test_on_call_hears_each_incident_once(tmp_path: Path, broker, hook: Webhook, stack: list) -> None:  # noqa: ANN001
    gw = start_gateway(gateway_settings(tmp_path / "gw", broker.port, heartbeat_timeout_s=HEARTBEAT_S,
                                        alerts={"webhooks": [hook.url], "clear_after_s": CLEAR_AFTER_S}))
    stack.append(gw)
    edge = EdgeProcess(tmp_path, broker.port, "xa-kill")
    stack.append(edge)
    flappy = SimCenter(tmp_path, broker.port, "xa-flap").start()
    stack.append(flappy)
    edge.start()
    for c in ("xa-kill", "xa-flap"):
        wait_for(lambda c=c: node_status(gw, c) == "online", timeout=10, what=f"{c} online at the gateway")

    # 1. a printer runs out of paper (the edge process's emulator, over its local API): one alert
    paper_key = "xa-kill/pi-1/p1/printer_paper_out"
    t_out = time.monotonic()
    edge.http("/sim/printers/p1/status", "POST", {"paper_out": True})

    # 2. meanwhile another center's printer flaps: paper out/in every second for ten seconds
    flap_key = "xa-flap/pi-1/p1/printer_paper_out"
    flapping_done = threading.Event()

    def flap() -> None:
        try:
            for i in range(10):
                flappy.agent.sim.set_printer("p1", paper_out=i % 2 == 0)
                time.sleep(1.0)  # the stimulus itself is paced in time, like a loose paper sensor
            flappy.agent.sim.set_printer("p1", paper_out=False)
        finally:
            flapping_done.set()

    flapper = threading.Thread(target=flap, name="flap")
    flapper.start()

    wait_for(lambda: hook.messages(key=paper_key, state="firing"), timeout=10, what="the paper-out alert")
    paper_latency = hook.times(paper_key, "firing")[0] - t_out
    time.sleep(1.0)  # more health reports while the paper is still out: they must not announce again
    assert len(hook.messages(key=paper_key)) == 1, hook.summary()
    edge.http("/sim/printers/p1/status", "POST", {"paper_out": False})

    # 3. kill -9 the edge process: the gateway has heard it since it started, so no start-up grace holds it
    node_key = "xa-kill/pi-1/node_offline"
    t_kill = time.monotonic()
    edge.kill9()
    budget = 1.5 * KEEPALIVE_S + 2
    wait_for(lambda: hook.messages(key=node_key, state="firing"), timeout=budget, interval=0.02,
             what=f"the offline alert within {budget} s of the kill")
    offline_latency = hook.times(node_key, "firing")[0] - t_kill
    assert node_status(gw, "xa-kill") == "offline"
    edge.start()  # the technician restarts it: it comes back with a new birth
    wait_for(lambda: node_status(gw, "xa-kill") == "online", timeout=10, what="xa-kill back online")
    t_back = time.monotonic()

    # 4. recoveries: each after clear_after_s of being fine, one per incident
    flapping_done.wait(15)
    flapper.join(5)
    for key in (paper_key, flap_key, node_key):
        wait_for(lambda key=key: hook.messages(key=key, state="resolved"), timeout=CLEAR_AFTER_S + 15, interval=0.1,
                 what=f"the recovery of {key}")
    recovery_after = hook.times(node_key, "resolved")[0] - t_back
    seen = hook.summary()
    time.sleep(4.0)  # then nothing more: no late repeat, no storm
    assert hook.summary() == seen
    expected = {(k, s, "") for k in (paper_key, flap_key, node_key) for s in ("firing", "resolved")}
    assert sorted(seen) == sorted(expected), f"exactly one alert and one recovery per incident, got {seen}"
    assert len(hook.messages(key=flap_key, state="firing")) == 1  # ten seconds of flapping: one alert
    print(f"\nlatencies: paper out -> webhook {paper_latency:.2f} s; kill -9 -> webhook {offline_latency:.2f} s; "
          f"back online -> recovery {recovery_after:.1f} s (clear_after_s {CLEAR_AFTER_S:.0f})")
    assert recovery_after >= CLEAR_AFTER_S - 1  # the engine waited out clear_after_s: no premature all-clear


# ------------------------------------------------------------------------------------------ restart
def test_gateway_restart_keeps_live_state_alerts_and_history(tmp_path: Path, broker, hook: Webhook,  # noqa: ANN001
                                                              stack: list) -> None:
    settings = gateway_settings(tmp_path / "gw", broker.port, alerts={"webhooks": [hook.url]})
    gw = start_gateway(settings)
    stack.append(gw)
    center = SimCenter(tmp_path, broker.port, "xa-r").start()
    stack.append(center)
    sim, engine = center.agent.sim, center.agent.engine
    for svc in "AAAB":
        sim.press_button(svc)
    sim.press_key("k1", "next")  # A001 called: A waiting 2, B waiting 1
    wait_for(lambda: (gw.view.center("xa-r") or {}).get("counters", {}).get("c1", {}).get("ticket") == "A001"
             and gw.view.center("xa-r")["services"]["A"]["waiting"] == 2, timeout=10, what="live state")
    sim.set_printer("p1", paper_out=True)
    paper_key = "xa-r/pi-1/p1/printer_paper_out"
    wait_for(lambda: hook.messages(key=paper_key, state="firing"), timeout=10, what="the paper-out alert")
    history = gw.store.series("xa-r", "waiting_total", key="")[""]
    assert history and history[-1][1] == 3
    label = engine.waiting("A")[-1].label
    token = ticket_token(load_secret(settings.data_dir / "secret.key"), "xa-r", engine.day, label)
    assert gw.view.public_ticket("xa-r", engine.day, label)["ahead"] == 1

    gw.stop()
    stack.remove(gw)
    sim.press_key("k2", "next")  # the center goes on while the gateway is away: c2 calls the next ticket
    called = wait_for(lambda: engine.counter("c2").ticket, timeout=5, what="c2 calls a ticket")

    gw = start_gateway(settings)  # same data dir, same port
    stack.insert(0, gw)
    t_start = time.monotonic()
    # the alert state is back at once, from the gateway's own files
    assert paper_key in [a["key"] for a in gw.view.alerts("xa-r")]
    paper = next(a for a in gw.view.alerts("xa-r") if a["key"] == paper_key)  # the page shows one language
    assert (paper["title_vi"], paper["title_en"]) == ("Máy in hết giấy", "Printer out of paper")
    # the live state is back within a few seconds, with what happened while the gateway was away
    wait_for(lambda: node_status(gw, "xa-r") == "online"
             and gw.view.center("xa-r")["counters"]["c2"]["ticket"] == called, timeout=5,
             what=f"the live state after the restart, with {called} at c2")
    live_after = time.monotonic() - t_start
    c = gw.view.center("xa-r")
    assert c["services"]["A"]["waiting"] + c["services"]["B"]["waiting"] == 2
    assert c["name"] and c["services"]["A"]["name"] == "Đất đai"
    # history from before the restart, through the API a manager's browser uses
    api = ApiClient(base_url(gw)).login()
    since = (history[0][0] - timedelta(minutes=1)).isoformat()
    points = api.get(f"/api/v1/centers/xa-r/history?metric=waiting&since={since.replace('+', '%2B')}")["points"]
    assert [p[0] for p in points][: len(history)] == [t.isoformat() for t, _ in history]
    issued = api.get(f"/api/v1/centers/xa-r/history?metric=issued&since={since.replace('+', '%2B')}")["points"]
    assert issued and issued[-1][1] == 4  # A001-A003 and B001, counted from the events kept on disk
    # the citizen's QR code still works, and the position moved on
    public = api.get(f"/api/v1/public/tickets/{token}")
    assert public["found"] and public["ahead"] == engine.position(label) == 0, public  # c2 took A002
    # the printer is still out of paper: the next health report confirms the alert, nobody is told twice
    seq_before = gw.ingest.stats["processed"]
    center.agent._publish_health()  # what the edge's loop does every 15 s, now rather than later
    wait_for(lambda: gw.ingest.stats["processed"] > seq_before and gw.ingest.wait_idle(1), timeout=5)
    assert [a["key"] for a in gw.view.alerts("xa-r")] == [paper_key]
    time.sleep(2.0)
    assert hook.summary() == [(paper_key, "firing", "")], "the restart must not announce anything again"
    print(f"\nrestart: live state back {live_after:.2f} s after the new gateway connected")


# ------------------------------------------------------------------------------------------ policy
def shape(profile) -> tuple[list[str], list[tuple[str, float]]]:  # noqa: ANN001 - config or contract model
    return list(profile.services), [(r.service, r.over_minutes) for r in profile.rules]


def test_pushed_policy_changes_the_next_call(tmp_path: Path, broker, stack: list) -> None:  # noqa: ANN001
    gw = start_gateway(gateway_settings(tmp_path / "gw", broker.port))
    stack.append(gw)
    center = SimCenter(tmp_path, broker.port, "xa-p").start()
    stack.append(center)
    sim, engine = center.agent.sim, center.agent.engine
    wait_for(lambda: node_status(gw, "xa-p") == "online", timeout=10, what="xa-p online")
    assert shape(engine.profile("c1")) == (["A", "B"], [])
    sim.press_button("A")  # A001 waits longest...
    sim.press_button("B")
    wait_for(lambda: gw.view.center("xa-p")["services"].get("B", {}).get("waiting") == 1, timeout=10,
             what="B001 seen")  # B appears in the live view with the first snapshot that has it

    # ...but the province now wants counter c1 to take civil status (B) first once it waits over 0.6 s
    profile = WorkProfile(services=["B", "A"], rules=[PriorityRule(service="B", over_minutes=0.01)])
    policy = Policy(version=int(gw.clock.now().timestamp()), counters={"c1": profile},
                    reason="e2e: hộ tịch trước / civil status first")
    assert gw.push_policy("xa-p", policy) == ["pi-1"]
    wait_for(lambda: shape(engine.profile("c1")) == (["B", "A"], [("B", 0.01)]), timeout=5,
             what="the edge applies the policy")
    assert engine.policy_version == policy.version
    wait_for(lambda: any(e.type == EventType.policy_applied.value for e in gw.store.events_between(
        "xa-p", gw.clock.now() - timedelta(minutes=5), gw.clock.now() + timedelta(minutes=1))),
        timeout=5, what="the gateway hears the policy was applied")
    wait_for(lambda: engine.waiting("B")[0].issued_at < gw.clock.now() - timedelta(seconds=0.7), timeout=3)

    sim.press_key("k1", "next")
    wait_for(lambda: sim.shown("d1") == "B001", timeout=5, what="B001 on counter c1's display")
    assert engine.counter("c1").ticket == "B001"
    assert [t.label for t in engine.waiting("A")] == ["A001"]  # the older A ticket still waits
    wait_for(lambda: gw.view.center("xa-p")["counters"]["c1"]["ticket"] == "B001", timeout=5,
             what="the gateway shows B001 at c1")
    # c2 keeps its configured profile and takes the longest-waiting ticket
    assert shape(engine.profile("c2")) == (["B", "A"], [("A", 30)])
