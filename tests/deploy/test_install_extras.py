"""A Pi installs ``civiq[edge]`` and nothing of the gateway's: a fresh virtual environment, the package
installed from this tree with the ``edge`` extra, then what a technician runs. Slow (a venv and a pip
install, ~20-60 s): marked ``install``, so it runs in ``make test`` (the whole suite) but not in ``make check``.
pip may use its cache, the machine's wheel folders or PyPI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# distributions only the gateway or the demo need (and what only they pull in)
GATEWAY_ONLY = {"influxdb-client", "openpyxl", "et-xmlfile", "reactivex", "msgspec", "amqtt", "transitions", "passlib",
                "websockets", "docopt"}

pytestmark = pytest.mark.install


def _run(*cmd: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)


def _pip(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The test environment's pip acting on ``venv`` (``pip --python``)."""
    return _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "--disable-pip-version-check",
                *args)


@pytest.fixture(scope="module")
def edge_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install '<tree>[edge]'`` into a new venv; the tree is copied first (pip builds in the source
    folder, and the worktree must stay clean)."""
    tmp = tmp_path_factory.mktemp("edge-install")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "civiq", src / "civiq", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv = tmp / "venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv)  # this pip installs into it: ~5 s less
    assert made.returncode == 0, made.stderr
    pip = _pip(venv, "install", "-q", f"{src}[edge]")
    if pip.returncode != 0 and ("Could not find a version" in pip.stderr or "NewConnectionError" in pip.stderr):
        pytest.skip(f"no package index reachable for the install:\n{pip.stderr[-2000:]}")
    assert pip.returncode == 0, pip.stderr[-4000:]
    yield venv
    shutil.rmtree(tmp, ignore_errors=True)


def test_the_edge_extra_runs_the_agent_and_carries_no_gateway_distribution(edge_venv: Path) -> None:
    listed = _pip(edge_venv, "list", "--format=freeze")
    dists = {line.split("==")[0].lower() for line in listed.stdout.split()}
    assert {"civiq", "gpiozero", "pyserial", "paho-mqtt", "pillow"} <= dists
    assert dists & GATEWAY_ONLY == set(), f"a Pi install carries gateway/demo parts: {dists & GATEWAY_ONLY}"
    assert "pyserial-asyncio-fast" not in dists

    helped = _run(edge_venv / "bin" / "civiq", "edge", "--help", timeout=60)
    assert helped.returncode == 0 and "run" in helped.stdout and "doctor" in helped.stdout, helped.stderr
    imported = _run(edge_venv / "bin" / "python", "-c",
                    "import sys, civiq.edge.agent, civiq.edge.cli, civiq.edge.hardware, civiq.edge.doctor\n"
                    "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                    "('influxdb_client', 'openpyxl', 'amqtt') or m.startswith(('civiq.gateway', 'civiq.dev'))))",
                    timeout=60)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "[]"


def test_a_gateway_part_on_a_pi_says_which_extra_to_install(edge_venv: Path, tmp_path: Path) -> None:
    """The .xlsx report needs openpyxl (the gateway extra): on a Pi install the command says so in one line."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "series.db").touch()
    (tmp_path / "gw.yaml").write_text(f"data_dir: {tmp_path / 'data'}\n")
    out = _run(edge_venv / "bin" / "civiq", "gateway", "report", "--center", "x", "--out", tmp_path / "r.xlsx",
               "--config", tmp_path / "gw.yaml", timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        "civiq gateway: this needs the gateway's parts (openpyxl is not installed): pip install 'civiq[gateway]'")
    assert not (tmp_path / "r.xlsx").exists()
