"""The speaker for technicians: say-test (through the running agent's HTTP, or on its own), voice-pack
build/check, the clip pack made by `civiq edge install`, and the speaker lines of `civiq edge doctor`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from civiq.cli import main as civiq_main
from civiq.edge.cli import RUNFILE, make_agent
from civiq.edge.config import load_config
from civiq.edge.voice.doctor import check_speaker
from civiq.edge.web import agent_app, agent_routes
from civiq.install import install_edge
from civiq.webthread import WebThread
from tests.edge.voicepack import copy_pack, needs_espeak, shared_pack

pytestmark = needs_espeak

CENTER = """\
center: {{id: xa-loa, name: "Xã Thử"}}
node: {{id: pi-1}}
mqtt: {{host: 127.0.0.1, port: {mqtt_port}}}
state_dir: {state}
services:
  - {{prefix: A, name_vi: "Đất đai", name_en: "Land"}}
counters:
  - {{id: c1, name: "Quầy 1", profile: {{services: [A]}}}}
speaker:
  template: "Số {{ticket}} đến {{counter}}"
  repeat: 1
  device: "{device}"
{pack}"""


def center(tmp_path: Path, pack: Path | None, device: str = "null", mqtt_port: int = 1) -> Path:
    p = tmp_path / "center.yaml"
    p.write_text(CENTER.format(state=tmp_path / "state", device=device, mqtt_port=mqtt_port,
                               pack=f"  pack_dir: {pack}\n" if pack else ""), encoding="utf-8")
    return p


@pytest.fixture
def pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_pack(tmp_path_factory)


def test_say_test_goes_through_the_running_agent(tmp_path: Path, pack_dir: Path, broker, capsys) -> None:  # noqa: ANN001
    path = center(tmp_path, pack_dir, mqtt_port=broker.port)
    cfg = load_config(path)
    agent = make_agent(cfg, simulate=True)
    agent.start()
    server = WebThread(agent_app(agent_routes(agent)), port=0).start()
    runfile = Path(agent.state_dir) / RUNFILE
    runfile.write_text(json.dumps({"pid": os.getpid(), "api_port": server.port, "simulate": True}))
    try:
        assert civiq_main(["edge", "say-test", str(path)]) == 0
        out = capsys.readouterr().out
        assert "said (by the running agent): Số A không một năm đến Quầy một" in out
        assert "clips: chime phrase-so letter-a digit-0 digit-1 digit-5 phrase-den phrase-quay digit-1" in out
        heard = agent.sim.speaker.heard  # the agent's (emulated) speaker said it
        assert [h.ticket for h in heard] == ["A015"] and heard[0].text == "Số A không một năm đến Quầy một"
        assert civiq_main(["edge", "say-test", str(path), "--text", "Kiểm tra loa"]) == 0
        out = capsys.readouterr().out
        assert "said (by the running agent): Kiểm tra loa" in out and "clips: chime espeak-ng" in out
    finally:
        runfile.unlink()
        server.stop()
        agent.stop()
        agent.sim.stop()


def test_say_test_without_an_agent_plays_on_alsa(tmp_path: Path, pack_dir: Path, capsys) -> None:  # noqa: ANN001
    if shutil.which("aplay") is None:
        pytest.skip("alsa-utils missing")
    wav = tmp_path / "call.wav"
    assert civiq_main(["edge", "say-test", str(center(tmp_path, pack_dir)), "--out", str(wav)]) == 0
    out = capsys.readouterr().out
    assert "said (alsa output null): Số A không một năm đến Quầy một" in out and "device speaker: ok" in out
    assert wav.read_bytes()[:4] == b"RIFF"
    assert civiq_main(["edge", "say-test", str(center(tmp_path, pack_dir, device="nosuch"))]) == 1
    assert "the speaker failed: ALSA device 'nosuch' cannot play" in capsys.readouterr().err


def test_voice_pack_build_and_check(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out_dir = tmp_path / "pack"
    path = center(tmp_path, out_dir)
    assert civiq_main(["edge", "voice-pack", "build", "--config", str(path), "--voice", "vi-vn-x-south"]) == 0
    assert "52 clip(s) generated with espeak-ng" in capsys.readouterr().out
    assert (out_dir / "phrase-so.wav").is_file() and (out_dir / "recording-kit.csv").is_file()
    assert civiq_main(["edge", "voice-pack", "check", "--config", str(path)]) == 0
    assert "52 of 52 clips fine" in capsys.readouterr().out
    (out_dir / "letter-q.wav").write_bytes(b"not a wav")
    (out_dir / "digit-9.wav").unlink()
    assert civiq_main(["edge", "voice-pack", "check", str(out_dir)]) == 1
    out = capsys.readouterr().out
    assert f"✘ letter-q: {out_dir / 'letter-q.wav'}: not a PCM WAV file" in out
    assert f"✘ digit-9: {out_dir / 'digit-9.wav'} is missing (says 'chín')" in out


def test_install_generates_the_clip_pack(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    path = center(tmp_path, None)
    assert install_edge(path, root=tmp_path / "root", group=None) == 0
    pack = tmp_path / "root/var/lib/civiq/voice"
    assert "voice clip pack" in capsys.readouterr().out
    manifest = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["clips"]["phrase-so"]["text"] == "Số" and (pack / "phrase-quay.wav").is_file()


def test_doctor_checks_pack_espeak_and_device(tmp_path: Path, pack_dir: Path) -> None:
    if shutil.which("aplay") is None:
        pytest.skip("alsa-utils missing")
    cfg = load_config(center(tmp_path, pack_dir), env={})
    found = {what: (level, detail) for level, what, detail in check_speaker(cfg, agent_running=False)}
    assert found["speaker clip pack"][0] == "ok" and "complete" in found["speaker clip pack"][1]
    assert found["espeak-ng"][0] == "ok"
    assert found["speaker output"] == ("ok", "ALSA device 'null' opens (test with `civiq edge say-test`)")
    d = copy_pack(pack_dir, tmp_path / "pack")
    (d / "phrase-den.wav").unlink()
    cfg = load_config(center(tmp_path, d, device="nosuch"), env={})
    found = {what: (level, detail) for level, what, detail in check_speaker(cfg, agent_running=False)}
    assert found["speaker clip pack"][0] == "warning" and "phrase-den" in found["speaker clip pack"][1]
    assert found["speaker output"][0] == "FAULT" and "ALSA device 'nosuch' cannot play" in found["speaker output"][1]
    cfg = load_config(center(tmp_path, tmp_path / "none"), env={})
    found = {what: (level, detail) for level, what, detail in check_speaker(cfg, agent_running=True)}
    assert found["speaker clip pack"][0] == "FAULT" and "does not exist" in found["speaker clip pack"][1]
    assert "speaker output" not in found  # the running agent holds the device: its health tells
