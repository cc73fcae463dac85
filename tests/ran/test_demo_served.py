"""The demo's served path alone: a `prefect-ft.breaker.opened` event starts `recover` in the
`prefect-ft serve` the demo starts, and that run restarts the crashed model server through the
supervisor's loopback control channel and moves the breaker on (`tests.ran.served_scenario`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ran.test_demo_e2e import _processes_mentioning

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_a_served_recover_run_restarts_the_crashed_model_server(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.ran.served_scenario", str(tmp_path)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=2400,
    )  # fmt: skip
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    logs = (proc.stdout[-3000:], proc.stderr[-3000:])
    assert proc.returncode == 0 and line is not None, logs
    result = json.loads(line[7:])
    print("served scenario:", {k: v for k, v in result.items() if k != "runs"}, result["runs"])
    assert result["opened"] == "OPEN", result
    acted = [r for r in result["runs"] if r["outcome"] == "succeeded"]
    assert acted, (result, logs)
    run = acted[0]
    assert run["component"] == "ipc" and run["flow_run_name"], run
    assert "ipc recovered by graceful-restart" in run["message"], run
    # the 900 s open time did not have to pass: the served recovery moved the breaker on
    assert result["breaker"] in ("HALF_OPEN", "RECOVERY", "CLOSED"), result
    assert result["model_server_running"] is True, result
    assert _processes_mentioning(str(tmp_path)) == []
