"""What the demo's detection pass sees: the injected faults as events, then the detection flow's
alarms over the run's task-run history (scored against the faults by `report.score_alarms`).

The pass runs as a flow (`ran-demo-detection`), as a user's detection deployment would, so its
artifact belongs to a flow run. A demo's history is minutes long, not the hours the burst
detector's baseline is calibrated on, so `demo_engine_config` turns on the short-history knobs of
`EngineConfig`: each component's normal failure rate is learnt from its own earlier task runs in
the history (the warm-up pass and the calls before a fault) once `RUN_BASELINE_MIN_TASKS` of them
were seen, and the burst hold-off is kept per failure type, and memory samples are judged as they arrive against
the limit they carry (the model server's own budget, `exhaustion.BudgetWatch`); the pass also reads the dead-letter
replay attempts (`detect(replays=True)`), calls that leave no task run. The CUSUM charts and
their decision intervals are the frozen production ones. The detectors do not know the schedule. The pass's
input is saved (`history_out`), so the report can say what detection had in each fault's window
and a run can be replayed offline (`detection_flow.load_history`).
"""

from __future__ import annotations

import time
from datetime import UTC
from pathlib import Path
from typing import Any

__all__ = [
    "RUN_BASELINE_MIN_TASKS",
    "demo_engine_config",
    "detect_alarms",
    "emit_fault_events",
    "read_observed",
    "warm_up",
]

# With no failure among 20 tasks the Jeffreys rate is 2.4 %, low enough that the frozen fast chart
# (p1 = 30 x p0) crosses after 4 failures in a row; fewer tasks leave p0 so high that a burst the
# breaker stops after a handful of calls never reaches the interval.
RUN_BASELINE_MIN_TASKS = 20


def warm_up(
    corpus: str | None, work: Path, model_url: str, docs: int, deadline: float
) -> dict[str, Any]:
    """A fault-free pass of the pipeline over the first `docs` documents, in its own output
    directory `work`: the history a user's pipeline has before a fault, from which detection
    learns each component's normal failure rate (a run of minutes has no hours of history)."""
    from prefect_ft.demo.ran import pipeline
    from prefect_ft.demo.ran.ipc import ModelClient

    rt = pipeline.Runtime(work, ModelClient(model_url))
    pipeline.configure(rt)
    try:
        return pipeline.ran_pipeline(
            corpus_dir=corpus, work_dir=str(work), max_docs=docs, deadline_seconds=deadline
        )
    finally:
        rt.close()
        pipeline.configure(None)


def demo_engine_config() -> Any:
    """The engine the demo's detection pass runs: the production detectors and thresholds, with
    the short-history knobs of `EngineConfig` on (what a user's deployment of minutes needs):
    burst baselines from each component's own earlier tasks, the burst hold-off per failure
    type (a model-server crash refusing connections after a burst of model errors on the same
    component is a second episode, not more of the first), and memory judged per sample against
    each sample's own limit (minute floors need ten minutes of history)."""
    from prefect_ft.detection import EngineConfig

    return EngineConfig(
        run_baseline_min_tasks=RUN_BASELINE_MIN_TASKS,
        burst_holdoff_by_type=True,
        sample_exhaustion=True,  # the model server's samples carry its own memory budget
    )


def _detect_body(t_start: float, history_out: str | None = None) -> dict[str, Any]:
    from prefect_ft.history.detection_flow import detect

    return detect(
        history_out=history_out,
        lag_s=1.0,
        max_age_s=time.time() - t_start + 60,
        emit=True,
        artifact_key="ran-demo-detection",
        state_key=f"ran-demo:{t_start:.0f}",
        config=demo_engine_config(),
        replays=True,  # dead-letter replays are calls too (they leave no task runs)
    )


def detect_alarms(t_start: float, history_out: str | None = None) -> list[dict[str, Any]]:
    """Alarms of one detection pass over the task runs that ended since `t_start`; the rows and
    samples it read are saved to `history_out` when given (`detection_flow.load_history`)."""
    from prefect import flow

    time.sleep(3.0)  # task-run history reaches the API about a second after the events
    run = flow(name="ran-demo-detection", log_prints=True)(_detect_body)
    return run(t_start, history_out)["alarms"]


def read_observed(path: str) -> dict[str, Any] | None:
    """The detection pass's saved input (`detection_flow.dump_history`) as plain data for the
    report; None when the pass did not run or wrote nothing."""
    import json

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def emit_fault_events(records: list[dict[str, Any]]) -> None:
    from datetime import datetime

    from prefect.events import emit_event

    for rec in records:
        if rec["start"] is None:
            continue
        emit_event(
            "prefect-ft.fault.injected",
            occurred=datetime.fromtimestamp(rec["start"], UTC),
            resource={
                "prefect.resource.id": f"prefect-ft.component.{rec['component']}",
                "prefect-ft.fault.kind": rec["kind"],
            },
            payload=rec,
        )
