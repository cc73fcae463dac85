"""DESIGN §3 rule 1: the pure layers never import adapters, and never read clocks or do I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import prefect_ft
from tests.astutil import parse_file

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
        for node in ast.walk(parse_file(path)):
            roots = {n.split(".")[0] for n in imported(node)}
            assert not roots & FORBIDDEN_MODULES, f"{path}: imports {roots & FORBIDDEN_MODULES}"


def test_pure_layers_never_read_the_clock() -> None:
    for path in PURE:
        for node in ast.walk(parse_file(path)):
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


# The adapters that must run in any Python process (a breaker in a plain script, a bulkhead in a
# process-pool child) never import Prefect at module level. The global-concurrency backend is
# the one documented exception: it imports `prefect.concurrency` inside the call that needs it.
PREFECT_FREE = [
    *ROOT.joinpath("stores").rglob("*.py"),
    ROOT / "breaker.py",
    *ROOT.joinpath("circuit").rglob("*.py"),
    *ROOT.joinpath("bulkhead").rglob("*.py"),
]


def module_level_imports(path: Path) -> set[str]:
    tree = parse_file(path)
    nodes = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    return {name.split(".")[0] for n in nodes for name in imported(n)}


def all_imports(path: Path) -> set[str]:
    return {name for n in ast.walk(parse_file(path)) for name in imported(n)}


def test_stores_breaker_and_bulkhead_never_import_prefect() -> None:
    assert len(PREFECT_FREE) >= 10
    for path in PREFECT_FREE:
        roots = module_level_imports(path)
        assert "prefect" not in roots, f"{path}: imports prefect at module level"
        if path.name != "global_concurrency.py":
            nested = {n.split(".")[0] for n in all_imports(path)}
            assert "prefect" not in nested, f"{path}: imports prefect"


def test_nothing_below_imports_cli_or_demo() -> None:
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).parts
        if rel[0] in {"cli", "demo"}:
            continue
        for name in all_imports(path):
            assert not name.startswith(("prefect_ft.cli", "prefect_ft.demo")), (
                f"{path}: imports {name}"
            )


def test_prefect_ft_never_imports_flows() -> None:
    for path in ROOT.rglob("*.py"):
        roots = {n.split(".")[0] for n in all_imports(path)}
        assert "flows" not in roots, f"{path}: imports flows/"


def test_concerns_have_their_rooms() -> None:
    """The package is arranged by concern: no private mechanism modules at the top level."""
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert top == [
        "__init__.py",
        "blocks.py",
        "breaker.py",
        "exceptions.py",
        "presets.py",
        "settings.py",
    ], top
    for room in (
        "core",
        "circuit",
        "detection",
        "stores",
        "bulkhead",
        "tasks",
        "deadletter",
        "history",
        "recovery",
        "ops",
    ):
        assert ROOT.joinpath(room, "__init__.py").is_file(), room
    for room in ("cli", "demo"):
        assert ROOT.joinpath(room, "__init__.py").is_file(), room
