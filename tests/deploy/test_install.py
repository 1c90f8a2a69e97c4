"""``civiq edge install`` / ``civiq gateway install`` into a temporary root, through the real command."""

from __future__ import annotations

import grp
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from civiq.install import DATA, PLACEHOLDER, civiq_executable, install_edge, install_gateway

REPO = Path(__file__).resolve().parents[2]
EDGE_CONFIG = REPO / "firmware-config/small-commune.yaml"


def civiq(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVIQ_")}
    return subprocess.run([sys.executable, "-m", "civiq", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=60)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def exec_start(unit: Path) -> list[str]:
    line = next(x for x in unit.read_text().splitlines() if x.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def assert_verifies(unit: Path) -> None:
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


def test_edge_install_puts_config_and_unit_in_place(tmp_path: Path) -> None:
    r = civiq("edge", "install", str(EDGE_CONFIG), "--root", str(tmp_path))
    assert r.returncode == 0, r.stderr
    config = tmp_path / "etc/civiq/center.yaml"
    unit = tmp_path / "etc/systemd/system/civiq-edge.service"
    assert files_under(tmp_path) == sorted([config, unit])
    assert config.read_text() == EDGE_CONFIG.read_text()
    assert mode(config) == 0o640, "the config may name password files: not world-readable"
    assert mode(unit) == 0o644
    argv = exec_start(unit)
    exe = shlex.split(civiq_executable())
    assert argv == [*exe, "edge", "run", "/etc/civiq/center.yaml"]
    assert PLACEHOLDER not in unit.read_text()
    assert Path(exe[0]).exists()
    assert_verifies(unit)
    assert "systemctl enable --now civiq-edge.service" in r.stdout


def test_edge_install_refuses_an_invalid_config_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "center.yaml"
    bad.write_text(EDGE_CONFIG.read_text().replace("prefix: B", "prefix: b2", 1))
    root = tmp_path / "root"
    r = civiq("edge", "install", str(bad), "--root", str(root))
    assert r.returncode == 2
    assert "not installed" in r.stderr and f"{bad}:" in r.stderr and "prefix" in r.stderr
    assert not root.exists()
    missing = civiq("edge", "install", str(tmp_path / "nope.yaml"), "--root", str(root))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and not root.exists()


def test_edge_reinstall_keeps_the_previous_config(tmp_path: Path) -> None:
    assert install_edge(EDGE_CONFIG, root=tmp_path, group=None) == 0
    changed = tmp_path / "changed.yaml"
    changed.write_text(EDGE_CONFIG.read_text().replace("max_recalls: 3", "max_recalls: 2"))
    assert changed.read_text() != EDGE_CONFIG.read_text()
    assert install_edge(changed, root=tmp_path, group=None) == 0
    assert (tmp_path / "etc/civiq/center.yaml").read_text() == changed.read_text()
    assert (tmp_path / "etc/civiq/center.yaml.previous").read_text() == EDGE_CONFIG.read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_config_belongs_to_the_service_group(tmp_path: Path) -> None:
    group = next((g for g in grp.getgrall() if g.gr_gid != 0), None)  # stands in for "civiq"
    if group is None:
        pytest.skip("no group other than root on this machine")
    assert install_edge(EDGE_CONFIG, root=tmp_path, group=group.gr_name) == 0
    st = (tmp_path / "etc/civiq/center.yaml").stat()
    assert (st.st_uid, st.st_gid) == (0, group.gr_gid)


def test_gateway_install_starts_from_the_shipped_example(tmp_path: Path) -> None:
    from civiq.gateway.settings import GatewaySettings

    r = civiq("gateway", "install", "--root", str(tmp_path))
    assert r.returncode == 0, r.stderr
    settings = tmp_path / "etc/civiq/gateway.yaml"
    unit = tmp_path / "etc/systemd/system/civiq-gateway.service"
    assert files_under(tmp_path) == sorted([settings, unit])
    assert settings.read_text() == (DATA / "gateway.example.yaml").read_text()
    assert settings.read_text() == (REPO / "firmware-config/gateway.example.yaml").read_text()
    assert GatewaySettings.from_file(settings).gateway_id == "gw-1"
    assert (mode(settings), mode(unit)) == (0o640, 0o644)
    assert exec_start(unit) == [*shlex.split(civiq_executable()), "gateway", "run", "--config",
                                "/etc/civiq/gateway.yaml"]
    assert_verifies(unit)


def test_gateway_install_keeps_existing_settings(tmp_path: Path) -> None:
    settings = tmp_path / "etc/civiq/gateway.yaml"
    settings.parent.mkdir(parents=True)
    settings.write_text("gateway_id: gw-hcm\n")
    assert install_gateway(root=tmp_path, group=None) == 0
    assert settings.read_text() == "gateway_id: gw-hcm\n"
    assert (tmp_path / "etc/systemd/system/civiq-gateway.service").exists()


def test_gateway_install_refuses_invalid_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "gw.yaml"
    bad.write_text("gateway_id: GW 1\nmqtt: {port: 99999}\n")
    root = tmp_path / "root"
    assert install_gateway(root=root, settings=bad, group=None) == 2
    err = capsys.readouterr().err
    assert "gateway_id" in err and "mqtt.port" in err and str(bad) in err
    assert not root.exists()
    # an invalid file already in place is refused too: no unit that would crash-loop
    target = root / "etc/civiq/gateway.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("mqtt: [not, a, mapping]\n")
    assert install_gateway(root=root, group=None) == 2
    assert not (root / "etc/systemd").exists()
