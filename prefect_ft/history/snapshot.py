"""One detection pass's input saved as JSON and loaded back: `detect(history_out=...)` writes it,
`load_history` returns what `DetectionEngine.update` takes, so a pass (the demo's) can be replayed
offline against the same rows and samples, and the demo's report can say what each fault's window
held.
"""

from __future__ import annotations

import json
from typing import Any

from prefect_ft.detection import ResourceBatch, TaskRunBatch

__all__ = ["BATCH_FIELDS", "dump_history", "load_history"]

BATCH_FIELDS = ("start", "end", "failed", "failure_type", "component", "duration")
_RES_FIELDS = ("ts", "component", "memory_mb", "memory_limit_mb", "cpu_pct")


def dump_history(path: str, batch: TaskRunBatch, res: ResourceBatch, until: float | None) -> None:
    """Write one pass's input as JSON (NaN as null), for `load_history`."""

    def col(a: Any) -> list[Any]:
        return [None if isinstance(v, float) and v != v else v for v in a.tolist()]

    data = {
        "until": until,
        "components": list(batch.components or res.components),
        "tasks": {k: col(getattr(batch, k)) for k in BATCH_FIELDS},
        "resources": {k: col(getattr(res, k)) for k in _RES_FIELDS},
    }
    with open(path, "w") as f:
        json.dump(data, f)


def load_history(path: str) -> tuple[TaskRunBatch, ResourceBatch, float | None]:
    """The input `dump_history` wrote: `engine.update(tasks, resources, until=until)` replays it."""
    with open(path) as f:
        data = json.load(f)
    comps = tuple(data["components"])

    def col(v: list[Any]) -> list[float]:
        return [float("nan") if x is None else x for x in v]

    t, r = data["tasks"], data["resources"]
    batch = TaskRunBatch(comps, *(col(t[k]) for k in BATCH_FIELDS))
    res = ResourceBatch(comps, *(col(r[k]) for k in _RES_FIELDS))
    return batch, res, data["until"]
