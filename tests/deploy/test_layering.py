"""The house rules, checked on the source with ``ast`` (docs/architecture.md explains them):

- ``civiq.edge`` and ``civiq.gateway`` never import each other (both import ``civiq``: the contract, clock,
  helpers). A Pi installs the same package but must never need gateway code, and the gateway must not drag
  in GPIO/serial code. An import inside a function (a lazy import) counts too.
- the import graph of ``civiq/`` has no cycle (every form counts: top level, lazy, ``TYPE_CHECKING``);
- a production module never imports a mock, an emulator or a development module at import time: emulators
  live in ``civiq.edge.sim``, the demo, broker and TSDB runners in ``civiq.dev``, and only the places that
  build simulated hardware import them, inside the function that does.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "civiq"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def _parse(text: str, filename: str) -> ast.Module:
    """Each module is parsed once for all the checks below (the same text gives the same tree)."""
    return ast.parse(text, filename=filename)


def imports(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the module at ``path`` (its text, or ``source``),
    relative imports resolved against the module's package."""
    text = path.read_text(encoding="utf-8") if source is None else source
    tree = _parse(text, str(path))
    here = module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]  # the package the module is in
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = here[:len(here) - node.level + 1]
                base = ".".join([*pkg, base]) if base else ".".join(pkg)
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]  # from civiq import gateway
    return out


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def load_time_imports(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """The imports that run when the module is imported: module level and class bodies (also under ``if``,
    ``try``, ``with``), not function bodies and not ``if TYPE_CHECKING:`` blocks."""
    text = path.read_text(encoding="utf-8") if source is None else source
    keep: set[int] = set()

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) or _is_type_checking(node):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                keep.add(node.lineno)
            for field in ("body", "orelse", "finalbody", "handlers"):
                sub = getattr(node, field, None)
                if isinstance(sub, list):
                    walk(sub)

    walk(_parse(text, str(path)).body)
    return [(line, mod) for line, mod in imports(path, text) if line in keep]


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _owner(name: str) -> str | None:
    """The civiq module an imported name lives in (``civiq.x.y.Class`` -> ``civiq.x.y``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(paths: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """module -> the civiq modules it imports (any form), from the source. A module's own enclosing packages
    are left out (``from . import escpos`` in a package's module): Python loads a package before its
    modules, always, so that edge is the nesting, not a circle between two files."""
    paths = MODULES if paths is None else paths
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps = {_owner(mod) for _, mod in imports(path) if mod == "civiq" or mod.startswith("civiq.")}
        graph[name] = {d for d in deps if d and d != name and d in paths and not name.startswith(d + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted.

    >>> cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    [['a', 'b']]
    >>> cycles({"a": {"b"}, "b": set()})
    []
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


# what a production module must not load when it is imported
DEV_PACKAGES = ("civiq.dev", "civiq.edge.sim")
MOCKS = ("gpiozero.pins.mock", "unittest.mock", "amqtt")


def is_dev(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in DEV_PACKAGES)


def mock_violations() -> list[str]:
    bad = []
    for name, path in sorted(MODULES.items()):
        if is_dev(name) or name == "civiq.__main__":
            continue
        for line, mod in load_time_imports(path):
            if is_dev(mod) or any(mod == m or mod.startswith(m + ".") for m in MOCKS) or "emulator" in mod:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {mod} at import time")
    return bad


def violations(side: str, other: str) -> list[str]:
    bad = []
    for path in sorted((PACKAGE / side).rglob("*.py")):
        for line, mod in imports(path):
            if mod == f"civiq.{other}" or mod.startswith(f"civiq.{other}."):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {mod}")
    return bad


def test_edge_never_imports_the_gateway() -> None:
    assert violations("edge", "gateway") == []


def test_gateway_never_imports_the_edge() -> None:
    assert violations("gateway", "edge") == []


def test_the_checker_sees_every_import_form() -> None:
    """The checker itself: absolute, lazy (in a function), relative and ``from civiq import x`` forms."""
    code = ("import civiq.gateway.settings\n"
            "def f():\n    from civiq.gateway import service\n"
            "from civiq import gateway\n"
            "from ..gateway.store import influx\n")
    found = [m for _, m in imports(PACKAGE / "edge" / "sample.py", code)]
    assert "civiq.gateway.settings" in found and "civiq.gateway.service" in found
    assert "civiq.gateway" in found and "civiq.gateway.store.influx" in found
    assert violations("edge", "gateway") == [] and len(imports(PACKAGE / "edge" / "agent.py")) > 10


def test_the_house_drawn_from_the_imports_has_no_circle() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles in civiq/ (break them: move the shared part into a module both import):\n" \
        + "\n".join(" <-> ".join(c) for c in found)


def test_no_production_module_imports_a_mock_or_a_dev_module_at_import_time() -> None:
    assert mock_violations() == []


def test_the_cycle_and_mock_checkers_can_fail() -> None:
    """Both checkers on made-up modules: a lazy cycle and a ``TYPE_CHECKING`` one are cycles; a mock imported
    inside a function or under ``TYPE_CHECKING`` is not a load-time import, one in a ``try`` is."""
    here = PACKAGE / "edge" / "sample.py"
    code = ("from typing import TYPE_CHECKING\n"
            "try:\n    from gpiozero.pins.mock import MockFactory\nexcept ImportError:\n    pass\n"
            "if TYPE_CHECKING:\n    from civiq.edge.sim.printer import EscPosEmulator\n"
            "def build():\n    from civiq.edge.sim.hardware import SimHardware\n")
    loaded = [m for _, m in load_time_imports(here, code)]
    assert "gpiozero.pins.mock.MockFactory" in loaded
    assert not any(m.startswith("civiq.edge.sim") for m in loaded)
    assert cycles({"civiq.a": {"civiq.b"}, "civiq.b": {"civiq.c"}, "civiq.c": {"civiq.a"}}) == [
        ["civiq.a", "civiq.b", "civiq.c"]]
    graph = import_graph()
    assert "civiq.edge.config" in graph["civiq.edge.cli"] and len(graph) == len(MODULES)


def test_importing_the_agent_and_the_gateway_loads_no_mock() -> None:
    """The same rule at run time: what ``civiq edge run`` and ``civiq gateway run`` import, in a fresh
    interpreter, loads nothing from civiq.dev / civiq.edge.sim and no mock pin factory."""
    code = ("import sys, civiq.cli, civiq.edge.cli, civiq.edge.agent, civiq.edge.hardware, civiq.edge.doctor, "
            "civiq.gateway.cli, civiq.gateway.service\n"
            f"bad = [m for m in sys.modules if m.startswith({DEV_PACKAGES + MOCKS!r})]\n"
            "print(sorted(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=PACKAGE.parent, check=True).stdout
    assert out.strip() == "[]"


def paho_clients(path: Path, source: str | None = None) -> list[int]:
    """Lines where the module makes a paho client itself (``<paho alias>.Client(...)`` or ``Client(...)``
    imported from ``paho.mqtt.client``)."""
    tree = _parse(path.read_text(encoding="utf-8") if source is None else source, str(path))
    aliases, names = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname or a.name for a in node.names if a.name.startswith("paho")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("paho"):
            names |= {a.asname or a.name for a in node.names if a.name == "Client"}
            aliases |= {a.asname or a.name for a in node.names if a.name == "client"}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            direct = isinstance(f, ast.Name) and f.id in names
            if direct or (isinstance(f, ast.Attribute) and f.attr == "Client" and ast.unparse(f.value) in aliases):
                lines.append(node.lineno)
    return lines


def test_one_place_makes_the_mqtt_client() -> None:
    """civiq.mqttclient.make_client is the only constructor of a paho client in civiq/, bench/ and the tests'
    shared fixtures (a test that builds a deliberately odd client may still make its own)."""
    paths = [p for p in PACKAGE.rglob("*.py") if p.name != "mqttclient.py"]
    paths += [*sorted((PACKAGE.parent / "bench").glob("*.py")), PACKAGE.parent / "tests" / "conftest.py"]
    made = [f"{p.relative_to(PACKAGE.parent)}:{line}" for p in paths for line in paho_clients(p)]
    assert made == []
    assert paho_clients(PACKAGE / "mqttclient.py") != []
    sample = "import paho.mqtt.client as mqtt\nfrom paho.mqtt.client import Client\nmqtt.Client()\nClient()\n"
    assert paho_clients(PACKAGE / "x.py", sample) == [3, 4]


# the only production modules that may import a development part at all, inside the function that builds
# simulated hardware or the demo: what each may import
SIMULATION_ENTRY_POINTS = {
    "civiq.cli": {"civiq.dev", "civiq.dev.demo"},  # `civiq demo`
    "civiq.edge.cli": {"civiq.edge.sim.api", "civiq.edge.sim.hardware"},  # `civiq edge run --simulate`
    "civiq.edge.voice.cli": {"civiq.edge.sim.speaker"},  # `civiq edge say-test --simulate`
}


def test_only_the_simulate_entry_points_reach_the_emulators_even_lazily() -> None:
    """Every import form counts here: a driver that imported an emulator inside a function would fail."""
    found: dict[str, set[str]] = {}
    for name, path in sorted(MODULES.items()):
        if is_dev(name):
            continue
        for _, mod in imports(path):
            if is_dev(mod) or any(mod == m or mod.startswith(m + ".") for m in MOCKS):
                found.setdefault(name, set()).add(_owner(mod) or mod)
    assert found == SIMULATION_ENTRY_POINTS
