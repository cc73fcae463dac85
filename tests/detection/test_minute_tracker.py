"""The degradation and throughput detectors share one per-minute tracker base (issue 12)."""

from __future__ import annotations

import json

import numpy as np

from prefect_ft.detection import load_thresholds
from prefect_ft.detection.degradation import DegradationTracker
from prefect_ft.detection.minute_tracker import MinuteTracker
from prefect_ft.detection.throughput import ThroughputTracker

SCAFFOLD = ("pending", "cusum", "hold_until", "exclude_until", "base", "closed", "scale")


def test_degradation_and_throughput_write_the_scaffolding_once() -> None:
    for cls in (DegradationTracker, ThroughputTracker):
        assert issubclass(cls, MinuteTracker)
        own = set(cls.__slots__) | set(vars(cls))
        assert own.isdisjoint({*SCAFFOLD, "state", "load", "_advance", "_fire"}), cls


def test_a_tracker_state_holds_the_base_slots_and_round_trips() -> None:
    th = load_thresholds()
    rng = np.random.default_rng(0)
    a, b = DegradationTracker("x", th), ThroughputTracker("x", th)
    for m in range(200):
        a.close_minute(60.0 * m, rng.normal(0.0, 0.3, 30))
        b.close_minute(60.0 * m, int(rng.poisson(60)))
    for t, cls in ((a, DegradationTracker), (b, ThroughputTracker)):
        data = json.loads(json.dumps(t.state()))
        assert set(SCAFFOLD) <= set(data)
        copy = cls("x", th)
        copy.load(data)
        assert json.dumps(copy.state(), sort_keys=True) == json.dumps(t.state(), sort_keys=True)


def feed_minutes(tracker: DegradationTracker, hours: float, factor, seed: int = 0) -> list[float]:
    """Feed `hours` of minutes, 60 tasks each, log-normal (median 2.5 s, sigma 0.4) times
    `factor(t)`; return the alarm times in hours."""
    rng = np.random.default_rng(seed)
    out = []
    for m in range(1, int(hours * 60) + 1):
        end = 60.0 * m
        logd = np.log(2.5 * factor(end - 30.0)) + rng.normal(0.0, 0.4, 60)
        if tracker.close_minute(end, logd) is not None:
            out.append(round(end / 3600.0, 2))
    return out


def daily(a: float):
    return lambda t: 1.0 + a * np.sin(2 * np.pi * t / 86400.0)


def test_a_six_hour_ramp_is_not_learnt_as_the_new_local_normal() -> None:
    # +100 % over 6 h from hour 26 on a flat series: the 24-h median must stay the baseline
    # (the lagging local median follows the ramp, and over a 4-h error window it looked better)
    onset = 26 * 3600.0
    ramp = lambda t: 1.0 + np.clip((t - onset) / 21600.0, 0.0, 1.0)  # noqa: E731
    alarms = feed_minutes(DegradationTracker("x", load_thresholds()), 33.0, ramp)
    assert alarms and 26.0 < alarms[0] <= 27.5, alarms


def test_a_daily_swing_raises_no_alarm_and_a_ramp_on_day_two_is_found() -> None:
    th = load_thresholds()
    # after the benchmark's 2-h warm-up (an alarm at 1.7 h, against an hour of history, is
    # a known warm-up weakness, left alone)
    swing = feed_minutes(DegradationTracker("x", th), 50.0, daily(0.3), seed=1)
    assert [h for h in swing if h >= 2.0] == []
    onset = 36 * 3600.0
    ramp = lambda t: daily(0.3)(t) * (1.0 + np.clip((t - onset) / 3600.0, 0.0, 0.5))  # noqa: E731
    alarms = feed_minutes(DegradationTracker("x", th), 38.0, ramp, seed=2)
    assert alarms and 36.0 < alarms[0] <= 36.0 + 25 / 60, alarms


def test_the_baselines_refresh_on_staggered_minutes(monkeypatch) -> None:
    # every per-minute baseline (durations and memory, four components) refreshed on the same
    # minute, every 15th: those minutes made the update's p99. Each keeps its 15-minute cadence
    from collections import Counter

    from prefect_ft.detection import DetectionEngine
    from prefect_ft.detection.minute_baseline import MinuteBaseline
    from prefect_ft.detection.synthetic import Scenario, generate

    seen: list[tuple[int, int]] = []
    clock = {"minute": 0}
    refresh = MinuteBaseline.refresh

    def counted(self: MinuteBaseline) -> None:
        seen.append((id(self), clock["minute"]))
        refresh(self)

    monkeypatch.setattr(MinuteBaseline, "refresh", counted)
    hist = generate(2, Scenario(hours=3.0, episodes=(), negative_controls=False))
    engine = DetectionEngine()
    for lo in np.arange(hist.start_ts, hist.end_ts, 60.0):
        clock["minute"] = int(lo // 60)
        t, r = hist.tasks.between(lo, lo + 60.0), hist.resources.between(lo, lo + 60.0)
        engine.update(t, r, until=lo + 60.0)
    per_minute = Counter(m for _, m in seen)
    per_base: dict[int, list[int]] = {}
    for b, m in seen:
        per_base.setdefault(b, []).append(m)
    # 4 duration, 4 throughput (on by default since ft-dflow5) and 4 memory seasonal baselines
    assert len(per_base) == 12
    assert all(set(np.diff(ms)) == {15} for ms in per_base.values())
    assert len({m % 15 for m in per_minute}) >= 5
    assert max(per_minute.values()) <= 2
