"""Each detector finds its pattern and stays silent on its negative control (seeded series)."""

from __future__ import annotations

import numpy as np

from prefect_ft.detection import (
    DetectionEngine,
    EngineConfig,
    Pattern,
    ResourceBatch,
    Severity,
    load_thresholds,
)
from tests.detection.series import T0, batch, task_rows

ONE = ("a",)


def run(components, tasks=None, resources=None, edges=()):
    engine = DetectionEngine(EngineConfig(components, edges, load_thresholds()))
    return engine.update(tasks, resources).alarms


def test_burst_is_found_within_five_minutes() -> None:
    onset = 4 * 3600.0
    rows = task_rows(
        np.random.default_rng(1),
        6,
        lambda t: np.where((t >= onset) & (t < onset + 600), 0.10, 0.01),
    )
    alarms = run(ONE, batch(ONE, rows))
    assert [a.pattern for a in alarms] == [Pattern.BURST]
    (a,) = alarms
    assert T0 + onset <= a.at <= T0 + onset + 300
    assert a.components == ("a",)
    assert abs(a.onset - (T0 + onset)) < 120
    assert a.evidence_map()["ratio"] > 3
    assert a.explanation


def test_no_alarm_on_a_steady_failure_rate_with_load_swings() -> None:
    rng = np.random.default_rng(2)
    rows = task_rows(rng, 6, 0.01, rate=1.0)
    busy = task_rows(rng, 6, 0.01, rate=2.0)  # a second, denser day segment (load swell)
    busy["end"] = busy["end"][busy["end"] > T0 + 3 * 3600]
    for k in ("dur", "failed", "code", "comp"):
        busy[k] = busy[k][-busy["end"].size :]
    assert run(ONE, batch(ONE, rows, busy)) == ()


def test_latency_step_of_2x_alarms_within_two_minutes() -> None:
    onset = 4 * 3600.0
    rows = task_rows(
        np.random.default_rng(3), 6, 0.0, factor=lambda t: np.where(t >= onset, 2.0, 1.0)
    )
    alarms = run(ONE, batch(ONE, rows))
    assert [a.pattern for a in alarms] == [Pattern.DEGRADATION]
    assert T0 + onset < alarms[0].at <= T0 + onset + 120
    assert alarms[0].severity in (Severity.HIGH, Severity.CRITICAL)


def test_slow_latency_ramp_is_found() -> None:
    onset = 4 * 3600.0
    ramp = lambda t: 1.0 + 0.5 * np.clip((t - onset) / 3600.0, 0.0, 1.0)  # noqa: E731
    alarms = run(ONE, batch(ONE, task_rows(np.random.default_rng(4), 6, 0.0, factor=ramp)))
    assert alarms and alarms[0].pattern is Pattern.DEGRADATION
    assert T0 + onset < alarms[0].at <= T0 + onset + 40 * 60


def test_no_degradation_alarm_on_stationary_latency() -> None:
    assert run(ONE, batch(ONE, task_rows(np.random.default_rng(5), 8, 0.0))) == ()


def memory(rng, hours, leak_mb_min=0.0, onset=2 * 3600.0, limit=4096.0):
    ts = np.arange(0, hours * 3600, 10.0)
    mem = 2000 + 100 * np.mod(ts, 180) / 180 + rng.normal(0, 20, ts.size)
    mem = mem + np.where(ts >= onset, (ts - onset) / 60 * leak_mb_min, 0.0)
    keep = mem < limit  # the process dies at the limit
    ts, mem = ts[keep], mem[keep]
    return ResourceBatch(
        ONE, ts + T0, np.zeros(ts.size), mem, np.full(ts.size, limit), np.full(ts.size, 30.0)
    )


def test_memory_leak_alarms_30_minutes_before_the_limit() -> None:
    onset, slope = 2 * 3600.0, 30.0
    cross = T0 + onset + (4096 - 2000) / slope * 60
    alarms = [
        a
        for a in run(ONE, resources=memory(np.random.default_rng(6), 5, slope))
        if a.pattern is Pattern.EXHAUSTION
    ]
    assert len(alarms) == 1
    lead = cross - alarms[0].at
    assert lead >= 30 * 60
    assert abs(alarms[0].evidence_map()["tte_s"] - lead) / lead < 0.15


def test_no_exhaustion_alarm_on_a_flat_sawtooth() -> None:
    assert run(ONE, resources=memory(np.random.default_rng(7), 8)) == ()


def cyclic_rows(rng, hours, period, k, onset, cycles):
    times = np.array(
        [onset + c * period + rng.normal(0, 0.02 * period) for c in range(cycles) for _ in range(k)]
    )
    return {
        "end": times + T0,
        "dur": np.ones(times.size),
        "failed": np.ones(times.size, bool),
        "code": np.zeros(times.size, dtype=int),
        "comp": np.zeros(times.size, dtype=int),
    }


def test_cyclic_failures_report_the_period() -> None:
    rng = np.random.default_rng(8)
    base = task_rows(rng, 8, 0.01)
    extra = cyclic_rows(rng, 8, 300.0, 3, 3 * 3600.0 + 17.0, 14)
    alarms = [a for a in run(ONE, batch(ONE, base, extra)) if a.pattern is Pattern.CYCLIC]
    assert len(alarms) == 1
    assert abs(alarms[0].evidence_map()["period_s"] / 300.0 - 1) <= 0.05
    assert alarms[0].at <= T0 + 3 * 3600.0 + 14 * 300.0


def test_a_short_cycle_alarms_before_its_episode_ends() -> None:
    # 13 cycles of 60 s last 13 min: the 2-min fast scan must alarm inside the episode
    rng = np.random.default_rng(11)
    base = task_rows(rng, 6, 0.01)
    onset = 4 * 3600.0 + 23.0
    extra = cyclic_rows(rng, 6, 60.0, 3, onset, 13)
    alarms = [a for a in run(ONE, batch(ONE, base, extra)) if a.pattern is Pattern.CYCLIC]
    assert len(alarms) == 1
    assert abs(alarms[0].evidence_map()["period_s"] / 60.0 - 1) <= 0.05
    assert T0 + onset <= alarms[0].at <= T0 + onset + 13 * 60.0


def test_a_burst_is_not_called_cyclic() -> None:
    onset = 4 * 3600.0
    rows = task_rows(
        np.random.default_rng(9), 8, lambda t: np.where((t >= onset) & (t < onset + 300), 0.3, 0.01)
    )
    patterns = [a.pattern for a in run(ONE, batch(ONE, rows))]
    assert Pattern.CYCLIC not in patterns
    assert patterns == [Pattern.BURST]


CHAIN = ("a", "b", "c")
EDGES = (("a", "b"), ("b", "c"))


def cascade_rows(rng, q, propagate=True):
    onset = 4 * 3600.0
    a = task_rows(
        rng, 6, lambda t: np.where((t >= onset) & (t < onset + 300), 0.3, 0.01), component=0
    )
    parts = [a]
    upstream = np.sort(a["end"][a["failed"]])
    for comp, lag in ((1, 8.0), (2, 15.0)):
        rows = task_rows(rng, 6, 0.01, component=comp)
        if propagate:
            k = np.searchsorted(upstream, rows["end"], side="right")
            recent = (k > 0) & (rows["end"] - upstream[np.maximum(k - 1, 0)] <= lag)
            recent &= (rows["end"] >= T0 + onset) & (rows["end"] < T0 + onset + 420)
            hit = recent & (rng.random(rows["end"].size) < q)
            rows["failed"] |= hit
            rows["code"] = np.where(rows["failed"], 5, -1)
        parts.append(rows)
        upstream = np.sort(rows["end"][rows["failed"]])
    return parts


def test_cascade_reports_root_and_order() -> None:
    alarms = run(CHAIN, batch(CHAIN, *cascade_rows(np.random.default_rng(10), 0.8)), edges=EDGES)
    cascades = [a for a in alarms if a.pattern is Pattern.CASCADE]
    assert len(cascades) == 1
    assert cascades[0].components == ("a", "b", "c")
    assert cascades[0].severity is Severity.HIGH


def test_an_isolated_burst_is_not_a_cascade() -> None:
    alarms = run(
        CHAIN, batch(CHAIN, *cascade_rows(np.random.default_rng(11), 0.8, False)), edges=EDGES
    )
    assert [a.pattern for a in alarms] == [Pattern.BURST]
    assert alarms[0].components == ("a",)


def test_a_lasting_shift_alarms_once_then_becomes_the_new_normal() -> None:
    onset = 3 * 3600.0
    rows = task_rows(
        np.random.default_rng(12), 12, 0.0, factor=lambda t: np.where(t >= onset, 1.4, 1.0)
    )
    alarms = run(ONE, batch(ONE, rows))
    assert [a.pattern for a in alarms] == [Pattern.DEGRADATION]
    assert alarms[0].at <= T0 + onset + 600
