"""A hold-off per failure type (`EngineConfig.burst_holdoff_by_type`): after a burst of model
errors, a crash that refuses connections on the same component is a new episode, not more of
the burst (a crash is not a burst); more failures of the alarmed type stay held."""

from __future__ import annotations

import numpy as np
import pytest

from prefect_ft.detection import DetectionEngine, EngineConfig, FailureType, TaskRunBatch

T0 = 1_800_000_000.0
COMPS = ("doc-processing", "ml-inference", "ipc", "quality-validation")
MODEL = FailureType.MODEL_INFERENCE_ERROR.code
CONN = FailureType.CONNECTION_ERROR.code
RES = FailureType.RESOURCE_EXHAUSTION.code


def history(second: int) -> TaskRunBatch:
    """ml-inference: 30 good tasks, 5 model errors, 20 good tasks, 5 failures of type `second`
    (all within a minute, well inside the 30-minute hold-off)."""
    codes = [-1] * 30 + [MODEL] * 5 + [-1] * 20 + [second] * 5
    ends = T0 + 0.5 * np.arange(1, len(codes) + 1)
    failed = [c >= 0 for c in codes]
    return TaskRunBatch(COMPS, ends - 0.1, ends, failed, codes, [1] * len(codes))


def alarms(by_type: bool, second: int) -> list[tuple[str, str]]:
    cfg = EngineConfig(run_baseline_min_tasks=20, burst_holdoff_by_type=by_type)
    found = DetectionEngine(cfg).update(history(second), until=T0 + 60).alarms
    return [(str(a.pattern), str(a.failure_type)) for a in found]


def test_a_crash_after_a_model_error_burst_alarms_with_a_hold_off_per_type() -> None:
    assert alarms(True, CONN) == [
        ("burst", "ModelInferenceError"),
        ("burst", "ConnectionError"),
    ]


def test_one_hold_off_per_component_by_default() -> None:
    assert alarms(False, CONN) == [("burst", "ModelInferenceError")]


def test_more_failures_of_the_alarmed_type_stay_held() -> None:
    assert alarms(True, MODEL) == [("burst", "ModelInferenceError")]


def test_the_hold_off_per_type_survives_a_saved_state() -> None:
    cfg = EngineConfig(run_baseline_min_tasks=20, burst_holdoff_by_type=True)
    batch = history(MODEL)
    engine = DetectionEngine(cfg)
    first = engine.update(batch.between(T0, T0 + 20), until=T0 + 20).alarms
    assert [str(a.failure_type) for a in first] == ["ModelInferenceError"]
    again = DetectionEngine.from_state(cfg, engine.state())
    assert again.update(batch.between(T0 + 20, T0 + 61), until=T0 + 61).alarms == ()


def test_the_knob_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="burst_holdoff_by_type must be True or False"):
        EngineConfig(burst_holdoff_by_type="yes")  # type: ignore[arg-type]


def test_held_failures_do_not_hide_the_next_types_burst() -> None:
    """The demo's quiet-machine miss (ft-demo4, 16:49 run): after a ResourceExhaustion burst
    alarmed, 3 more refusals of that type arrived inside its hold-off, then the crash's 4
    connection errors. The chart fired on the third with the types tied 3:3, the lower code (the held type)
    was taken as the episode's type, its hold-off suppressed the alarm and every chart restarted:
    the crash was never reported. Failures of a type inside its own hold-off belong to the
    alarmed episode, so they must not build (or name) the next one."""
    codes = [-1] * 30 + [RES] * 5 + [-1] * 20 + [RES] * 3 + [CONN] * 4 + [-1] * 5
    ends = T0 + 0.5 * np.arange(1, len(codes) + 1)
    failed = [c >= 0 for c in codes]
    batch = TaskRunBatch(COMPS, ends - 0.1, ends, failed, codes, [1] * len(codes))
    cfg = EngineConfig(run_baseline_min_tasks=20, burst_holdoff_by_type=True)
    found = DetectionEngine(cfg).update(batch, until=T0 + 60).alarms
    assert [(str(a.pattern), str(a.failure_type)) for a in found] == [
        ("burst", "ResourceExhaustion"),
        ("burst", "ConnectionError"),
    ]
