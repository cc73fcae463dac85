"""Behavioural tests of the exhaustion detector (memory floors, multi-window Theil-Sen)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prefect_ft.detection import load_thresholds
from prefect_ft.detection.alarms import Alarm, Severity
from prefect_ft.detection.exhaustion import time_to_limit
from prefect_ft.detection.resource import ResourceTracker

T0 = 1_735_689_600.0
BASE, LIMIT = 2048.0, 4096.0


def memory(seed: int, hours: float, leak_mb_min: float = 0.0, onset_s: float = 3 * 3600.0):
    """Samples every 10 s like the generator (research/detection.md section 5): base + 50 MB x
    active tasks + GC sawtooth (5 % of base, 3 min) + noise (1 % of base) + a leak on the floor
    from `onset_s` until the crossing. Returns (times, MB, crossing time)."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, hours * 3600.0, 10.0)
    mem = (
        BASE
        + 50.0 * rng.poisson(0.9, t.size)
        + 0.05 * BASE * np.mod(t + rng.uniform(0, 180), 180.0) / 180.0
        + rng.normal(0.0, 0.01 * BASE, t.size)
    )
    cross = onset_s + (LIMIT - BASE) / leak_mb_min * 60.0 if leak_mb_min > 0 else np.inf
    if leak_mb_min > 0:
        mem += np.where((t >= onset_s) & (t < cross), (t - onset_s) * leak_mb_min / 60.0, 0.0)
    return T0 + t, mem, T0 + cross


def feed(tr: ResourceTracker, t: np.ndarray, x: np.ndarray, lo: float, hi: float) -> list[Alarm]:
    """Close every minute in [lo, hi) with its samples."""
    out = []
    for end in np.arange(lo + 60.0, hi + 1.0, 60.0):
        m = (t >= end - 60.0) & (t < end)
        if m.any():
            a = tr.close_minute(float(end), x[m], LIMIT)
            if a is not None:
                out.append(a)
    return out


def first_alarm(seed: int, rate: float, hours: float) -> tuple[Alarm | None, float]:
    t, x, cross = memory(seed, hours, rate)
    tr = ResourceTracker("doc", "memory", load_thresholds())
    alarms = [a for a in feed(tr, t, x, T0, min(cross, t[-1])) if a.at >= T0 + 3 * 3600.0]
    return (alarms[0] if alarms else None), cross


@pytest.mark.parametrize("seed", [1, 2])
def test_slow_leak_alarms_30_min_ahead_with_tte_within_10_percent(seed: int) -> None:
    alarm, cross = first_alarm(seed, 2.0, 21.0)  # 2 MB/min: 17 h from onset to the limit
    assert alarm is not None
    lead = cross - alarm.at
    assert lead >= 1800.0
    tte = dict(alarm.evidence)["tte_s"]
    assert abs(tte - lead) / lead <= 0.10
    assert abs(dict(alarm.evidence)["slope_per_min"] - 2.0) < 0.2
    assert alarm.severity in (Severity.HIGH, Severity.CRITICAL)


@pytest.mark.parametrize("rate", [10.0, 100.0])
def test_fast_leaks_still_alarm_before_the_crossing(rate: float) -> None:
    alarm, cross = first_alarm(3, rate, 3.0 + 2048.0 / rate / 60.0 + 0.5)
    assert alarm is not None and alarm.at < cross
    if rate <= 30:
        assert cross - alarm.at >= 1800.0


def test_flat_memory_with_gc_sawtooth_does_not_alarm() -> None:
    th = load_thresholds()
    for seed in range(3):
        t, x, _ = memory(seed, 12.0)
        assert feed(ResourceTracker("doc", "memory", th), t, x, T0, t[-1]) == []


def test_state_round_trip_gives_the_same_alarms() -> None:
    th = load_thresholds()
    t, x, cross = memory(4, 21.0, 2.0)
    whole = feed(ResourceTracker("doc", "memory", th), t, x, T0, cross)
    cut = T0 + 12 * 3600.0  # mid-leak: the long windows hold state worth keeping
    first = ResourceTracker("doc", "memory", th)
    before = feed(first, t, x, T0, cut)
    second = ResourceTracker("doc", "memory", th)
    second.load(json.loads(json.dumps(first.state())))
    after = feed(second, t, x, cut, cross)
    assert [(a.at, a.evidence) for a in before + after] == [(a.at, a.evidence) for a in whole]
    assert whole


def test_time_to_limit_on_an_exact_line() -> None:
    t = np.arange(0.0, 3600.0, 60.0)
    est = time_to_limit(t, 1000.0 + 0.5 * t, 4000.0, float(t[-1]))
    assert est is not None
    assert est.slope == pytest.approx(0.5)
    assert est.tte_s == pytest.approx((4000.0 - 1000.0 - 0.5 * t[-1]) / 0.5)


def test_loads_a_snapshot_of_the_previous_layout() -> None:
    tr = ResourceTracker("doc", "memory", load_thresholds())
    old = {
        "mins": {"deque": [2000.0, 2001.0], "maxlen": 3},
        "series": {"deque": [[T0 + 60.0, 2000.0]], "maxlen": 30},
        "long": {"deque": [2000.0], "maxlen": 360},
        "limit": LIMIT,
        "hold_until": -1e300,
    }
    tr.load(old)
    t, x, _ = memory(5, 1.0)
    assert feed(tr, t, x, T0 + 60.0, t[-1]) == []


def daily_memory(seed: int, days: float, leak_at_s: float | None = None):
    """`memory` plus a daily pattern: every morning 06:00-08:00 the floor climbs 1800 MB (to
    about 95 % of the limit), holds until 18:00 and falls back by 20:00 (a batch window); a
    10 MB/min leak from `leak_at_s` until it crosses the limit."""
    t, x, _ = memory(seed, 24.0 * days)
    tod = (t - T0) % 86400.0 / 3600.0
    x = x + 1800.0 * np.clip(np.minimum((tod - 6.0) / 2.0, (20.0 - tod) / 2.0), 0.0, 1.0)
    cross = np.inf
    if leak_at_s is not None:
        s = t - T0 - leak_at_s
        cross = T0 + leak_at_s + (LIMIT - BASE - 45.0) / 10.0 * 60.0
        x = x + np.where((s >= 0) & (t < cross), s * 10.0 / 60.0, 0.0)
    return t, x, cross


def test_memory_that_follows_a_daily_pattern_does_not_alarm_once_the_pattern_is_known() -> None:
    th = load_thresholds()
    t, x, _ = daily_memory(6, 4.0)
    alarms = feed(ResourceTracker("doc", "memory", th), t, x, T0, t[-1])
    # the first two mornings are new (no season known yet); from the third on they are normal
    late = [round((a.at - T0) / 3600.0, 1) for a in alarms if a.at >= T0 + 2 * 86400.0]
    assert late == []


def test_a_leak_on_top_of_a_daily_pattern_still_alarms_30_min_ahead() -> None:
    th = load_thresholds()
    leak_at = 3 * 86400.0 + 21 * 3600.0  # after the evening fall of day 4
    t, x, cross = daily_memory(7, 4.6, leak_at)
    alarms = feed(ResourceTracker("doc", "memory", th), t, x, T0, cross)
    found = [a for a in alarms if a.at >= T0 + leak_at]
    assert found and cross - found[0].at >= 1800.0


def test_time_to_limit_fits_the_same_line_as_scipy_theilslopes() -> None:
    # the fit calls its own copy of scipy's routine (the wrapper cost the update's p99); it
    # must stay the same to the last bit, ties in times and in levels included
    from scipy import stats

    from prefect_ft.detection.exhaustion import _theilslopes

    rng = np.random.default_rng(7)
    for i in range(200):
        n = int(rng.integers(8, 120))
        t = np.sort(rng.uniform(0.0, 3600.0, n))
        if i % 2:
            t = np.round(t / 60.0) * 60.0
        x = rng.normal(50.0, 5.0, n) + 0.01 * t
        if i % 3 == 0:
            x = np.round(x)
        alpha = (0.9, 0.95, 0.8)[i % 3]
        want = [float(v) for v in stats.theilslopes(x, t, alpha=alpha)]
        assert [float(v) for v in _theilslopes(x, t, alpha)] == want
