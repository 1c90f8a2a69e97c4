"""docs/config.md, generated from the models of :mod:`civiq.edge.config`.

    python -m civiq.edge.configdoc > docs/config.md

Each section's table comes from the pydantic fields: type, default, ``Field(description=...)``, limits
and the first example; a test checks that the committed docs/config.md is up to date.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from civiq.edge.config import (
    AsciiDisplay,
    CenterConfig,
    CenterInfo,
    ClerkConfig,
    CounterConfig,
    CounterProfile,
    DispenserConfig,
    EdgeSettings,
    GpioKeypad,
    GpioRatingPad,
    HallConfig,
    HdmiBoard,
    HttpConfig,
    Max7219Display,
    ModbusDisplay,
    MqttConfig,
    NextionBoard,
    NodeConfig,
    PageRatingPad,
    PrinterConfig,
    ProfileRule,
    QueueConfig,
    RatingConfig,
    RatingText,
    SerialKeypad,
    SerialRatingPad,
    ServiceConfig,
    SpeakerConfig,
    _baud,
    _ident,
    _pin,
    _port,
    _prefix,
    _timezone,
    _url,
    bcm_pin,
)

_NAMED = {bcm_pin: "pin", _ident: "id", _prefix: "prefix", _port: "serial port", _baud: "baud rate",
          _url: "URL", _timezone: "time zone", _pin: "4-8 digits (text)"}


# every model of the schema, in the order of docs/config.md
SECTIONS: list[tuple[type[BaseModel], str]] = [
    (CenterConfig, "Top level of the file."),
    (CenterInfo, "`center:`"), (NodeConfig, "`node:`"), (MqttConfig, "`mqtt:`"), (QueueConfig, "`queue:`"),
    (HttpConfig, "`http:`"), (ServiceConfig, "each item of `services:`"),
    (CounterConfig, "each item of `counters:`"), (CounterProfile, "`counters[].profile`"),
    (ProfileRule, "each item of `counters[].profile.rules`"), (DispenserConfig, "`dispenser:`"),
    (PrinterConfig, "each item of `printers:`"),
    (ModbusDisplay, "item of `displays:` with `protocol: modbus`"),
    (AsciiDisplay, "item of `displays:` with `protocol: ascii`"),
    (Max7219Display, "item of `displays:` with `protocol: max7219`"),
    (GpioKeypad, "item of `keypads:` with `kind: gpio`"),
    (SerialKeypad, "item of `keypads:` with `kind: serial`"),
    (NextionBoard, "item of `qrboards:` with `kind: nextion`"),
    (HdmiBoard, "item of `qrboards:` with `kind: hdmi`"),
    (SpeakerConfig, "`speaker:`"),
    (HallConfig, "`hall:`"),
    (ClerkConfig, "each value of `clerks:` (its key is the clerk id)"),
    (RatingConfig, "`rating:`"),
    (RatingText, "each item of `rating.levels`, each value of `rating.reasons`"),
    (GpioRatingPad, "item of `ratingpads:` with `kind: gpio`"),
    (SerialRatingPad, "item of `ratingpads:` with `kind: serial`"),
    (PageRatingPad, "item of `ratingpads:` with `kind: page`"),
]

def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Annotated:
        base = get_args(tp)[0]
        for meta in get_args(tp)[1:]:
            name = _NAMED.get(getattr(meta, "func", None))
            if name:
                return name
        return _type_name(base)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        inner = " \\| ".join(_type_name(a) for a in args)
        return inner + (" or null" if type(None) in get_args(tp) else "")
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(tp))
    if origin is list:
        return f"list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        k, val = get_args(tp)
        return f"map {_type_name(k)} → {_type_name(val)}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    return {str: "text", int: "integer", float: "number", bool: "true/false", Path: "path"}.get(tp, str(tp))


def _field_type_name(info: Any) -> str:
    tp = info.annotation
    for meta in info.metadata:
        if getattr(meta, "func", None) in _NAMED:
            tp = Annotated[tp, meta]
    return _type_name(tp)


def _limits(info: Any) -> str:
    parts = []
    for meta in info.metadata:
        for attr, sym in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"), ("min_length", "min items")):
            val = getattr(meta, attr, None)
            if val is not None:
                parts.append(f"{sym} {val}" if attr != "min_length" else f"at least {val}")
    return f" ({', '.join(parts)})" if parts else ""


def _fmt(v: Any) -> str:
    return "`" + json.dumps(v, ensure_ascii=False, default=str) + "`"


def _model_doc(model: type[BaseModel], title: str) -> list[str]:
    lines = [f"### {model.__name__}", "", f"{title}", ""]
    doc = (model.__doc__ or "").strip()
    if doc:
        lines += [" ".join(doc.split()), ""]
    lines += ["| field | type | default | description | example |", "|---|---|---|---|---|"]
    for name, info in model.model_fields.items():
        if info.default is PydanticUndefined and info.default_factory is None:
            default = "**required**"
        elif info.default_factory is not None:
            default = "see section"
        else:
            default = _fmt(info.default if not isinstance(info.default, Path) else str(info.default))
        ex = _fmt(info.examples[0]) if info.examples else ""
        desc = (info.description or "").replace("|", "\\|") + _limits(info)
        lines.append(f"| `{name}` | {_field_type_name(info)} | {default} | {desc} | {ex} |")
    return lines + [""]


def config_reference_markdown() -> str:
    """docs/config.md, generated from the models (``python -m civiq.edge.configdoc``)."""
    out = [
        "# Center configuration reference", "",
        "<!-- generated by `python -m civiq.edge.configdoc > docs/config.md`; do not edit by hand -->", "",
        "One YAML file per Raspberry Pi describes its center, its MQTT link and its devices. Check it before "
        "installing it:", "",
        "```console", "$ civiq config check /etc/civiq/center.yaml",
        "OK /etc/civiq/center.yaml: center hcm-xuanthoi, 3 services, 2 counters, 8 devices (config 3f2a...)",
        "```", "",
        "Every problem is reported at once, with file, line, column and field:", "",
        "```text",
        "center.yaml:23:7: counters[1].profile.services[0]: service 'X' is not defined (defined: A, B, C)",
        "center.yaml:31:5: printers[0].baudrat: unknown field 'baudrat' — did you mean 'baudrate'?",
        "```", "",
        "Examples: `firmware-config/small-commune.yaml`, `firmware-config/large-ward.yaml`, "
        "`firmware-config/simulated.yaml`.", "",
        "## Rules", "",
        "- Unknown keys are errors; duplicate keys are errors (plain YAML would keep the last one silently).",
        "- Only `true`/`false` are booleans (YAML 1.2): `NO`, `on`, `yes` stay text, so a service prefix `NO` "
        "is safe.",
        "- Services are referred to by their *prefix* everywhere (profiles, rules, dispenser buttons).",
        "- Ids (center, node, counters, devices) are lower-case: letters, digits, `-`, `_`. Device ids are "
        "unique across all device sections.",
        "- Pins are BCM GPIO numbers 0-27; `GPIO17`/`BCM17` and physical `BOARD11` are accepted and "
        "normalised. No pin may be used twice (dispenser and GPIO keypads), nor a pin of a bus in use: "
        "SPI0 (GPIO 7-11) with a MAX7219 on SPI0, SPI1 (GPIO 16-21) on SPI1, UART (GPIO 14, 15) when a "
        "device uses `/dev/ttyAMA0`, `/dev/serial0` or `/dev/ttyS0`.",
        "- Serial devices may share a port (an RS-485 bus: displays, serial keypads) if they use the same "
        "baud rate and distinct addresses (1-247). A printer or a Nextion board needs a port of its own.",
        "- Every counter's profile services exist; every display and keypad names an existing counter; "
        "dispenser buttons name existing services and its printer exists.",
        "", "## Environment overrides", "",
        "Environment variables override the file (the same validation applies; an invalid value names the "
        "variable). Prefix `CIVIQ_`, nesting with `__`; sections: " +
        ", ".join(f"`{n}`" for n in EdgeSettings.model_fields) + ".", "",
        "```sh", "CIVIQ_MQTT__HOST=10.0.0.5", "CIVIQ_MQTT__PASSWORD_FILE=/run/credentials/civiq-edge/mqtt",
        "CIVIQ_STATE_DIR=/tmp/civiq", "CIVIQ_NODE__ID=pi-2", "```", "",
        "## Secrets", "",
        "The MQTT password is never written in the YAML (an inline `password:` is rejected). Put it alone in a "
        "file owned by the civiq user with permissions **0600** and set `mqtt.password_file`:", "",
        "```sh", "install -m 600 -o civiq -g civiq /dev/null /etc/civiq/mqtt-password",
        "echo 'the-password' > /etc/civiq/mqtt-password", "```", "",
        "`civiq config check` and the agent warn when the file is readable by group or others.", "",
        "## Sections", "",
    ]
    for model, title in SECTIONS:
        out += _model_doc(model, title)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(config_reference_markdown())
