"""A stage that hangs (runs start and never end) is found, and named, within minutes.

Before the hang detector no detector alarmed on it when the stage is a first one: degradation
sees a duration only when a run ends, and throughput reads a first stage that ends nothing as
"nothing arrived" (its input is known only from its own attempts). Its downstream then starves
too, and the pipeline stops silently.
"""

from __future__ import annotations

import itertools
import json

import numpy as np

from prefect_ft.detection import DetectionEngine, EngineConfig, FailureType, Pattern
from prefect_ft.detection.batch import RunningBatch, TaskRunBatch

T0 = 60.0 * 28_333_334  # a minute boundary
PIPE = ("a", "b")
EDGES = (("a", "b"),)
WARM = 300  # minutes of normal work before the hang
SLOTS = 4  # concurrent runs of stage a: a hang fills them and nothing else starts


def history(
    minutes: int, hang_at: float | None = None, long_run: float | None = None, seed: int = 3
) -> tuple[TaskRunBatch, np.ndarray]:
    """Stage a: ~1 run/s, log-normal durations (median 0.5 s); each of its runs is handed on
    to stage b (median 0.2 s). From `hang_at` (minutes) on, a's `SLOTS` next runs start and
    never end and nothing after them starts. `long_run`: one normal run of a at minute
    WARM + 5 lasting this many seconds, while the others go on.

    Returns the finished rows and the starts of a's runs that never ended.
    """
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * 1.0)
    arrive = T0 + np.sort(rng.uniform(0.0, 60.0 * minutes, n))
    dur_a = 0.5 * np.exp(0.5 * rng.standard_normal(n))
    if long_run is not None:
        k = int(np.searchsorted(arrive, T0 + 60.0 * (WARM + 5)))
        dur_a[k] = long_run
    hung = np.empty(0)
    if hang_at is not None:
        k = int(np.searchsorted(arrive, T0 + 60.0 * hang_at))
        hung = arrive[k : k + SLOTS]
        arrive, dur_a = arrive[:k], dur_a[:k]
    end_a = arrive + dur_a
    dur_b = 0.2 * np.exp(0.4 * rng.standard_normal(end_a.size))
    end_b = end_a + dur_b
    start = np.concatenate([arrive, end_a])
    end = np.concatenate([end_a, end_b])
    comp = np.concatenate([np.zeros(arrive.size, int), np.ones(end_a.size, int)])
    failed = np.zeros(end.size, bool)
    batch = TaskRunBatch(PIPE, start, end, failed, np.full(end.size, -1), comp)
    return batch, hung


def engine() -> DetectionEngine:
    return DetectionEngine(EngineConfig(components=PIPE, edges=EDGES))


def hang_alarms(alarms) -> list:
    return [a for a in alarms if a.failure_type == FailureType.TIMEOUT]


def test_a_first_stage_whose_runs_never_end_alarms_within_two_minutes() -> None:
    batch, hung = history(WARM + 30, hang_at=WARM)
    running = RunningBatch(PIPE, hung, np.zeros(hung.size, int))
    alarms = engine().update(batch, until=T0 + 60.0 * (WARM + 30), running=running).alarms
    found = hang_alarms(alarms)
    assert [a.components for a in found] == [("a",)]  # once, and not the starved stage b
    a = found[0]
    assert a.pattern == Pattern.DEGRADATION
    assert T0 + 60.0 * WARM < a.at <= T0 + 60.0 * (WARM + 2)
    assert abs(a.onset - hung[0]) < 1e-6  # the oldest stuck run's start
    assert dict(a.evidence)["expected_ends"] >= 10.0
    # nothing else alarmed on the silent pipeline (the gap this closes)
    assert [x for x in alarms if x not in found] == []


def test_a_hang_in_a_replayed_history_shows_from_the_rows_that_end_later() -> None:
    # the stuck runs are killed two hours later (CRASHED): a replay of the finished history
    # sees them in flight in every minute between (no `running` needed). Before: no alarm.
    batch, hung = history(WARM + 150, hang_at=WARM)
    kill = T0 + 60.0 * (WARM + 120)
    keep = batch.start < T0 + 60.0 * WARM  # nothing starts after the hang until the kill
    n = hung.size
    full = TaskRunBatch(
        PIPE,
        np.concatenate([batch.start[keep], hung]),
        np.concatenate([batch.end[keep], np.full(n, kill)]),
        np.concatenate([batch.failed[keep], np.ones(n, bool)]),
        np.concatenate([batch.failure_type[keep], np.full(n, FailureType.TIMEOUT.code)]),
        np.concatenate([batch.component[keep], np.zeros(n, int)]),
    )
    alarms = engine().update(full, until=kill + 600.0).alarms
    found = [a for a in hang_alarms(alarms) if a.at < kill]
    assert [a.components for a in found] == [("a",)]
    assert T0 + 60.0 * WARM < found[0].at <= T0 + 60.0 * (WARM + 2)


def test_a_long_but_normal_run_among_others_does_not_alarm() -> None:
    # one run of a lasts 10 minutes (1200 x the median) while the others keep ending
    batch, _ = history(WARM + 30, long_run=600.0)
    alarms = engine().update(batch, until=T0 + 60.0 * (WARM + 30)).alarms
    assert hang_alarms(alarms) == []


def test_work_that_stops_arriving_does_not_alarm() -> None:
    # arrivals stop at WARM (a batch window closes); the last runs end normally
    batch, _ = history(WARM)
    alarms = engine().update(batch, until=T0 + 60.0 * (WARM + 60)).alarms
    assert hang_alarms(alarms) == []


def test_a_young_run_in_flight_after_arrivals_stop_does_not_alarm() -> None:
    # arrivals stop; one run started 1 s before the read is in flight: normal, not stuck
    batch, _ = history(WARM)
    until = T0 + 60.0 * (WARM + 60)
    running = RunningBatch(PIPE, [until - 1.0], [0])
    alarms = engine().update(batch, until=until, running=running).alarms
    assert hang_alarms(alarms) == []


def test_a_hang_fed_minute_by_minute_with_saved_states_alarms_as_in_one_pass() -> None:
    # a flow reads every 90 s: the rows ended by then and the runs still RUNNING then
    batch, hung = history(WARM + 20, hang_at=WARM)
    config = EngineConfig(components=PIPE, edges=EDGES)
    whole = engine().update(
        batch, until=T0 + 60.0 * (WARM + 20), running=RunningBatch(PIPE, hung, [0] * hung.size)
    )
    eng, pieces = DetectionEngine(config), []
    reads = [*np.arange(T0, T0 + 60.0 * (WARM + 20), 90.0).tolist(), T0 + 60.0 * (WARM + 20)]
    starts = np.concatenate([batch.start, hung])
    ends = np.concatenate([batch.end, np.full(hung.size, np.inf)])
    comps = np.concatenate([batch.component, np.zeros(hung.size, int)])
    for lo, hi in itertools.pairwise(reads):
        eng = DetectionEngine.from_state(config, json.loads(json.dumps(eng.state())))
        flying = (starts <= hi) & (ends > hi)
        running = RunningBatch(PIPE, starts[flying], comps[flying])
        pieces += eng.update(batch.between(lo, hi), until=hi, running=running).alarms
    assert [a.to_dict() for a in pieces] == [a.to_dict() for a in whole.alarms]
    assert [a.components for a in hang_alarms(pieces)] == [("a",)]


def test_the_option_off_and_an_old_state_without_it() -> None:
    batch, hung = history(WARM + 30, hang_at=WARM)
    off = DetectionEngine(EngineConfig(components=PIPE, edges=EDGES, hangs=False))
    running = RunningBatch(PIPE, hung, np.zeros(hung.size, int))
    assert (
        hang_alarms(off.update(batch, until=T0 + 60.0 * (WARM + 30), running=running).alarms) == []
    )
    eng = engine()
    eng.update(batch.between(T0, T0 + 60.0 * WARM), until=T0 + 60.0 * WARM)
    saved = {k: v for k, v in eng.state().items() if k != "hang"}
    back = DetectionEngine.from_state(eng.config, saved)  # a state saved before the detector
    assert back.update(batch.between(T0 + 60.0 * WARM, T0 + 60.0 * (WARM + 1))).alarms == ()
