"""`detect_metric` on series shaped like real ones: seasons, heavy tails, counts, shifts, gaps."""

from __future__ import annotations

import numpy as np
import pytest

from prefect_ft.detection import Pattern, analyse_metric, detect_metric
from prefect_ft.detection.baselines import SlidingMax, choose_transform

T0 = 1_735_689_600.0
DAY = 86400.0


def daily(seed: int, days: float = 14, dt: float = 300.0, level: float = 100.0, amp: float = 40.0):
    """A clean daily load: a smooth day shape, a weekday dip, 3 % noise; no anomaly."""
    rng = np.random.default_rng(seed)
    ts = T0 + dt * np.arange(int(days * DAY / dt))
    phase = 2 * np.pi * (ts - T0) / DAY
    shape = level + amp * np.sin(phase) + 0.3 * amp * np.sin(2 * phase + 1.0)
    return ts, shape * (1 + 0.03 * rng.standard_normal(ts.size))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["generic", "throughput", "latency"])
def test_a_clean_daily_series_raises_almost_no_alarm_in_14_days(seed, kind) -> None:
    ts, v = daily(seed)
    assert len(detect_metric(ts, v, kind=kind)) <= 1


def test_spikes_and_drops_on_a_daily_series_are_found_both_ways() -> None:
    ts, v = daily(3)
    spike, drop = 8 * 288 + 100, 11 * 288 + 50
    v[spike] *= 2.0
    v[drop : drop + 12] *= 0.3  # an hour-long outage of a load series
    found = [int(np.searchsorted(ts, a.at)) for a in detect_metric(ts, v, kind="throughput")]
    assert spike in found
    assert any(drop <= i <= drop + 3 for i in found)
    assert len(found) <= 3


def test_count_data_with_many_zeros() -> None:
    rng = np.random.default_rng(4)
    ts = T0 + 60.0 * np.arange(10_000)
    counts = rng.poisson(0.3, ts.size).astype(float)
    assert len(detect_metric(ts, counts, kind="generic")) <= 1
    counts[7000:7010] += 15  # a crash wave
    found = [int(np.searchsorted(ts, a.at)) for a in detect_metric(ts, counts, kind="generic")]
    assert any(7000 <= i <= 7003 for i in found)


def test_heavy_tailed_noise_is_not_an_anomaly() -> None:
    rng = np.random.default_rng(5)
    ts = T0 + 60.0 * np.arange(10_000)
    v = rng.lognormal(3.0, 1.0, ts.size)
    assert len(detect_metric(ts, v, kind="generic")) <= 2


def test_a_lasting_level_shift_alarms_once_then_relearns() -> None:
    rng = np.random.default_rng(6)
    ts = T0 + 60.0 * np.arange(6000)
    v = 50 + rng.standard_normal(ts.size)
    v[3000:] += 6
    alarms = detect_metric(ts, v, kind="generic")
    assert len(alarms) == 1
    assert ts[3000] <= alarms[0].at <= ts[3010]
    assert alarms[0].pattern in (Pattern.LEVEL_SHIFT, Pattern.SPIKE)


def test_gaps_and_irregular_timestamps_keep_the_seasonal_phase() -> None:
    ts, v = daily(7, days=16)
    rng = np.random.default_rng(7)
    keep = rng.random(ts.size) > 0.2  # 20 % of samples lost at random
    keep[5 * 288 : 6 * 288] = False  # and a whole day missing
    ts = ts[keep] + rng.uniform(-20, 20, keep.sum())  # jittered clocks
    assert len(detect_metric(ts, v[keep], kind="generic")) <= 1


@pytest.mark.parametrize("kind", ["generic", "throughput", "latency"])
def test_a_prefix_gives_exactly_the_full_runs_alarms_on_a_seasonal_series(kind) -> None:
    ts, v = daily(8, days=10)
    v[5 * 288 + 7] *= 2.5
    v[7 * 288 :] *= 1.4
    v[8 * 288 + 100 : 8 * 288 + 110] *= 0.2
    full = detect_metric(ts, v, kind=kind)
    assert full, "the series must contain something to find"
    for n in (1, 99, 100, 101, 700, 5 * 288 + 8, 7 * 288 + 3, 8 * 288 + 105, ts.size - 1):
        prefix = detect_metric(ts[:n], v[:n], kind=kind)
        assert prefix == [a for a in full if a.at <= ts[n - 1]], n


BAD = {
    "constant": (T0 + 60.0 * np.arange(3000), np.full(3000, 7.0)),
    "all_nan": (T0 + 60.0 * np.arange(3000), np.full(3000, np.nan)),
    "shorter_than_a_season": daily(9, days=0.5),
    "out_of_order": (T0 + 60.0 * np.random.default_rng(1).permutation(3000), np.ones(3000)),
    "duplicated": (np.repeat(T0 + 60.0 * np.arange(1500), 2), np.arange(3000.0)),
    "huge_value": (T0 + 60.0 * np.arange(3000), np.where(np.arange(3000) == 2000, 1e308, 1.0)),
    "huge_values": (T0 + 60.0 * np.arange(3000), np.full(3000, 1e308)),
    "alternating_huge": (T0 + 60.0 * np.arange(3000), np.tile([1e308, -1e308], 1500)),
    "inf": (T0 + 60.0 * np.arange(3000), np.where(np.arange(3000) % 50 == 0, np.inf, 1.0)),
    "single": (np.array([T0]), np.array([1.0])),
}


@pytest.mark.parametrize("name", sorted(BAD))
@pytest.mark.parametrize("kind", ["generic", "throughput", "latency"])
def test_bad_input_returns_alarms_or_a_reason_never_a_numpy_error(name, kind) -> None:
    ts, v = BAD[name]
    with np.errstate(all="raise"):  # a numpy warning would be an error here
        result = analyse_metric(ts, v, kind=kind)
    assert result.alarms or result.skipped, name


def test_bad_input_reasons_name_the_problem() -> None:
    def reasons(name):
        return {s.reason for s in analyse_metric(*BAD[name], kind="generic").skipped}

    assert "constant_series" in reasons("constant")
    assert "nan_values" in reasons("all_nan") and "empty" in reasons("all_nan")
    assert "out_of_order" in reasons("out_of_order")
    assert "duplicate_timestamps" in reasons("duplicated")
    assert "learning" in reasons("single")


def test_transform_choice() -> None:
    rng = np.random.default_rng(10)
    assert choose_transform(rng.poisson(2.0, 500).astype(float))[0] == "anscombe"
    assert choose_transform(rng.lognormal(0.0, 1.5, 500))[0] == "log"
    assert choose_transform(rng.standard_normal(500))[0] == "identity"


def test_sliding_max() -> None:
    m = SlidingMax(3)
    got = []
    for v in [1, 5, 2, 3, 1, 0, 0]:
        m.push(v)
        got.append(m.max())
    assert got == [1, 5, 5, 5, 3, 3, 1]


def test_thresholds_v2_extend_v1_and_v1_stays_loadable() -> None:
    from prefect_ft.detection import THRESHOLDS_VERSION, load_thresholds

    v1, v2 = load_thresholds("1"), load_thresholds()
    assert int(THRESHOLDS_VERSION) >= 3
    assert v1.metric_model == "v1" and v2.metric_model == "robust"
    # the synthetic detectors' numbers are v1's, unchanged
    assert v2.burst_h == v1.burst_h and v2.deg_h == v1.deg_h and v2.cyc_z == v1.cyc_z
    with pytest.raises(ValueError, match="version"):
        load_thresholds(str(int(THRESHOLDS_VERSION) + 1))
