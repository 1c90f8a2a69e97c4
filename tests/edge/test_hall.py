"""The hall feed (civiq/edge/hall.py) on the real queue engine (SQLite file): bursts from several counters,
the last N calls, recall / priority / out-of-order marks, the state after a restart; the live stream over
real HTTP; the kiosk's issue call and the ``hall:`` config section."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from civiq.clock import FakeClock
from civiq.edge.config import ConfigError, load_config
from civiq.edge.hall import HallFeed
from civiq.edge.queue import EdgeStore, QueueEngine, ServiceDef
from civiq.edge.queue.profiles import PriorityOrder
from tests.conftest import wait_for

CENTER = """\
center: {{id: hall-x, name: "Trung tâm Hành chính công Thử", timezone: Asia/Ho_Chi_Minh}}
node: {{id: pi-1}}
state_dir: {state}
services:
  - {{prefix: A, name_vi: "Đất đai", name_en: "Land"}}
  - {{prefix: B, name_vi: "Hộ tịch", name_en: "Civil status"}}
counters:
  - {{id: c1, name: "Quầy 1", profile: {{services: [A, B]}}}}
  - {{id: c2, name: "Quầy 2", profile: {{services: [A, B]}}}}
  - {{id: c3, name: "Quầy 3", profile: {{services: [B, A]}}}}
  - {{id: c4, name: "Quầy Một cửa", profile: {{services: [B, A]}}}}
priority: {{rule: first}}
hall: {{recent_calls: {n}, highlight_s: 5}}
"""


def config(tmp_path: Path, n: int = 8, extra: str = ""):  # noqa: ANN201
    p = tmp_path / "center.yaml"
    p.write_text(CENTER.format(state=tmp_path / "state", n=n) + extra, encoding="utf-8")
    return load_config(p)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 5, 1, 0, tzinfo=UTC))  # 08:00 in Ho Chi Minh City


def engine_for(cfg, tmp_path: Path, clock: FakeClock) -> QueueEngine:  # noqa: ANN001
    services = {s.prefix: ServiceDef(s.prefix, s.name_vi, s.name_en) for s in cfg.services}
    return QueueEngine(EdgeStore(tmp_path / "q.db"), clock, services, {c.id: c.profile for c in cfg.counters},
                       tz=cfg.center.timezone, priority=PriorityOrder(),
                       priority_classes=tuple(cfg.priority.enabled()))


def test_a_burst_from_four_counters_loses_no_call(tmp_path: Path, clock: FakeClock) -> None:
    cfg = config(tmp_path, n=20)
    eng = engine_for(cfg, tmp_path, clock)
    feed = HallFeed(cfg, eng)
    seen: list[int] = []
    feed.listen(lambda msg: seen.append(feed.state()["rev"]))
    for i in range(16):
        eng.issue("AB"[i % 2])
    start = threading.Barrier(4)

    def clerk(counter: str) -> None:
        start.wait()
        for _ in range(4):
            eng.call_next(counter)

    threads = [threading.Thread(target=clerk, args=(c,)) for c in ("c1", "c2", "c3", "c4")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    st = feed.state()
    recent = st["recent"]
    assert len(recent) == 16  # every call of the burst is listed
    assert sorted(r["ticket"] for r in recent) == sorted([f"A{i:03d}" for i in range(1, 9)] +
                                                         [f"B{i:03d}" for i in range(1, 9)])
    assert [r["seq"] for r in recent] == sorted((r["seq"] for r in recent), reverse=True)  # newest first
    per_counter = {c: sum(1 for r in recent if r["counter"] == c) for c in ("c1", "c2", "c3", "c4")}
    assert per_counter == {"c1": 4, "c2": 4, "c3": 4, "c4": 4}
    assert {r["counter_name"] for r in recent} == {"Quầy 1", "Quầy 2", "Quầy 3", "Quầy Một cửa"}
    # the "now serving" grid: each counter's last call
    now_serving = {c["id"]: c["ticket"] for c in st["counters"]}
    last_call = {c: next(r["ticket"] for r in recent if r["counter"] == c) for c in now_serving}
    assert now_serving == last_call
    assert seen and seen[-1] == st["rev"]  # listeners heard the last change


def test_only_the_last_n_calls_are_kept_newest_first(tmp_path: Path, clock: FakeClock) -> None:
    cfg = config(tmp_path, n=5)
    eng = engine_for(cfg, tmp_path, clock)
    feed = HallFeed(cfg, eng)
    for _ in range(9):
        eng.issue("A")
    for _ in range(9):
        eng.call_next("c1")
    assert [r["ticket"] for r in feed.state()["recent"]] == ["A009", "A008", "A007", "A006", "A005"]
    assert feed.state()["recent_n"] == 5 and feed.state()["highlight_s"] == 5


def test_recall_priority_out_of_order_and_from_hold_are_marked(tmp_path: Path, clock: FakeClock) -> None:
    cfg = config(tmp_path)
    eng = engine_for(cfg, tmp_path, clock)
    feed = HallFeed(cfg, eng)
    eng.issue("A")
    eng.issue("A", priority="elderly")
    eng.issue("B")
    eng.call_next("c1")  # A002, the elderly ticket, goes first
    eng.recall("c1", by="test")
    eng.call_ticket("c2", "B001", by="test")
    eng.hold("c2", by="test")
    eng.call_held("c2", "B001", by="test")
    recent = feed.state()["recent"]
    first = recent[-1]
    assert first["ticket"] == "A002" and first["priority"] == "elderly" and first["priority_vi"] == "Người cao tuổi"
    assert first["counter_name"] == "Quầy 1" and not first["recall"]
    assert recent[-2]["ticket"] == "A002" and recent[-2]["recall"]
    back = recent[0]
    assert back["ticket"] == "B001" and back["from_hold"] and back["counter"] == "c2"
    counters = {c["id"]: c for c in feed.state()["counters"]}
    assert counters["c1"]["ticket"] == "A002" and counters["c1"]["priority_vi"] == "Người cao tuổi"
    waiting = {s["prefix"]: s["waiting"] for s in feed.state()["services"]}
    assert waiting == {"A": 1, "B": 0}


def test_out_of_order_call_is_marked(tmp_path: Path, clock: FakeClock) -> None:
    cfg = config(tmp_path)
    eng = engine_for(cfg, tmp_path, clock)
    feed = HallFeed(cfg, eng)
    for _ in range(3):
        eng.issue("A")
    eng.call_ticket("c3", "A003", by="test")
    r = feed.state()["recent"][0]
    assert r["ticket"] == "A003" and r["out_of_order"] and r["counter_name"] == "Quầy 3"


def test_a_restarted_feed_shows_todays_calls_again(tmp_path: Path, clock: FakeClock) -> None:
    cfg = config(tmp_path, n=4)
    eng = engine_for(cfg, tmp_path, clock)
    HallFeed(cfg, eng)
    for _ in range(6):
        eng.issue("B")
    for c in ("c1", "c2", "c3", "c4", "c1"):
        eng.call_next(c)
    eng.store.close()
    eng2 = engine_for(cfg, tmp_path, clock)  # the agent restarted on the same event log
    feed2 = HallFeed(cfg, eng2, store=eng2.store)
    st = feed2.state()
    assert [r["ticket"] for r in st["recent"]] == ["B005", "B004", "B003", "B002"]
    assert {c["id"]: c["ticket"] for c in st["counters"]} == {"c1": "B005", "c2": "B002", "c3": "B003",
                                                               "c4": "B004"}
    clock.advance(86400)  # tomorrow: yesterday's calls are not today's board
    eng2.store.close()
    eng3 = engine_for(cfg, tmp_path, clock)
    assert HallFeed(cfg, eng3, store=eng3.store).state()["recent"] == []


def test_hall_config_errors_name_file_line_and_field(tmp_path: Path) -> None:
    cfg = config(tmp_path, extra="")
    assert cfg.hall.kiosk and cfg.hall.kiosk_allow == []
    p = tmp_path / "bad.yaml"
    p.write_text(CENTER.format(state=tmp_path / "s", n=8).replace(
        "hall: {recent_calls: 8, highlight_s: 5}", "hall:\n  recent_calls: 0\n  kiosk_allow: [\"192.168.1.x\"]"),
        encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert f"{p}:" in msg and "hall.recent_calls" in msg and "hall.kiosk_allow[0]" in msg
    assert "'192.168.1.x' is not an IP address" in msg


# ---------------------------------------------------------------------------------------------- HTTP
@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple]:
    """A simulated agent (emulated printer) with its local HTTP server; no broker (the link retries)."""
    from civiq.dev.broker import free_port
    from civiq.edge.cli import make_agent
    from civiq.edge.sim.example import write_sim_center
    from civiq.edge.web import agent_app, agent_routes
    from civiq.webthread import WebThread

    cfg = load_config(write_sim_center(tmp_path, free_port(), http_port=0))
    agent = make_agent(cfg, simulate=True)
    agent.start()
    server = WebThread(agent_app(agent_routes(agent))).start()
    try:
        yield agent, f"http://127.0.0.1:{server.port}"
    finally:
        agent.stop()
        server.stop()
        agent.sim.stop()


def post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_stream_sends_the_full_state_then_every_change_and_ends_when_the_agent_stops(served) -> None:  # noqa: ANN001
    agent, base = served
    for _ in range(6):
        agent.on_dispenser_press("A")
    got: list[dict] = []

    def read() -> None:
        with urllib.request.urlopen(f"{base}/api/hall/stream", timeout=30) as r:
            for line in r:
                if line.startswith(b"data: "):
                    got.append(json.loads(line[6:]))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_for(lambda: got, 5, what="the state on connect")
    assert got[0]["type"] == "state" and [s["waiting"] for s in got[0]["services"]] == [6, 0]
    for c in ("c1", "c2", "c1", "c2"):  # a burst from two counters
        agent.counter_action(c, "next")
    wait_for(lambda: got[-1].get("recent") and len(got[-1]["recent"]) == 4, 5, what="the four calls")
    assert [r["ticket"] for r in got[-1]["recent"]] == ["A004", "A003", "A002", "A001"]
    agent.hall.close()
    reader.join(5)
    assert not reader.is_alive()  # the stream ended: the page reconnects to the next agent


def test_kiosk_issue_prints_refuses_double_taps_and_reports_the_printer(served) -> None:  # noqa: ANN001
    agent, base = served
    agent.sim.set_printer("p1", paper_out=True)
    agent.poll_devices()
    wait_for(lambda: not agent.hall.state()["kiosk"]["printer_ok"], 10, what="the kiosk sees the printer out")
    status, t = post(f"{base}/api/kiosk/issue", {"service": "A"})
    assert status == 503 and t["reason"] == "printer" and not t["ok"]  # no number nobody holds
    assert agent.engine.snapshot().services["A"].issued_today == 0
    agent.sim.set_printer("p1", paper_out=False)
    agent.poll_devices()
    wait_for(lambda: agent.hall.state()["kiosk"]["printer_ok"], 10, what="the kiosk sees the printer back")
    status, t = post(f"{base}/api/kiosk/issue", {"service": "B", "priority": "elderly"})
    assert status == 200 and t["ticket"] == "B001" and t["ahead"] == 0 and t["priority_vi"] == "Người cao tuổi"
    printed = agent.sim.emulator_of("p1").wait_tickets(1, timeout=10)
    assert "B001" in printed[0].all_text()
    status, t = post(f"{base}/api/kiosk/issue", {"service": "B"})
    assert status == 429 and t["reason"] == "double_tap"  # the same screen within a second
    assert post(f"{base}/api/kiosk/issue", {"service": "Z"})[0] == 404
    assert post(f"{base}/api/kiosk/issue", {"service": "A", "priority": "vip"})[0] == 404
    assert agent.engine.snapshot().services["B"].issued_today == 1
    ev = [e for e in agent.store.events() if e.type == "ticket.issued"]
    assert ev[-1].data.get("by") == "kiosk"  # the audit says where the priority ticket came from
