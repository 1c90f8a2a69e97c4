"""The ``civiq`` command's own surface: version and help a newcomer reads first."""

from __future__ import annotations

import subprocess
import sys

import civiq


def civiq_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "civiq", *args], capture_output=True, text=True, timeout=30)


def test_version() -> None:
    r = civiq_cmd("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"civiq {civiq.__version__}"


def test_help_lists_every_command_with_an_example() -> None:
    r = civiq_cmd("--help")
    assert r.returncode == 0
    for line in ("civiq demo", "civiq edge run CONFIG", "civiq gateway run", "civiq config check FILE"):
        assert line in r.stdout, r.stdout
