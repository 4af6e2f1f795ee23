"""The engine's floors: nothing outside ``SpectrumAttackLib/cli/`` imports the command line.

Every Python file of the engine, the Slicer module and the CLI module is parsed (AST, nothing is imported) and its
``import``/``from ... import`` statements, relative ones resolved, and ``importlib.import_module("...")`` strings
are collected, at module scope and inside functions alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("SpectrumAttackLib", "SpectrumAttack", "SpectrumAttackCLI", "SpectrumAttackRobustnessCLI")
CLI = "SpectrumAttackLib.cli"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, module: str | None = None) -> set[str]:
    """Every module ``path`` imports (``from a import b`` gives ``a`` and ``a.b``); relative imports are resolved
    against ``module`` (default: the file's own dotted name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = (module or module_name(path)).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            found.add(str(node.args[0].value))
    return found


def engine_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_the_scan_sees_the_command_line_importing_itself() -> None:
    """The checker finds real imports: cmd_attack imports the command line's own modules (absolute and relative)."""
    found = imported_modules(ROOT / "SpectrumAttackLib/cli/cmd_attack.py")
    assert f"{CLI}.args" in found
    assert "SpectrumAttackLib.pipeline.case" in found
    assert len(engine_files()) > 80


def test_relative_and_dynamic_imports_are_resolved(tmp_path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from ..cli import cases\nfrom . import store\n\n\ndef late():\n"
                     "    import importlib\n    return importlib.import_module('SpectrumAttackLib.cli.args')\n")
    found = imported_modules(probe, "SpectrumAttackLib.audit.probe")
    assert {f"{CLI}.cases", "SpectrumAttackLib.audit.store", f"{CLI}.args"} <= found


def test_nothing_below_the_command_line_imports_it() -> None:
    offenders = {}
    for path in engine_files():
        if module_name(path).startswith(CLI):
            continue
        bad = sorted(m for m in imported_modules(path) if m == CLI or m.startswith(CLI + "."))
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert not offenders, f"modules outside {CLI} import it: {offenders}"
