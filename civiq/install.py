"""``civiq edge install CONFIG`` and ``civiq gateway install``: put config and systemd unit in place.

Both take ``--root`` so tests (and image builders) install into a temporary tree. The unit's ExecStart is
rewritten to the ``civiq`` executable that runs this command (the virtual environment it lives in), so the
unit works wherever the package was installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

UNITS = Path(__file__).parent / "data" / "systemd"


def civiq_executable() -> str:
    exe = Path(sys.executable).parent / "civiq"
    if exe.exists():
        return str(exe)
    return shutil.which("civiq") or "/opt/civiq/bin/civiq"


def render_unit(name: str, executable: str | None = None) -> str:
    text = (UNITS / name).read_text()
    return text.replace("/opt/civiq/bin/civiq", executable or civiq_executable())


def _write(path: Path, content: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _finish(root: Path, unit: str) -> None:
    if str(root) == "/" and shutil.which("systemctl"):
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    print(f"Next: systemctl enable --now {unit}   (then: journalctl -u {unit} -f)")


def install_edge(config: str, root: str = "/") -> int:
    from civiq.edge.config import ConfigError, load_config

    try:
        load_config(config)
    except ConfigError as e:
        print(f"not installed: the config has problems:\n{e}", file=sys.stderr)
        return 2
    r = Path(root)
    _write(r / "etc/civiq/center.yaml", Path(config).read_text(), 0o640)
    _write(r / "etc/systemd/system/civiq-edge.service", render_unit("civiq-edge.service"), 0o644)
    print(f"installed {r / 'etc/civiq/center.yaml'} and {r / 'etc/systemd/system/civiq-edge.service'}")
    _finish(r, "civiq-edge.service")
    return 0


def install_gateway(root: str = "/", settings: str | None = None) -> int:
    r = Path(root)
    target = r / "etc/civiq/gateway.yaml"
    if settings:
        _write(target, Path(settings).read_text(), 0o640)
    elif not target.exists():
        example = Path(__file__).parent / "data" / "gateway.example.yaml"
        _write(target, example.read_text() if example.exists() else "gateway_id: gw-1\n", 0o640)
    _write(r / "etc/systemd/system/civiq-gateway.service", render_unit("civiq-gateway.service"), 0o644)
    print(f"installed {target} and {r / 'etc/systemd/system/civiq-gateway.service'}")
    _finish(r, "civiq-gateway.service")
    return 0
