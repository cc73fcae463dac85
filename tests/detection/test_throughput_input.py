"""The throughput detector tells work that stopped arriving from a stage that is failing.

A stage's completions fall both when it fails and when nothing reaches it (its upstream stalls,
the arrivals stop at the end of a history: the one throughput false alarm on the targeted
benchmark, 2026-12-02, was the first stage at the end of seed 1002's history). Flow
conservation tells them apart: a drop is the stage's fault only when its input held (its
upstream's completions, or at least its own attempts).
"""

from __future__ import annotations

import numpy as np

from prefect_ft.detection import DetectionEngine, EngineConfig, load_thresholds
from prefect_ft.detection.batch import TaskRunBatch
from prefect_ft.detection.throughput import ThroughputTracker

T0 = 60.0 * 28_333_334  # a minute boundary
PIPE = ("a", "b")
EDGES = (("a", "b"),)
WARM = 600  # minutes of normal work before the change


def stage(comp: int, minutes: range, rate, fail=lambda m: 0.0, seed: int = 0) -> dict:
    """Rows of one stage: Poisson(rate(m)) attempts ending in minute m, each failing with
    probability fail(m)."""
    rng = np.random.default_rng(1000 * seed + comp)
    ends, failed = [], []
    for m in minutes:
        n = int(rng.poisson(rate(m)))
        ends += (T0 + 60.0 * m + np.sort(rng.uniform(0.0, 60.0, n))).tolist()
        failed += (rng.random(n) < fail(m)).tolist()
    end = np.asarray(ends)
    return {"end": end, "failed": np.asarray(failed, dtype=bool), "comp": np.full(end.size, comp)}


def run(parts: list[dict], until_min: int) -> list[tuple[str, float]]:
    """Feed the rows to an engine with the throughput detector on; return its throughput
    alarms as (component, minutes after T0)."""
    end = np.concatenate([p["end"] for p in parts])
    failed = np.concatenate([p["failed"] for p in parts])
    comp = np.concatenate([p["comp"] for p in parts])
    batch = TaskRunBatch(PIPE, end - 0.5, end, failed, np.where(failed, 0, -1), comp)
    engine = DetectionEngine(EngineConfig(components=PIPE, edges=EDGES, throughput=True))
    alarms = engine.update(batch, until=T0 + 60.0 * until_min).alarms
    return [
        (a.components[0], (a.at - T0) / 60.0)
        for a in alarms
        if "throughput_ratio" in dict(a.evidence)
    ]


def test_a_stage_whose_arrivals_stop_does_not_alarm() -> None:
    # both stages complete 60 a minute, then no work arrives for an hour (the end of a
    # history, a batch window closing): nobody failed (before: both stages alarmed)
    minutes = range(WARM)
    parts = [stage(0, minutes, lambda m: 60.0), stage(1, minutes, lambda m: 60.0)]
    assert run(parts, WARM + 60) == []


def test_a_stage_whose_completions_fall_while_its_input_holds_alarms() -> None:
    # the upstream keeps handing over 60 a minute; b completes only 20 of them (stuck)
    parts = [
        stage(0, range(WARM + 60), lambda m: 60.0),
        stage(1, range(WARM + 60), lambda m: 20.0 if m >= WARM else 60.0),
    ]
    found = run(parts, WARM + 60)
    assert [c for c, _ in found] == ["b"]
    assert WARM < found[0][1] <= WARM + 6, found


def test_only_the_failing_first_stage_alarms_not_the_stage_it_starves() -> None:
    # a keeps attempting 60 a minute but 80 % fail; b receives the 12 that succeed and
    # completes them all: b's fall is its input's (before: b alarmed too)
    slow = lambda m: 0.8 if m >= WARM else 0.0  # noqa: E731
    a = stage(0, range(WARM + 60), lambda m: 60.0, fail=slow)
    b = stage(1, range(WARM + 60), lambda m: 12.0 if m >= WARM else 60.0)
    found = run([a, b], WARM + 60)
    assert [c for c, _ in found] == ["a"]
    assert WARM < found[0][1] <= WARM + 6, found


def feed(tracker: ThroughputTracker, n: int, done: float, given: float | None) -> list:
    rng = np.random.default_rng(7)
    out = []
    for m in range(1, n + 1):
        c = int(rng.poisson(done if m > WARM else 60.0))
        g = None if given is None else (c if m <= WARM else int(rng.poisson(given)))
        alarm = tracker.close_minute(60.0 * m, c, g)
        if alarm is not None:
            out.append((m, alarm))
    return out


def test_the_tracker_judges_completions_against_its_input_when_given() -> None:
    th = load_thresholds()
    # input and completions fall together: the input dropped
    assert feed(ThroughputTracker("x", th), WARM + 30, 6.0, 6.0) == []
    # completions fall, the input holds: an alarm, which says what the input was
    found = feed(ThroughputTracker("x", th), WARM + 30, 6.0, 60.0)
    assert len(found) == 1 and WARM < found[0][0] <= WARM + 6
    assert 45.0 <= dict(found[0][1].evidence)["input_per_min"] <= 75.0
    # input unknown: the baseline alone decides, as before
    assert len(feed(ThroughputTracker("x", th), WARM + 30, 6.0, None)) == 1


def test_a_state_saved_before_the_input_was_kept_still_loads() -> None:
    th = load_thresholds()
    old = ThroughputTracker("x", th)
    feed(old, 200, 60.0, None)
    saved = {k: v for k, v in old.state().items() if k != "fed"}
    new = ThroughputTracker("x", th)
    new.load(saved)
    assert new.close_minute(60.0 * 201, 60, 60) is None


def test_the_default_engine_watches_throughput() -> None:
    # on by default since the input rule (2026-12-02): a stage failing 80 % of its calls alarms
    slow = lambda m: 0.8 if m >= WARM else 0.0  # noqa: E731
    part = stage(0, range(WARM + 60), lambda m: 60.0, fail=slow)
    batch = TaskRunBatch(
        ("a",),
        part["end"] - 0.5,
        part["end"],
        part["failed"],
        np.where(part["failed"], 0, -1),
        part["comp"],
    )
    engine = DetectionEngine(EngineConfig(components=("a",), edges=()))
    alarms = engine.update(batch, until=T0 + 60.0 * (WARM + 60)).alarms
    assert any("throughput_ratio" in dict(a.evidence) for a in alarms)
