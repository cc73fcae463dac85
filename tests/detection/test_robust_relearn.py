"""Thresholds v6: a local (point) alarm keeps the learnt level; a baseline-family alarm relearns it."""

from __future__ import annotations

from prefect_ft.detection import load_thresholds
from prefect_ft.detection.robust_metric import RobustStream
from tests.detection.test_robust_local import ramping


def _first_alarm(th, ts, v):
    """Feed the stream until its first alarm after `start`; return (stream, alarm)."""
    stream = RobustStream("throughput", th)
    for t, x in zip(ts.tolist(), v.tolist(), strict=True):
        alarm = stream.update(t, x)
        if alarm is not None and t > ts[0] + 2 * 86400.0:
            return stream, alarm
    raise AssertionError("no alarm")


def test_a_local_alarm_keeps_the_flat_level() -> None:
    ts, v = ramping(0)
    at = int(2.2 * 1440) + 37
    v[at] += 250.0  # a one-sample spike the local family finds (test_robust_local)
    th = load_thresholds()
    stream, alarm = _first_alarm(th, ts, v)
    assert "local" in alarm.explanation, alarm.explanation
    # a point outlier is no evidence of a new level: the flat median keeps its full window
    assert len(stream.model.flat) == th.rm_flat_n, len(stream.model.flat)


def test_v5_relearnt_the_level_after_a_local_alarm_and_stays_loadable() -> None:
    ts, v = ramping(0)
    v[int(2.2 * 1440) + 37] += 250.0
    stream, alarm = _first_alarm(load_thresholds("5"), ts, v)
    assert "local" in alarm.explanation
    assert len(stream.model.flat) == 1  # cleared, then the alarm's own sample


def test_a_level_shift_still_relearns_the_level() -> None:
    ts, v = ramping(1)
    v[int(2.5 * 1440) :] += 900.0  # a lasting step far beyond the day shape
    th = load_thresholds()
    stream, alarm = _first_alarm(th, ts, v)
    assert "local" not in alarm.explanation, alarm.explanation
    assert len(stream.model.flat) == 1


def test_thresholds_v6_extend_v5_with_two_rules_and_no_new_number() -> None:
    v5, v6 = load_thresholds("5"), load_thresholds("6")
    assert v5.rm_local_relearn and not v6.rm_local_relearn
    assert not v5.rm_throughput_log and v6.rm_throughput_log
    changed = {"rm_local_relearn", "rm_throughput_log"}
    assert {k: x for k, x in v6.to_dict().items() if k not in changed} == {
        k: x for k, x in v5.to_dict().items() if k not in changed
    }
