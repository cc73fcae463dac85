"""Thresholds v7: self-calibrated rarity (`robust_rarity`, Numenta's anomaly likelihood).

A level-shift alarm (CUSUM or window mean) also needs its statistic to be rare against the running
mean and spread of the same statistic on this series: a series whose residuals wander, so that its
CUSUM often runs high, stops alarming on its own wander, while a quiet series keeps its alarms.
"""

from __future__ import annotations

import numpy as np

from prefect_ft.detection.robust_metric import RobustStream
from prefect_ft.detection.robust_rarity import Rarity
from prefect_ft.detection.thresholds import load_thresholds

N = 3000
DT = 1800.0  # half-hourly, as nyc_taxi: the records remember 7 days, 336 samples


def _pushed(values: np.ndarray, q: float = 4.265) -> Rarity:
    r = Rarity(1, 8640, q)
    for v in values.tolist():
        r.push((v,))
    return r


def test_a_value_is_rare_on_a_quiet_channel_and_ordinary_on_a_noisy_one() -> None:
    rng = np.random.default_rng(0)
    quiet = np.abs(rng.normal(0.0, 1.0, 2000))
    noisy = quiet.copy()
    noisy[::10] += 20.0  # one sample in ten runs high
    assert _pushed(quiet).rare(0, 12.0)
    assert not _pushed(noisy).rare(0, 12.0)


def test_rarity_is_one_sided_per_direction() -> None:
    r = _pushed(np.random.default_rng(1).normal(0.0, 1.0, 2000))
    assert r.rare(0, 6.0, True) and not r.rare(0, 6.0, False)
    assert r.rare(0, -6.0, False) and not r.rare(0, -6.0, True)


def test_young_moments_and_a_zero_level_judge_nothing_out() -> None:
    young = _pushed(np.full(100, 5.0))  # fewer than a tenth of the span: too young to judge
    assert young.rare(0, 5.0)
    off = _pushed(np.full(2000, 5.0), q=0.0)
    assert off.rare(0, 0.0)
    on = _pushed(np.full(2000, 5.0))
    assert not on.rare(0, 5.0)


def _level_alarms(x: np.ndarray, version: str) -> list[int]:
    stream = RobustStream("generic", load_thresholds(version))
    out = []
    for i, v in enumerate(x.tolist()):
        a = stream.update(i * DT, v)
        if a is not None and ("rise" in a.explanation or "drop" in a.explanation):
            out.append(i)
    return out


def _wander(seed: int) -> np.ndarray:
    """White noise plus a slow AR(1) wander (phi 0.98) the flat baseline lags behind."""
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, 0.3, N)
    w = np.zeros(N)
    for i in range(1, N):
        w[i] = 0.98 * w[i - 1] + e[i]
    return 100.0 + rng.normal(0.0, 1.0, N) + w


def test_a_wandering_series_stops_alarming_on_its_own_wander() -> None:
    x = _wander(1)
    # v6: its CUSUM beats a record of 7 days every so often; v7 knows it runs that high
    assert len(_level_alarms(x, "6")) >= 3
    assert _level_alarms(x, "7") == []


def test_a_quiet_series_keeps_its_level_shift_alarm() -> None:
    x = 100.0 + np.random.default_rng(0).normal(0.0, 1.0, N)
    x[2500:2530] += 2.5
    for version in ("6", "7"):
        got = _level_alarms(x, version)
        assert len(got) == 1 and 2500 <= got[0] <= 2510, (version, got)


def test_v7_extends_v6_with_the_rarity_numbers_only() -> None:
    v6, v7 = load_thresholds("6"), load_thresholds("7")
    changed = {"rm_rare_z", "rm_rare_n", "rm_rare_rules"}
    assert v6.rm_rare_z == 0.0 and v7.rm_rare_z > 0.0
    assert v7.rm_rare_rules == "cusum,mean"
    assert {k: x for k, x in v7.to_dict().items() if k not in changed} == {
        k: x for k, x in v6.to_dict().items() if k not in changed
    }


def test_a_prefix_gives_the_full_runs_alarms_where_the_rarity_gate_binds() -> None:
    from prefect_ft.detection.metric import analyse_metric

    x = _wander(1)
    x[2600:2700] += 6.0  # v7 finds this step only where it ends (see RESULTS.md, v7)
    ts = 1.7e9 + DT * np.arange(N)
    th = load_thresholds("7")
    full = analyse_metric(ts, x, kind="generic", thresholds=th).alarms
    assert full
    for n in (900, 1519, 2297, 2610, 2705, N - 1):
        prefix = analyse_metric(ts[:n], x[:n], kind="generic", thresholds=th).alarms
        assert list(prefix) == [a for a in full if a.at <= ts[n - 1]], n
