"""The systemd units: valid for systemd itself, and consistent with the code they start.

``systemd-analyze verify`` checks the unit as rendered by :func:`civiq.install.render_unit` (ExecStart
pointing at this Python's civiq, a path that exists; verify refuses a missing binary). The other tests pin
the things verify cannot know: that ExecStart parses with our CLI, that the state directory the agent
writes is the one the sandbox leaves writable, that DeviceAllow names the kernel drivers of the devices
the agent opens.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from civiq.install import PLACEHOLDER, UNITS, civiq_executable, render_unit

UNIT_NAMES = ["civiq-edge.service", "civiq-gateway.service"]
needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")


def parse_unit(text: str) -> dict[str, list[str]]:
    """``Section.Key`` -> values (a key may repeat, like DeviceAllow=)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


def one(unit: dict[str, list[str]], key: str) -> str:
    values = unit[key]
    assert len(values) == 1, f"{key} set {len(values)} times"
    return values[0]


def environment(unit: dict[str, list[str]]) -> dict[str, str]:
    env = {}
    for value in unit.get("Service.Environment", []):
        for assignment in shlex.split(value):
            k, _, v = assignment.partition("=")
            env[k] = v
    return env


def verify(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)


@needs_analyze
@pytest.mark.parametrize("name", UNIT_NAMES)
def test_rendered_unit_passes_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(render_unit(name))
    r = verify(path)
    assert r.returncode == 0, r.stderr
    # warnings (unknown keys, bad values) are printed but do not change the exit code
    assert (r.stdout + r.stderr).strip() == "", r.stdout + r.stderr


@needs_analyze
def test_verify_catches_a_unit_whose_program_is_missing(tmp_path: Path) -> None:
    """The check above is real: the template's /opt path does not exist here, and a typo is reported."""
    path = tmp_path / "civiq-edge.service"
    path.write_text(render_unit("civiq-edge.service", executable="/nonexistent/civiq"))
    assert verify(path).returncode != 0
    path.write_text(render_unit("civiq-edge.service").replace("DeviceAllow=char-spi rw",
                                                               "DeviceAllow=char-spi rwz"))
    r = verify(path)
    assert "Invalid device rights" in r.stdout + r.stderr


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_execstart_is_a_command_our_cli_accepts(name: str) -> None:
    from civiq.cli import build_parser

    unit = parse_unit(render_unit(name))
    argv = shlex.split(one(unit, "Service.ExecStart"))
    exe = shlex.split(civiq_executable())
    assert argv[:len(exe)] == exe and PLACEHOLDER not in argv
    args = build_parser().parse_args(argv[len(exe):])
    assert args.cmd == "run"
    assert one(unit, "Service.Type") == "notify" and int(one(unit, "Service.WatchdogSec")) >= 10


def test_edge_state_dir_is_the_writable_state_directory_and_the_config_default() -> None:
    """ProtectSystem=strict makes / read-only: the agent's state dir must be the unit's StateDirectory.
    The unit sets it with CIVIQ_STATE_DIR, which load_config lays over the file's state_dir; it equals the
    config's default so that `civiq edge doctor` run by hand looks in the same place."""
    from civiq.edge.config import CenterConfig, load_config

    unit = parse_unit((UNITS / "civiq-edge.service").read_text())
    assert one(unit, "Service.ProtectSystem") == "strict"
    state = Path("/var/lib") / one(unit, "Service.StateDirectory")
    env = environment(unit)
    cfg = load_config(Path(__file__).parents[2] / "firmware-config/simulated.yaml", env=env)
    assert cfg.state_dir == state
    assert CenterConfig.model_fields["state_dir"].default == state
    # lgpio makes its notification pipes in the working directory ($LG_WD): a writable runtime dir
    run = Path("/run") / one(unit, "Service.RuntimeDirectory")
    assert Path(env["LG_WD"]) == run == Path(one(unit, "Service.WorkingDirectory"))


def test_gateway_data_dir_is_the_writable_state_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from civiq.gateway.settings import GatewaySettings

    unit = parse_unit((UNITS / "civiq-gateway.service").read_text())
    state = Path("/var/lib") / one(unit, "Service.StateDirectory")
    settings_file = tmp_path / "gateway.yaml"
    settings_file.write_text("data_dir: /somewhere/else\n")
    for k, v in environment(unit).items():
        monkeypatch.setenv(k, v)
    assert GatewaySettings.from_file(settings_file).data_dir == state  # the unit's variable wins
    assert GatewaySettings.model_fields["data_dir"].default == state


# The character-device driver names (/proc/devices on a Raspberry Pi) of what the agent opens, from the
# kernel sources: gpiolib.c GPIOCHIP_NAME "gpiochip"; spidev.c register_chrdev(.., "spi", ..);
# usb-serial.c "ttyUSB" (FTDI, CH340, CP210x, PL2303); cdc-acm.c "ttyACM"; amba-pl011.c "ttyAMA";
# 8250 / bcm2835aux mini UART "ttyS"; sound/core/sound.c register_chrdev(116, "alsa", ..). DeviceAllow=char-<name> matches on these names, not on /dev paths.
AGENT_DEVICES = {"/dev/gpiochip0": "gpiochip", "/dev/spidev0.0": "spi", "/dev/ttyUSB0": "ttyUSB",
                 "/dev/ttyACM0": "ttyACM", "/dev/ttyAMA0": "ttyAMA", "/dev/ttyS0": "ttyS",
                 "/dev/snd/pcmC0D0p": "alsa"}


def test_edge_device_allow_covers_every_device_the_agent_opens_and_nothing_else() -> None:
    unit = parse_unit((UNITS / "civiq-edge.service").read_text())
    assert one(unit, "Service.DevicePolicy") == "closed"
    allowed = {}
    for value in unit["Service.DeviceAllow"]:
        spec, _, rights = value.partition(" ")
        assert spec.startswith("char-"), value
        allowed[spec.removeprefix("char-")] = rights
    assert set(allowed) == set(AGENT_DEVICES.values())
    assert all(rights == "rw" for rights in allowed.values())
    # where this machine has one of those drivers, its /proc/devices name is the one we allow
    live = {line.split()[1] for line in Path("/proc/devices").read_text().split("Block devices")[0].splitlines()
            if line.strip() and line.split()[0].isdigit()}
    for name in ("ttyS", "ttyUSB", "ttyACM", "ttyAMA", "gpiochip", "spi", "alsa"):
        if name in live:
            assert name in allowed


def test_gateway_unit_gets_no_devices() -> None:
    unit = parse_unit((UNITS / "civiq-gateway.service").read_text())
    assert one(unit, "Service.PrivateDevices") == "true" and "Service.DeviceAllow" not in unit
