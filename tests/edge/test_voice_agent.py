"""The voice call through a real edge agent in simulation: keypad presses on mock GPIO pins, the queue
engine, a real Mosquitto, the emulated speaker hearing what a citizen in the hall would hear."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
import wave
from pathlib import Path

import pytest

from civiq.contract import EventType
from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from civiq.edge.sim.api import sim_routes
from civiq.edge.voice import audio
from civiq.edge.web import agent_app, agent_routes
from civiq.webthread import WebThread
from tests.conftest import wait_for
from tests.edge.voicepack import SHORT_TEMPLATE, needs_espeak, shared_pack

pytestmark = needs_espeak

CENTER = """\
center: {{id: xa-loa, name: "Trung tâm Phục vụ hành chính công xã Thử Nghiệm"}}
node: {{id: pi-1}}
mqtt: {{host: 127.0.0.1, port: {mqtt_port}, keepalive: 5}}
state_dir: {state}
http: {{host: 127.0.0.1, port: 0}}
queue: {{recall_cooldown_s: 0}}  # the engine's recall cooldown is tested elsewhere; here: the speaker
services:
  - {{prefix: A, name_vi: "Đất đai", name_en: "Land", portal_url: "https://dichvucong.gov.vn/a"}}
  - {{prefix: B, name_vi: "Hộ tịch", name_en: "Civil status", portal_url: "https://dichvucong.gov.vn/b"}}
counters:
  - {{id: c1, name: "Quầy 1", profile: {{services: [A, B]}}}}
  - {{id: c2, name: "Quầy 2", profile: {{services: [A, B]}}}}
  - {{id: c3, name: "Quầy 3", profile: {{services: [A, B]}}}}
dispenser: {{buttons: {{A: 17, B: 27}}, printer: p1, debounce_ms: 20}}
printers:
  - {{id: p1, port: /dev/civiq-printer, baudrate: 115200}}
keypads:
  - {{id: k1, counter: c1, kind: gpio, pins: {{next: 5, recall: 6}}}}
  - {{id: k2, counter: c2, kind: gpio, pins: {{next: 12}}}}
  - {{id: k3, counter: c3, kind: gpio, pins: {{next: 13}}}}
speaker:
  template: "{template}"
  pack_dir: {pack}
  repeat: 1
  chime: {chime}
  counter_names: {{c3: "quầy số 3"}}
"""


@pytest.fixture
def make_center(tmp_path: Path, tmp_path_factory, broker):  # noqa: ANN001, ANN201
    agents = []

    def make(template: str = "Mời công dân có số thứ tự {ticket} đến {counter}", chime: bool = True):  # noqa: ANN202
        path = tmp_path / "center.yaml"
        path.write_text(CENTER.format(mqtt_port=broker.port, state=tmp_path / "state", template=template,
                                      pack=shared_pack(tmp_path_factory), chime=str(chime).lower()),
                        encoding="utf-8")
        agent = make_agent(load_config(path), simulate=True)
        agents.append(agent)
        agent.start()
        return agent

    yield make
    for a in agents:
        a.stop()
        a.sim.stop()


def issue(agent, n: int) -> None:  # noqa: ANN001
    for _ in range(n):
        before = agent.engine.snapshot().services["A"].issued_today
        agent.sim.press_button("A")
        wait_for(lambda b=before: agent.engine.snapshot().services["A"].issued_today == b + 1, what="issued")


def wav_frames(wav: bytes) -> int:
    with wave.open(io.BytesIO(wav), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
        return w.getnframes()


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def test_a_call_is_heard_as_chime_then_the_sentence(make_center) -> None:  # noqa: ANN001
    agent = make_center()
    server = WebThread(agent_app(agent_routes(agent) + sim_routes(agent.sim)), port=free_port()).start()
    try:
        issue(agent, 1)
        agent.sim.press_key("k3", "next")
        h = agent.sim.speaker.wait_heard(1, timeout=30)[0]
        assert h.ticket == "A001" and h.counter == "c3"
        assert h.text == "Mời công dân có số thứ tự A không không một đến quầy số ba"
        assert h.clips == ["chime", "phrase-moi-cong-dan-co-so-thu-tu", "letter-a", "digit-0", "digit-0",
                           "digit-1", "phrase-den", "phrase-quay-so", "digit-3"]
        pack = agent.announcer.pack.dir
        clip_frames = sum(wav_frames((pack / f"{c}.wav").read_bytes()) for c in h.clips[1:])
        chime = len(audio.chime_frames()) // 2
        assert wav_frames(h.wav) == chime + round(0.3 * audio.RATE) + clip_frames
        assert h.ended - h.started >= h.duration_s - 0.01  # played for the sound's full length
        # the local HTTP server gives the hall board the same sound; the simulator says what was heard
        assert get(f"http://127.0.0.1:{server.port}/api/voice/{h.id}.wav") == h.wav
        recent = json.loads(get(f"http://127.0.0.1:{server.port}/api/voice"))
        assert recent[-1]["wav"] == f"/api/voice/{h.id}.wav" and recent[-1]["counter_name"] == "quầy số 3"
        said = json.loads(get(f"http://127.0.0.1:{server.port}/sim/speaker"))
        assert said[-1]["text"] == h.text and said[-1]["clips"] == h.clips
        assert get(f"http://127.0.0.1:{server.port}/sim/speaker/{len(said) - 1}.wav") == h.wav
        speaker = next(d for d in agent.health().devices if d.id == "speaker")
        assert (speaker.kind, speaker.state) == ("speaker", "ok")
        assert "speaker" in {d.id for d in agent.link.devices}
    finally:
        server.stop()


def test_three_counters_calling_at_once_are_heard_whole_in_order(make_center) -> None:  # noqa: ANN001
    agent = make_center(SHORT_TEMPLATE, chime=False)  # the chime is the first test's; here: the queue
    calls: list[tuple[str, str]] = []
    agent.engine.subscribe(lambda e: calls.append((e.data["ticket"], e.data["counter"]))
                           if e.type == EventType.ticket_called else None)
    issue(agent, 3)
    go = threading.Barrier(3)

    def press(keypad: str) -> None:
        go.wait()
        agent.sim.press_key(keypad, "next")

    threads = [threading.Thread(target=press, args=(k,)) for k in ("k1", "k2", "k3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    heard = agent.sim.speaker.wait_heard(3, timeout=30)
    assert [(h.ticket, h.counter) for h in heard] == calls  # in the order the engine made the calls
    assert sorted(h.counter for h in heard) == ["c1", "c2", "c3"]
    names = {"c1": "Quầy một", "c2": "Quầy hai", "c3": "quầy số ba"}
    for h in heard:
        digits = " ".join(audio_digits(h.ticket))
        assert h.text == f"Số A {digits} đến {names[h.counter]}"  # each one whole
        assert h.clips[0] == "phrase-so" and h.clips[-1].startswith("digit-")
        assert h.ended - h.started >= h.duration_s - 0.01  # none cut short
    assert all(b.started >= a.ended for a, b in zip(heard, heard[1:], strict=False))  # none overlapping
    assert agent.announcer.merged == agent.announcer.skipped == 0
    first = next(h for h in heard if h.counter == "c1")
    agent.sim.press_key("k1", "recall")  # the citizen did not come: said again, cooldown or not
    again = agent.sim.speaker.wait_heard(4, timeout=30)[3]
    assert (again.ticket, again.counter, again.text) == (first.ticket, "c1", first.text)
    assert agent.announcer.recent_list()[-1].recall is True


def audio_digits(ticket: str) -> list[str]:
    from civiq.edge.voice.numbers import DIGITS

    return [DIGITS[int(d)] for d in ticket[1:]]
