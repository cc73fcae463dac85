"""Degradation judged relative to the other stages (`EngineConfig.degradation_common_mode`).

Under a daily load every stage slows and speeds up together. On the first day there is no
daily prediction yet, and a 6-h ramp (+3 to +12 %/h) is no faster than the daily swing itself:
all six degradation misses on the daily-load benchmark (seeds 1000-1009, 2026-12-02) were such
ramps. Relative to the other stages the daily swing cancels and the ramp remains.
"""

from __future__ import annotations

import math

from prefect_ft.detection import DetectionEngine, EngineConfig
from prefect_ft.detection.alarms import Pattern
from prefect_ft.detection.degradation import common_mode
from prefect_ft.detection.synthetic import EpisodeSpec, Scenario, generate


def test_the_common_mode_is_the_median_of_every_other_stage() -> None:
    assert common_mode([0.0, 1.0, 5.0, 2.0], 0) == 2.0
    assert common_mode([9.0, 1.0, 5.0, 2.0], 2) == 2.0  # the stage itself is left out
    # another stage without a median this minute: no common mode (a gap, not a jump)
    assert math.isnan(common_mode([0.0, math.nan, 5.0, 2.0], 0))
    assert math.isnan(common_mode([0.0], 0))


def degradations(hist, common: bool) -> list[tuple[str, float]]:
    config = EngineConfig(degradation_common_mode=common)
    alarms = DetectionEngine(config).update(hist.tasks, hist.resources, until=hist.end_ts).alarms
    return [
        (a.components[0], (a.at - hist.start_ts) / 3600.0)
        for a in alarms
        if a.pattern == Pattern.DEGRADATION
        and a.at - hist.start_ts >= 2 * 3600.0
        and "latency_ratio" in dict(a.evidence)
    ]


def test_a_gentle_ramp_on_the_first_day_of_a_daily_load_is_found() -> None:
    # ipc's durations x1.5 over 6 h from 6 h on, on top of the daily load (+-30 %)
    ramp = EpisodeSpec(
        "degradation", 2, 6 * 3600.0, (("g", 1.5), ("R_s", 21600.0), ("hold_s", 1800.0))
    )
    hist = generate(
        5, Scenario(hours=14.0, episodes=(ramp,), negative_controls=False, daily_load=0.3)
    )
    assert degradations(hist, common=False) == []  # judged alone, the ramp is the daily swing
    found = degradations(hist, common=True)
    assert found and {c for c, _ in found} == {"ipc"}
    assert 6.0 < found[0][1] <= 12.5, found


def test_a_fault_free_daily_load_raises_no_relative_degradation() -> None:
    hist = generate(3, Scenario(hours=30.0, episodes=(), negative_controls=False, daily_load=0.3))
    assert degradations(hist, common=True) == []
