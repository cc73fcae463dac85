"""`robust_load`: a load may spike on a relative bar (v8) and re-arm after its episode (off)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from prefect_ft.detection import analyse_metric, load_thresholds
from prefect_ft.detection.robust_load import Rearm, relative_spike
from tests.detection.test_robust_records import T0, noisy, rows


def found(ts, v, kind: str, version: str | None = None, **kw) -> list[int]:
    th = replace(load_thresholds(version) if version else load_thresholds(), **kw)
    return rows(ts, analyse_metric(ts, v, kind=kind, thresholds=th).alarms)


REARM = {"rm_rearm_n": 3}  # off in v8 (RESULTS.md, 2026-12-03); its behaviour is pinned here


def test_the_hold_off_ends_after_n_calm_samples_in_a_row() -> None:
    r = Rearm(3, 2.0)
    assert [r.over(z) for z in (0.1, -1.9, 0.5)] == [False, False, True]
    r.reset()
    # a loud sample or an unknown z (the level is being relearnt) starts the count again
    assert [r.over(z) for z in (0.1, 0.2, 5.0, 0.1, None, 0.1, 0.1, 0.1)] == [False] * 7 + [True]
    assert not any(Rearm(0, 2.0).over(0.0) for _ in range(10))  # n = 0: v7, never re-armed


def test_the_relative_bar_asks_for_the_floor_and_the_margin_over_the_record() -> None:
    limits = (4.0, 3.0)
    assert relative_spike(5.0, (1.5, 9.0), limits, (True, True)) == ("relative spike", 5.0)
    assert relative_spike(-5.0, (9.0, 1.5), limits, (True, True)) == ("relative spike", 5.0)
    assert relative_spike(5.0, (2.0, 0.0), limits, (True, True)) is None  # 2.5 x its record
    assert relative_spike(3.9, (0.5, 0.5), limits, (True, True)) is None  # below the floor
    assert relative_spike(-5.0, (0.5, 0.5), limits, (True, False)) is None  # drops not wanted
    assert relative_spike(9.0, (0.5, 0.5), (0.0, 3.0), (True, True)) is None  # off (v7)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_second_surge_after_the_first_has_ended_is_found(seed) -> None:
    # api-01 of MSFT: a surge a few hours after an earlier one fell in the first one's hold-off
    ts, v = noisy(seed, 2880)
    v[1500:1503] += 30.0
    v[1520:1523] += 30.0
    got = found(ts, v, "throughput", **REARM)
    assert {1500, 1520} <= set(got), got
    # v8 itself (re-arming off), and kinds other than loads, stay silent for the hold-off
    for kind, kw in (("throughput", {}), ("generic", REARM)):
        got = found(ts, v, kind, **kw)
        assert 1500 in got and 1520 not in got, (kind, kw, got)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_lasting_outage_is_not_re_alarmed_while_it_lasts(seed) -> None:
    ts, v = noisy(seed, 2880)
    v[1500:1512] -= 30.0  # an hour at 40 % of the load, never calm: one episode, one alarm
    got = found(ts, v, "throughput", **REARM)
    assert [i for i in got if 1500 <= i < 1512] == [1500], got


def bounded(seed: int, n: int = 1000):
    """An hourly load of 50 with uniform noise of +-1: its residuals never pass 1.4 robust scales
    (MSFT's api-01 held a spike record of 1.5-1.8 scales for weeks)."""
    rng = np.random.default_rng(seed)
    return T0 + 3600.0 * np.arange(n), 50.0 + rng.uniform(-1.0, 1.0, n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_load_spike_below_the_absolute_bar_alarms_if_it_dwarfs_its_record(seed) -> None:
    ts, v = bounded(seed)
    v[800] = 55.0  # about 6 robust z: below rm_spike_z (8), more than 3 times the record
    assert 800 in found(ts, v, "throughput")
    assert 800 not in found(ts, v, "throughput", "7")
    assert 800 not in found(ts, v, "generic")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_load_spike_that_its_recent_record_matches_does_not(seed) -> None:
    ts, v = bounded(seed)
    v[500:700:20] = 53.5  # ten earlier spikes of 70 % the size: the record holds them
    v[800] = 55.0
    th = load_thresholds()
    assert th.rm_rel_margin == 3.0
    assert 800 not in found(ts, v, "throughput")
    # with the margin of the absolute rule (1.15) it would have alarmed
    low = replace(th, rm_rel_margin=th.rm_record_margin)
    assert 800 in rows(ts, analyse_metric(ts, v, kind="throughput", thresholds=low).alarms)


def test_thresholds_v8_extend_v7_and_change_nothing_but_the_load_rules() -> None:
    v7, v8 = load_thresholds("7"), load_thresholds("8")
    changed = {k for k, a in v7.to_dict().items() if v8.to_dict()[k] != a}
    assert changed == {"rm_rel_z"}, changed
    assert v8.rm_load_kinds == "throughput" and v8.rm_rearm_n == 0
