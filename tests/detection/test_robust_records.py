"""The v3 record rules of `robust_metric`: what counts as normal, and how soon a stream may alarm."""

from __future__ import annotations

import numpy as np

from prefect_ft.detection import detect_metric

T0 = 1_735_689_600.0


def noisy(seed: int, n: int, dt: float = 300.0, level: float = 50.0):
    rng = np.random.default_rng(seed)
    return T0 + dt * np.arange(n), level + rng.standard_normal(n)


def rows(ts, alarms) -> list[int]:
    return [int(np.searchsorted(ts, a.at)) for a in alarms]


def test_a_recurring_spike_becomes_normal_instead_of_alarming_every_time() -> None:
    # a benign batch job: the same +20 sigma spike every 300 samples, for 10 days
    ts, v = noisy(1, 2880)
    v[500::300] += 20.0
    found = rows(ts, detect_metric(ts, v, kind="generic"))
    assert 500 in found  # the first one is news
    # then it is what this series does: once it holds the k-th largest record (k = 3), it is no
    # longer a record; a noisier repeat may still set one (v2 kept alarms out of the records
    # and alarmed on all 8)
    assert len(found) <= 4, found


def test_an_earlier_outlier_does_not_hide_the_next_one() -> None:
    ts, v = noisy(3, 2880)
    v[1000] += 15.0
    # smaller than the first: now that alarms join the records, a largest-value record (k = 1)
    # would hide it; the k-th largest (k = 3) does not
    v[1600] += 12.0
    found = rows(ts, detect_metric(ts, v, kind="generic"))
    assert 1000 in found and 1600 in found, found
    assert len(found) <= 3, found


def test_an_outage_in_the_first_day_is_found_once_the_warm_up_is_over() -> None:
    # 5-minute samples: a day is 288 of them; the detector learns for 100 and then records
    ts, v = noisy(2, 2000)
    v[220:232] -= 25.0
    found = rows(ts, detect_metric(ts, v, kind="throughput"))
    assert any(220 <= i <= 223 for i in found), found
    assert len(found) <= 2, found


def test_thresholds_v3_extend_v2_which_stays_loadable() -> None:
    from prefect_ft.detection import THRESHOLDS_VERSION, load_thresholds

    v2, v3 = load_thresholds("2"), load_thresholds("3")
    assert int(THRESHOLDS_VERSION) >= 3
    # v2 keeps its behaviour: the v3 rules are off there
    assert v2.rm_learn_min >= 10**6 and v2.rm_mean_n == 0 and not v2.rm_record_alarms
    assert v3.metric_model == v2.metric_model == "robust"
    assert v3.rm_record_margin == v2.rm_record_margin and v3.burst_h == v2.burst_h
