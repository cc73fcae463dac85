"""Processes of the end-to-end test: a real `prefect server start`, `prefect-ft serve`, a component
and a workload, each in its own process group and stopped by `Stack.close` (also on failure).

Every process gets the same clean environment: no inherited `PREFECT_*` (the test session may run
under `PREFECT_TEST_MODE`), the server's API URL, one breaker store, one dead-letter key, and the
repository on `PYTHONPATH` (the replay flow imports `tests.e2e.calls`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StackError(AssertionError):
    """A process of the stack did not come up or misbehaved; the message holds its log tail."""


class Stack:
    """Start the processes one by one; `close()` stops every one started (reverse order)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}/api"
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTHONPATH"))
        }
        self.env.update(
            PREFECT_HOME=str(tmp / "home"),
            PREFECT_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_UI_ENABLED="false",
            PREFECT_SERVER_LOGGING_LEVEL="INFO",  # the actions service logs each run it starts
            PYTHONPATH=str(REPO),
            PYTHONUNBUFFERED="1",
        )
        self.port = port
        self.new_store(tmp)
        self.http = httpx.Client(base_url=self.api_url, timeout=10)

    def new_store(self, directory: Path) -> None:
        """Processes started from now on share a new breaker store (and dead-letter key)."""
        self.env["PREFECT_FT_STORE_URL"] = f"sqlite:///{directory / 'ft-store.db'}"
        self.env["PREFECT_FT_DEADLETTER_KEY"] = f"e2e-{uuid.uuid4().hex}"

    # processes -------------------------------------------------------------------------------
    def spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                args, env={**self.env, **(env or {})}, cwd=REPO, stdout=kwargs.pop("stdout", out),
                stderr=out, start_new_session=True, **kwargs,
            )  # fmt: skip
        self.procs.append((name, proc, log))
        return proc

    def tail(self, name: str, chars: int = 4000) -> str:
        log = self.tmp / f"{name}.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"

    def logs(self) -> str:
        return "\n".join(f"--- {n} ---\n{self.tail(n, 2500)}" for n, _, _ in self.procs)

    def stop(self, *names: str) -> None:
        """Stop the named processes (all when none is named), newest first, and forget them."""
        chosen = [p for p in self.procs if not names or p[0] in names]
        for _name, proc, _ in reversed(chosen):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for _name, proc, _ in reversed(chosen):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for _name, proc, _ in chosen:  # flow-run children left in a group
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.procs = [p for p in self.procs if p not in chosen]

    def close(self) -> None:
        self.http.close()
        self.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # the pieces ------------------------------------------------------------------------------
    def start_server(self, timeout: float = 180) -> None:
        prefect = str(Path(PYTHON).with_name("prefect"))
        proc = self.spawn(
            "server",
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-ui", "--analytics-off"],
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StackError(f"prefect server did not start:\n{self.tail('server')}")
            time.sleep(0.5)

    def start_serve(self, name: str = "serve", timeout: float = 180) -> None:
        cli = "from prefect_ft.cli import main; main()"
        proc = self.spawn(
            name,
            [
                PYTHON,
                "-c",
                cli,
                "serve",
                "--poll-seconds",
                "1",
                "--no-schedules",
                "--ops-port",
                "0",
            ],
        )
        # ready once the runner is polling: its deployments exist and it logged its start
        self.wait(
            lambda: proc.poll() is not None or "being served" in self.tail(name, 20000),
            timeout, "prefect-ft serve did not start",
        )  # fmt: skip
        if proc.poll() is not None:
            raise StackError(f"prefect-ft serve exited:\n{self.tail(name)}")

    def start_component(self, name: str = "component") -> dict[str, str]:
        proc = self.spawn(
            name, [PYTHON, "-m", "tests.e2e.component"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the component prints its URLs once it serves
        if not line:
            raise StackError(f"component did not start:\n{self.tail(name)}")
        return json.loads(line)

    def run(self, name: str, args: list[str], timeout: float = 120) -> None:
        proc = self.spawn(name, [PYTHON, *args])
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        if code != 0:
            raise StackError(f"{name} failed ({code}):\n{self.tail(name)}")

    # reading the API -------------------------------------------------------------------------
    def wait(self, done: Any, timeout: float, what: str, every: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = done()
            if value:
                return value
            if time.monotonic() > deadline:
                raise StackError(f"{what} within {timeout} s\n{self.logs()}")
            time.sleep(every)

    def events(self, name: str, resource_id: str, since: float) -> list[dict[str, Any]]:
        body = {
            "filter": {
                "occurred": {"since": datetime.fromtimestamp(since, UTC).isoformat()},
                "event": {"name": [name]},
                "resource": {"id": [resource_id]},
                "order": "ASC",
            },
            "limit": 50,
        }
        response = self.http.post("/events/filter", json=body)
        response.raise_for_status()
        return response.json()["events"]

    def flow_runs(self, deployment: str) -> list[dict[str, Any]]:
        body = {
            "deployments": {"name": {"any_": [deployment]}},
            "sort": "EXPECTED_START_TIME_ASC",
            "limit": 50,
        }
        response = self.http.post("/flow_runs/filter", json=body)
        response.raise_for_status()
        return response.json()

    def run_logs(self, flow_run_id: str) -> str:
        body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}
        response = self.http.post("/logs/filter", json=body)
        response.raise_for_status()
        return "\n".join(f"{r['level']} {r['message']}" for r in response.json())
