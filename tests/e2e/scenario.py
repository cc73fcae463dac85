"""One recovery scenario on a real server, timed (the end-to-end test runs it once, the benchmark
`benchmarks/recovery.py` ten times).

Sequence: the component serves the workload -> it starts failing (onset) -> the workload's
breaker opens (`prefect-ft.breaker.opened`, read from the API) -> the automation starts
`recover` (its flow run, read from the API) -> `recover` restarts the component through the
control channel and validates its health -> the breaker half-opens, the workload's next call
probes it, the ramp closes it (`prefect-ft.breaker.closed`) -> the automation starts
`replay-dead-letters`, which replays the refused calls: every call that was not failed by the
component is served exactly once.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.calls import COMPONENT
from tests.e2e.stack import PYTHON, Stack, StackError

BREAKER_ID = f"prefect-ft.breaker.{COMPONENT}"
WAIT = 120.0  # seconds any one step may take before the scenario fails (the targets are asserted apart)


@dataclass(frozen=True)
class Timings:
    """Seconds between the steps (wall clock; every process runs on this machine).

    Attributes:
        open_s: onset -> breaker open (the `opened` event's `occurred`).
        running_s: breaker open -> `recover` flow run running (its `start_time`).
        healthy_s: onset -> the first call the component serves again.
        closed_s: onset -> breaker closed (the `closed` event).
        replayed: dead-lettered calls replayed.
    """

    open_s: float
    running_s: float
    healthy_s: float
    closed_s: float
    replayed: int


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _calls(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _runs(stack: Stack, deployment: str, since: float) -> list[dict[str, Any]]:
    return [r for r in stack.flow_runs(deployment) if _ts(r["created"]) >= since]


def _finished(stack: Stack, deployment: str, since: float) -> dict[str, Any] | None:
    """The first run of `deployment` created since `since`, once it is in a final state."""
    runs = _runs(stack, deployment, since)
    if not runs:
        return None
    run = runs[0]
    return run if run["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None


def run_scenario(tmp: Path, every: float = 1.0) -> Timings:
    """Start a server in `tmp`, run the scenario once, stop everything; raise on any failure."""
    with Stack(tmp) as stack:
        stack.start_server()
        return run_once(stack, tmp, every)


def run_once(stack: Stack, run_dir: Path, every: float = 1.0, tag: str = "") -> Timings:
    """One scenario on `stack`'s server, with a new store, serve, component and workload (all
    stopped at the end, also on failure; the server keeps running)."""
    names = [f"{n}{tag}" for n in ("serve", "component", "setup", "workload")]
    out, stop = run_dir / "calls.jsonl", run_dir / "stop"
    stack.new_store(run_dir)
    workload: subprocess.Popen[bytes] | None = None
    try:
        stack.start_serve(names[0])
        urls = stack.start_component(names[1])
        stack.run(names[2], ["-m", "tests.e2e.workload", "setup", urls["control"]])
        workload = stack.spawn(
            names[3],
            [PYTHON, "-m", "tests.e2e.workload", "run", urls["work"], str(out), str(stop),
             str(every)],
            # its refused calls log errors; sent to the API they would add SQLite writes that
            # delay the recovery run's creation (Prefect retries 503 "database is locked")
            env={"PREFECT_LOGGING_TO_API_ENABLED": "false"},
        )  # fmt: skip
        stack.wait(
            lambda: sum(c["outcome"] == "ok" for c in _calls(out)) >= 5, 120,
            "the workload did not serve 5 calls",
        )  # fmt: skip
        return _scenario(stack, urls, out)
    finally:
        stop.touch()
        deadline = time.monotonic() + 30
        while workload is not None and workload.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        stack.stop(*names)


def _scenario(stack: Stack, urls: dict[str, str], out: Path) -> Timings:
    httpx.post(f"{urls['work']}/fail", timeout=5).raise_for_status()
    onset = httpx.get(f"{urls['work']}/status", timeout=5).json()["fault_at"]

    since = onset - 1
    opened = stack.wait(lambda: stack.events("prefect-ft.breaker.opened", BREAKER_ID, since), WAIT,
                        "the breaker did not open")  # fmt: skip
    opened_at = _ts(opened[0]["occurred"])

    def running() -> dict[str, Any] | None:
        runs = [r for r in _runs(stack, "recover", since) if r.get("start_time")]
        return runs[0] if runs else None

    recover = stack.wait(running, WAIT, "no recover flow run started")
    recover_started = _ts(recover["start_time"])

    def serving_again() -> float | None:
        ok = [c["t"] for c in _calls(out) if c["outcome"] == "ok" and c["t"] > onset]
        return ok[0] if ok else None

    healthy_at = stack.wait(serving_again, WAIT, "the component never served again")
    closed = stack.wait(lambda: stack.events("prefect-ft.breaker.closed", BREAKER_ID, since), WAIT,
                        "the breaker did not close")  # fmt: skip
    closed_at = _ts(closed[0]["occurred"])

    done = stack.wait(lambda: _finished(stack, "recover", since), WAIT, "recover did not finish")
    if done["state_type"] != "COMPLETED":
        raise StackError(f"recover ended {done['state_name']}:\n{stack.run_logs(done['id'])}")
    replay = stack.wait(lambda: _finished(stack, "replay-dead-letters", since), WAIT,
                        "replay-dead-letters did not finish")  # fmt: skip
    if replay["state_type"] != "COMPLETED":
        raise StackError(f"replay ended {replay['state_name']}:\n{stack.run_logs(replay['id'])}")

    # in == out: every call the component did not fail is served exactly once (replays included)
    def accounted() -> tuple[set[int], Counter[int]] | None:
        calls = _calls(out)
        expected = {c["x"] for c in calls if c["outcome"] != "failed"}
        served = Counter(httpx.get(f"{urls['work']}/status", timeout=5).json()["served"])
        return (expected, served) if expected <= set(served) else None

    try:
        expected, served = stack.wait(accounted, 30, "dead-lettered calls were not all replayed")
    except StackError:
        raise StackError(f"replay: {stack.run_logs(replay['id'])}") from None
    twice = sorted(x for x in expected if served[x] != 1)
    assert not twice, f"calls served more than once: {twice}"
    rejected = sum(c["outcome"] == "rejected" for c in _calls(out))
    assert rejected > 0, "no call was refused: the breaker never protected the component"
    return Timings(
        open_s=opened_at - onset,
        running_s=recover_started - opened_at,
        healthy_s=healthy_at - onset,
        closed_s=closed_at - onset,
        replayed=rejected,
    )
