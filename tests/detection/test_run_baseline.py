"""A run-relative burst baseline (`EngineConfig.run_baseline_min_tasks`): a history minutes long
(the demo's) has no hours of closed minutes, so each component's normal failure rate comes from
its own earlier tasks; the frozen charts decide."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prefect_ft.detection import (
    DetectionEngine,
    EngineConfig,
    FailureType,
    Pattern,
    TaskRunBatch,
)
from prefect_ft.detection.burst import BurstTracker

T0 = 1_800_000_000.0
COMPS = ("doc-processing", "ml-inference", "ipc", "quality-validation")
CONN = FailureType.CONNECTION_ERROR.code


def rows(comp: int, flags: list[bool], t0: float = T0, step: float = 0.5) -> TaskRunBatch:
    ends = t0 + step * np.arange(1, len(flags) + 1)
    code = [CONN if f else -1 for f in flags]
    return TaskRunBatch(COMPS, ends - 0.1, ends, flags, code, [comp] * len(flags))


def test_a_short_run_alarms_on_a_burst_against_its_own_earlier_rate() -> None:
    flags = [False] * 24 + [True] * 6
    engine = DetectionEngine(EngineConfig(run_baseline_min_tasks=20))
    alarms = engine.update(rows(2, flags), until=T0 + 60).alarms
    assert [(a.pattern, a.components) for a in alarms] == [(Pattern.BURST, ("ipc",))]
    (a,) = alarms
    assert T0 + 12.0 <= a.onset <= T0 + 12.5  # the last success before the failures
    assert a.at == T0 + 0.5 * 28  # the 4th failure crosses the fast chart's interval
    assert str(a.severity) == "CRITICAL" and a.failure_type == FailureType.CONNECTION_ERROR


def test_the_default_engine_does_not_judge_a_run_of_seconds() -> None:
    flags = [False] * 24 + [True] * 6
    assert DetectionEngine(EngineConfig()).update(rows(2, flags), until=T0 + 60).alarms == ()


def test_fewer_earlier_tasks_than_the_minimum_do_not_alarm() -> None:
    flags = [False] * 19 + [True] * 6
    engine = DetectionEngine(EngineConfig(run_baseline_min_tasks=20))
    assert engine.update(rows(2, flags), until=T0 + 60).alarms == ()


@pytest.mark.parametrize("p", [0.0, 0.01])
def test_steady_low_failure_rates_do_not_alarm(p: float) -> None:
    for seed in range(40):
        flags = (np.random.default_rng(seed).random(300) < p).tolist()
        tracker = BurstTracker("ipc", EngineConfig().thresholds, run_min_tasks=20)
        ends = (T0 + np.arange(300) * 0.5).tolist()
        assert tracker.observe(ends, flags, [CONN if f else -1 for f in flags]) == [], seed


def test_an_alarmed_episode_does_not_teach_the_baseline_and_state_resumes() -> None:
    flags = [False] * 24 + [True] * 6
    tracker = BurstTracker("ipc", EngineConfig().thresholds, run_min_tasks=20)
    ends = (T0 + np.arange(30) * 0.5).tolist()
    assert len(tracker.observe(ends, flags, [CONN if f else -1 for f in flags])) == 1
    assert (tracker.run_n, tracker.run_k) == (24, 0)  # failures after the alarm: hold-off
    state = json.loads(json.dumps(tracker.state()))
    assert "run_min" not in state  # configuration, not state
    again = BurstTracker("ipc", EngineConfig().thresholds, run_min_tasks=20)
    again.load(state)
    assert (again.run_n, again.p0) == (24, tracker.p0)


def test_a_negative_minimum_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="run_baseline_min_tasks must be >= 0"):
        EngineConfig(run_baseline_min_tasks=-1)
    with pytest.raises(ValueError, match="run_min_tasks must be >= 0"):
        BurstTracker("ipc", EngineConfig().thresholds, run_min_tasks=-1)
