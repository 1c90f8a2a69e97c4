"""The speaker: section: defaults, and mistakes reported as file:line:col: field: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from civiq.edge import config as edge_config
from civiq.edge.config import ConfigError, config_warnings, load_config

BASE = """\
center: {id: test-center, name: "Trung tâm thử"}
node: {id: pi-1}
state_dir: STATE
services:
  - {prefix: A, name_vi: "Đất đai", name_en: "Land"}
counters:
  - {id: c1, name: "Quầy 1", profile: {services: [A]}}
  - {id: c2, name: "Quầy 2", profile: {services: [A]}}
"""


def write(tmp_path: Path, speaker: str) -> Path:
    p = tmp_path / "center.yaml"
    p.write_text(BASE.replace("STATE", str(tmp_path / "state")) + speaker, encoding="utf-8")
    return p


def problems(tmp_path: Path, speaker: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, speaker), env={})
    return [str(p) for p in e.value.problems]


def test_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "speaker: {}\n"), env={})
    sp = cfg.speaker
    assert (sp.id, sp.speech, sp.chime, sp.output, sp.device, sp.voice, sp.numbers, sp.repeat) == (
        "speaker", True, True, "alsa", "default", "vi", "digits", 2)
    assert sp.template == "Mời công dân có số thứ tự {ticket} đến {counter}"
    assert sp.pack_path(cfg.state_dir) == tmp_path / "state" / "voice"
    assert ("speaker", "speaker") in cfg.devices()
    assert any("speaker.pack_dir" in w and "voice-pack build" in w for w in config_warnings(cfg))
    assert load_config(write(tmp_path, ""), env={}).speaker is None  # no section: no sound at all


def test_unknown_placeholder_names_file_line_and_field(tmp_path: Path) -> None:
    out = problems(tmp_path, 'speaker:\n  template: "Mời {ticket} đến {quay}"\n')
    assert out == [f"{tmp_path / 'center.yaml'}:10:13: speaker.template: unknown placeholder {{quay}} in the "
                   "template: use {ticket}, {counter}, {service}"]


@pytest.mark.parametrize(("speaker", "where", "message"), [
    ('speaker:\n  template: "Mời công dân đến {counter}"\n', "10:13: speaker.template", "put {ticket} in it"),
    ('speaker:\n  recall_template: "Mời lại {ticket"\n', "10:20: speaker.recall_template", "malformed"),
    ("speaker:\n  output: hdmi\n", "10:11: speaker.output", "alsa"),
    ("speaker:\n  numbers: words\n", "10:12: speaker.numbers", "digits"),
    ("speaker:\n  voice: en\n", "10:10: speaker.voice", "vi-vn-x-south"),
    ("speaker:\n  repeat: 0\n", "10:11: speaker.repeat", "at least 1"),
    ("speaker:\n  counter_names: {c9: quầy chín}\n", "10:19: speaker.counter_names.c9",
     "counter 'c9' is not defined (defined: c1, c2)"),
    ("speaker:\n  volum: 80\n", "10:3: speaker.volum", ""),
    ("speaker:\n  priority_prefix: 'Ưu tiên {class}'\n", "10:20: speaker.priority_prefix", "{priority}"),
    ("speaker:\n  id: dispenser\ndispenser: {buttons: {A: 17}, printer: p1}\nprinters: [{id: p1, port: /dev/x}]\n",
     "10:7: speaker.id", "device id 'dispenser' is already used"),
])
def test_mistakes(tmp_path: Path, speaker: str, where: str, message: str) -> None:
    out = problems(tmp_path, speaker)
    assert len(out) == 1 and where in out[0] and message in out[0], out


def test_missing_pack_without_espeak_is_an_error(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    speaker = f"speaker:\n  pack_dir: {tmp_path / 'nowhere'}\n"
    assert load_config(write(tmp_path, speaker), env={}).speaker is not None  # espeak-ng can say it all
    import civiq.edge.voice.audio as audio

    monkeypatch.setattr(audio, "espeak_available", lambda: False)
    out = problems(tmp_path, speaker)
    assert len(out) == 1 and "10:13: speaker.pack_dir: the clip pack" in out[0]
    assert "espeak-ng is not installed" in out[0] and "voice-pack build" in out[0]
    assert edge_config.load_config(write(tmp_path, speaker.replace("pack_dir", "speech: false\n  pack_dir")),
                                   env={}).speaker.speech is False  # chime only: no pack needed


def test_demo_centers_speak_nothing(tmp_path: Path) -> None:
    """`civiq demo` has no speaker: its centers make no sound (and in simulation a speaker would be emulated)."""
    from civiq.dev.demo_centers import MAX_CENTERS, demo_centers

    for i, c in enumerate(demo_centers(MAX_CENTERS)):
        p = tmp_path / f"{i}.yaml"
        p.write_text(c.config_yaml(1883, str(tmp_path / f"s{i}")), encoding="utf-8")
        assert load_config(p, env={}).speaker is None
