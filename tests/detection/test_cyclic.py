"""Cyclic failures: long periods, harmonics and per-band hold-offs."""

from __future__ import annotations

import itertools

import numpy as np

from prefect_ft.detection import FailureType, Pattern, load_thresholds
from prefect_ft.detection._episodes import MIX
from prefect_ft.detection.cyclic import CyclicTracker
from prefect_ft.detection.periodic import _z2, find_period
from tests.detection.series import T0


def background(rng: np.random.Generator, hours: float, per_hour: float):
    """Poisson failures with the normal type mix: (times from T0, codes)."""
    n = rng.poisson(per_hour * hours)
    times = np.sort(rng.uniform(0, hours * 3600.0, n))
    codes = rng.choice(len(MIX), size=n, p=MIX)  # the generator's normal error mix
    return times, codes


def pulses(rng, period, k, onset, cycles, ftype=FailureType.TIMEOUT):
    times = np.array(
        [onset + c * period + rng.normal(0, 0.02 * period) for c in range(cycles) for _ in range(k)]
    )
    return times, np.full(times.size, ftype.code)


def feed(tracker: CyclicTracker, times: np.ndarray, codes: np.ndarray, hours: float):
    """Minute by minute, as the engine does; returns the alarms."""
    order = np.argsort(times, kind="stable")
    times, codes = times[order] + T0, codes[order]
    bounds = T0 + 60.0 * np.arange(1, int(hours * 60) + 1)
    cut = np.searchsorted(times, bounds, "left")
    alarms, prev = [], 0
    for b, j in zip(bounds.tolist(), cut.tolist(), strict=True):
        tracker.add(times[prev:j].tolist(), codes[prev:j].tolist())
        prev = j
        alarm = tracker.close_minute(b)
        if alarm is not None:
            alarms.append(alarm)
    return alarms


def test_an_hourly_cycle_of_one_failure_type_is_found_before_it_ends() -> None:
    # 3 timeouts an hour for 12 hours against 36 background failures an hour: the all-failure
    # fold test stays near z 6, the Timeout-only scan finds it
    hits = 0
    for seed in range(3):
        rng = np.random.default_rng(seed)
        hours, onset = 17.0, 3 * 3600.0 + 911.0
        bt, bc = background(rng, hours, 36.0)
        pt, pc = pulses(rng, 3600.0, 3, onset, 12)
        alarms = feed(
            CyclicTracker("c", load_thresholds()),
            np.concatenate([bt, pt]),
            np.concatenate([bc, pc]),
            hours,
        )
        assert len(alarms) <= 1
        if alarms:
            a = alarms[0]
            assert a.pattern is Pattern.CYCLIC
            assert a.failure_type is FailureType.TIMEOUT
            assert abs(a.evidence_map()["period_s"] / 3600.0 - 1) <= 0.05
            # 8 on-phase cycles are needed: 7 or 8 pulses (a background cycle can add one)
            assert T0 + onset + 6 * 3600.0 <= a.at <= T0 + onset + 12 * 3600.0
            hits += 1
    assert hits == 3


def test_the_period_is_not_reported_at_half_its_value() -> None:
    # a sharp 5-failure pulse every 300 s puts as much Z^2_2 power at 150 s; the candidates are
    # re-folded at nearby periods, so P/2 (whose pulse half misses the bin) does not win.
    # Seed 181 reported 150 s before that (2 of 300 seeds did, the benchmark's seed 2003 too).
    for seed in (181, *range(10)):
        rng = np.random.default_rng(seed)
        bt, _ = background(rng, 1.0, 36.0)
        cycles = 8 + seed % 4
        pt, _ = pulses(rng, 300.0, 5, 3600.0 - cycles * 300.0 + 50.0, cycles)
        times = np.sort(np.concatenate([bt, pt]))
        est = find_period(times, 3600.0, 3600.0, 60.0, 450.0, 8)
        assert est is not None
        assert abs(est.period_s / 300.0 - 1) <= 0.05, (seed, est.period_s)


def test_a_long_band_hold_does_not_silence_a_short_cycle() -> None:
    # a 12-h band alarm (here a held period of 3927 s) must not hide a 60 s cycle that starts
    # an hour later; before the per-band hold-offs it did (seed 1008 of the benchmark)
    rng = np.random.default_rng(3)
    tracker = CyclicTracker("c", load_thresholds())
    tracker.load({"hold_long": T0 + 12 * 3600.0, "hold_period": 3927.0})
    bt, bc = background(rng, 3.0, 36.0)
    pt, pc = pulses(rng, 60.0, 3, 2 * 3600.0 + 7.0, 14)
    alarms = feed(tracker, np.concatenate([bt, pt]), np.concatenate([bc, pc]), 3.0)
    assert len(alarms) == 1
    assert abs(alarms[0].evidence_map()["period_s"] / 60.0 - 1) <= 0.05


def test_state_saved_before_per_band_holds_still_loads() -> None:
    tracker = CyclicTracker("c", load_thresholds())
    tracker.load({"times": [1.0], "codes": [0], "hold_until": 500.0})
    assert tracker.hold_short == tracker.hold_long == 500.0
    again = CyclicTracker("c", load_thresholds())
    again.load(tracker.state())
    assert again.state() == tracker.state()


def test_the_segmented_periodogram_is_the_direct_sum_of_phasors() -> None:
    # Z^2_2 = (2/n) sum_{j=1,2} |sum_k exp(2 pi i j f t_k)|^2, for all times and per segment;
    # `_z2` builds the phasors by a recurrence and sums the whole row from the segments' sums
    rng = np.random.default_rng(3)
    t = rng.uniform(0.0, 10800.0, 120)
    cuts = np.array([0, 30, 31, 90, 120])  # one segment of a single time
    freqs = 1.0 / 1200.0 + np.arange(400) / 32400.0
    got = _z2(t, freqs, cuts)
    assert got.shape == (400, 5)
    for col, (lo, hi) in enumerate([(0, 120), *itertools.pairwise(cuts)]):
        x = t[lo:hi]
        want = sum(
            np.abs(np.exp(2j * np.pi * j * np.outer(freqs, x)).sum(axis=1)) ** 2 for j in (1, 2)
        )
        np.testing.assert_allclose(got[:, col], 2.0 * want / x.size, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(_z2(t, freqs), got[:, 0], rtol=1e-12)
