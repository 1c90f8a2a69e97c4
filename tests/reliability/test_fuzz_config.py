"""Fuzz the center config loader: whatever a technician (or a broken SD card) puts in the file, or in the
``CIVIQ_*`` environment, :func:`load_config` returns a valid config or raises :class:`ConfigError` that names
the file; never anything else, and never slowly (YAML alias bombs, recursive aliases, deep nesting)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from civiq.edge.config import CenterConfig, ConfigError, load_config
from civiq.edge.sim.example import sim_center_yaml
from tests.reliability.faultkit import fuzz, soak

# bounded here; `make soak` (CIVIQ_SOAK=1) runs many more examples, with the time that takes
pytestmark = [pytest.mark.slow, pytest.mark.timeout(soak(120, 1800))]

EXAMPLES = [p for p in sorted((Path(__file__).resolve().parents[2] / "firmware-config").glob("*.yaml"))
            if "\ncounters:" in p.read_text(encoding="utf-8")]  # center files (not the gateway's settings)
BASES = [p.read_text(encoding="utf-8") for p in EXAMPLES] + [
    sim_center_yaml(1883, state_dir="/tmp/civiq-fuzz-state")]
TOKENS = [".nan", ".inf", "-1", "0", "1e999", "1" + "0" * 30, "~", "null", "[]", "{}", "*x", "&x", "!!binary AA",
          "yes", "no", "0x1F", "0o17", "'", '"', "|", ">", "---", "...", "\t", ":", "- ", "? ", "#", "@", "`",
          "!!python/object:os.system", "2001-12-14", "Đất đai", "\u202e", "\ud7ff", "%YAML 1.1", "<<: *x", "\\"]


def check(path: Path, text: str | bytes, env: dict[str, str] | None = None) -> None:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    t0 = time.monotonic()
    try:
        cfg = load_config(path, env=env or {})
        assert isinstance(cfg, CenterConfig)
    except ConfigError as e:
        assert e.problems, "a ConfigError without problems"
        assert str(path) in str(e) or any(k in str(e) for k in env or {}), f"the error names no source: {e}"
    assert time.monotonic() - t0 < 5, "loading one small file took more than 5 s"


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(BASES)).splitlines()
    for _ in range(draw(st.integers(1, 5))):
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        op = draw(st.sampled_from(["delete", "dup", "swap", "token", "indent", "random", "cut"]))
        if not lines:
            lines = [draw(st.text(max_size=40))]
        elif op == "delete":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "token":
            pos = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:pos] + draw(st.sampled_from(TOKENS)) + lines[i][pos:]
        elif op == "indent":
            lines[i] = draw(st.sampled_from(["", " ", "  ", "    ", "\t"])) + lines[i].lstrip()
        elif op == "random":
            lines[i] = draw(st.text(max_size=60))
        else:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))


def test_examples_are_valid(tmp_path: Path) -> None:
    for text in BASES:
        path = tmp_path / "center.yaml"
        path.write_text(text, encoding="utf-8")
        load_config(path, env={})


@fuzz(250, 10000)
@given(text=mutated_text())
def test_mutated_examples(tmp_path: Path, text: str) -> None:
    check(tmp_path / "center.yaml", text)


@fuzz(100, 3000)
@given(raw=st.binary(max_size=400), base=st.sampled_from(BASES), cut=st.integers(0, 3000))
def test_random_bytes(tmp_path: Path, raw: bytes, base: str, cut: int) -> None:
    b = base.encode()
    check(tmp_path / "center.yaml", raw)
    check(tmp_path / "center.yaml", b[:cut] + raw + b[cut:])


@fuzz(100, 3000)
@given(key=st.sampled_from(["CIVIQ_MQTT__PORT", "CIVIQ_MQTT__HOST", "CIVIQ_MQTT", "CIVIQ_NODE__ID", "CIVIQ_NODE",
                            "CIVIQ_STATE_DIR", "CIVIQ_QUEUE__MAX_RECALLS", "CIVIQ_CENTER", "CIVIQ_HTTP__PORT",
                            "CIVIQ_MQTT__PASSWORD_FILE", "CIVIQ_CENTER__TIMEZONE", "CIVIQ_QUEUE"]),
       value=st.text(max_size=40) | st.sampled_from(['{"host": 1}', '{"port": "x"}', "[]", "null", '{"a": {"b": []}}',
                                                     "1e999", "-5", "Mars/Olympus", "../../etc", '{"id": "Pi 1"}']))
def test_environment_overrides(tmp_path: Path, key: str, value: str) -> None:
    if "\x00" in value:
        return  # an environment variable cannot hold NUL
    check(tmp_path / "center.yaml", BASES[-1], env={key: value})


LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))


@pytest.mark.parametrize("text", [
    BASES[-1] + "extra: &r [*r]\n",                                       # an alias inside its own anchor
    "center: &c {id: x, name: y, timezone: Asia/Ho_Chi_Minh, self: *c}\n",
    LAUGHS + BASES[-1],                                                    # 9**9 values from 10 lines
    "a: " + "[" * 5000 + "]" * 5000 + "\n",                                # deep nesting
    "a: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    BASES[-1].replace("baudrate: 19200", "baudrate: 1" + "0" * 5000),      # over Python's int digit limit
    BASES[-1].replace("keepalive: 5", "keepalive: .nan"),
    BASES[-1] + "x: !!python/object/apply:os.system [echo pwned]\n",
    "\ufeff" + BASES[-1],
    "", "42", "- a\n- b\n", "~\n", "---\n---\n", "%YAML 1.2\n---\na: 1\n",
], ids=["recursive-alias", "recursive-map", "billion-laughs", "deep-flow", "deep-map", "huge-int", "nan",
        "python-tag", "bom", "empty", "scalar", "list", "null", "two-documents", "directive"])
def test_hostile_documents(tmp_path: Path, text: str) -> None:
    check(tmp_path / "center.yaml", text)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", env={})
    with pytest.raises(ConfigError):
        load_config(tmp_path, env={})  # a directory
