"""Exhaustion judged against the budget a process carries in its samples (`BudgetWatch`, on
with `EngineConfig(sample_exhaustion=True)`): a model server's leak growing to its memory budget
is found within a run of minutes; the same growth against a machine's memory, flat memory with
noise, and a level step that has ended are not."""

from __future__ import annotations

import numpy as np

from prefect_ft.detection import DetectionEngine, EngineConfig, ResourceBatch
from prefect_ft.detection.budget_watch import BudgetWatch
from prefect_ft.detection.thresholds import load_thresholds

T0 = 1_800_000_000.0  # a whole minute
COMPS = ("doc-processing", "ml-inference", "ipc", "quality-validation")


def _samples(levels: np.ndarray, limit: float, step: float = 0.5) -> ResourceBatch:
    n = levels.size
    ts = T0 + step * np.arange(n)
    return ResourceBatch(COMPS, ts, np.full(n, 1), levels, np.full(n, limit), np.full(n, np.nan))


def _leak(seed: int = 1) -> np.ndarray:
    """20 s flat at 6 MB, then 1 MB/s (2 MB per call at 2 calls/s) for 40 s, with jitter."""
    rng = np.random.default_rng(seed)
    t = 0.5 * np.arange(120)
    return 6.0 + np.clip(t - 20.0, 0, None) * 1.0 + rng.normal(0, 0.2, t.size)


def _run(batch: ResourceBatch, on: bool = True) -> list:
    engine = DetectionEngine(EngineConfig(sample_exhaustion=on))
    return list(engine.update(None, batch, until=float(batch.ts[-1])).alarms)


def test_a_leak_growing_to_its_budget_alarms_before_it_reaches_it() -> None:
    levels = _leak()
    alarms = [a for a in _run(_samples(levels, limit=64.0)) if a.pattern == "exhaustion"]
    assert len(alarms) == 1, alarms
    a = alarms[0]
    assert a.components == ("ml-inference",) and str(a.failure_type) == "ResourceExhaustion"
    crossing = T0 + 20.0 + 58.0  # 6 + (t - 20) = 64 MB
    assert T0 + 20.0 < a.at < crossing  # after the leak began, before the budget was reached
    assert T0 + 10.0 <= a.onset <= a.at
    assert dict(a.evidence)["limit"] == 64.0


def test_the_same_leak_against_the_machines_memory_does_not_alarm() -> None:
    # 24 GB at 1 MB/s is hours away: beyond the horizon
    assert [
        a for a in _run(_samples(_leak(), limit=24 * 1024.0)) if a.pattern == "exhaustion"
    ] == []


def test_off_by_default_the_minute_tracker_sees_nothing_in_a_minute() -> None:
    assert [a for a in _run(_samples(_leak(), 64.0), on=False) if a.pattern == "exhaustion"] == []


def test_flat_noisy_memory_near_its_budget_does_not_alarm() -> None:
    for seed in range(20):
        levels = 50.0 + np.random.default_rng(seed).normal(0, 2.0, 120)
        assert _run(_samples(levels, 64.0)) == [], seed


def test_a_level_step_that_has_ended_does_not_alarm() -> None:
    # a second model version loaded beside the first (a reload): up 20 MB, then flat
    rng = np.random.default_rng(5)
    levels = np.r_[np.full(40, 20.0), np.full(80, 40.0)] + rng.normal(0, 0.2, 120)
    assert _run(_samples(levels, 64.0)) == []


def test_state_round_trip_gives_the_same_alarms() -> None:
    th = load_thresholds()
    levels = _leak(7)
    batch = _samples(levels, 64.0)
    ts, comp = batch.ts, batch.component
    whole = BudgetWatch(COMPS, th).observe(ts, comp, levels, batch.memory_limit_mb)
    first = BudgetWatch(COMPS, th)
    part = first.observe(ts[:70], comp[:70], levels[:70], batch.memory_limit_mb[:70])
    again = BudgetWatch(COMPS, th)
    again.load(first.state())
    part += again.observe(ts[70:], comp[70:], levels[70:], batch.memory_limit_mb[70:])
    assert [a.at for a in part] == [a.at for a in whole] and len(whole) == 1


def test_engine_state_keeps_the_budget_watch() -> None:
    batch = _samples(_leak(), 64.0)
    cfg = EngineConfig(sample_exhaustion=True)
    engine = DetectionEngine(cfg)
    engine.update(None, batch, until=float(batch.ts[-1]))
    restored = DetectionEngine.from_state(cfg, engine.state())
    assert restored.state()["budget"] == engine.state()["budget"]
