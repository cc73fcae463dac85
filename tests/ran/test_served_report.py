"""The report's account of the served `recover` runs beside the in-process listener."""

from __future__ import annotations

from prefect_ft.demo.ran.recoveries import served_lines, with_served


def _run(outcome: str, started: float, name: str = "brave-otter") -> dict:
    return {
        "component": "ipc", "failure_type": None, "by": f"served run {name} (id-{name})",
        "flow_run_id": f"id-{name}", "flow_run_name": name, "state": "Completed",
        "started_at": started, "ended_at": started + 4.0, "opened_at": None,
        "attempts": [{"strategy": "graceful-restart"}], "outcome": outcome,
        "message": f"ipc {outcome}",
    }  # fmt: skip


TRANSITIONS = [
    {"breaker": "ipc", "from": "CLOSED", "to": "OPEN", "at": 100.0, "remote": False},
    {"breaker": "ipc", "from": "HALF_OPEN", "to": "OPEN", "at": 110.0, "remote": False},
    {"breaker": "ml-inference", "from": "CLOSED", "to": "OPEN", "at": 111.0, "remote": False},
]


def test_served_runs_that_acted_join_the_records_timed_from_their_opening() -> None:
    listener = {"component": "ipc", "opened_at": 100.0, "outcome": "succeeded", "by": "in-process listener"}  # fmt: skip
    merged = with_served([listener], [_run("succeeded", 115.0), _run("refused", 105.0, "x")], TRANSITIONS)  # fmt: skip
    assert [r["by"] for r in merged] == ["in-process listener", "served run brave-otter (id-brave-otter)"]  # fmt: skip
    # the last opening of its own breaker before the run started, not ml-inference's
    assert merged[1]["opened_at"] == 110.0


def test_served_lines_count_openings_runs_and_failed_actions() -> None:
    lines = served_lines(
        [_run("succeeded", 115.0), _run("refused", 105.0, "x")], "both", True, openings=3,
        failed_actions=["Unexpected status from 'run-deployment' action: 503"],
    )  # fmt: skip
    assert lines[0] == (
        "served recover runs (prefect-ft serve, on prefect-ft.breaker.opened): 2 for 3 "
        "openings, 1 acted, 1 did nothing (the lease was held, the breaker had moved on, "
        "or the component has no control channel)"
    )
    assert "1 opening(s) got no run before the end" in lines[1]
    assert lines[2] == "  automation action failed: Unexpected status from 'run-deployment' action: 503"  # fmt: skip
    assert "brave-otter (id-brave-otter): ipc succeeded, ran 4.0s" in lines[3]
    assert served_lines([], "in-process", False) == ["prefect-ft serve: not started (--recovery in-process)"]  # fmt: skip
