"""The house rule: ``civiq.edge`` and ``civiq.gateway`` never import each other (both import ``civiq``:
the contract, clock, helpers). A Pi installs the same package but must never need gateway code, and the
gateway must not drag in GPIO/serial code. Checked on the source with ``ast``, so an import inside a
function (a lazy import) counts too; docs/architecture.md explains the rule."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "civiq"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the module at ``path`` (its text, or ``source``),
    relative imports resolved against the module's package."""
    text = path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(text, filename=str(path))
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
