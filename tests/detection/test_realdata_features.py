"""The study tool of `benchmarks/realdata_features.py`: AUC and the features of each alarm."""

from __future__ import annotations

import math

import numpy as np

from benchmarks import realdata as rd
from benchmarks import realdata_features as rf
from prefect_ft.detection import load_thresholds


def test_the_auc_counts_pairs_and_halves_ties() -> None:
    assert rf.auc([2.0, 3.0], [1.0]) == 1.0
    assert rf.auc([1.0], [2.0, 3.0]) == 0.0
    assert rf.auc([1.0, 2.0], [1.0, 2.0]) == 0.5
    assert rf.auc([2.0, math.nan], [1.0]) == 1.0  # an undefined feature is left out
    assert math.isnan(rf.auc([], [1.0]))


def test_a_spike_inside_a_window_is_a_hit_and_one_outside_a_false_alarm() -> None:
    rng = np.random.default_rng(3)
    ts = 1_735_689_600.0 + 300.0 * np.arange(3000)
    v = 50.0 + rng.standard_normal(3000)
    v[1500] += 30.0  # inside the window below
    v[2500] += 30.0  # outside every window
    s = rd.Series("synthetic.csv", ts, v, ((1450, 1550),), "nab")
    alarms, blind = rf.replay(s, load_thresholds())
    by_row = {a["i"]: a for a in alarms}
    assert by_row[1500]["hit"] and not by_row[2500]["hit"], sorted(by_row)
    assert by_row[1500]["rule"] == "spike" and by_row[1500]["z"] > 20
    # the next sample is back to normal: its z over the spike's is near 0
    assert abs(by_row[1500]["next"][0] / by_row[1500]["z"]) < 0.2
    assert blind == 0
