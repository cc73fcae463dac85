"""`ast.parse` for tests that read our sources while Prefect's threads run.

CPython 3.11 keeps the AST constructor's recursion depth in interpreter-wide state, so a parse
that overlaps a compile in another thread (a background thread importing a module whose .pyc is
not written yet, as in a fresh clone) can fail with "SystemError: AST constructor recursion depth
mismatch" (CPython gh-106905, pytest #10763). Such a failure says nothing about the file parsed:
parse it again. Trees are cached, so each file is parsed once per test run.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

__all__ = ["parse_file", "parse_text"]


def parse_text(text: str) -> ast.Module:
    for _ in range(9):
        try:
            return ast.parse(text)
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc):
                raise
    return ast.parse(text)


@functools.cache
def parse_file(path: Path) -> ast.Module:
    return parse_text(Path(path).read_text())
