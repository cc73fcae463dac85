"""`robust_load`, v11: a load's hold-off lasts as long as its episode; a cleaner local record."""

from __future__ import annotations

import numpy as np
import pytest

from prefect_ft.detection import load_thresholds
from prefect_ft.detection.robust_load import Rearm, joins, load_rules
from tests.detection.test_robust_load import found
from tests.detection.test_robust_records import noisy


def test_the_hold_off_goes_on_while_the_episode_does_for_at_most_n_samples() -> None:
    r = Rearm(0, 2.0, (1.5, 2))
    assert r.hold(5, 9.0) == 5  # not its last sample: nothing to extend
    assert r.hold(1, 9.0) == 2  # its last sample, still out of control: one sample more
    assert r.hold(1, -1.6) == 2  # either side
    assert r.hold(1, 9.0) == 1  # two samples added: the extension is spent
    r.reset()  # a new alarm, a new allowance
    assert r.hold(1, 9.0) == 2
    assert r.hold(1, 0.3) == 1  # back in control: the hold-off ends as in v10
    assert r.hold(1, None) == 1  # z unknown (the level is being relearnt): no evidence
    assert Rearm(0, 2.0).hold(1, 50.0) == 1  # (0, 0): v10, never extended


def test_re_arming_still_ends_a_hold_off_early() -> None:
    r = Rearm(2, 2.0, (1.5, 100))
    assert [r.hold(40, z) for z in (0.1, 0.1)] == [40, 1]


def test_only_loads_get_the_v11_rules() -> None:
    th = load_thresholds()
    rearm, _, local = load_rules("throughput", th)
    assert rearm.extend == (1.5, 288) and local == (7.0, "local")
    for kind in ("generic", "latency"):
        rearm, rel, local = load_rules(kind, th)
        assert rearm.extend == (0.0, 0) and rel[0] == 0.0 and local == (th.rm_local_z, "all")
    rearm, _, local = load_rules("throughput", load_thresholds("10"))
    assert rearm.extend == (0.0, 0) and local == (th.rm_local_z, "all")


def test_a_baseline_alarm_keeps_its_local_z_out_of_a_loads_local_record() -> None:
    assert joins("local", None) and joins("all", ("spike", 0.0, 9.0))
    assert not joins("local", ("spike", 0.0, 9.0)) and not joins("local", ("rise", 0.0, 9.0))
    assert joins("local", ("local spike", 0.0, 9.0))  # what recurs locally becomes normal (v3)
    assert not joins("none", ("local spike", 0.0, 9.0))


def daily(seed: int, small: float):
    """A per-minute load with a +30 spike at the same minute every day (MSFT's machine-01 has one,
    labelled, hit every day) and one smaller spike in between."""
    ts, v = noisy(seed, 5760, dt=60.0)
    v[1441::1440] += 30.0
    v[3700] += small
    return ts, v


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_reported_daily_spike_does_not_hide_a_smaller_one(seed) -> None:
    ts, v = daily(seed, 8.0)
    got = found(ts, v, "throughput")
    assert {1441, 2881, 3700, 4321} <= set(got), got
    # v10: each daily alarm's local z joined the local record and set it above the small spike
    # (and the local bar was 10)
    got = found(ts, v, "throughput", "10")
    assert {1441, 2881, 4321} <= set(got) and 3700 not in got, got


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_quiet_day_with_the_daily_spike_only_stays_quiet(seed) -> None:
    ts, v = daily(seed, 0.0)
    assert found(ts, v, "throughput") == [1441, 2881, 4321]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_surge_that_outlasts_its_hold_off_is_not_re_alarmed(seed) -> None:
    # hourly: the hold-off is a day (24 samples); a surge of two days at 4 times the load, the
    # level relearnt after the first alarm too slowly to call the second day normal
    rng = np.random.default_rng(seed)
    ts = 1_735_689_600.0 + 3600.0 * np.arange(1200)
    v = 100.0 * (1.0 + 0.3 * np.sin(2 * np.pi * np.arange(1200) / 24)) + rng.normal(0, 3, 1200)
    v[900:948] *= 4.0
    got = [i for i in found(ts, v, "throughput") if 900 <= i < 948]
    assert got == [900], got
    # v10 alarmed again on the first sample after its day of silence, mid-surge
    got = [i for i in found(ts, v, "throughput", "10") if 900 <= i < 948]
    assert len(got) > 1 and got[0] == 900, got
