"""`prefect-ft status|detect|replay|demo` as subprocesses against a Prefect test server."""

from __future__ import annotations

import json

from prefect_ft import CircuitBreaker
from prefect_ft.ops.view import note_alarm, note_recovery
from prefect_ft.stores import shared_store
from tests.cli.conftest import run_cli


def test_status_shows_components_as_a_table_and_as_json(api_url: str, store_url: str) -> None:
    CircuitBreaker("ipc", store=store_url, refresh_seconds=None).force_open()
    CircuitBreaker("ml-inference", store=store_url, refresh_seconds=None)
    CircuitBreaker("quality-validation", store=store_url, refresh_seconds=None)
    store = shared_store(store_url)
    note_alarm(store, "ml-inference", "HIGH", "error-burst")
    note_recovery(store, "ipc", "failed", "connection-reset")

    table = run_cli("status", api=api_url, store=store_url)
    assert table.returncode == 0, table.stderr
    rows: dict[str, str] = {}
    for line in table.stdout.splitlines():  # a long cell wraps onto the next line: join them
        cells = line.split("│")
        if len(cells) > 2 and cells[1].strip():
            rows[cells[1].strip()] = line
        elif len(cells) > 2 and rows:
            last = list(rows)[-1]
            rows[last] += line
    assert "FORCED_OPEN" in rows["ipc"] and "Critical" in rows["ipc"]
    assert "failed" in rows["ipc"] and "connection-reset" in rows["ipc"]
    assert (
        "HIGH" in rows["ml-inference"]
        and "error-burst" in rows["ml-inference"]
        and "Degraded" in rows["ml-inference"]
    )
    assert "CLOSED" in rows["quality-validation"] and "Healthy" in rows["quality-validation"]
    assert "prefect-ft: system Critical" in table.stdout

    out = run_cli("status", "--json", api=api_url, store=store_url)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    comps = {c["component"]: c for c in data["components"]}
    assert set(comps) == {"ipc", "ml-inference", "quality-validation"}
    assert comps["ipc"]["breaker_state"] == "FORCED_OPEN" and comps["ipc"]["health"] == "Critical"
    assert comps["ipc"]["last_recovery"]["status"] == "failed"
    assert comps["ml-inference"]["last_alarm"]["severity"] == "HIGH"
    assert comps["quality-validation"]["failure_rate"] is None  # no live calls in a CLI process
    assert data["system"]["health"] == "Critical" and data["emergency"] is None

    stop = run_cli(
        "emergency-stop", "--reason", "drill", "--store-only", api=api_url, store=store_url
    )
    assert stop.returncode == 0, stop.stderr
    shown = run_cli("status", api=api_url, store=store_url)
    assert "EMERGENCY STOP ACTIVE" in shown.stdout and "(reason: drill)" in shown.stdout


def test_status_with_a_bad_store_is_one_line(api_url: str, store_url: str) -> None:
    out = run_cli("status", "--store", "nosuch://x", api=api_url, store=store_url)
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "unknown scheme 'nosuch'" in out.stderr and "Traceback" not in out.stderr


def test_detect_runs_one_pass_now(api_url: str, store_url: str) -> None:
    out = run_cli("detect", "--components", "ipc", "--json", api=api_url, store=store_url)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["alarms"] == [] and summary["state_saved"] is True
    assert [s["reason"] for s in summary["skipped"]] == ["no_history"]
    text = run_cli("detect", "--components", "ipc", api=api_url, store=store_url)
    assert text.returncode == 0, text.stderr
    assert "detection: 0 task runs read, 0 new alarm(s)" in text.stdout
    bad = run_cli("detect", "--lag-seconds", "-1", api=api_url, store=store_url)
    assert bad.returncode == 1
    assert bad.stderr == "prefect-ft: error: --lag-seconds must be in [0, 3600] (got -1.0)\n"


def test_replay_reports_and_refuses_a_bad_limit(api_url: str, store_url: str) -> None:
    out = run_cli("replay", api=api_url, store=store_url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("replay: 0 replayed, 0 failed, 0 rejected, 0 remaining")
    bad = run_cli("replay", "--limit", "0", api=api_url, store=store_url)
    assert bad.returncode == 1 and bad.stderr == "prefect-ft: error: --limit must be >= 1 (got 0)\n"


def test_demo_runs(api_url: str, store_url: str) -> None:
    # the loopback demo: the RAN demo's own end-to-end test is tests/ran/test_demo_e2e.py
    out = run_cli("demo", "--loopback", api=api_url, store=store_url, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "EVENT prefect-ft.breaker.opened" in out.stdout
    assert "EVENT prefect-ft.breaker.closed" in out.stdout


def test_an_unknown_command_is_refused_without_a_traceback(api_url: str, store_url: str) -> None:
    out = run_cli("emergency-stpo", api=api_url, store=store_url)
    assert out.returncode != 0 and "Traceback" not in out.stderr + out.stdout
