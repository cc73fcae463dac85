"""The demo report: alarms scored against the true fault windows, time to recover, the text."""

from __future__ import annotations

from prefect_ft.demo.ran.report import build_report, render, score_alarms, time_to_recover

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
