"""`prefect-ft serve` inside the demo: the real subprocess, and what its recovery runs did.

`served(home, root)` starts `prefect-ft serve` (its 10 deployments and their automations: a
`prefect-ft.breaker.opened` event starts `recover`, `prefect-ft.breaker.closed` starts
`replay-dead-letters`) against the demo's Prefect server, in its own process group, and stops
the group on the way out, also on an error or Ctrl-C (`ServeProcess.stop`: SIGTERM, then
SIGKILL to the group, so no flow-run child outlives it). The child shares the demo's breaker
store and dead-letter key through the environment, and `runtime.RUNTIME_ENV` tells its replay
runs where the pipeline's outputs and the model server are, so a served replay really re-runs
the dead-lettered calls.

`served_recoveries(since)` reads the `recover` runs back from the API after the pipeline: each
run's name, id, state, and the one line it logged (`recovery <outcome> of <component>: ...`),
for the report's list of which recovery acted. `failed_actions(since)` reads the automation
actions that could not create their run (on 2 loaded cores the SQLite API answered the
run-deployment action 503, "database is locked", after one to two minutes).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["ServeProcess", "failed_actions", "served", "served_recoveries"]

READY_MARK = "being served"  # what prefect.serve prints once its runner polls
_OUTCOME = re.compile(r"recovery (succeeded|failed|refused) of (\S+): (.*)")
_STRATEGY = re.compile(r"recovered by ([a-z-]+) \((\S+) phase\); breaker (\w+)")


class ServeProcess:
    """A started `prefect-ft serve`; `ready()` once its runner polls; `stop()` ends its group."""

    def __init__(self, home: Path, root: Path, env: dict[str, str]) -> None:
        self.log_path = home / "serve.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop)
        cli = "from prefect_ft.cli import main; main()"
        args = [sys.executable, "-c", cli, "serve", "--root", str(root), "--poll-seconds", "1"]
        # schedules paused: the demo runs its own detection pass; events still start runs
        args += ["--no-schedules", "--no-ops"]
        self.proc = subprocess.Popen(
            args, env=env, cwd=root, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.started = time.monotonic()
        self.ready_after: float | None = None

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def ready(self) -> bool:
        """Whether the runner is polling (its deployments and automations exist)."""
        if self.ready_after is None and READY_MARK in self.tail(200_000):
            self.ready_after = time.monotonic() - self.started
        return self.ready_after is not None

    def wait_ready(self, timeout: float) -> bool:
        """Poll until ready, exited, or `timeout` s passed (from the start); whether ready."""
        deadline = self.started + timeout
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.3)
        return True

    def stop(self) -> None:
        """SIGTERM to the group (serve pauses its deployments), then SIGKILL whatever is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        # flow-run children live in the same group: none outlives the demo
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self._log.close()


@contextlib.contextmanager
def served(home: Path, root: Path, extra_env: dict[str, str]) -> Iterator[ServeProcess]:
    """`prefect-ft serve` against the server in `PREFECT_API_URL`, stopped on every exit path."""
    path = os.environ.get("PYTHONPATH", "")
    env = {
        **os.environ,
        **extra_env,
        # the child's own lines (the runner's start, its runs) go to serve.log
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join(p for p in (str(root), path) if p),
        "PYTHONUNBUFFERED": "1",
    }
    proc = ServeProcess(home, root, env)
    try:
        yield proc
    finally:
        proc.stop()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _stamp(value: Any) -> float | None:
    return value.timestamp() if value is not None else None


def _record(run: Any, line: str | None, opened_at: float | None) -> dict[str, Any]:
    """One served run as a recovery record (the fields `report` reads), with who acted."""
    params = run.parameters or {}
    rec: dict[str, Any] = {
        "component": params.get("component"),
        "failure_type": params.get("failure_type"),
        "by": f"served run {run.name} ({run.id})",
        "flow_run_id": str(run.id),
        "flow_run_name": run.name,
        "state": run.state_name,
        "started_at": _stamp(run.start_time),
        "ended_at": _stamp(run.end_time),
        "opened_at": opened_at,
        "attempts": [],
        "outcome": "unknown",
        "message": (run.state.message if run.state else None) or "",
    }
    m = _OUTCOME.search(line or "")
    if m:
        rec["outcome"], rec["message"] = m.group(1), m.group(3)
        s = _STRATEGY.search(m.group(3))
        if s:
            rec["attempts"] = [{"strategy": s.group(1), "phase": s.group(2)}]
            rec["breaker_before"], rec["breaker_after"] = "OPEN", s.group(3)
    elif run.state_type is not None and str(run.state_type.value) == "FAILED":
        rec["outcome"] = "failed"
    return rec


async def _aserved_recoveries(since: float, wait_seconds: float) -> list[dict[str, Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        LogFilter,
        LogFilterFlowRunId,
    )

    async with get_client() as client:
        deadline = time.monotonic() + wait_seconds
        while True:
            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["recover"])),
                flow_run_filter=FlowRunFilter(
                    expected_start_time=FlowRunFilterExpectedStartTime(
                        after_=datetime.fromtimestamp(since, UTC)
                    )
                ),
                limit=200,
            )
            pending = [r for r in runs if r.state is None or not r.state.is_final()]
            if not pending or time.monotonic() > deadline:
                break
            await _sleep(1.0)
        out = []
        for run in runs:
            # a run's log lines reach the API in batches (every 2 s), also after it ended
            until = time.monotonic() + 10.0
            while True:
                logs = await client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])),
                    limit=200,
                )
                line = next((lg.message for lg in logs if _OUTCOME.search(lg.message)), None)
                if line is not None or time.monotonic() > until:
                    break
                await _sleep(1.0)
            out.append(_record(run, line, None))
    return sorted(out, key=lambda r: r["started_at"] or float("inf"))


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def served_recoveries(since: float, wait_seconds: float = 60.0) -> list[dict[str, Any]]:
    """The `recover` runs created after `since` (epoch s), waiting up to `wait_seconds` for
    running ones to end (their log lines reach the API once a run ends)."""
    import asyncio

    return asyncio.run(_aserved_recoveries(since, wait_seconds))


async def _afailed_actions(since: float) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    async with get_client() as client:
        page = await client.read_events(
            filter=EventFilter(
                occurred=EventOccurredFilter(since=datetime.fromtimestamp(since, UTC)),
                event=EventNameFilter(name=["prefect.automation.action.failed"]),
            ),
            limit=50,  # the server's maximum (research/prefect.md 0.8)
        )
        return [str(e.payload.get("reason", "no reason given")) for e in page.events]


def failed_actions(since: float) -> list[str]:
    """The reasons of the automation actions that failed since `since` (epoch s)."""
    import asyncio

    try:
        return asyncio.run(_afailed_actions(since))
    except Exception as exc:  # the report says so rather than fail the demo
        return [f"(could not read the automation events: {type(exc).__name__}: {exc})"]
