"""What `DetectionEngine.state()` writes and `DetectionEngine.from_state()` reads back.

The snapshot is JSON-ready: the engine's watermarks, the rows and samples of the open minute, and
every tracker's own `state()`. `STATE_VERSION` changes whenever a tracker's state does, so an
engine never resumes from a snapshot it would misread. Kept apart from `engine.py`, which runs
the detectors; the engine's two methods call these.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from prefect_ft.detection._columns import RES_KEYS, ROW_KEYS, empty_columns

if TYPE_CHECKING:
    from prefect_ft.detection.engine import DetectionEngine

__all__ = ["STATE_VERSION", "dump_state", "load_state"]

STATE_VERSION = 2  # 2: degradation keeps a seasonal MinuteBaseline; throughput trackers


def dump_state(engine: DetectionEngine) -> dict[str, Any]:
    """A JSON-ready snapshot of everything `engine` has learnt."""
    return {
        "version": STATE_VERSION,
        "components": list(engine.config.components),
        "closed": engine._closed,
        "task_mark": engine._task_mark if math.isfinite(engine._task_mark) else None,
        "res_mark": engine._res_mark if math.isfinite(engine._res_mark) else None,
        "rows": {k: v.tolist() for k, v in engine._rows.items()},
        "res": {k: v.tolist() for k, v in engine._res.items()},
        "burst": [t.state() for t in engine._burst],
        "deg": [t.state() for t in engine._deg],
        "tput": [t.state() for t in engine._tput],
        "hang": [t.state() for t in engine._hang],
        "mem": [t.state() for t in engine._mem],
        "cpu": [t.state() for t in engine._cpu],
        "cyc": [t.state() for t in engine._cyc],
        "cascade": engine._cascade.state(),
        **({"budget": engine._budget.state()} if engine._budget is not None else {}),
    }


def load_state(engine: DetectionEngine, state: dict[str, Any]) -> DetectionEngine:
    """Load `dump_state` output into `engine`, new and of the same configuration; return it."""
    engine._closed = state["closed"]
    engine._task_mark = -math.inf if state["task_mark"] is None else state["task_mark"]
    engine._res_mark = -math.inf if state["res_mark"] is None else state["res_mark"]
    template = {**empty_columns(ROW_KEYS), **empty_columns(RES_KEYS)}
    engine._rows = {k: np.asarray(v, dtype=template[k].dtype) for k, v in state["rows"].items()}
    engine._res = {k: np.asarray(v, dtype=template[k].dtype) for k, v in state["res"].items()}
    for key, trackers in (
        ("burst", engine._burst),
        ("deg", engine._deg),
        ("tput", engine._tput),
        ("mem", engine._mem),
        ("cpu", engine._cpu),
        ("cyc", engine._cyc),
    ):
        for tracker, data in zip(trackers, state[key], strict=True):
            tracker.load(data)
    engine._cascade.load(state["cascade"])
    for tracker, data in zip(engine._hang, state.get("hang") or [], strict=False):
        tracker.load(data)  # states saved before the hang detector start it afresh
    if engine._budget is not None and "budget" in state:
        engine._budget.load(state["budget"])
    return engine
