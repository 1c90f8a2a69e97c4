"""``civiq config check`` on both sides' files: one loader, the same file:line:field errors; a gateway
settings file is checked as one and says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from civiq.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_civiq_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in [k for k in os.environ if k.startswith("CIVIQ_")]:
        monkeypatch.delenv(k)


def test_the_gateway_example_is_checked_as_gateway_settings(capsys: pytest.CaptureFixture[str]) -> None:
    for example in (ROOT / "firmware-config" / "gateway.example.yaml", ROOT / "civiq" / "data" / "gateway.example.yaml"):
        assert main(["config", "check", str(example)]) == 0
        out = capsys.readouterr().out
        assert out == (f"OK {example}: gateway settings, gateway gw-1, broker 127.0.0.1:1883, "
                       "data in /var/lib/civiq-gateway, no InfluxDB export\n")


def test_gateway_settings_problems_are_located_like_a_center_config_s(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    gw = tmp_path / "gateway.yaml"
    gw.write_text("gateway_id: gw-1\nmqtt:\n  host: broker\n  prot: 1883\nretention_days: 0\nretention_days: 5\n")
    center = tmp_path / "center.yaml"
    center.write_text("center: {id: Bad Id}\n")
    assert main(["config", "check", str(gw), str(ROOT / "firmware-config" / "small-commune.yaml"), str(center)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"{gw}:4:3: mqtt.prot: unknown field 'prot' — did you mean 'port'?" in out
    assert any(line.startswith(f"{gw}:6:1: retention_days: duplicate key") for line in out)
    assert f"FAILED {gw}: 2 problems (gateway settings)" in out
    assert any(line.startswith("OK ") and "small-commune.yaml: center hcm-xuanthoison" in line for line in out)
    assert any(line.startswith(f"{center}:1:") for line in out)  # the center file, by the edge's rules
    assert out[-1].startswith(f"FAILED {center}:")


def test_a_gateway_without_the_edge_parts_checks_a_center_config() -> None:
    """The province team checks a center's file on the gateway machine (``civiq[gateway]``, no pyserial,
    gpiozero, Pillow or qrcode): the check needs none of them; the agent itself still does."""
    code = (
        "import importlib.abc, sys\n"
        "class NotInstalled(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('serial', 'gpiozero', 'PIL', 'qrcode'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NotInstalled())\n"
        "from civiq.cli import main\n"
        "code = main(['config', 'check', *sys.argv[1:]])\n"
        "from civiq.edge.devices.transport import SerialTransport\n"
        "try:\n    SerialTransport('/dev/null')\nexcept ModuleNotFoundError as e:\n    print('agent needs', e.name)\n"
        "sys.exit(code)\n")
    files = [str(ROOT / "firmware-config" / f) for f in ("small-commune.yaml", "large-ward.yaml")]
    r = subprocess.run([sys.executable, "-c", code, *files], capture_output=True, text=True, timeout=60, cwd=ROOT,
                       env={k: v for k, v in os.environ.items() if not k.startswith("CIVIQ_")})
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert any(ln.startswith("OK ") and "small-commune.yaml: center hcm-xuanthoison" in ln for ln in lines)
    assert any(ln.startswith("OK ") and "large-ward.yaml: center hcm-saigon" in ln for ln in lines)
    assert lines[-1] == "agent needs serial"
