"""firmware-config/udev/99-civiq.rules: udev itself parses it, and each common USB-serial chip gets its name.

udev can only run rules against devices that exist in /sys, and this machine has no USB-serial adapter;
so the file is (1) parsed by the real ``udevadm test`` (in a private mount namespace, the system's rules
untouched) and (2) run against the properties of each chip by a small evaluator of the subset of the rules
language the file uses (==, !=, =, +=, GOTO/LABEL, | alternatives, globs, $env{}).
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "firmware-config/udev/99-civiq.rules"
PAIR = re.compile(r'\s*([A-Za-z_]+(?:\{[^}]+\})?)\s*(==|!=|\+=|=)\s*"([^"]*)"\s*,?')


def parse(text: str) -> list[list[tuple[str, str, str]]]:
    rules = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pairs, pos = [], 0
        while pos < len(line):
            m = PAIR.match(line, pos)
            assert m, f"line {n}: cannot parse {line[pos:]!r}"
            pairs.append(m.groups())
            pos = m.end()
        rules.append(pairs)
    return rules


def _matches(pattern: str, value: str | None) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in pattern.split("|"))


def run_rules(device: dict[str, str], text: str | None = None) -> dict[str, object]:
    """What the rules (default: the shipped file) do to a device with these properties: group, mode,
    env, symlinks."""
    dev = dict(device)
    out: dict[str, object] = {"symlinks": []}
    rules = parse(RULES.read_text() if text is None else text)
    labels = {pairs[0][2]: i for i, pairs in enumerate(rules) if pairs[0][0] == "LABEL"}
    i = 0
    while i < len(rules):
        pairs = rules[i]
        i += 1
        if all(_matches(v, dev.get(k)) if op == "==" else not _matches(v, dev.get(k))
               for k, op, v in pairs if op in ("==", "!=")):
            for key, op, value in pairs:
                if op in ("==", "!="):
                    continue
                value = re.sub(r"\$env\{([^}]+)\}", lambda m: dev.get(f"ENV{{{m.group(1)}}}", ""), value)
                if key == "GOTO":
                    i = labels[value]
                elif key.startswith("ENV{"):
                    dev[key] = value
                elif key == "SYMLINK":
                    out["symlinks"].append(value)
                elif key != "LABEL":
                    out[key] = value
    out["env"] = {k: v for k, v in dev.items() if k.startswith("ENV{")}
    return out


def usb_serial(vendor: str, product: str, kernel: str = "ttyUSB0", **extra: str) -> dict[str, str]:
    return {"ACTION": "add", "SUBSYSTEM": "tty", "KERNEL": kernel, "ATTRS{idVendor}": vendor,
            "ATTRS{idProduct}": product, **extra}


@pytest.mark.parametrize(("chip", "vendor", "product", "name"), [
    ("FTDI FT232R", "0403", "6001", "rs485"),
    ("FTDI FT-X", "0403", "6015", "rs485"),
    ("CH340", "1a86", "7523", "printer"),
    ("CH9102", "1a86", "55d4", "printer"),
    ("PL2303", "067b", "2303", "printer"),
    ("CP2102", "10c4", "ea60", "qrboard"),
])
def test_each_common_chip_gets_its_stable_name(chip: str, vendor: str, product: str, name: str) -> None:
    r = run_rules(usb_serial(vendor, product))
    assert r["symlinks"] == [f"civiq-{name}"], chip
    assert (r["GROUP"], r["MODE"]) == ("dialout", "0660")
    assert r["env"]["ENV{ID_MM_DEVICE_IGNORE}"] == "1", "ModemManager would probe the port"


def test_unknown_adapters_get_the_group_but_no_name_and_other_devices_are_left_alone() -> None:
    r = run_rules(usb_serial("2341", "0043", kernel="ttyACM0"))  # an Arduino
    assert r["symlinks"] == [] and r["GROUP"] == "dialout"
    assert run_rules({"ACTION": "add", "SUBSYSTEM": "tty", "KERNEL": "tty1"}) == {"symlinks": [], "env": {}}
    assert run_rules({**usb_serial("0403", "6001"), "ACTION": "remove"})["symlinks"] == []


def test_gpio_and_spidev_groups() -> None:
    assert run_rules({"ACTION": "add", "SUBSYSTEM": "gpio", "KERNEL": "gpiochip0"})["GROUP"] == "gpio"
    assert run_rules({"ACTION": "add", "SUBSYSTEM": "spidev", "KERNEL": "spidev0.0"})["GROUP"] == "spi"


def test_the_serial_number_example_overrides_the_chip_default() -> None:
    text = RULES.read_text()
    example = next(line for line in text.splitlines() if "ATTRS{serial}" in line)
    site = text.replace(example, example.lstrip("#"))
    assert site != text
    pinned = run_rules(usb_serial("0403", "6001", **{"ATTRS{serial}": "A10KZP3E"}), site)
    other = run_rules(usb_serial("0403", "6001", **{"ATTRS{serial}": "B99"}), site)
    assert pinned["symlinks"] == ["civiq-printer"] and other["symlinks"] == ["civiq-rs485"]


@pytest.mark.skipif(not (shutil.which("udevadm") and shutil.which("unshare")), reason="no udevadm/unshare")
def test_udev_parses_the_file(tmp_path: Path) -> None:
    script = ("mount -t tmpfs none /run/udev/rules.d && cp \"$1\" /run/udev/rules.d/ "
              "&& udevadm test /sys/class/tty/tty 2>&1")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(RULES)], capture_output=True, text=True,
                       timeout=60)
    if "Reading rules file: /run/udev/rules.d/99-civiq.rules" not in r.stdout:
        pytest.skip(f"cannot run udevadm test in a private mount namespace here: {r.stdout[-300:]}{r.stderr}")
    problems = [line for line in r.stdout.splitlines() if "99-civiq.rules:" in line
                and not re.search(r"Unknown group '(gpio|spi)'", line)]  # groups made by pi-setup.md
    assert problems == []


def test_usb_printer_class_devices_get_group_lp_and_a_stable_name() -> None:
    r = run_rules({"ACTION": "add", "SUBSYSTEM": "usbmisc", "KERNEL": "lp0"})
    assert (r["GROUP"], r["MODE"], r["symlinks"]) == ("lp", "0660", ["civiq-printer-usb"])
    assert run_rules({"ACTION": "add", "SUBSYSTEM": "usbmisc", "KERNEL": "hiddev0"}) == {"symlinks": [], "env": {}}
