"""DESIGN §3 rule 1: the pure layers never import adapters, and never read clocks or do I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import prefect_ft

ROOT = Path(prefect_ft.__file__).parent
PURE = [*ROOT.joinpath("core").rglob("*.py"), *ROOT.joinpath("detection").rglob("*.py")]
FORBIDDEN_MODULES = {"prefect", "pydantic", "redis", "structlog", "httpx", "logging", "sqlite3"}
FORBIDDEN_CALLS = {("time", "time"), ("time", "monotonic"), ("time", "sleep"), ("datetime", "now")}


def imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return []


def test_pure_layers_exist() -> None:
    assert len(PURE) >= 8


def test_pure_layers_never_import_adapters() -> None:
    for path in PURE:
        for node in ast.walk(ast.parse(path.read_text())):
            roots = {n.split(".")[0] for n in imported(node)}
            assert not roots & FORBIDDEN_MODULES, f"{path}: imports {roots & FORBIDDEN_MODULES}"


def test_pure_layers_never_read_the_clock() -> None:
    for path in PURE:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert (node.value.id, node.attr) not in FORBIDDEN_CALLS, (
                    f"{path}: {node.value.id}.{node.attr}"
                )
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"open", "print"}, f"{path}: calls {node.func.id}()"


def test_package_import_does_not_pull_numpy_or_scipy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, prefect_ft; print(sorted(m for m in ('numpy', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
