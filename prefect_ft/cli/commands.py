"""`prefect-ft detect`, `prefect-ft replay` and `prefect-ft demo`: one-shot runs of existing work.

`detect` is one pass of `prefect_ft.history.detection_flow.detect` now (what the
`detect-failures` deployment runs on its schedule), `replay` is `prefect_ft.replay`, `demo`
runs `python -m prefect_ft.demo`. A user error prints one line and exits 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Annotated, Any

from cyclopts import Parameter

from prefect_ft.exceptions import ConfigurationError, StoreUnavailableError

__all__ = ["demo", "detect", "replay"]

_Json = Annotated[bool, Parameter(name="--json", negative="")]


def _fail(message: str) -> int:
    print(f"prefect-ft: error: {message}", file=sys.stderr)
    return 1


def detect(
    *,
    components: list[str] | None = None,
    store: str | None = None,
    lag_seconds: float = 5.0,
    emit: bool = True,
    json_output: _Json = False,
) -> int:
    """Run one detection pass over the task-run history now, and report its alarms.

    Args:
        components: component names (default: the RAN pipeline's four).
        store: store URL of the detectors' state (default `PREFECT_FT_STORE_URL`).
        lag_seconds: read only task runs that ended this long ago (history lags), in [0, 3600].
        emit: emit `prefect-ft.fault.detected` for each new alarm.
        json_output: print the pass's summary as JSON.
    """
    if not 0.0 <= lag_seconds <= 3600.0:
        return _fail(f"--lag-seconds must be in [0, 3600] (got {lag_seconds})")
    from prefect_ft.history.detection_flow import detect as run_detection

    try:
        summary: dict[str, Any] = run_detection(
            components, store=store, lag_s=lag_seconds, emit=emit
        )
    except (ConfigurationError, StoreUnavailableError, ValueError) as exc:
        return _fail(str(exc))
    if json_output:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(
        f"detection: {summary['runs_read']} task runs read, {len(summary['alarms'])} new alarm(s), "
        f"{summary['events_emitted']} event(s) emitted"
    )
    for a in summary["alarms"]:
        comps = ", ".join(a.get("components", []))
        print(f"  {a.get('severity')} {a.get('pattern')} on {comps}: {a.get('explanation', '')}")
    for s in summary["skipped"]:
        print(f"  skipped {s['reason']} ({s['count']}): {s['detail']}")
    return 0


def replay(
    breakers: list[str] | None = None,
    *,
    store: str | None = None,
    limit: int | None = None,
    wait_seconds: float = 0.0,
    json_output: _Json = False,
) -> int:
    """Re-run dead-lettered calls of CLOSED breakers now.

    Args:
        breakers: breaker names (default: every breaker with dead letters).
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
        limit: run at most this many calls in all (>= 1).
        wait_seconds: wait up to this long for a breaker to close, in [0, 3600].
        json_output: print the report as JSON.
    """
    if limit is not None and limit < 1:
        return _fail(f"--limit must be >= 1 (got {limit})")
    if not 0.0 <= wait_seconds <= 3600.0:
        return _fail(f"--wait-seconds must be in [0, 3600] (got {wait_seconds})")
    from dataclasses import asdict

    from prefect_ft.deadletter.replay import replay as run_replay

    try:
        report = run_replay(breakers, store=store, limit=limit, wait_seconds=wait_seconds)
    except (ConfigurationError, StoreUnavailableError) as exc:
        return _fail(str(exc))
    if json_output:
        print(json.dumps(asdict(report), indent=2))
        return 0
    print(
        f"replay: {len(report.done)} replayed, {len(report.failed)} failed, "
        f"{len(report.rejected)} rejected, {report.remaining} remaining"
    )
    for name, why in sorted(report.waiting.items()):
        print(f"  {name}: {why}")
    return 1 if report.failed or report.rejected else 0


def demo(
    *,
    faults: str | None = None,
    docs: int | None = None,
    compress: float | None = None,
    loopback: bool = False,
) -> int:
    """Run the demo (`python -m prefect_ft.demo`): the RAN pipeline under injected faults.

    Args:
        faults: a YAML fault schedule (default: the scripted one).
        docs: use only the first N documents.
        compress: multiply the fault schedule's times by this.
        loopback: the older, smaller demo: one breaker in front of a loopback server.
    """
    argv = [sys.executable, "-m", "prefect_ft.demo"]
    if loopback:
        argv.append("--loopback")
    for flag, value in (("--faults", faults), ("--docs", docs), ("--compress", compress)):
        if value is not None:
            argv += [flag, str(value)]
    return subprocess.call(argv)
