"""The NAB and MSFT scorers of `benchmarks/realdata.py` on their fixed points."""

from __future__ import annotations

import pytest

from benchmarks import realdata as rd

N = 4000
WINDOWS = [(1000, 1199), (2500, 2599), (3500, 3549)]


@pytest.mark.parametrize("profile", sorted(rd.PROFILES))
def test_no_alarms_scores_zero(profile) -> None:
    sc = rd.nab_score(N, [], WINDOWS, profile)
    assert sc.tp == 0 and sc.fp == 0 and sc.fn == 3
    assert rd.normalised([sc, sc], profile) == pytest.approx(0.0)


@pytest.mark.parametrize("profile", sorted(rd.PROFILES))
def test_an_alarm_at_each_windows_start_scores_100(profile) -> None:
    sc = rd.nab_score(N, [a for a, _ in WINDOWS], WINDOWS, profile)
    assert sc.tp == 3 and sc.fp == 0
    assert rd.normalised([sc], profile) == pytest.approx(100.0)


def test_later_detections_score_less_and_false_alarms_cost() -> None:
    early = rd.nab_score(N, [1000], WINDOWS[:1], "standard").raw
    late = rd.nab_score(N, [1150], WINDOWS[:1], "standard").raw
    assert 0 < late < early == pytest.approx(1.0)
    # an alarm before any window costs the whole fpWeight; one just after a window nearly nothing
    assert rd.nab_score(N, [1000, 800], WINDOWS[:1], "standard").raw == pytest.approx(1 - 0.11)
    just_after = rd.nab_score(N, [1000, 1200], WINDOWS[:1], "standard").raw
    assert 1 - 0.11 < just_after < 1.0
    # probation (15 %, at most 750 rows) is never scored, and only the best alarm of a window counts
    assert rd.nab_score(N, [10, 1000, 1100], WINDOWS[:1], "standard").raw == pytest.approx(1.0)


def test_msft_event_hits_and_false_alarms() -> None:
    import numpy as np

    ts = 60.0 * np.arange(2000)
    s = rd.Series("x", ts, np.zeros(2000), ((1000, 1009), (1500, 1500)), "msft")
    delays, fa = rd.msft_events(s, [998, 1506, 1600, 100])
    assert delays == [-2, None]  # 1506 is inside [first - 2, last + 6]: neither hit nor false
    assert fa == 1  # 1600; 100 is in probation


def test_stream_latency_times_every_update_of_a_series() -> None:
    import numpy as np

    n = 600
    ts = 1_735_689_600.0 + 60.0 * np.arange(n)
    vs = 10.0 + np.random.default_rng(0).standard_normal(n)
    out = rd.stream_latency(rd.Series("synthetic.csv", ts, vs, (), "nab"))
    assert out["n"] == n and out["series"] == "synthetic.csv"
    assert 0.0 <= out["median_ms"] <= out["p99_ms"] <= out["max_ms"]
