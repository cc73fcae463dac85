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
