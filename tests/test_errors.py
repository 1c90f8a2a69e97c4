"""One error root per side: every exception class civiq defines derives from CiviqError; the agent's from
EdgeError, the gateway's from GatewayError (civiq/errors.py)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import civiq
from civiq.errors import CiviqError, EdgeError, GatewayError


def defined_errors() -> dict[str, type[BaseException]]:
    out = {}
    for info in pkgutil.walk_packages(civiq.__path__, "civiq."):
        if info.name == "civiq.__main__":
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name \
                    and not name.startswith("_"):
                out[f"{info.name}.{name}"] = obj
    return out


def root_for(qualname: str) -> type[CiviqError]:
    if qualname.startswith("civiq.edge."):
        return EdgeError
    if qualname.startswith("civiq.gateway."):
        return GatewayError
    return CiviqError


def test_every_error_has_its_side_s_root() -> None:
    errors = defined_errors()
    assert len(errors) >= 20 and "civiq.edge.queue.engine.QueueError" in errors
    wrong = sorted(f"{q} should derive from {root_for(q).__name__}" for q, cls in errors.items()
                   if not issubclass(cls, root_for(q)))
    assert wrong == []


def test_the_old_bases_still_catch() -> None:
    from civiq.edge.queue.store import StoreFull
    from civiq.gateway.settings import SettingsError
    from civiq.yamlconf import ConfigError

    assert issubclass(StoreFull, OSError) and issubclass(SettingsError, ValueError)
    assert not issubclass(ConfigError, EdgeError | GatewayError)
    assert not issubclass(EdgeError, GatewayError) and not issubclass(GatewayError, EdgeError)


def test_an_error_raised_on_purpose_stops_the_command_in_one_line(tmp_path) -> None:  # noqa: ANN001
    """A CiviqError reaching the ``civiq`` command is printed as one line (no traceback), exit 2."""
    import subprocess
    import sys

    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(f"gateway_id: gw-1\ndata_dir: {tmp_path / 'data'}\n"
                   f"mqtt: {{username: gw, password_file: {tmp_path / 'missing'}}}\n")
    r = subprocess.run([sys.executable, "-m", "civiq", "gateway", "run", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == (f"civiq gateway: mqtt.password_file {tmp_path / 'missing'}: cannot read it "
                                "(No such file or directory)")
