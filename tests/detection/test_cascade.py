"""Cascade root and order on constructed cases (propagation.py, cascade.py)."""

from __future__ import annotations

import json

import numpy as np

from prefect_ft.detection import DetectionEngine, EngineConfig, Pattern, load_thresholds
from prefect_ft.detection.cascade import order_cascade
from prefect_ft.detection.propagation import excess_failures_p
from tests.detection.series import T0, batch, task_rows

CHAIN = ("a", "b", "c")
EDGES = (("a", "b"), ("b", "c"))
ONSET = 4 * 3600.0


def propagate(rng, rows, upstream, lag, q, window):
    """Fail each task of `rows` with probability q when `upstream` failed within `lag` s."""
    k = np.searchsorted(upstream, rows["end"], side="right")
    recent = (k > 0) & (rows["end"] - upstream[np.maximum(k - 1, 0)] <= lag)
    recent &= (rows["end"] >= T0 + window[0]) & (rows["end"] < T0 + window[1])
    hit = recent & (rng.random(rows["end"].size) < q)
    rows["failed"] = rows["failed"] | hit
    rows["code"] = np.where(rows["failed"], 5, -1)
    return rows


def chain_rows(seed, q=0.8, sink_rate=1.0, hours=6):
    rng = np.random.default_rng(seed)
    a = task_rows(
        rng, hours, lambda t: np.where((t >= ONSET) & (t < ONSET + 300), 0.3, 0.01), component=0
    )
    parts = [a]
    upstream = np.sort(a["end"][a["failed"]])
    for comp, lag, rate in ((1, 8.0, 1.0), (2, 15.0, sink_rate)):
        rows = task_rows(rng, hours, 0.01, component=comp, rate=rate)
        rows = propagate(rng, rows, upstream, lag, q, (ONSET, ONSET + 420))
        parts.append(rows)
        upstream = np.sort(rows["end"][rows["failed"]])
    return parts


def cascades(parts, components=CHAIN, edges=EDGES):
    engine = DetectionEngine(EngineConfig(components, edges, load_thresholds()))
    alarms = engine.update(batch(components, *parts)).alarms
    return [a for a in alarms if a.pattern is Pattern.CASCADE], alarms


def test_full_chain_root_first() -> None:
    found, _ = cascades(chain_rows(20))
    assert len(found) == 1
    assert found[0].components == CHAIN
    assert T0 + ONSET <= found[0].at <= T0 + ONSET + 420 + 600


def test_a_sparse_sink_without_its_own_burst_alarm_still_joins() -> None:
    # c runs 0.05 tasks/s: too few for its burst baseline, so it never raises a burst alarm;
    # the conditional test against its own trailing rate still finds it
    found, alarms = cascades(chain_rows(21, sink_rate=0.05))
    assert not [a for a in alarms if a.pattern is Pattern.BURST and a.components == ("c",)]
    assert len(found) == 1
    assert found[0].components == CHAIN
    assert "no burst alarm" in found[0].explanation


def test_root_and_order_follow_the_graph_whatever_the_row_order() -> None:
    # the same chain under other names, fed in reverse component order
    names = ("x", "y", "z")
    parts = chain_rows(22)[::-1]
    found, _ = cascades(parts, names, (("x", "y"), ("y", "z")))
    assert [a.components for a in found] == [names]


def test_independent_bursts_far_apart_are_no_cascade() -> None:
    rng = np.random.default_rng(23)
    a = task_rows(
        rng, 8, lambda t: np.where((t >= ONSET) & (t < ONSET + 300), 0.3, 0.01), component=0
    )
    later = ONSET + 2 * 3600.0
    c = task_rows(
        rng, 8, lambda t: np.where((t >= later) & (t < later + 300), 0.3, 0.01), component=2
    )
    b = task_rows(rng, 8, 0.01, component=1)
    found, alarms = cascades([a, b, c])
    assert found == []
    assert {a.components[0] for a in alarms if a.pattern is Pattern.BURST} == {"a", "c"}


def test_an_isolated_root_burst_is_no_cascade() -> None:
    rng = np.random.default_rng(24)
    a = task_rows(
        rng, 6, lambda t: np.where((t >= ONSET) & (t < ONSET + 600), 0.3, 0.01), component=0
    )
    others = [task_rows(rng, 6, 0.01, component=c) for c in (1, 2)]
    found, alarms = cascades([a, *others])
    assert found == []
    assert [x.components for x in alarms if x.pattern is Pattern.BURST] == [("a",)]


def test_state_round_trip_mid_cascade_gives_the_same_alarm() -> None:
    parts = chain_rows(25, sink_rate=0.05)
    config = EngineConfig(CHAIN, EDGES, load_thresholds())
    whole = DetectionEngine(config).update(batch(CHAIN, *parts)).alarms
    cut = T0 + ONSET + 150  # root alarmed, cascade not yet reported
    first = [{k: v[p["end"] < cut] for k, v in p.items()} for p in parts]
    rest = [{k: v[p["end"] >= cut] for k, v in p.items()} for p in parts]
    engine = DetectionEngine(config)
    got = list(engine.update(batch(CHAIN, *first), until=cut).alarms)
    state = json.loads(json.dumps(engine.state()))
    engine = DetectionEngine.from_state(config, state)
    got += engine.update(batch(CHAIN, *rest)).alarms
    key = [(a.pattern, a.components, a.at) for a in whole]
    assert [(a.pattern, a.components, a.at) for a in got] == key
    assert any(a.pattern is Pattern.CASCADE for a in whole)


def test_backwards_hop_is_rejected_only_when_the_child_clearly_came_first() -> None:
    t = np.arange(0.0, 600.0, 1.0)
    failures = {0: t[::2], 1: t[1::2]}
    parents = {0: [], 1: [0]}
    ok = order_cascade([1, 0], failures, parents, 0.0, 600.0, 60.0, {0: 100.0, 1: 20.0}, 300.0)
    assert ok.order == (0, 1) and ok.consistent
    back = order_cascade(
        [0, 1], failures, parents, 0.0, 600.0, 60.0, {0: 500.0, 1: 20.0}, 300.0, {0: 510, 1: 30}
    )
    assert not back.consistent
    drift = order_cascade(  # the child's onset drifted early but it alarmed after its parent
        [0, 1], failures, parents, 0.0, 600.0, 60.0, {0: 500.0, 1: 20.0}, 300.0, {0: 510, 1: 530}
    )
    assert drift.consistent


def test_excess_failures_p() -> None:
    rng = np.random.default_rng(26)
    base = np.sort(rng.uniform(0, 10800, 30))  # 1e-2.5 per s
    start = 10800.0 + 600.0
    quiet = np.concatenate([base, np.sort(rng.uniform(start, start + 300, 1))])
    p, k = excess_failures_p(quiet, start, start + 300, 10800.0, 600.0)
    assert k == 1 and p > 0.1
    loud = np.concatenate([base, np.sort(rng.uniform(start, start + 300, 25))])
    p, k = excess_failures_p(loud, start, start + 300, 10800.0, 600.0)
    assert k == 25 and p < 1e-12
    # a history shorter than a quarter of the baseline proves nothing
    p, _ = excess_failures_p(loud[loud > 9000], start, start + 300, 10800.0, 600.0)
    assert p == 1.0


def test_the_cascade_is_typed_by_the_roots_failures_since_onset() -> None:
    # the root's burst opens with a minute of Timeouts (which trip its burst alarm) and goes on
    # with four minutes of ConnectionErrors: the cascade, reported minutes later, names the
    # episode's type, not the type of the few failures its burst alarm saw
    parts = chain_rows(24)
    a = parts[0]
    first_minute = (a["end"] >= T0 + ONSET) & (a["end"] < T0 + ONSET + 60)
    a["code"] = np.where(a["failed"], np.where(first_minute, 0, 5), -1)
    found, alarms = cascades(parts)
    root_burst = [x for x in alarms if x.pattern is Pattern.BURST and x.components == ("a",)]
    assert root_burst[0].failure_type == "Timeout"
    assert len(found) == 1
    assert found[0].failure_type == "ConnectionError"
