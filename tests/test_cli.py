"""The ``civiq`` command's own surface: version and help a newcomer reads first."""

from __future__ import annotations

import argparse
import os
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


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                out += [(*path, name), *_commands(sub, (*path, name))]
    return out


def test_every_command_has_a_description_examples_and_help_for_each_argument() -> None:
    from civiq.cli import build_parser

    commands = _commands(build_parser())
    assert ("edge", "doctor") in commands and ("gateway", "report") in commands and len(commands) > 20
    for cmd in commands:
        r = civiq_cmd(*cmd, "--help") if cmd == ("edge", "doctor") else None  # one through the real command
        text = r.stdout if r is not None else _help(cmd)
        usage, _, rest = text.partition("\n\n")
        description = rest.split("\n\n")[0]
        assert description and not description.startswith(("positional", "options")), (cmd, text)
        assert "\nexamples:\n  civiq " in text or "\nexamples:\n  sudo civiq " in text, (cmd, text)
        for action in _parser(cmd)._actions:  # noqa: SLF001 - every argument says what it is
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001 - its commands do, one line each
                assert all(a.help for a in action._choices_actions), cmd  # noqa: SLF001
            else:
                assert action.help, (cmd, action.dest)


def _parser(cmd: tuple[str, ...]) -> argparse.ArgumentParser:
    from civiq.cli import build_parser

    parser = build_parser()
    for name in cmd:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
        parser = sub.choices[name]
    return parser


def _help(cmd: tuple[str, ...]) -> str:
    return _parser(cmd).format_help()


def test_help_shows_defaults_in_words() -> None:
    text = _help(("gateway", "report"))
    assert "(default: day)" in " ".join(text.split()) and "(default: xlsx)" in text
    demo = " ".join(_help(("demo",)).split())
    assert "dashboard port (default: 8080)" in demo and "(default: None)" not in demo
    assert "(default: False)" not in demo  # flags say nothing of a default


def test_doctor_off_a_pi_says_so_in_one_line_without_gpiozero_warnings(tmp_path) -> None:  # noqa: ANN001
    from civiq.dev.broker import free_port
    from civiq.edge.sim.example import write_sim_center

    cfg = write_sim_center(tmp_path, free_port())  # GPIO buttons and keypads; no broker listening
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPIOZERO_")}
    r = subprocess.run([sys.executable, "-m", "civiq", "edge", "doctor", str(cfg)], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 1  # faults: no pins, no serial devices, no broker
    assert "Warning" not in r.stderr and "warnings.warn" not in r.stderr, r.stderr
    [pins] = [line for line in r.stdout.splitlines() if line.startswith("✘ GPIO pins")]
    assert "no pin library could load (lgpio (" in pins and "--simulate" in pins, pins


def test_test_print_off_a_pi_is_one_line_naming_simulate(tmp_path) -> None:  # noqa: ANN001
    from civiq.dev.broker import free_port
    from civiq.edge.sim.example import write_sim_center

    cfg = write_sim_center(tmp_path, free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPIOZERO_")}
    r = subprocess.run([sys.executable, "-m", "civiq", "edge", "test-print", str(cfg)], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if " INFO " not in line]
    assert len(errors) == 1 and "Traceback" not in r.stderr and "Warning" not in r.stderr, r.stderr
    assert errors[0].startswith("test print: the hardware cannot be opened: no GPIO pin library could load (lgpio (")
    assert errors[0].endswith("try the config with --simulate"), errors[0]
