"""Thresholds v6: a load (kind "throughput") is read on the log scale, as a latency is."""

from __future__ import annotations

import numpy as np
import pytest

from prefect_ft.detection import analyse_metric, load_thresholds
from tests.detection.test_robust_records import T0, rows

DAY = 86400.0


def load(seed: int, days: int = 5, dt: float = 60.0):
    """1-minute load whose day swings 4x (24k at night, 96k at the peak), noise 8 % of the level:
    the day scales the load, as on MSFT's data-ingress series."""
    rng = np.random.default_rng(seed)
    ts = T0 + dt * np.arange(int(days * DAY / dt))
    level = 60000.0 * (1.0 + 0.6 * np.sin(2 * np.pi * (ts - T0) / DAY))
    return ts, level * np.exp(0.08 * rng.standard_normal(ts.size))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_an_outage_at_the_night_trough_is_found_at_once(seed) -> None:
    ts, v = load(seed)
    at = int(3.75 * 1440) + 7 * seed  # the trough of the fourth day
    v[at : at + 60] *= 0.3  # an hour at 30 % of the load
    found = rows(ts, analyse_metric(ts, v, kind="throughput").alarms)
    assert at in found, (at, found)
    # on the raw scale (v5) the trough's drop is small next to the peak's noise: missed
    old = rows(ts, analyse_metric(ts, v, kind="throughput", thresholds=load_thresholds("5")).alarms)
    assert not [i for i in old if at - 2 <= i <= at + 62], old


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_day_shape_of_a_load_alone_raises_at_most_one_alarm(seed) -> None:
    ts, v = load(seed)
    assert len(analyse_metric(ts, v, kind="throughput").alarms) <= 1


def test_a_load_falling_to_zero_alarms_without_a_numpy_error() -> None:
    ts, v = load(5)
    v[5000:] = 0.0
    res = analyse_metric(ts, v, kind="throughput")
    assert 5000 in rows(ts, res.alarms)


def test_counts_and_data_with_zeros_keep_their_transforms() -> None:
    from prefect_ft.detection.robust_metric import RobustStream

    rng = np.random.default_rng(1)
    th = load_thresholds()
    for values, expect in (
        (rng.poisson(4.0, 500).astype(float), "anscombe"),
        (np.concatenate([[0.0], 50.0 + rng.standard_normal(499)]), "identity"),
        (50.0 + rng.standard_normal(500), "log"),
    ):
        stream = RobustStream("throughput", th)
        for i, x in enumerate(values.tolist()):
            stream.update(T0 + 60.0 * i, x)
        assert stream.tf == expect, (stream.tf, expect)
