"""``civiq edge install CONFIG`` and ``civiq gateway install``: put the config and the systemd unit in place.

Both check the configuration first and write nothing when it is invalid. Both take ``root`` so tests (and
image builders) install into a temporary tree instead of ``/``::

    $ civiq edge install center.yaml --root /tmp/img
    installed /tmp/img/etc/civiq/center.yaml and /tmp/img/etc/systemd/system/civiq-edge.service

The edge install also generates the speaker's voice clip pack (``speaker.pack_dir``, default
``/var/lib/civiq/voice``) with espeak-ng when the config has a speaker and espeak-ng is installed.

Files: the config ``/etc/civiq/{center,gateway}.yaml`` mode 0640 (group ``civiq`` when that group exists:
the service reads it, other users cannot: it may name password files), the unit
``/etc/systemd/system/civiq-{edge,gateway}.service`` mode 0644. The unit's ExecStart is rewritten to the
``civiq`` command of the Python running the installer (the virtual environment it lives in), so the unit
works wherever the package was installed.
"""

from __future__ import annotations

import grp
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"
UNITS = DATA / "systemd"
PLACEHOLDER = "/opt/civiq/bin/civiq"  # the ExecStart path written in the unit templates
EDGE_STATE_DIR = "/var/lib/civiq"  # the edge unit's StateDirectory= and CIVIQ_STATE_DIR
CONFIG_MODE = 0o640
UNIT_MODE = 0o644


def civiq_executable() -> str:
    """The command that runs civiq with this Python: ``<venv>/bin/civiq`` when the package's script is
    installed next to the interpreter, else ``<python> -m civiq`` (always runnable).

    >>> civiq_executable().endswith(("civiq", "-m civiq"))
    True
    """
    exe = Path(sys.executable).parent / "civiq"
    if exe.is_file() and os.access(exe, os.X_OK):
        return str(exe)
    return f"{shlex.quote(sys.executable)} -m civiq"


def render_unit(name: str, executable: str | None = None) -> str:
    """The unit file ``name`` with ExecStart pointing at ``executable`` (default :func:`civiq_executable`)."""
    text = (UNITS / name).read_text(encoding="utf-8")
    if PLACEHOLDER not in text:
        raise ValueError(f"{name}: ExecStart does not use {PLACEHOLDER}; cannot rewrite it")
    return text.replace(PLACEHOLDER, executable or civiq_executable())


def _write(path: Path, content: str, mode: int, group: str | None = None) -> None:
    """Atomically write ``path`` with ``mode`` (and group ``group`` when it exists and we may chown)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content, encoding="utf-8")
    os.chmod(tmp, mode)
    gid = _gid(group)
    if gid is not None and os.geteuid() == 0:
        os.chown(tmp, 0, gid)
    os.replace(tmp, path)


def _gid(group: str | None) -> int | None:
    if not group:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def _keep_previous(target: Path, new_text: str) -> None:
    """A changed config replaces the old one; the old one stays next to it as ``NAME.previous``."""
    if target.exists() and target.read_text(encoding="utf-8") != new_text:
        shutil.copy2(target, target.with_name(target.name + ".previous"))


def _check_executable(executable: str) -> None:
    """The units set ProtectHome=true: a civiq installed under /home or /root is invisible to them."""
    path = shlex.split(executable)[0]
    if path.startswith(("/home/", "/root/", "/run/user/")):
        print(f"warning: the unit will run {path}, but the service cannot see /home or /root "
              "(ProtectHome=true): install civiq in /opt/civiq (firmware-config/pi-setup.md) and run "
              "this command with /opt/civiq/bin/civiq", file=sys.stderr)


def _finish(root: Path, unit: str, group: str | None) -> None:
    _check_executable(civiq_executable())
    if str(root) == "/":
        if group and _gid(group) is None:
            print(f"warning: there is no '{group}' user/group yet; create it before starting the service:\n"
                  f"  sudo useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin {group}",
                  file=sys.stderr)
        if shutil.which("systemctl"):
            subprocess.run(["systemctl", "daemon-reload"], check=False)
    print(f"Next: sudo systemctl enable --now {unit}   (then: journalctl -u {unit} -f)")


def install_edge(config: str | Path, root: str | Path = "/", group: str | None = "civiq") -> int:
    """Check ``config`` and install it with the edge unit under ``root``. Returns the exit code: 0 done,
    2 the config is invalid or unreadable (nothing written)."""
    from civiq.edge.config import ConfigError, config_warnings, load_config

    try:
        cfg = load_config(config, env={})  # the file as written; the unit's environment adds the state dir
        text = Path(config).read_text(encoding="utf-8")
    except ConfigError as e:
        print(f"not installed: the config has problems:\n{e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"not installed: cannot read {config}: {e.strerror}", file=sys.stderr)
        return 2
    for w in config_warnings(cfg):
        print(f"warning: {w}", file=sys.stderr)
    if str(cfg.state_dir) != EDGE_STATE_DIR:
        print(f"note: the service keeps its queue log in {EDGE_STATE_DIR} (the unit sets CIVIQ_STATE_DIR); "
              f"the file says {cfg.state_dir}. Run doctor as `CIVIQ_STATE_DIR={EDGE_STATE_DIR} civiq edge "
              "doctor /etc/civiq/center.yaml`, or remove state_dir from the file.", file=sys.stderr)
    r = Path(root)
    target = r / "etc/civiq/center.yaml"
    unit = r / "etc/systemd/system/civiq-edge.service"
    _keep_previous(target, text)
    _write(target, text, CONFIG_MODE, group)
    _write(unit, render_unit("civiq-edge.service"), UNIT_MODE)
    print(f"installed {target} and {unit}")
    _install_voice_pack(cfg, r)
    _finish(r, "civiq-edge.service", group)
    return 0


def _install_voice_pack(cfg, root: Path) -> None:  # noqa: ANN001 - CenterConfig
    """Generate the speaker's clip pack with espeak-ng (offline), keeping any human recordings there."""
    sp = cfg.speaker
    if sp is None or not sp.speech:
        return
    from civiq.edge.voice import audio
    from civiq.edge.voice.announcer import phrasebook_from_config
    from civiq.edge.voice.clips import build_pack

    pack = sp.pack_path(Path(EDGE_STATE_DIR))
    target = root / pack.relative_to("/") if pack.is_absolute() else root / pack
    if not audio.espeak_available():
        print(f"note: espeak-ng is not installed, so no voice clip pack was generated in {pack}: "
              "`sudo apt install espeak-ng` then `civiq edge voice-pack build --config /etc/civiq/center.yaml`, "
              "or copy a recorded pack there (docs/technician.md, Recording kit)", file=sys.stderr)
        return
    try:
        r = build_pack(target, sp.voice, phrasebook_from_config(cfg).phrase_segments())
    except (audio.AudioError, OSError) as e:
        print(f"warning: the voice clip pack was not generated in {target}: {e}", file=sys.stderr)
        return
    print(f"voice clip pack {target}: {len(r.generated)} clip(s) generated with espeak-ng ({sp.voice}), "
          f"{len(r.recorded)} recording(s) kept")


def install_gateway(root: str | Path = "/", settings: str | Path | None = None,
                    group: str | None = "civiq") -> int:
    """Install the gateway unit under ``root`` with settings from ``settings``; without it, keep an
    existing ``/etc/civiq/gateway.yaml`` or start from the shipped example. The settings are checked
    first: invalid ones are refused (exit 2, nothing written)."""
    from civiq.gateway.settings import GatewaySettings, SettingsError

    r = Path(root)
    target = r / "etc/civiq/gateway.yaml"
    example = DATA / "gateway.example.yaml"
    source = Path(settings) if settings else (target if target.exists() else example)
    try:
        text = source.read_text(encoding="utf-8")
        GatewaySettings.from_file(source)
    except OSError as e:
        print(f"not installed: cannot read {source}: {e.strerror}", file=sys.stderr)
        return 2
    except SettingsError as e:
        print(f"not installed: the gateway settings have problems:\n{e}", file=sys.stderr)
        return 2
    if source != target:
        _keep_previous(target, text)
        _write(target, text, CONFIG_MODE, group)
    unit = r / "etc/systemd/system/civiq-gateway.service"
    _write(unit, render_unit("civiq-gateway.service"), UNIT_MODE)
    print(f"installed {target} and {unit}")
    _finish(r, "civiq-gateway.service", group)
    return 0
