"""The `rating:` section and the `ratingpads:` list: defaults, and every mistake named at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from civiq.edge.config import ConfigError, GpioRatingPad, PageRatingPad, SerialRatingPad, load_config
from civiq.yamlconf import ConfigProblem

BASE = """\
center: {id: test-center, name: "Trung tâm thử", timezone: Asia/Ho_Chi_Minh}
node: {id: pi-1}
services:
  - {prefix: A, name_vi: "Đất đai", name_en: "Land"}
counters:
  - {id: c1, name: "Quầy 1", profile: {services: [A]}}
  - {id: c2, name: "Quầy 2", profile: {services: [A]}}
displays:
  - {id: d1, counter: c1, protocol: ascii, port: /dev/civiq-rs485, address: 1}
keypads:
  - {id: k1, counter: c1, kind: gpio, pins: {next: 5}}
"""
GOOD = BASE + """\
rating: {}
ratingpads:
  - {id: r1, counter: c1, kind: gpio, keys: {1: GPIO7, 2: 8, 3: 9, 4: 10, 5: BOARD23}, reason_keys: {wait: 18}, led_pin: 14}
  - {id: r2, counter: c2, kind: serial, port: /dev/civiq-rs485, address: 21, reason_keys: {wait: a, facilities: b}}
  - {id: rp1, counter: c2, kind: page}
"""


def load(tmp_path: Path, text: str):  # noqa: ANN201
    p = tmp_path / "center.yaml"
    p.write_text(text, encoding="utf-8")
    return load_config(p, {})


def problems(tmp_path: Path, text: str) -> dict[str, ConfigProblem]:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text)
    return {p.field_path: p for p in exc.value.problems}


def at(text: str, needle: str) -> tuple[int, int]:
    start = text.index(needle)
    return text.count("\n", 0, start) + 1, start - (text.rfind("\n", 0, start) + 1) + 1


def test_defaults_and_devices(tmp_path: Path) -> None:
    cfg = load(tmp_path, GOOD)
    r = cfg.rating
    assert (r.scale, r.window_s, r.low_max(), r.reasons_wait_s) == (5, 30, 3, 8)
    assert r.reasons["appointments"].vi == "Hẹn trả nhiều lần" and r.level_texts()[4].vi == "Rất hài lòng"
    r1, r2, rp1 = cfg.ratingpads
    assert isinstance(r1, GpioRatingPad) and r1.keys == {1: 7, 2: 8, 3: 9, 4: 10, 5: 11} and r1.led_pin == 14
    assert isinstance(r2, SerialRatingPad) and r2.baudrate == 9600 and isinstance(rp1, PageRatingPad)
    assert ("r1", "ratingpad") in cfg.devices() and cfg.serial_ports() == {"/dev/civiq-rs485": 9600}
    assert load(tmp_path, BASE).rating is None  # no section: no rating at this center


def test_mistakes_are_named_with_file_line_and_field(tmp_path: Path) -> None:
    text = BASE + """\
rating: {scale: 4, reasons: {wait: {vi: "Chờ lâu", en: "Long wait"}}}
ratingpads:
  - {id: r1, counter: c1, kind: gpio, keys: {1: 7, 2: 8, 3: 5, 4: 10, 5: 11}, reason_keys: {wiat: 18}}
  - {id: r2, counter: c3, kind: serial, port: /dev/civiq-rs485, address: 1, reason_keys: {wait: z}}
  - {id: rp1, counter: c2, kind: page}
  - {id: rp2, counter: c2, kind: page}
  - {id: d1, counter: c1, kind: page}
"""
    p = problems(tmp_path, text)
    keys = p["ratingpads[0].keys"]
    assert "a 4-level rating needs one key per score 1-4: no score 5 on this scale" in keys.message
    assert (keys.line, keys.column) == at(text, "{1: 7, 2: 8, 3: 5")
    assert "GPIO5 is already used by keypad k1" in p["ratingpads[0].keys[3]"].message
    assert "reason 'wiat' is not defined (defined: wait) — did you mean 'wait'?" in p[
        "ratingpads[0].reason_keys.wiat"].message
    assert "counter 'c3' is not defined" in p["ratingpads[1].counter"].message
    assert "a reason key sends one of the codes a-h, not 'z'" in p["ratingpads[1].reason_keys.wait"].message
    assert "counter c2 already has the rating page rp1" in p["ratingpads[3].counter"].message
    assert "device id 'd1' is already used by displays[0]" in p["ratingpads[4].id"].message
    assert str(keys).startswith(f"{tmp_path / 'center.yaml'}:{keys.line}:{keys.column}: ratingpads[0].keys: ")


def test_the_bus_rules_hold_for_rating_pads(tmp_path: Path) -> None:
    text = BASE + """\
rating: {}
ratingpads:
  - {id: r2, counter: c2, kind: serial, port: /dev/civiq-rs485, address: 1, baudrate: 19200}
  - {id: r3, counter: c2, kind: serial, port: /dev/civiq-rs485, address: 120}
"""
    p = problems(tmp_path, text)
    assert "address 1 on /dev/civiq-rs485 is already used by display d1" in p["ratingpads[0].address"].message
    assert "every device on one port must use the same baud rate" in p["ratingpads[0].baudrate"].message
    assert "must be at most 99 (got 120)" in p["ratingpads[1].address"].message


def test_the_section_itself(tmp_path: Path) -> None:
    p = problems(tmp_path, BASE + "ratingpads:\n  - {id: rp1, counter: c1, kind: page}\n")
    assert "rating pads need a `rating:` section" in p["ratingpads"].message
    text = BASE + "rating: {scale: 4, reasons_max_score: 4, levels: [{vi: Tốt, en: Good}], window_s: 2, allow: [x]}\n"
    p = problems(tmp_path, text)
    assert "must be at least 5" in p["rating.window_s"].message
    assert "'x' is not an IP address" in p["rating.allow[0]"].message
    p = problems(tmp_path, text.replace(", window_s: 2, allow: [x]", ""))
    assert "must be below the top score 4" in p["rating.reasons_max_score"].message
    assert "a 4-level scale needs 4 level texts" in p["rating.levels"].message
    p = problems(tmp_path, BASE + "rating: {scale: 3, windw_s: 30}\n")
    assert "did you mean 'window_s'" in p["rating.windw_s"].message
