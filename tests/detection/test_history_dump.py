"""`history.snapshot`: a detection pass's input saved and replayed offline."""

from __future__ import annotations

import math

import numpy as np

from prefect_ft.detection import DetectionEngine, EngineConfig, ResourceBatch, TaskRunBatch
from prefect_ft.history.snapshot import dump_history, load_history

COMPS = ("doc-processing", "ml-inference", "ipc", "quality-validation")


def test_a_dumped_history_replays_to_the_same_rows_samples_and_alarms(tmp_path) -> None:
    n = 60
    end = 1_000_000.0 + np.arange(n, dtype=float)
    failed = np.zeros(n, dtype=bool)
    failed[40:48] = True  # a burst on ipc after 40 good tasks
    batch = TaskRunBatch(
        COMPS, end - 0.5, end, failed, np.where(failed, 3, -1), np.full(n, 2), np.full(n, 0.5)
    )
    res = ResourceBatch(
        COMPS, [end[0], end[10]], [3, 3], [100.0, 110.0], [1000.0] * 2, [math.nan, 5.0]
    )
    path = tmp_path / "h.json"
    dump_history(str(path), batch, res, float(end[-1]))
    got, got_res, until = load_history(str(path))
    assert until == float(end[-1])
    for k in ("start", "end", "failed", "failure_type", "component", "duration"):
        assert np.array_equal(getattr(got, k), getattr(batch, k)), k
    assert np.isnan(got_res.cpu_pct[0]) and got_res.cpu_pct[1] == 5.0
    cfg = EngineConfig(run_baseline_min_tasks=20)
    want = DetectionEngine(cfg).update(batch, res, until=until).alarms
    again = DetectionEngine(cfg).update(got, got_res, until=until).alarms
    assert [a.to_dict() for a in again] == [a.to_dict() for a in want]
    assert [a.components for a in want] == [("ipc",)]
