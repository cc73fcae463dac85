"""The burst detector's CUSUM bank: fast on large bursts, silent on steady data, resumable."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import numpy as np

from prefect_ft.detection import FailureType, Pattern, Severity, Thresholds
from prefect_ft.detection.burst import BurstTracker
from tests.detection.series import T0, task_rows

TH = replace(Thresholds(), burst_h=11.0, burst_m=8.0, burst_m_fast=30.0, burst_h_fast=13.0)
SINGLE = replace(TH, burst_m_fast=0.0)
ONSET = 2.5 * 3600.0


def feed(tracker: BurstTracker, rows: dict[str, np.ndarray], lo: float, hi: float) -> list:
    """Feed the rows ending in [lo, hi) the way the engine does: per task, then closed minutes."""
    end, failed, code = rows["end"], rows["failed"], rows["code"]
    alarms = []
    t = lo
    while t < hi:
        nxt = min(hi, (math.floor(t / 60.0) + 1) * 60.0)
        m = (end >= t) & (end < nxt)
        alarms += tracker.observe(end[m].tolist(), failed[m].tolist(), code[m].tolist())
        if nxt % 60.0 == 0.0:
            tracker.close_minute(nxt)
        t = nxt
    return alarms


def burst_rows(seed: int, ratio: float, hours: float = 3.0) -> dict[str, np.ndarray]:
    p0 = 0.01
    return task_rows(
        np.random.default_rng(seed),
        hours,
        lambda t: np.where((t >= ONSET) & (t < ONSET + 300.0), ratio * p0, p0),
    )


def tasks_to_alarm(th: Thresholds, seed: int, ratio: float) -> float:
    rows = burst_rows(seed, ratio)
    alarms = feed(BurstTracker("a", th), rows, T0, T0 + 3 * 3600.0)
    hits = [a for a in alarms if a.at >= T0 + ONSET]
    if not hits:
        return math.inf
    return float(np.sum((rows["end"] >= T0 + ONSET) & (rows["end"] <= hits[0].at)))


def test_a_30x_burst_alarms_within_a_few_dozen_tasks() -> None:
    counts = [tasks_to_alarm(TH, seed, 30.0) for seed in range(10)]
    assert max(counts) <= 40
    assert np.median(counts) <= 20


def test_the_bank_is_faster_than_one_chart_on_30x_and_no_slower_on_10x() -> None:
    bank = [tasks_to_alarm(TH, seed, 30.0) for seed in range(10)]
    single = [tasks_to_alarm(SINGLE, seed, 30.0) for seed in range(10)]
    assert np.median(bank) < np.median(single)
    assert all(b <= s for b, s in zip(bank, single, strict=True))
    bank10 = [tasks_to_alarm(TH, seed, 10.0) for seed in range(5)]
    single10 = [tasks_to_alarm(SINGLE, seed, 10.0) for seed in range(5)]
    assert all(b <= s for b, s in zip(bank10, single10, strict=True))
    assert max(bank10) < math.inf


def test_the_fast_chart_reports_a_critical_burst_of_the_right_type() -> None:
    rows = burst_rows(3, 30.0)
    (alarm,) = [a for a in feed(BurstTracker("a", TH), rows, T0, T0 + 3 * 3600.0)]
    ev = alarm.evidence_map()
    assert alarm.pattern is Pattern.BURST and alarm.components == ("a",)
    assert T0 + ONSET <= alarm.at <= T0 + ONSET + 60.0
    assert abs(alarm.onset - (T0 + ONSET)) < 30.0
    assert ev["p1_ratio"] == 30.0 and ev["h"] == 13.0
    assert ev["ratio"] > 17.0 and alarm.severity is Severity.CRITICAL
    assert alarm.failure_type is FailureType.CONNECTION_ERROR


def test_a_steady_failure_rate_does_not_alarm() -> None:
    for seed in (11, 12):
        rows = task_rows(np.random.default_rng(seed), 12, 0.01)
        assert feed(BurstTracker("a", TH), rows, T0, T0 + 12 * 3600.0) == []


def test_state_round_trip_gives_identical_alarms() -> None:
    rows = burst_rows(5, 30.0)
    whole = feed(BurstTracker("a", TH), rows, T0, T0 + 3 * 3600.0)
    assert whole
    tracker = BurstTracker("a", TH)
    pieces = []
    cuts = [*np.arange(T0, T0 + 3 * 3600.0, 777.7).tolist(), T0 + 3 * 3600.0]  # mid-minute cuts
    for lo, hi in itertools.pairwise(cuts):
        saved = json.loads(json.dumps(tracker.state()))
        tracker = BurstTracker("a", TH)
        tracker.load(saved)
        pieces += feed(tracker, rows, lo, hi)
    assert [a.to_dict() for a in pieces] == [a.to_dict() for a in whole]


def test_a_single_chart_state_loads_into_the_bank() -> None:
    rows = burst_rows(6, 30.0)
    old = BurstTracker("a", SINGLE)
    feed(old, rows, T0, T0 + 2 * 3600.0)
    saved = old.state()
    saved.update({k: saved[k][0] for k in ("s", "zero_at", "n_ep", "k_ep", "types", "a", "b")})
    tracker = BurstTracker("a", TH)
    tracker.load(json.loads(json.dumps(saved)))
    assert len(tracker.s) == 2 and not tracker.learning
    alarms = feed(tracker, rows, T0 + 2 * 3600.0, T0 + 3 * 3600.0)
    assert [a.pattern for a in alarms] == [Pattern.BURST]
    assert alarms[0].at >= T0 + ONSET
