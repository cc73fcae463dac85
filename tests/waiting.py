"""Waiting in tests for what another thread or process does: poll on a generous deadline.

A loaded CI machine (2 cores, ~1,400 tests) may be slow, never wrong: a test that sleeps a fixed
time and then reads once fails when the other side is late. Every wait here polls, and gives up
only after `DEADLINE_S`, which no correct run comes near.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

DEADLINE_S = 30.0

T = TypeVar("T")


def wait_until(condition: Callable[[], object], seconds: float = DEADLINE_S) -> bool:
    """Poll `condition` until it is true or `seconds` pass; returns its last value as a bool."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(0.005)
    return True


def atomic_write(path: str | Path, text: str) -> None:
    """Write `text` so that a reader who sees `path` sees all of it (a marker another process
    polls for: `open(path, "w")` makes the file before its text lands)."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
