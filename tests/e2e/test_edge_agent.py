"""The edge agent as a whole: mock pins and pty emulators on one side, a real Mosquitto on the other."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from civiq.contract import (
    CmdResult,
    DeviceState,
    DisplayCmd,
    Event,
    EventType,
    QueueSnapshot,
    Status,
    cmd_topic,
    parse_payload,
)
from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from tests.conftest import wait_for
from tests.e2e.centers import write_center

CENTER, NODE = "test-xa", "pi-1"
PREFIX = f"civiq/v1/{CENTER}/{NODE}"


@pytest.fixture
def agent(tmp_path: Path, broker):  # noqa: ANN001, ANN201
    cfg = load_config(write_center(tmp_path, broker.port, http_port=free_port()))
    a = make_agent(cfg, simulate=True)
    a.start()
    try:
        yield a
    finally:
        a.stop()
        a.sim.stop()


def events(rec) -> list[Event]:  # noqa: ANN001
    return [parse_payload(Event, p) for p in rec.on("/event")]


def first_arrivals(rec) -> list[int]:  # noqa: ANN001
    seen: list[int] = []
    for e in events(rec):
        if e.seq not in seen:
            seen.append(e.seq)
    return seen


def publish(broker, topic: str, payload: bytes) -> None:  # noqa: ANN001
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.connect(broker.host, broker.port)
    c.loop_start()
    c.publish(topic, payload, qos=1).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


def test_button_press_prints_ticket_and_publishes_event(agent, recorder) -> None:  # noqa: ANN001
    rec = recorder(f"{PREFIX}/#")
    agent.sim.press_button("A")
    tickets = agent.sim.emulator_of("p1").wait_tickets(1, timeout=10)
    printed = tickets[0]
    assert "A001" in printed.all_text()
    assert printed.qr and "dichvucong.gov.vn" in printed.qr[0]
    assert printed.images and printed.images[0].size[0] == 576  # Vietnamese lines as a raster image
    issued = wait_for(lambda: [e for e in events(rec) if e.type == EventType.ticket_issued], what="event")
    assert issued[0].data["ticket"] == "A001" and issued[0].data["service"] == "A"
    birth = parse_payload(Status, wait_for(lambda: rec.on("/status"), what="birth")[0])
    assert birth.online and {d.id for d in birth.devices} >= {"p1", "d1", "d2", "k1", "q1"}
    snap = wait_for(lambda: [s for s in (parse_payload(QueueSnapshot, p) for p in rec.on("/queue"))
                             if s.services.get("A") and s.services["A"].waiting == 1], what="snapshot")
    assert snap[-1].services["A"].issued_today == 1


def test_keypad_next_shows_number_on_display(agent) -> None:  # noqa: ANN001
    agent.sim.press_button("B")
    wait_for(lambda: agent.engine.snapshot().services["B"].waiting == 1, what="ticket B001 issued")
    agent.sim.press_key("k1", "next")
    wait_for(lambda: agent.sim.shown("d1") == "B001", what="B001 on display d1")
    assert agent.sim.shown("d2") == ""
    agent.sim.press_key("k2", "next")  # nothing waiting: the display of c2 stays dark
    agent.sim.press_button("A")
    wait_for(lambda: agent.engine.snapshot().services["A"].waiting == 1, what="A001 issued")
    agent.sim.press_key("k2", "next")
    wait_for(lambda: agent.sim.shown("d2") == "A001", what="A001 on display d2")


def test_broker_outage_every_event_once_in_order(agent, broker, recorder) -> None:  # noqa: ANN001
    rec = recorder(f"{PREFIX}/event", persistent=True)
    agent.sim.press_button("A")
    wait_for(lambda: first_arrivals(rec) == [1], what="first event")
    broker.stop()
    wait_for(lambda: not agent.link.connected, what="agent notices the broker is gone")
    for service in "ABABA":
        before = agent.engine.snapshot().services[service].issued_today
        agent.sim.press_button(service)
        wait_for(lambda s=service, b=before: agent.engine.snapshot().services[s].issued_today == b + 1)
    for _ in range(3):
        agent.sim.press_key("k1", "next")
    wait_for(lambda: agent.store.last_seq() >= 1 + 5 + 3, what="events logged while offline")
    last = agent.store.last_seq()
    assert agent.store.pending_count() >= last - 1
    broker.start()
    try:
        wait_for(lambda: first_arrivals(rec) == list(range(1, last + 1)), timeout=30,
                 what=f"seqs 1..{last} after the outage")
    except AssertionError:
        raise AssertionError(f"arrived {first_arrivals(rec)}; connected={agent.link.connected} "
                             f"pending={agent.store.pending_count()} stats={agent.link.stats}") from None
    wait_for(lambda: agent.store.pending_count() == 0, what="outbox drained")
    labels = [e.data["ticket"] for e in events(rec) if e.type == EventType.ticket_issued]
    assert len(set(labels)) == 6


def test_unplugged_printer_is_reported_and_queue_goes_on(agent, recorder) -> None:  # noqa: ANN001
    rec = recorder(f"{PREFIX}/#")
    agent.sim.press_button("A")
    agent.sim.emulator_of("p1").wait_tickets(1, timeout=10)
    agent.sim.unplug("p1")
    wait_for(lambda: agent.hw.printers["p1"].health().state == DeviceState.offline, timeout=15,
             what="printer seen offline")
    fault = wait_for(lambda: [e for e in events(rec) if e.type == EventType.device_fault
                              and e.data["device"] == "p1"], what="device.fault event")
    assert "does not answer" in fault[0].data["detail"] or "cannot open" in fault[0].data["detail"]
    agent.sim.press_button("B")  # no paper can come out: no ticket nobody holds
    assert agent.refused_presses == 1
    assert agent.engine.snapshot().services["B"].issued_today == 0
    agent.sim.press_key("k1", "next")  # the queue goes on
    wait_for(lambda: agent.engine.snapshot().counters["c1"].ticket == "A001", what="A001 called")
    agent.sim.plug("p1")
    wait_for(lambda: agent.hw.printers["p1"].health().state == DeviceState.ok, timeout=15, what="recovered")
    wait_for(lambda: [e for e in events(rec) if e.type == EventType.device_recovered], what="recovery event")
    agent.sim.press_button("B")
    wait_for(lambda: any("B001" in t.all_text() for t in agent.sim.printed("p1")), what="B001 printed")


def test_display_that_stops_answering(agent, recorder) -> None:  # noqa: ANN001
    rec = recorder(f"{PREFIX}/#")
    agent.sim.mute("d1")
    agent.sim.press_button("A")
    wait_for(lambda: agent.engine.snapshot().services["A"].waiting == 1)
    agent.sim.press_key("k1", "next")
    wait_for(lambda: agent.engine.snapshot().counters["c1"].ticket == "A001", what="call still works")
    wait_for(lambda: agent.hw.displays["d1"].health().state == DeviceState.offline, timeout=15)
    wait_for(lambda: [e for e in events(rec) if e.type == EventType.device_fault and e.data["device"] == "d1"])
    assert agent.sim.shown("d2") == ""
    agent.sim.mute("d1", False)
    agent.sim.press_button("A")
    wait_for(lambda: agent.engine.snapshot().services["A"].waiting == 1)
    agent.sim.press_key("k1", "next")
    wait_for(lambda: agent.sim.shown("d1") == "A002", timeout=10, what="display back")


def test_bad_and_good_commands(agent, broker, recorder) -> None:  # noqa: ANN001
    rec = recorder(f"{PREFIX}/cmd_result")
    wait_for(lambda: agent.link.connected)
    publish(broker, cmd_topic(CENTER, NODE, "display"), b'{"id": "x1", "text": 42, "seconds": -1}')
    publish(broker, cmd_topic(CENTER, NODE, "display"), b"\xff\xfenot json")
    res = wait_for(lambda: [parse_payload(CmdResult, p) for p in rec.on("/cmd_result")], what="result")
    assert res[0].id == "x1" and not res[0].ok and res[0].error
    good = DisplayCmd(id="x2", text="NGHỈ", seconds=5).to_json()
    publish(broker, cmd_topic(CENTER, NODE, "display"), good)
    ok = wait_for(lambda: [r for r in (parse_payload(CmdResult, p) for p in rec.on("/cmd_result"))
                           if r.id == "x2"], what="good result")
    assert ok[0].ok
    wait_for(lambda: agent.sim.shown("d1") == "NGHỈ" or agent.sim.shown("d1").startswith("NGH"),
             what="message on display")
    agent.sim.press_button("A")  # and the queue still works
    wait_for(lambda: agent.engine.snapshot().services["A"].waiting == 1)


# ------------------------------------------------------------------------------------ processes
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _http(port: int, path: str, method: str = "GET", body: bytes | None = None) -> object:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=body)
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture
def run_agent(tmp_path: Path) -> Iterator:
    procs: list[subprocess.Popen] = []

    def start(config: Path, http_port: int) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-m", "civiq", "edge", "run", str(config), "--simulate"],
                             env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(p)

        def up() -> bool:
            if p.poll() is not None:
                raise AssertionError(f"agent exited: {p.stdout.read().decode()}")
            try:
                return bool(_http(http_port, "/api/state"))
            except OSError:
                return False

        wait_for(up, timeout=20, what="agent's local API")
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def test_kill9_mid_burst_loses_nothing_reuses_nothing(tmp_path: Path, broker, recorder, run_agent) -> None:  # noqa: ANN001
    http_port = free_port()
    config = write_center(tmp_path, broker.port, http_port=http_port)
    rec = recorder(f"{PREFIX}/event", persistent=True)
    state_db = tmp_path / f"state-{CENTER}-{NODE}" / "edge.db"
    for round_ in range(3):
        proc = run_agent(config, http_port)
        stop = threading.Event()

        def burst(stop: threading.Event = stop) -> None:
            i = 0
            while not stop.is_set():
                try:
                    _http(http_port, f"/sim/press/{'AB'[i % 2]}", "POST")
                    if i % 3 == 0:
                        _http(http_port, "/sim/key/k1/next", "POST")
                except OSError:
                    return
                i += 1

        t = threading.Thread(target=burst)
        t.start()
        wait_for(lambda n=10 * (round_ + 1): len(rec.on("/event")) > n, timeout=20, what="burst under way")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop.set()
        t.join(10)
    run_agent(config, http_port)  # a final clean run sends what the last kill left in the outbox
    db = sqlite3.connect(state_db)
    last = db.execute("SELECT max(seq) FROM events").fetchone()[0]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    wait_for(lambda: set(first_arrivals(rec)) == set(range(1, last + 1)), timeout=30,
             what=f"every seq 1..{last} on the broker")
    issued = [(e.data["day"], e.data["ticket"]) for e in events(rec) if e.type == EventType.ticket_issued]
    unique_by_seq = {e.seq: (e.data["day"], e.data["ticket"]) for e in events(rec)
                     if e.type == EventType.ticket_issued}
    assert len(set(unique_by_seq.values())) == len(unique_by_seq), "a ticket number was issued twice"
    assert len(issued) >= len(unique_by_seq)


def test_doctor_on_a_simulated_center(tmp_path: Path, broker, run_agent) -> None:  # noqa: ANN001
    http_port = free_port()
    config = write_center(tmp_path, broker.port, http_port=http_port)
    run_agent(config, http_port)
    doctor = [sys.executable, "-m", "civiq", "edge", "doctor", str(config), "--simulate"]
    ok = subprocess.run(doctor, env=_env(), capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "✔ printer p1" in ok.stdout and "✔ MQTT broker" in ok.stdout
    _http(http_port, "/sim/devices/p1/unplug", "POST")
    wait_for(lambda: any(d["id"] == "p1" and d["state"] == "offline"
                         for d in _http(http_port, "/api/health")["devices"]), timeout=15)
    bad = subprocess.run(doctor, env=_env(), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    line = next(ln for ln in bad.stdout.splitlines() if "printer p1" in ln)
    assert line.startswith("✘") and ("does not answer" in line or "cannot open" in line), bad.stdout


def test_invalid_config_refuses_to_start(tmp_path: Path, broker) -> None:  # noqa: ANN001
    config = write_center(tmp_path, broker.port, http_port=free_port())
    text = config.read_text().replace("profile: {services: [A, B]}", "profile: {services: [A, X]}")
    config.write_text(text.replace("baudrate: 19200", "baudrat: 19200"))
    r = subprocess.run([sys.executable, "-m", "civiq", "edge", "run", str(config), "--simulate"], env=_env(),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert f"{config.name}:11:" in r.stderr and "'X'" in r.stderr  # the counters line, the bad service
    assert f"{config.name}:15:" in r.stderr and "baudrate" in r.stderr  # the typo, with a suggestion


def test_a_busy_api_port_is_one_line_naming_the_option(tmp_path: Path, broker) -> None:  # noqa: ANN001
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        r = subprocess.run([sys.executable, "-m", "civiq", "edge", "run", str(write_center(tmp_path, broker.port)),
                            "--simulate", "--api-port", str(port)], env=_env(), capture_output=True, text=True,
                           timeout=30)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr, r.stderr
    errors = [x for x in r.stderr.splitlines() if " INFO " not in x and x.strip()]  # the log's INFO lines aside
    assert len(errors) == 1 and f"port {port}" in errors[0] and "--api-port" in errors[0], r.stderr


def test_test_print_and_display_test_through_the_running_agent(tmp_path: Path, broker, run_agent) -> None:  # noqa: ANN001
    http_port = free_port()
    config = write_center(tmp_path, broker.port, http_port=http_port)
    run_agent(config, http_port)
    before = len(_http(http_port, "/sim/printers/p1/tickets"))
    cmd = [sys.executable, "-m", "civiq", "edge"]
    r = subprocess.run([*cmd, "test-print", str(config)], env=_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "printed on p1" in r.stdout
    tickets = _http(http_port, "/sim/printers/p1/tickets")
    assert len(tickets) == before + 1 and tickets[-1]["images"], "a test ticket came out of the printer"
    from PIL import Image

    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/sim/printers/p1/tickets/{len(tickets) - 1}.png",
                                timeout=5) as r:
        page = Image.open(io.BytesIO(r.read()))  # the paper as the simulator shows it
    assert page.size[0] == 576 and page.convert("L").histogram()[0] > 500
    r = subprocess.run([*cmd, "display-test", str(config)], env=_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _http(http_port, "/sim/displays") == {"d1": "D1", "d2": "D2"}
    _http(http_port, "/sim/devices/d2/mute", "POST")
    r = subprocess.run([*cmd, "display-test", str(config)], env=_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "display d2:" in r.stdout and "does not answer" in r.stdout, r.stdout


def test_ticket_qr_links_to_the_public_page_with_a_token_the_gateway_accepts(tmp_path: Path, broker) -> None:  # noqa: ANN001
    from civiq.tickettoken import center_key, verify_ticket_token

    gateway_secret = b"k" * 32
    key_file = tmp_path / "ticket-key"
    key_file.write_text(center_key(gateway_secret, CENTER).hex())
    key_file.chmod(0o600)
    config = write_center(tmp_path, broker.port, http_port=free_port())
    config.write_text(config.read_text().replace(
        "timezone: Asia/Ho_Chi_Minh}",
        f"timezone: Asia/Ho_Chi_Minh, public_url: 'https://hangdoi.example.vn', ticket_key_file: {key_file}}}"))
    a = make_agent(load_config(config), simulate=True)
    a.start()
    try:
        a.sim.press_button("A")
        qr = a.sim.emulator_of("p1").wait_tickets(1, timeout=10)[0].qr[0]
    finally:
        a.stop()
        a.sim.stop()
    assert qr.startswith("https://hangdoi.example.vn/t/")
    ref = verify_ticket_token(gateway_secret, qr.rsplit("/", 1)[1])
    assert ref is not None and ref.center == CENTER and ref.label == "A001"
    assert verify_ticket_token(b"other" * 8, qr.rsplit("/", 1)[1]) is None
