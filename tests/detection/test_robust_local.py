"""The v5 second detector family (`robust_local`): a sample against its own neighbourhood."""

from __future__ import annotations

import numpy as np
import pytest

from prefect_ft.detection import analyse_metric, load_thresholds
from prefect_ft.detection.robust_local import LocalDeviation
from tests.detection.test_robust_records import T0, rows

DAY = 86400.0


def ramping(seed: int, days: int = 4, dt: float = 60.0):
    """1-minute load whose day shape swings 5x, with small noise: a median of recent values lags
    its ramps by far more than the noise, as on MSFT's machine request series."""
    rng = np.random.default_rng(seed)
    ts = T0 + dt * np.arange(int(days * DAY / dt))
    phase = 2 * np.pi * (ts - T0) / DAY
    shape = 600.0 + 400.0 * np.sin(phase) + 150.0 * np.sin(3 * phase)
    # the second half of each day drifts a little differently, so no two days repeat
    drift = 60.0 * np.sin(2 * np.pi * (ts - T0) / (2.7 * DAY))
    return ts, shape + drift + 12.0 * rng.standard_normal(ts.size)


def test_the_local_z_ignores_a_smooth_ramp_and_sees_a_spike() -> None:
    loc = LocalDeviation(10, 500, 2000)
    y = np.linspace(0.0, 1000.0, 3000) + np.random.default_rng(0).standard_normal(3000)
    zs = []
    for v in y:
        z = loc.z(float(v))
        if z is not None:
            zs.append(abs(z))
        loc.learn(float(v))
    # a ramp of 0.33 per sample moves the 10-sample median ~1.8 behind: a few noise scales
    assert max(zs) < 8.0, max(zs)
    assert loc.z(float(y[-1]) + 30.0) > 15.0


@pytest.mark.parametrize(("seed", "day"), [(0, 2.2), (1, 2.9), (2, 3.6)])
def test_a_short_spike_on_a_fast_ramping_load_is_found(seed, day) -> None:
    ts, v = ramping(seed)
    at = int(day * 1440) + 37
    v[at] += 250.0  # ~20 noise scales, yet within the ramps' own swing
    found = rows(ts, analyse_metric(ts, v, kind="throughput").alarms)
    assert at in found, (at, found)
    # the baseline family alone (v4) misses it: its records hold the ramps' residuals
    old = rows(ts, analyse_metric(ts, v, kind="throughput", thresholds=load_thresholds("4")).alarms)
    assert at not in old, old


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_ramping_load_alone_raises_few_alarms(seed) -> None:
    ts, v = ramping(seed)
    assert len(analyse_metric(ts, v, kind="throughput").alarms) <= 2


def test_thresholds_v5_extend_v4_which_stays_loadable() -> None:
    from prefect_ft.detection import THRESHOLDS_VERSION

    v4, v5 = load_thresholds("4"), load_thresholds("5")
    assert int(THRESHOLDS_VERSION) >= 5
    assert v4.rm_local_n == 0  # v4 keeps its behaviour: the second family is off there
    assert v5.rm_local_n == 10 and v5.rm_local_k == 1
    assert (v5.rm_holdoff, v5.rm_record_k) == (v4.rm_holdoff, v4.rm_record_k)
