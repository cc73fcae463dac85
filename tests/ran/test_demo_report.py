"""The demo report: alarms scored against the true fault windows, time to recover, the text."""

from __future__ import annotations

from prefect_ft.demo.ran.report import (
    build_report,
    false_alarms,
    render,
    score_alarms,
    spanning_alarms,
    time_to_recover,
)

FAULTS = [
    {
        "component": "ml-inference",
        "kind": "error_burst",
        "start": 100.0,
        "end": 110.0,
        "calls_hit": 4,
    },
    {"component": "ipc", "kind": "drop_connections", "start": 200.0, "end": 205.0, "calls_hit": 0},
    {"component": "ipc", "kind": "crash", "start": None, "end": None, "calls_hit": 0},
]
TRANSITIONS = [
    {
        "breaker": "ml-inference",
        "from": "CLOSED",
        "to": "OPEN",
        "reason": "3 failures",
        "at": 103.0,
    },
    {"breaker": "ml-inference", "from": "OPEN", "to": "HALF_OPEN", "reason": "", "at": 163.0},
    {"breaker": "ml-inference", "from": "RECOVERY", "to": "CLOSED", "reason": "", "at": 185.0},
]
SUMMARY = {
    "documents_in": 3,
    "documents_parsed": 2,
    "documents_refused": {"bad": "document 'bad': empty"},
    "documents_lost": [],
    "items_in": 10,
    "accepted": 8,
    "rejected_by_quality": 2,
    "lost": [],
    "dead_letters": {"ml-inference": {"dead_lettered": 5, "replayed": 5, "superseded": 0}},
}


def test_alarm_matches_a_fault_by_component_and_window() -> None:
    alarms = [
        {"pattern": "burst", "components": ["ml-inference"], "onset": 101.0, "at": 106.0},
        {
            "pattern": "burst",
            "components": ["ml-inference"],
            "onset": 500.0,
            "at": 501.0,
        },  # too late
        {"pattern": "burst", "components": ["doc-processing"], "onset": 101.0, "at": 102.0},
    ]
    rows = score_alarms(FAULTS, alarms, slack=30)
    assert rows[0]["alarms"] == ["burst"] and rows[0]["delay"] == 6.0
    assert rows[1]["alarms"] == [] and rows[2]["alarms"] == []


def test_time_to_recover_from_fault_end_to_closed() -> None:
    assert time_to_recover(FAULTS, TRANSITIONS) == [75.0, None, None]


def test_report_says_lost_0_and_in_equals_out() -> None:
    rep = build_report(SUMMARY, FAULTS, TRANSITIONS, [], "not run (no recovery flows)")
    assert rep["in_equals_out"] and rep["lost"] == 0 and rep["replayed"] == 5
    text = render(rep, t0=100.0)
    assert "lost 0" in text and "in == out" in text
    assert "refused bad: document 'bad': empty" in text
    assert "ml-inference: CLOSED -> OPEN (3 failures)" in text and "+3.0s" in text
    assert "recovered 75.0s" in text and "recoveries: not run" in text


def test_a_lost_item_is_reported_as_in_not_equal_out() -> None:
    rep = build_report({**SUMMARY, "lost": ["x#0"], "accepted": 7}, FAULTS, [], None, "not run")
    assert not rep["in_equals_out"] and rep["lost"] == 1
    text = render(rep)
    assert "in != out: 9 out of 10" in text and "detection not run" in text


def test_recoveries_line_comes_from_the_recovery_records() -> None:
    records = [
        {
            "component": "ml-inference",
            "failure_type": "ModelInferenceError",
            "outcome": "succeeded",
            "message": "ml-inference recovered by model-reload (immediate phase); breaker HALF_OPEN",
            "breaker_before": "OPEN",
            "breaker_after": "HALF_OPEN",
            "seconds": 3.2,
            "attempts": [{"strategy": "model-reload"}],
            "opened_at": 103.0,
            "ended_at": 107.5,
        },
        {
            "component": "ipc",
            "outcome": "failed",
            "message": "unhealthy: connection refused",
            "attempts": [{"strategy": "connection-reset"}, {"strategy": "graceful-restart"}],
            "opened_at": 120.0,
            "ended_at": 130.0,
        },
    ]
    rep = build_report(SUMMARY, FAULTS, TRANSITIONS, [], records)
    assert rep["recoveries_run"] == 2 and rep["recoveries_succeeded"] == 1
    text = render(rep, t0=100.0)
    assert "recoveries run: 2 (1 succeeded, 1 failed)" in text
    assert (
        "  +3.0s ml-inference (ModelInferenceError): model-reload succeeded, breaker OPEN -> "
        "HALF_OPEN 4.5s after it opened" in text
    )
    assert "  +20.0s ipc (unknown): connection-reset, graceful-restart failed" in text
    assert "unhealthy: connection refused" in text


CRASH = {"component": "ml-inference", "kind": "crash", "start": 300.0, "end": 340.0}
LEAK = {"component": "ml-inference", "kind": "memory_leak", "start": 90.0, "end": 400.0}


def _alarm(pattern: str, comp: str, onset: float, at: float, **kw: str) -> dict:
    extra = {"severity": "CRITICAL", "failure_type": "ConnectionError", **kw}
    return {"pattern": pattern, "components": [comp], "onset": onset, "at": at, **extra}


def test_scoring_gives_detected_delay_type_severity_and_false_alarms() -> None:
    faults = [FAULTS[0], FAULTS[1], CRASH, LEAK]
    alarms = [
        _alarm("burst", "ml-inference", 99.0, 104.5, failure_type="ModelInferenceError"),
        _alarm("burst", "ipc", 301.0, 303.0),  # the crash, seen on the connection pool
        _alarm("degradation", "ml-inference", 101.0, 105.0),  # no failure kind makes this
        _alarm("burst", "quality-validation", 101.0, 102.0),  # no fault there
    ]
    rows = score_alarms(faults, alarms)
    assert [r["detected"] for r in rows] == [True, False, True, False]
    assert rows[0]["delay"] == 4.5 and rows[0]["severity"] == "CRITICAL"
    assert rows[0]["failure_type"] == "ModelInferenceError" and rows[0]["pattern"] == "burst"
    assert rows[2]["alarm_component"] == "ipc" and rows[2]["delay"] == 3.0
    assert rows[1]["delay"] is None and rows[3]["alarms"] == []  # a leak is no burst
    fa = false_alarms(faults, alarms)
    assert [(a["pattern"], a["components"]) for a in fa] == [
        ("degradation", ["ml-inference"]),
        ("burst", ["quality-validation"]),
    ]
    rep = build_report(SUMMARY, faults, [], alarms, "not run")
    text = render(rep, t0=100.0)
    assert "error_burst on ml-inference: +0.0s .. +10.0s, 4 calls hit; detected: burst " in text
    assert "(CRITICAL, ModelInferenceError) after 4.5s" in text
    assert "crash on ml-inference: +200.0s .. +240.0s, 0 calls hit; detected: burst on ipc" in text
    assert "drop_connections on ipc: +100.0s .. +105.0s, 0 calls hit; not detected" in text
    assert "detection: 2 of 4 injected faults detected, 4 alarms, 2 false alarms" in text
    assert "  false alarm +2.0s burst on quality-validation (CRITICAL, ConnectionError)" in text


def test_an_alarm_before_the_fault_window_does_not_detect_it() -> None:
    early = _alarm("burst", "ml-inference", 80.0, 94.0)  # fired 6 s before the start
    assert score_alarms([FAULTS[0]], [early])[0]["detected"] is False
    assert score_alarms([FAULTS[0]], [early], slack=6.0)[0]["detected"] is True


def test_one_alarm_is_credited_to_one_fault_its_own_component_first() -> None:
    drop = {"component": "ipc", "kind": "drop_connections", "start": 300.0, "end": 306.0}
    faults = [drop, CRASH]  # the crash starts while connections are being dropped
    rows = score_alarms(faults, [_alarm("burst", "ipc", 300.0, 301.0)])
    assert [r["detected"] for r in rows] == [True, False]
    # a later alarm on the crashed component itself goes to the crash
    rows = score_alarms(faults, [_alarm("burst", "ml-inference", 305.0, 309.0)])
    assert [r["detected"] for r in rows] == [False, True]


def test_an_episode_spanning_two_faults_is_credited_to_the_one_it_fired_in() -> None:
    # a burst's failures open the episode; failures during the crash push it over: the row it
    # fired on belongs to the crash, so the burst (ended 195 s before) is not credited with it
    alarm = _alarm("burst", "ml-inference", 99.0, 305.0, failure_type="ModelInferenceError")
    rows = score_alarms([FAULTS[0], CRASH], [alarm])
    assert [r["detected"] for r in rows] == [False, True] and rows[1]["delay"] == 5.0


def test_an_alarm_that_fired_after_the_fault_ended_is_not_credited_to_it() -> None:
    # the row it fired on came 8 s after the burst's last call: other failures made it
    late = _alarm("burst", "ml-inference", 105.0, 118.0)
    assert score_alarms([FAULTS[0]], [late])[0]["detected"] is False
    assert false_alarms([FAULTS[0]], [late]) == [late]
    # a row within the clock skew of the end is the fault's own
    assert score_alarms([FAULTS[0]], [_alarm("burst", "ml-inference", 105.0, 111.5)])[0]["detected"]


def test_a_slowed_call_ends_up_to_its_delay_after_the_latency_window() -> None:
    slow = {"component": "doc-processing", "kind": "latency", "start": 100.0, "end": 104.0,
            "params": {"delay": 3.0}}  # fmt: skip
    alarm = _alarm("degradation", "doc-processing", 101.0, 106.5)
    assert score_alarms([slow], [alarm])[0]["detected"] is True
    assert (
        score_alarms([slow], [_alarm("degradation", "doc-processing", 110.0, 120.0)])[0]["detected"]
        is False
    )


def test_an_alarm_whose_failures_lie_mostly_outside_the_window_is_not_credited() -> None:
    # the history detection read: ipc (index 2) failed four times before the drop began
    observed = {
        "components": ["doc-processing", "ml-inference", "ipc", "quality-validation"],
        "tasks": {
            "end": [160.0, 170.0, 180.0, 190.0, 201.0, 203.0, 204.0],
            "component": [2, 2, 2, 2, 2, 1, 2],
            "failed": [True, True, True, True, True, True, True],
        },
        "resources": {"ts": [], "component": []},
    }
    alarm = _alarm("burst", "ipc", 150.0, 204.0)
    assert score_alarms([FAULTS[1]], [alarm])[0]["detected"] is True  # no history: its row
    assert score_alarms([FAULTS[1]], [alarm], observed=observed)[0]["detected"] is False
    # most of its failures in the window: credited
    fresh = _alarm("burst", "ipc", 195.0, 204.0)
    assert score_alarms([FAULTS[1]], [fresh], observed=observed)[0]["detected"] is True
    rep = build_report(SUMMARY, [FAULTS[1]], [], [alarm], "not run", observed)
    assert rep["detection"][0]["detected"] is False and rep["false_alarms"] == [alarm]


def test_an_undetected_fault_says_what_the_history_held_in_its_window() -> None:
    # what detection read (`detection_flow.dump_history`): components, and per row its end time,
    # component index and whether it failed; resource samples per component
    observed = {
        "components": ["doc-processing", "ml-inference", "ipc", "quality-validation"],
        "tasks": {
            "end": [101.0, 102.0, 103.0, 150.0, 202.0, 203.0],
            "component": [1, 1, 1, 1, 2, 2],
            "failed": [True, True, False, True, False, False],
        },
        "resources": {"ts": [95.0, 120.0], "component": [1, 3]},
    }
    rep = build_report(SUMMARY, [FAULTS[0], FAULTS[1], LEAK], [], [], "not run", observed)
    # the leak's window counts ipc too (a leaking model server's refusals fail its calls)
    assert [e["task_runs"] for e in rep["observed"]] == [3, 2, 6]
    assert [e["failed"] for e in rep["observed"]] == [2, 0, 3]
    assert rep["observed"][2]["samples"] == 1  # the leak's component's samples in its window
    text = render(rep, t0=100.0)
    assert "not detected (in its window: 3 task runs, 2 failed)" in text
    assert "drop_connections on ipc: +100.0s .. +105.0s, 0 calls hit; not detected (in its" in text
    assert "not detected (in its window: 6 task runs, 3 failed; 1 resource sample)" in text
    # without the history the line stays as it was
    plain = render(build_report(SUMMARY, [FAULTS[1]], [], [], "not run"), t0=100.0)
    assert "0 calls hit; not detected; recovered -" in plain


def test_a_leak_at_its_budget_is_found_by_the_refusals_it_causes() -> None:
    refused = _alarm("burst", "ml-inference", 120.0, 125.0, failure_type="ResourceExhaustion")
    assert score_alarms([LEAK], [refused])[0]["detected"] is True
    # other failures on the leaking component are not the leak's
    assert (
        score_alarms([LEAK], [_alarm("burst", "ml-inference", 120.0, 125.0)])[0]["detected"]
        is False
    )


def test_refusals_of_a_leaking_model_server_seen_on_ipc_go_to_the_leak_not_the_crash() -> None:
    # the server refuses work at its memory budget (507, ResourceExhaustion), on the connection
    # pool too, just before it is killed: the refusals are the leak's
    leak = {**LEAK, "start": 280.0, "end": 320.0}
    refusals = _alarm("burst", "ipc", 298.0, 299.5, failure_type="ResourceExhaustion")
    rows = score_alarms([leak, CRASH], [refusals])
    assert [r["detected"] for r in rows] == [True, False]
    # connection failures on ipc during the crash are still the crash's
    refused = _alarm("burst", "ipc", 300.5, 302.0, failure_type="ConnectionError")
    assert [r["detected"] for r in score_alarms([leak, CRASH], [refused])] == [False, True]


def test_an_alarm_whose_failures_span_two_faults_is_neither_credited_nor_false() -> None:
    # CI saw it: the model burst's 3 failures (the breaker opened at 3) and the crash's first
    # failed call, 5 s later, made the 4 the burst chart needs; its row lies in the crash's
    # window, most of its failures in the burst's: no fault is credited, yet every failure in it
    # was injected, so it is no false alarm either
    burst = {"component": "ml-inference", "kind": "error_burst", "start": 100.0, "end": 102.0}
    crash = {"component": "ml-inference", "kind": "crash", "start": 105.0, "end": 111.0}
    observed = {
        "components": ["doc-processing", "ml-inference", "ipc", "quality-validation"],
        "tasks": {
            "end": [90.0, 100.1, 100.2, 100.3, 105.4],
            "component": [1, 1, 1, 1, 1],
            "failed": [False, True, True, True, True],
        },
        "resources": {"ts": [], "component": []},
    }
    alarm = _alarm("burst", "ml-inference", 93.0, 105.4, failure_type="ModelInferenceError")
    rows = score_alarms([burst, crash], [alarm], observed=observed)
    assert [r["detected"] for r in rows] == [False, False]
    assert false_alarms([burst, crash], [alarm], observed=observed) == []
    assert spanning_alarms([burst, crash], [alarm], observed=observed) == [alarm]
    rep = build_report(SUMMARY, [burst, crash], [], [alarm], "not run", observed)
    assert rep["false_alarms"] == [] and rep["spanning_alarms"] == [alarm]
    assert "1 spanning several faults" in render(rep)
    # one failure outside every fault's window: a false alarm after all
    observed["tasks"]["failed"][0] = True
    late = _alarm("burst", "ml-inference", 89.0, 105.4)
    assert false_alarms([burst, crash], [late], observed=observed) == [late]
    assert spanning_alarms([burst, crash], [late], observed=observed) == []


def test_a_recovery_refused_the_lease_is_neither_run_nor_failed() -> None:
    # the in-process listener refused because a served run held the component's lease (a demo
    # run at 16:56 UTC): the report said "8 (7 succeeded, 1 failed)" for 7 that ran, all good
    records = [
        {
            "component": "ml-inference",
            "failure_type": "ModelInferenceError",
            "outcome": "succeeded",
            "message": "ml-inference recovered by model-reload (immediate phase)",
            "breaker_before": "OPEN",
            "breaker_after": "HALF_OPEN",
            "attempts": [{"strategy": "model-reload"}],
            "opened_at": 103.0,
            "ended_at": 107.5,
        },
        {
            "component": "ml-inference",
            "failure_type": "ConnectionError",
            "outcome": "refused",
            "message": "a recovery of ml-inference is already running (its lease ends at 200)",
            "attempts": [],
            "opened_at": 134.7,
            "ended_at": 134.8,
            "by": "in-process listener",
        },
    ]
    rep = build_report(SUMMARY, FAULTS, TRANSITIONS, [], records)
    assert rep["recoveries_run"] == 1 and rep["recoveries_succeeded"] == 1
    text = render(rep, t0=100.0)
    assert "recoveries run: 1 (1 succeeded, 0 failed); 1 refused (another held the lease)" in text
    assert "  +34.7s ml-inference (ConnectionError): nothing run refused by in-process" in text
