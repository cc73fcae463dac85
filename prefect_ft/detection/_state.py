"""JSON-ready snapshots of detector state (so a flow can resume where its last run stopped)."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from prefect_ft.detection.cusum import GaussianCusum

__all__ = ["NEVER", "dump_slots", "load_slots"]

NEVER = -1e300  # "no hold-off yet"; finite so the state stays strict JSON


def _dump(v: Any) -> Any:
    if isinstance(v, deque):
        return {"deque": [_dump(x) for x in v], "maxlen": v.maxlen}
    if isinstance(v, GaussianCusum):
        return {"cusum": [v.k, v.h, v.s, v.zero_at]}
    if isinstance(v, list | tuple):
        return [_dump(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError("state holds a non-finite float")
    return v


def _load(v: Any) -> Any:
    if isinstance(v, dict) and "deque" in v:
        return deque((_load(x) for x in v["deque"]), maxlen=v["maxlen"])
    if isinstance(v, dict) and "cusum" in v:
        return GaussianCusum(*v["cusum"])
    if isinstance(v, list):
        return [_load(x) for x in v]
    return v


def _all_slots(obj: Any) -> list[str]:
    # a subclass's __slots__ names only its own slots; its bases' are state too
    names: list[str] = []
    for cls in reversed(type(obj).__mro__):
        names += [s for s in getattr(cls, "__slots__", ()) if s not in names]
    return names


def dump_slots(obj: Any, skip: tuple[str, ...] = ("name", "th")) -> dict[str, Any]:
    """The object's slots, its bases' included (except configuration ones), as JSON values."""
    return {s: _dump(getattr(obj, s)) for s in _all_slots(obj) if s not in skip}


def load_slots(obj: Any, data: dict[str, Any]) -> None:
    """Restore slots saved by `dump_slots`."""
    for key, value in data.items():
        setattr(obj, key, _load(value))
