"""The center config: examples validate, broken files give file:line:col, field and a helpful message."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import pytest

from civiq.contract import WorkProfile
from civiq.edge.config import (
    AsciiDisplay,
    CenterConfig,
    ConfigError,
    GpioKeypad,
    HdmiBoard,
    Max7219Display,
    ModbusDisplay,
    NextionBoard,
    SerialKeypad,
    bcm_pin,
    check_main,
    config_hash,
    load_config,
)
from civiq.yamlconf import ConfigProblem

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "firmware-config"
NO_ENV: dict[str, str] = {}

BASE = """\
center: {id: test-center, name: "Trung tâm thử", timezone: Asia/Ho_Chi_Minh}
node: {id: pi-1}
services:
  - {prefix: A, name_vi: "Đất đai", name_en: "Land"}
  - {prefix: B, name_vi: "Hộ tịch", name_en: "Civil status"}
  - {prefix: C, name_vi: "Chứng thực", name_en: "Certification"}
counters:
  - id: c1
    name: "Quầy 1"
    profile: {services: [A, B]}
  - id: c2
    name: "Quầy 2"
    profile:
      services: [C, A]
dispenser: {buttons: {A: 17, B: 27, C: 22}, printer: p1}
printers:
  - id: p1
    port: /dev/civiq-printer
    baudrate: 19200
displays:
  - {id: d1, counter: c1, protocol: modbus, port: /dev/civiq-rs485, address: 1}
keypads:
  - {id: k1, counter: c2, kind: gpio, pins: {next: 5, recall: 6}}
"""


def write(tmp_path: Path, text: str, name: str = "center.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def errors_of(path: Path, env: dict[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as exc:
        load_config(path, NO_ENV if env is None else env)
    return exc.value.problems


def pos(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    """1-based line and column of the nth occurrence of ``needle`` in ``text``."""
    start = -1
    for _ in range(nth):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    return line, col


def only(problems: list[ConfigProblem], field_path: str) -> ConfigProblem:
    hits = [p for p in problems if p.field_path == field_path]
    assert len(hits) == 1, f"expected one problem at {field_path}, got:\n" + "\n".join(map(str, problems))
    return hits[0]


# ------------------------------------------------------------------------------------------ examples
@pytest.mark.parametrize("name", ["small-commune.yaml", "large-ward.yaml", "simulated.yaml"])
def test_every_example_validates(name: str) -> None:
    cfg = load_config(EXAMPLES / name, NO_ENV)
    assert isinstance(cfg, CenterConfig)
    for c in cfg.counters:
        assert isinstance(c.profile, WorkProfile)
        assert all(s in {x.prefix for x in cfg.services} for s in c.profile.services)


def test_small_commune_has_the_promised_hardware() -> None:
    cfg = load_config(EXAMPLES / "small-commune.yaml", NO_ENV)
    assert (len(cfg.services), len(cfg.counters), len(cfg.printers)) == (3, 2, 1)
    assert all(isinstance(d, ModbusDisplay) for d in cfg.displays) and cfg.displays
    assert all(isinstance(k, GpioKeypad) for k in cfg.keypads) and cfg.keypads
    assert any(isinstance(q, NextionBoard) for q in cfg.qrboards)
    assert "Xuân Thới Sơn" in cfg.center.name


def test_large_ward_has_the_promised_hardware() -> None:
    cfg = load_config(EXAMPLES / "large-ward.yaml", NO_ENV)
    assert len(cfg.services) == 8 and len(cfg.counters) == 8
    names = " ".join(s.name_vi for s in cfg.services)
    for word in ("Đất đai", "Hộ tịch", "kinh doanh", "BHXH"):
        assert word in names
    assert any(len(s.prefix) == 2 for s in cfg.services)
    ascii_ports = {d.port for d in cfg.displays if isinstance(d, AsciiDisplay)}
    assert len(ascii_ports) == 1 and sum(isinstance(d, AsciiDisplay) for d in cfg.displays) >= 7
    assert sum(isinstance(d, Max7219Display) for d in cfg.displays) == 1
    assert all(isinstance(k, SerialKeypad) for k in cfg.keypads) and len(cfg.keypads) == 8
    assert any(isinstance(q, HdmiBoard) for q in cfg.qrboards)
    assert any(c.profile.rules for c in cfg.counters)
    assert all(s.portal_url is None or s.portal_url.startswith("https://dichvucong.gov.vn/") for s in cfg.services)
    assert cfg.serial_ports() == {"/dev/civiq-printer": 19200, "/dev/civiq-rs485": 9600}
    assert cfg.speaker is not None and cfg.speaker.counter_names["c3"] == "quầy số 3"
    assert cfg.rating is not None and {r.counter for r in cfg.ratingpads} == {c.id for c in cfg.counters}


def test_check_main_prints_a_summary_per_good_file_and_every_problem_of_a_bad_one(tmp_path: Path) -> None:
    bad = write(tmp_path, BASE.replace("baudrate: 19200", "baudrat: 19200").replace("[C, A]", "[X, A]"))
    out = io.StringIO()
    rc = check_main([str(EXAMPLES / "small-commune.yaml"), str(bad)], env=NO_ENV, out=out)
    text = out.getvalue()
    assert rc == 1
    assert f"OK {EXAMPLES / 'small-commune.yaml'}: center hcm-xuanthoison, 3 services, 2 counters, 7 devices" in text
    assert "unknown field 'baudrat' — did you mean 'baudrate'?" in text
    assert "service 'X' is not defined (defined: A, B, C)" in text
    assert f"FAILED {bad}: 2 problems" in text
    out = io.StringIO()
    assert check_main([str(EXAMPLES / "large-ward.yaml")], env=NO_ENV, out=out) == 0
    assert out.getvalue().splitlines()[-1].startswith(f"OK {EXAMPLES / 'large-ward.yaml'}: center hcm-saigon, "
                                                      "8 services, 8 counters, 28 devices")


def test_base_is_valid_and_pins_are_normalised(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE.replace("A: 17", 'A: "GPIO18"').replace("B: 27", "B: BOARD11")),
                      NO_ENV)
    assert cfg.dispenser is not None and cfg.dispenser.buttons == {"A": 18, "B": 17, "C": 22}
    assert (bcm_pin("GPIO17"), bcm_pin("bcm4"), bcm_pin("BOARD40"), bcm_pin(" 7 ")) == (17, 4, 21, 7)


# ------------------------------------------------------------------------------------------ broken catalogue
def test_typo_key_points_at_the_key_with_a_suggestion(tmp_path: Path) -> None:
    text = BASE.replace("baudrate: 19200", "baudrat: 19200")
    p = only(errors_of(write(tmp_path, text)), "printers[0].baudrat")
    assert (p.line, p.column) == pos(text, "baudrat:")
    assert str(p) == (f"{tmp_path / 'center.yaml'}:{p.line}:5: printers[0].baudrat: "
                      "unknown field 'baudrat' — did you mean 'baudrate'?")


def test_unknown_service_in_a_profile(tmp_path: Path) -> None:
    text = BASE.replace("services: [C, A]", "services: [X, A]")
    p = only(errors_of(write(tmp_path, text, "small-commune.yaml")), "counters[1].profile.services[0]")
    line, col = pos(text, "X, A")
    assert (p.line, p.column) == (line, col)
    assert str(p).endswith(f"small-commune.yaml:{line}:{col}: counters[1].profile.services[0]: "
                           "service 'X' is not defined (defined: A, B, C)")


def test_duplicate_pin_across_dispenser_and_keypad(tmp_path: Path) -> None:
    text = BASE.replace("pins: {next: 5, recall: 6}", "pins: {next: 5, recall: BOARD13}")  # BOARD13 = GPIO27
    p = only(errors_of(write(tmp_path, text)), "keypads[0].pins.recall")
    assert (p.line, p.column) == pos(text, "BOARD13")
    assert p.message == "GPIO27 is already used by dispenser button B"


def test_pin_of_a_bus_in_use_is_refused(tmp_path: Path) -> None:
    text = BASE.replace("pins: {next: 5, recall: 6}", "pins: {next: 5, recall: 10}") + (
        "  - {id: k2, counter: c1, kind: gpio, pins: {next: 14}}\n"
        "qrboards:\n  - {id: q1, kind: nextion, port: /dev/ttyAMA0}\n")
    text = text.replace("address: 1}\n", "address: 1}\n  - {id: d2, counter: c2, protocol: max7219, "
                                         "spi_port: 0, spi_device: 0}\n")
    problems = errors_of(write(tmp_path, text))
    assert only(problems, "keypads[0].pins.recall").message == "GPIO10 is SPI0 MOSI, used by display d2"
    assert only(problems, "keypads[1].pins.next").message.startswith("GPIO14 is UART TXD, used by QR board q1")


def test_duplicate_key_is_reported_with_both_lines(tmp_path: Path) -> None:
    text = BASE.replace('    name: "Quầy 2"\n', '    name: "Quầy 2"\n    name: "Quầy 3"\n')
    p = only(errors_of(write(tmp_path, text)), "counters[1].name")
    first, _ = pos(text, 'name: "Quầy 2"')
    assert (p.line, p.column) == pos(text, 'name: "Quầy 3"')
    assert p.message.startswith(f"duplicate key 'name' (first given at line {first})")


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    text = BASE.replace("  - id: c2\n", "  - id: c2\n   name: [oops\n", 1)
    problems = errors_of(write(tmp_path, text))
    assert len(problems) == 1
    assert problems[0].line is not None and problems[0].line >= pos(text, "oops")[0]
    assert problems[0].message.startswith("YAML syntax error: ")
    tabbed = write(tmp_path, "center:\n\tid: x\n", "tab.yaml")
    p = errors_of(tabbed)[0]
    assert (p.line, "tabs" in p.message) == (2, True)


@pytest.mark.parametrize(("value", "message"), [
    ("300", "must be at most 247 (got 300)"),
    ("0", "must be at least 1 (got 0)"),
    ("one", "Input should be a valid integer"),
])
def test_bad_bus_address(tmp_path: Path, value: str, message: str) -> None:
    text = BASE.replace("address: 1}", f"address: {value}}}")
    p = only(errors_of(write(tmp_path, text)), "displays[0].address")
    assert (p.line, p.column) == pos(text, f"{value}}}")
    assert p.message.startswith(message)


def test_missing_section_and_missing_protocol_fields(tmp_path: Path) -> None:
    text = BASE.replace("node: {id: pi-1}\n", "").replace("port: /dev/civiq-rs485, address: 1",
                                                           "address: 1")
    problems = errors_of(write(tmp_path, text))
    p = only(problems, "node")
    assert (p.line, p.column, p.message) == (1, 1, "required section 'node' is missing")
    p = only(problems, "displays[0].port")
    assert p.line == pos(text, "id: d1")[0]
    assert p.message == "required field 'port' is missing (protocol: modbus)"


def test_unknown_protocol_and_max7219_without_spi(tmp_path: Path) -> None:
    text = BASE.replace("protocol: modbus, port: /dev/civiq-rs485, address: 1}\n",
                        "protocol: modbuss}\n  - {id: d2, counter: c2, protocol: max7219}\n")
    problems = errors_of(write(tmp_path, text))
    p = only(problems, "displays[0].protocol")
    assert (p.line, p.column) == pos(text, "modbuss")
    assert p.message == "'modbuss' is not a known protocol: use one of modbus, ascii, max7219 — did you mean 'modbus'?"
    assert {x.field_path for x in problems} >= {"displays[1].spi_port", "displays[1].spi_device"}


def test_several_problems_are_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = (BASE.replace("timezone: Asia/Ho_Chi_Minh", "timezone: Asia/Ho_Chi_Mihn")
            .replace("prefix: C,", "prefix: c,")
            .replace("services: [A, B]", "services: [A, Q]")
            .replace("printer: p1}", "printer: p2}")
            .replace("baudrate: 19200", "baudrate: 19201")
            .replace("counter: c2, kind", "counter: c9, kind"))
    problems = errors_of(write(tmp_path, text))
    got = {p.field_path: p.message for p in problems}
    assert got["center.timezone"].startswith("unknown time zone 'Asia/Ho_Chi_Mihn' — did you mean 'Asia/Ho_Chi_Minh'?")
    assert got["services[2].prefix"].startswith("'c' is not a service prefix")
    assert got["counters[0].profile.services[1]"] == "service 'Q' is not defined (defined: A, B)"
    assert got["dispenser.printer"] == "printer 'p2' is not defined (defined: p1)"
    assert got["printers[0].baudrate"].startswith("19201 is not a standard baud rate (did you mean 19200?")
    assert got["keypads[0].counter"] == "counter 'c9' is not defined (defined: c1, c2)"
    assert [p.line for p in problems] == sorted(p.line for p in problems)  # type: ignore[type-var]


def test_cross_references_of_a_valid_shape(tmp_path: Path) -> None:
    text = BASE.replace("services: [A, B]}", "services: [A, B], rules: [{service: C, over_minutes: 5}]}") + (
        "  - {id: k2, counter: c1, kind: serial, port: /dev/civiq-rs485, baudrate: 19200, address: 1}\n"
        "  - {id: d1, counter: c1, kind: serial, port: /dev/civiq-printer, address: 3}\n")
    problems = errors_of(write(tmp_path, text))
    got = {p.field_path: p.message for p in problems}
    assert got["counters[0].profile.rules[0].service"] == (
        "rule for service 'C', which this counter does not serve (it serves: A, B)")
    assert got["keypads[1].baudrate"].startswith("port /dev/civiq-rs485 runs at 9600 baud for display d1")
    assert got["keypads[1].address"] == "address 1 on /dev/civiq-rs485 is already used by display d1"
    assert got["keypads[2].id"] == "device id 'd1' is already used by displays[0]"
    assert got["printers[0].port"].startswith("printer p1 needs port /dev/civiq-printer for itself")


def test_inline_password_is_refused(tmp_path: Path) -> None:
    text = BASE + "mqtt: {host: h, username: u, password: secret}\n"
    p = only(errors_of(write(tmp_path, text)), "mqtt.password")
    assert "password_file" in p.message and "chmod 600" in p.message


def test_yaml_12_booleans_keep_prefix_no_a_string(tmp_path: Path) -> None:
    text = BASE.replace("prefix: C,", "prefix: NO,").replace("C: 22", "NO: 22").replace("[C, A]", "[NO, A]")
    cfg = load_config(write(tmp_path, text), NO_ENV)
    assert cfg.services[2].prefix == "NO"


# ------------------------------------------------------------------------------------------ env, secrets, hash
def test_env_overrides_the_file(tmp_path: Path) -> None:
    env = {"CIVIQ_MQTT__HOST": "10.0.0.5", "CIVIQ_STATE_DIR": str(tmp_path / "x"), "CIVIQ_MQTT__PORT": "8883",
           "CIVIQ_MQTT__USERNAME": "edge", "CIVIQ_MQTT__PASSWORD_FILE": str(tmp_path / "pw"), "HOME": "/root"}
    cfg = load_config(EXAMPLES / "simulated.yaml", env)
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.state_dir) == ("10.0.0.5", 8883, tmp_path / "x")
    assert cfg.mqtt.password_file == tmp_path / "pw"
    assert cfg.mqtt.keepalive == 10  # untouched values stay the file's


def test_default_env_is_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVIQ_NODE__ID", "pi-7")
    assert load_config(EXAMPLES / "simulated.yaml").node.id == "pi-7"


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(EXAMPLES / "simulated.yaml", {"CIVIQ_MQTT__PORT": "abc", "CIVIQ_MQTT__KEEPALIVE": "1"})
    problems = exc.value.problems
    port = only(problems, "mqtt.port")
    assert port.file == "CIVIQ_MQTT__PORT" and port.line is None
    assert str(port).startswith("CIVIQ_MQTT__PORT: mqtt.port: Input should be a valid integer")
    assert "CIVIQ_MQTT__PORT='abc'" in port.message
    assert only(problems, "mqtt.keepalive").message.startswith("must be at least 5 (got '1')")


def test_password_file_permissions(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    os.chmod(pw, 0o644)
    cfg = load_config(EXAMPLES / "simulated.yaml", {"CIVIQ_MQTT__USERNAME": "edge",
                                                     "CIVIQ_MQTT__PASSWORD_FILE": str(pw)})
    with caplog.at_level(logging.WARNING, logger="civiq.edge.config"):
        assert cfg.mqtt.password() == "s3cret"
    assert "mode 0644" in caplog.text and f"chmod 600 {pw}" in caplog.text
    caplog.clear()
    os.chmod(pw, 0o600)
    with caplog.at_level(logging.WARNING, logger="civiq.edge.config"):
        assert cfg.mqtt.password() == "s3cret"
    assert caplog.text == ""
    pw.unlink()
    with pytest.raises(ConfigError, match="cannot read the MQTT password file"):
        cfg.mqtt.password()


def test_config_hash_is_stable_and_tracks_changes(tmp_path: Path) -> None:
    a = load_config(write(tmp_path, BASE, "a.yaml"), NO_ENV)
    reordered = BASE.replace('center: {id: test-center, name: "Trung tâm thử", timezone: Asia/Ho_Chi_Minh}',
                             'center: {timezone: Asia/Ho_Chi_Minh, name: "Trung tâm thử", id: test-center}')
    b = load_config(write(tmp_path, "# a comment\n" + reordered, "b.yaml"), NO_ENV)
    c = load_config(write(tmp_path, BASE.replace("address: 1}", "address: 2}"), "c.yaml"), NO_ENV)
    assert config_hash(a) == config_hash(b)
    assert len(config_hash(a)) == 12 and all(ch in "0123456789abcdef" for ch in config_hash(a))
    assert config_hash(a) != config_hash(c)
    assert config_hash(load_config(EXAMPLES / "large-ward.yaml", NO_ENV)) == config_hash(
        load_config(EXAMPLES / "large-ward.yaml", NO_ENV))


def test_docs_config_md_is_generated_from_the_models() -> None:
    from civiq.edge.configdoc import config_reference_markdown

    text = config_reference_markdown()
    assert "| `baudrate` | baud rate | `19200` |" in text
    for model in ("CenterInfo", "MqttConfig", "GpioKeypad", "Max7219Display", "HdmiBoard"):
        assert f"### {model}" in text
    committed = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert committed == text, "docs/config.md is stale: python -m civiq.edge.configdoc > docs/config.md"


def test_every_field_has_a_description_and_a_valid_example() -> None:
    from pydantic import TypeAdapter

    from civiq.edge.configdoc import SECTIONS

    for model, _title in SECTIONS:
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
            assert info.examples, f"{model.__name__}.{name} has no example"
            TypeAdapter(info.annotation).validate_python(info.examples[0])  # the example itself is valid


def test_warnings_do_not_fail_the_check(tmp_path: Path) -> None:
    text = BASE.replace("services: [C, A]", "services: [A]").replace(", C: 22}", "}")
    out = io.StringIO()
    assert check_main([str(write(tmp_path, text))], env=NO_ENV, out=out) == 0
    lines = out.getvalue().splitlines()
    assert any(line.startswith("WARNING") and "service C (Certification) is served by no counter" in line
               for line in lines)
    assert any("have no dispenser button" in line for line in lines)
    assert lines[-1].startswith("OK ")
