"""The v4 hold-off of `robust_metric`: one alarm per episode, without hiding the next episode."""

from __future__ import annotations

from prefect_ft.detection import detect_metric
from tests.detection.test_robust_records import noisy, rows


def test_a_second_anomaly_half_a_day_after_the_first_is_found() -> None:
    # 5-minute samples: a spike, then an outage 160 samples (13 h) later; v3 stayed silent for
    # a day after any alarm and missed the outage (NAB's traffic files have windows this close)
    ts, v = noisy(4, 2880)
    v[1000] += 15.0
    v[1160:1172] -= 25.0
    found = rows(ts, detect_metric(ts, v, kind="generic"))
    assert 1000 in found, found
    assert any(1160 <= i <= 1163 for i in found), found
    assert len(found) <= 4, found


def test_one_outage_still_raises_one_alarm_on_the_way_down() -> None:
    ts, v = noisy(5, 2880)
    v[1500:1560] -= 25.0  # five hours down: shorter than the hold-off
    found = rows(ts, detect_metric(ts, v, kind="throughput"))
    assert [i for i in found if 1500 <= i < 1560] == [1500], found


def test_thresholds_v4_extend_v3_which_stays_loadable() -> None:
    from prefect_ft.detection import THRESHOLDS_VERSION, load_thresholds

    v3, v4 = load_thresholds("3"), load_thresholds("4")
    assert int(THRESHOLDS_VERSION) >= 4
    assert v3.rm_holdoff == 300 and v4.rm_holdoff == 72
    # the shorter hold-off lets more alarms through: the spike record is tightened to pay for it
    assert (v3.rm_record_k, v4.rm_record_k) == (3, 2) and v4.burst_h == v3.burst_h


def test_an_episode_that_grows_far_beyond_its_first_alarm_alarms_again() -> None:
    # api-01 of MSFT: a small rise alarms a few samples before the outage itself, whose samples
    # then fall in the hold-off; with `rm_escalate` a z twice the first alarm's is reported
    from dataclasses import replace

    from prefect_ft.detection import analyse_metric, load_thresholds

    ts, v = noisy(6, 2880)
    v[1000] += 12.0
    v[1005:1030] += 60.0
    th = load_thresholds()
    off = rows(ts, analyse_metric(ts, v, kind="generic", thresholds=th).alarms)
    on = rows(
        ts, analyse_metric(ts, v, kind="generic", thresholds=replace(th, rm_escalate=2.0)).alarms
    )
    assert 1000 in off and 1005 not in off, off
    assert 1000 in on and 1005 in on, on
    # the rest of the surge is the same episode: one escalation, not one per sample
    assert len([i for i in on if 1005 <= i < 1030]) == 1, on
    # the other direction is not the same episode: a drop after a rise waits for the hold-off
    v2 = v.copy()
    v2[1005:1030] -= 120.0
    drop = rows(
        ts, analyse_metric(ts, v2, kind="generic", thresholds=replace(th, rm_escalate=2.0)).alarms
    )
    assert 1005 not in drop, drop


def test_escalation_keeps_the_prefix_property() -> None:
    from dataclasses import replace

    from prefect_ft.detection import analyse_metric, load_thresholds

    ts, v = noisy(7, 2880)
    v[1000] += 12.0
    v[1005:1030] += 60.0
    v[2000:2003] -= 15.0
    th = replace(load_thresholds(), rm_escalate=2.0)
    full = [a.at for a in analyse_metric(ts, v, kind="generic", thresholds=th).alarms]
    assert len(full) >= 3, full
    for end in (1003, 1006, 1500, 2001, 2880):
        part = [
            a.at for a in analyse_metric(ts[:end], v[:end], kind="generic", thresholds=th).alarms
        ]
        assert part == [t for t in full if t <= ts[end - 1]], end
