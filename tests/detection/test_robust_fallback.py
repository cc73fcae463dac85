"""A sample the chosen seasonal predictor cannot forecast (`rm_flat_fallback`, on from v9).

On irregularly sampled series (NAB's TravelTime files) the daily or weekly predictor can be the
chosen one while the bin of the current time of day is still empty; under v2-v8 such a sample
is not judged at all (10-12 % of the samples of TravelTime_387 and TravelTime_451). With the
fallback it is read against the flat predictor.
"""

from __future__ import annotations

import numpy as np

from prefect_ft.detection import analyse_metric, load_thresholds
from prefect_ft.detection.robust_metric import RobustStream
from tests.detection.test_robust_records import T0, rows

DAY = 86400.0
FALLBACK = load_thresholds()  # v9 and later: on by default
BLIND = load_thresholds("8")  # the last version without it


def gappy_latency(seed: int, days: int = 6, dt: float = 300.0):
    """5-minute latencies with a strong day shape, never sampled between 01:00 and 05:00 until
    the last day, so the daily bins of those hours stay empty while the daily predictor wins."""
    rng = np.random.default_rng(seed)
    ts = T0 + dt * np.arange(int(days * DAY / dt))
    hour = ((ts - T0) % DAY) / 3600.0
    keep = (hour < 1.0) | (hour >= 5.0) | (ts >= T0 + (days - 1) * DAY)
    ts = ts[keep]
    phase = 2 * np.pi * (ts - T0) / DAY
    level = 200.0 * np.exp(0.8 * np.sin(phase))
    return ts, level * np.exp(0.05 * rng.standard_normal(ts.size))


def _blind(ts, vs, th) -> int:
    """Samples after the warm-up whose chosen predictor had no forecast."""
    st, n = RobustStream("latency", th), 0
    for t, x in zip(ts.tolist(), vs.tolist(), strict=True):
        m = st.model
        if m is not None and st.hold == 0 and m.predictions(t)[m.choice] is None:
            n += 1
        st.update(t, x)
    return n


def _event(ts: np.ndarray) -> int:
    """The first sample of the last day at 03:00, inside the hours never seen before."""
    return int(np.searchsorted(ts, T0 + 5 * DAY + 3 * 3600.0))


def test_a_latency_step_in_unseen_hours_is_found_with_the_fallback() -> None:
    ts, v = gappy_latency(0)
    at = _event(ts)
    v[at : at + 6] *= 8.0  # half an hour at 8x the usual latency
    assert _blind(ts, v, BLIND) > 0  # the daily predictor is chosen, bins empty
    found = rows(ts, analyse_metric(ts, v, kind="latency", thresholds=FALLBACK).alarms)
    assert any(at <= i < at + 6 for i in found), (at, found)
    # v8 does not judge these samples: the step goes unseen
    old = rows(ts, analyse_metric(ts, v, kind="latency", thresholds=BLIND).alarms)
    assert not any(at <= i < at + 6 for i in old), (at, old)


def test_the_fallback_does_not_alarm_on_the_unseen_hours_alone() -> None:
    for seed in (0, 1, 2):
        ts, v = gappy_latency(seed)
        at = _event(ts)
        found = rows(ts, analyse_metric(ts, v, kind="latency", thresholds=FALLBACK).alarms)
        assert not [i for i in found if i >= at], (seed, found)
