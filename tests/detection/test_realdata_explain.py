"""The reading tool of `benchmarks/realdata_explain.py`: which rule an alarm came from."""

from __future__ import annotations

import numpy as np

from benchmarks import realdata_explain as rx
from prefect_ft.detection import analyse_metric


def test_the_rule_is_read_from_each_alarms_wording() -> None:
    assert rx.rule("generic local drop: 3 against a learnt flat baseline of 1") == "local drop"
    assert rx.rule("throughput spike: 9 against a learnt daily baseline of 2") == "spike"
    assert rx.rule("no colon here") == "?"


def test_every_alarm_of_the_detector_names_a_known_rule() -> None:
    rng = np.random.default_rng(4)
    ts = 1_735_689_600.0 + 300.0 * np.arange(3000)
    v = 50.0 + rng.standard_normal(3000)
    v[1500] += 30.0
    v[2200:] -= 8.0
    alarms = analyse_metric(ts, v, kind="generic").alarms
    assert alarms
    known = {"spike", "rise", "drop", "local spike", "local drop", "escalation"}
    assert {rx.rule(a.explanation) for a in alarms} <= known
