"""Resource reallocation: the next budget of a component whose resources ran short.

Pure. The recovery driver reads the component's current budget from its shallow health answer
(`memory_mb`, `concurrency`, top level or under `resources`), asks `next_budget`, sends the
result to `POST /resources`, and keeps the old budget to roll back to if validation fails.

The rule: give memory headroom (x1.5, capped) and halve concurrency (at least 1), the two levers
that relieve a component that is out of memory or too slow under load. With no known budget the
only safe move is to shed load: concurrency 1.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MEMORY_GROWTH", "budget_of", "next_budget"]

MEMORY_GROWTH = 1.5
MAX_MEMORY_MB = 1_048_576


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) and value > 0 else None


def budget_of(health: dict[str, Any]) -> dict[str, float | int]:
    """The budget a health answer reports (`resources` or top-level keys); {} when none."""
    source = health.get("resources") if isinstance(health.get("resources"), dict) else health
    out: dict[str, float | int] = {}
    memory = _number(source.get("memory_mb"))
    if memory is not None:
        out["memory_mb"] = memory
    concurrency = _number(source.get("concurrency"))
    if concurrency is not None and float(concurrency).is_integer():
        out["concurrency"] = int(concurrency)
    return out


def next_budget(current: dict[str, float | int]) -> dict[str, float | int]:
    """More memory, less concurrency; `{"concurrency": 1}` when nothing is known."""
    out: dict[str, float | int] = {}
    if "memory_mb" in current:
        out["memory_mb"] = min(MAX_MEMORY_MB, round(float(current["memory_mb"]) * MEMORY_GROWTH, 1))
    if "concurrency" in current:
        out["concurrency"] = max(1, int(current["concurrency"]) // 2)
    return out or {"concurrency": 1}
