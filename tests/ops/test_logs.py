"""Structured logs: JSON or console through the standard library, ids on every line, bad format
refused in one line (issue 10 item 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from prefect_ft.exceptions import ConfigurationError
from prefect_ft.settings import log_format

SCRIPT = """
import logging, threading, contextvars
from prefect_ft.ops.logs import bind_ids, get_logger
log = get_logger("demo")
log.info("plain start")
with bind_ids(breaker="ipc", component="ipc"):
    log.warning("breaker opened", failures=5)
    with bind_ids(recovery_id="rec-1"):
        logging.getLogger("prefect_ft.breaker").info("stdlib line %s", "inside recovery")
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(log.info, "from a thread"))
        t.start(); t.join()
"""


def run(fmt: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_FT_LOG_FORMAT"}
    if fmt is not None:
        env["PREFECT_FT_LOG_FORMAT"] = fmt
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )


def test_json_lines_carry_the_correlation_ids() -> None:
    out = run("json")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert [ln["event"] for ln in lines] == [
        "plain start",
        "breaker opened",
        "stdlib line inside recovery",
        "from a thread",
    ]
    for ln in lines:
        for key in ("flow_run_id", "task_run_id", "breaker", "component", "timestamp", "level"):
            assert key in ln, (key, ln)
    assert lines[0]["breaker"] is None and "recovery_id" not in lines[0]
    assert lines[1] | {"timestamp": 0} == {
        "event": "breaker opened",
        "failures": 5,
        "breaker": "ipc",
        "component": "ipc",
        "flow_run_id": None,
        "task_run_id": None,
        "logger": "prefect_ft.demo",
        "level": "warning",
        "timestamp": 0,
    }
    # a plain `logging` line of another prefect_ft module gets the ids of its context too
    assert lines[2]["logger"] == "prefect_ft.breaker" and lines[2]["recovery_id"] == "rec-1"
    assert lines[3]["recovery_id"] == "rec-1" and lines[3]["breaker"] == "ipc"


def test_console_is_the_default_and_readable() -> None:
    out = run(None)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stderr.splitlines() if "breaker opened" in ln)
    assert not line.startswith("{")
    assert "[warning" in line and "breaker=ipc" in line and "component=ipc" in line


def test_an_unknown_format_is_one_line_naming_the_allowed_values() -> None:
    with pytest.raises(ConfigurationError) as info:
        log_format("xml")
    assert str(info.value) == "PREFECT_FT_LOG_FORMAT must be one of console, json (got 'xml')"
    # a library process keeps going: one line on stderr, then console lines
    out = run("xml")
    assert out.returncode == 0
    first = out.stderr.splitlines()[0]
    assert first == (
        "prefect-ft: error: PREFECT_FT_LOG_FORMAT must be one of console, json (got 'xml');"
        " using console"
    )
    assert "Traceback" not in out.stderr
