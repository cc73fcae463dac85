"""Thresholds v10: the self-calibrated rarity (`robust_rarity`) without its start-up bias.

v7's exponentially weighted moments started at the first value and at a variance of 0 and forgot
that start only at the rate alpha, so for the first span the rarity bar was read against a mean
anchored at the first value and a misread spread. v10 keeps the moments of the weighted sample
itself, normalised by its total weight.
"""

from __future__ import annotations

import numpy as np

from prefect_ft.detection.robust_rarity import Rarity
from prefect_ft.detection.thresholds import load_thresholds
from tests.detection.test_robust_rarity import _level_alarms  # the same half-hourly DT

N = 3000
DT = 1800.0  # half-hourly: the records remember 7 days, 336 samples


def _moments(values: np.ndarray, unbias: bool) -> tuple[float, float]:
    r = Rarity(1, 8640, 4.265, unbias)
    for v in values.tolist():
        r.push((v,))
    return r.mean[0], r.sd(0)


def test_young_moments_are_those_of_the_data_not_of_the_start() -> None:
    x = np.random.default_rng(3).normal(0.0, 1.0, 1000)  # a ninth of the span; x[0] is 2.04
    mean, sd = _moments(x, unbias=True)
    assert abs(mean) < 0.2 and 0.9 < sd < 1.1
    # v7: the first value keeps (1 - 2/8641)^999 = 0.79 of the mean
    v7_mean, _ = _moments(x, unbias=False)
    assert v7_mean > 1.5


def test_both_agree_once_the_span_is_covered_many_times() -> None:
    x = np.random.default_rng(4).normal(0.0, 1.0, 60000)
    (m1, s1), (m0, s0) = _moments(x, unbias=True), _moments(x, unbias=False)
    assert abs(m1 - m0) < 1e-3 and abs(s1 - s0) < 1e-3


def _wander(seed: int, phi: float, sd: float) -> np.ndarray:
    """White noise plus an AR(1) wander that the flat baseline lags behind."""
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, sd, N)
    w = np.zeros(N)
    for i in range(1, N):
        w[i] = phi * w[i - 1] + e[i]
    return 100.0 + rng.normal(0.0, 1.0, N) + w


def test_a_wandering_series_young_in_its_moments_stops_alarming_on_its_wander() -> None:
    x = _wander(15, 0.95, 0.5)
    # v7: twice, within the first span of its moments, against a bar read from their start
    assert _level_alarms(x, "7") == [1039, 1399]
    assert _level_alarms(x, "10") == []


def test_a_quiet_series_keeps_its_level_shift_alarm() -> None:
    x = 100.0 + np.random.default_rng(0).normal(0.0, 1.0, N)
    x[1500:1530] += 2.5  # within the first span of the moments
    for version in ("7", "10"):
        got = _level_alarms(x, version)
        assert len(got) == 1 and 1500 <= got[0] <= 1510, (version, got)


def test_v10_extends_v9_with_the_correction_only() -> None:
    v9, v10 = load_thresholds("9"), load_thresholds("10")
    assert not v9.rm_rare_unbias and v10.rm_rare_unbias
    assert {k: x for k, x in v10.to_dict().items() if k != "rm_rare_unbias"} == {
        k: x for k, x in v9.to_dict().items() if k != "rm_rare_unbias"
    }


def test_a_prefix_gives_the_full_runs_alarms_under_v10() -> None:
    from prefect_ft.detection.metric import analyse_metric

    x = _wander(15, 0.95, 0.5)
    x[2000:2100] += 15.0
    ts = 1.7e9 + DT * np.arange(N)
    th = load_thresholds("10")
    full = analyse_metric(ts, x, kind="generic", thresholds=th).alarms
    assert full
    for n in (900, 1040, 1400, 2001, 2050, 2101, N - 1):
        prefix = analyse_metric(ts[:n], x[:n], kind="generic", thresholds=th).alarms
        assert list(prefix) == [a for a in full if a.at <= ts[n - 1]], n
