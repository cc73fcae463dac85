"""The window reading of `benchmarks/realdata_why.py` agrees with the detector it replays."""

from __future__ import annotations

import numpy as np

from benchmarks import realdata as rd
from benchmarks import realdata_why as rw
from prefect_ft.detection.thresholds import load_thresholds


def _series() -> rd.Series:
    rng = np.random.default_rng(7)
    ts = 1_735_689_600.0 + 300.0 * np.arange(3000)
    v = 50.0 + rng.standard_normal(3000)
    v[2500] += 40.0
    return rd.Series("synthetic.csv", ts, v, ((1500, 1600), (2450, 2550)), "nab")


def test_a_window_with_a_spike_is_hit_where_the_spike_is() -> None:
    quiet, spiked = rw.why(_series(), load_thresholds())
    assert spiked["pos"] == (2500 - 2450) / 101
    assert spiked["held"] == 0 and spiked["unjudged"] == 0
    # before the spike no rule had beaten its bar, or it would have alarmed there
    assert all(ratio <= 1.0 for ratio, *_ in spiked["best"].values())
    assert "MISSED" in rw.line("synthetic.csv", quiet)
    assert "hit at 0.50" in rw.line("synthetic.csv", spiked)


def test_a_missed_window_shows_every_rule_below_its_bar() -> None:
    quiet, _ = rw.why(_series(), load_thresholds())
    assert quiet["pos"] is None
    assert {"z+", "z-", "up", "dn", "m+", "m-", "l+", "l-"} <= set(quiet["best"])
    assert all(ratio <= 1.0 for ratio, *_ in quiet["best"].values())
