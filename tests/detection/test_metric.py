"""`detect_metric`: patterns per kind, the prefix property, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from prefect_ft.detection import Pattern, analyse_metric, detect_metric

T0 = 1_735_689_600.0


def series(seed, n=2000, level=1.0, sd=0.05, dt=10.0):
    rng = np.random.default_rng(seed)
    return T0 + dt * np.arange(n), level + sd * rng.standard_normal(n)


def test_latency_step_alarms_once_soon_after_onset() -> None:
    ts, v = series(1)
    v = np.exp(v)
    v[1200:] *= 1.5
    alarms = detect_metric(ts, v, kind="latency")
    assert len(alarms) == 1
    assert alarms[0].pattern is Pattern.DEGRADATION
    assert ts[1200] <= alarms[0].at <= ts[1210]


def test_throughput_drop_and_error_rate_rise() -> None:
    ts, v = series(2, level=100.0, sd=5.0)
    v[1500:] -= 25.0
    (drop,) = detect_metric(ts, v, kind="throughput")
    assert drop.pattern is Pattern.DEGRADATION and drop.at >= ts[1500]
    ts, e = series(3, level=0.01, sd=0.002)
    e[1500:] += 0.02
    (rise,) = detect_metric(ts, e, kind="error_rate")
    assert rise.pattern is Pattern.BURST and rise.at >= ts[1500]


def test_generic_finds_level_shifts_both_ways_and_spikes() -> None:
    ts, v = series(4, n=3000)
    v[800] += 3.0
    v[1500:] -= 0.3  # 6 sigma: below the spike threshold, so only the shift can alarm
    v[2300:] += 0.3
    found = [
        (a.pattern, int(np.searchsorted(ts, a.at)), a.evidence_map()["z"])
        for a in detect_metric(ts, v, kind="generic")
    ]
    assert [p for p, _, _ in found] == [Pattern.SPIKE, Pattern.LEVEL_SHIFT, Pattern.LEVEL_SHIFT]
    assert found[0][1] == 800
    assert 1500 <= found[1][1] <= 1510 and found[1][2] < 0
    assert 2300 <= found[2][1] <= 2310 and found[2][2] > 0


def test_resource_time_to_limit() -> None:
    ts = T0 + 10.0 * np.arange(1500)
    rng = np.random.default_rng(5)
    mem = 1000 + rng.normal(0, 10, ts.size) + np.where(ts > ts[600], (ts - ts[600]) / 60 * 20, 0)
    alarms = detect_metric(ts, mem, kind="resource", limit=4000.0)
    cross = ts[600] + 3000 / 20 * 60
    assert len(alarms) == 1 and alarms[0].pattern is Pattern.EXHAUSTION
    assert cross - alarms[0].at >= 30 * 60


@pytest.mark.parametrize("kind", ["latency", "throughput", "error_rate", "generic"])
def test_no_alarm_on_stationary_noise(kind) -> None:
    ts, v = series(6, n=5000, level=2.0, sd=0.1)
    assert detect_metric(ts, v, kind=kind) == []


@pytest.mark.parametrize("kind", ["latency", "generic", "resource"])
def test_a_prefix_gives_exactly_the_full_runs_alarms_up_to_its_end(kind) -> None:
    ts, v = series(7, n=3000)
    v = np.exp(v)
    v[900:] *= 1.3
    v[1700] *= 3
    v[2200:] = v[2200:] + 0.01 * np.arange(800)
    limit = 10.0 if kind == "resource" else None
    full = detect_metric(ts, v, kind=kind, limit=limit)
    assert full, "the series must contain something to find"
    for n in (1, 29, 500, 950, 1701, 2300, 2999):
        prefix = detect_metric(ts[:n], v[:n], kind=kind, limit=limit)
        assert prefix == [a for a in full if a.at <= ts[n - 1]]


def reasons(ts, v, kind="generic", limit=None):
    result = analyse_metric(np.asarray(ts, float), np.asarray(v, float), kind=kind, limit=limit)
    assert result.alarms == ()
    return {s.reason for s in result.skipped}


def test_bad_input_never_crashes_or_alarms_and_says_why() -> None:
    assert "empty" in reasons([], [])
    assert "learning" in reasons([T0], [1.0])
    ts, v = series(8, n=300)
    v[::7] = np.nan
    assert "nan_values" in reasons(ts, v)
    ts, v = series(9, n=300)
    assert "duplicate_timestamps" in reasons(np.repeat(ts, 2), np.repeat(v, 2))
    shuffled = np.random.default_rng(0).permutation(ts.size)
    assert "out_of_order" in reasons(ts[shuffled], v[shuffled])
    assert "constant_series" in reasons(ts, np.full(ts.size, 3.0))
    assert "shape_mismatch" in reasons(ts, v[:-1])
    assert "no_limit" in reasons(ts, v, kind="resource")
    assert "non_positive" in reasons(ts, -v, kind="latency")


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="kind"):
        detect_metric(np.arange(3.0), np.arange(3.0), kind="weird")  # type: ignore[arg-type]
