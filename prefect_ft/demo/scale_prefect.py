"""The Prefect side of the scaled stack: the server, the work pool, the deployments, the workers.

`ScaleStack` (`prefect_ft.demo.scale`) owns the directory, the environment, PostgreSQL, Redis,
spawning and teardown; this base holds the steps that start and wait for Prefect processes
through the `prefect` CLI and the server's REST API. Split from the stack so the host services
and the Prefect steps each stay one concern.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import httpx

from prefect_ft.demo.scale_host import StackError

__all__ = ["PrefectSteps"]


class PrefectSteps:
    """Start and wait for the Prefect server, pool, deployments and workers (`ScaleStack`'s base)."""

    api_port: int
    api_url: str
    _health_url: str
    dir: Path
    pool: str
    repo: Path
    procs: list[tuple[str, subprocess.Popen[bytes]]]
    worker_limit: int | None
    worker_names: list[str]
    # and ScaleStack's _check, _launch, _wait and tail, which these steps call

    def start_server(self, timeout: float = 240, *, wait: bool = True) -> None:
        """Start the server; with `wait=False` it imports its app now and starts serving once
        `pg.ready` exists in the stack's directory (`wait_server` then waits for it)."""
        command = ["prefect", "server", "start", "--host", "127.0.0.1", "--port",
                   str(self.api_port), "--no-ui", "--analytics-off"]  # fmt: skip
        ready = None if wait else self.dir / "pg.ready"
        self._launch("server", command, wait_file=ready, imports=("prefect.server.api.server",))
        if wait:
            self.wait_server(timeout)

    def wait_server(self, timeout: float = 240) -> None:
        def healthy() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(self._health_url, timeout=5).status_code == 200
            return False

        proc = next(p for name, p in self.procs if name == "server")
        self._wait(healthy, proc, "server", timeout)

    def prefect(self, *args: str, timeout: float = 240) -> str:
        """Run the `prefect` CLI against this stack from the repository root; its output."""
        return self._check(
            [sys.executable, "-m", "prefect", *args], f"prefect {' '.join(args)}", timeout=timeout
        )

    def create_pool(self) -> None:
        self.prefect("work-pool", "create", self.pool, "--type", "process")

    def wait_pool(self, timeout: float = 180) -> None:
        """Wait until the workers have created the pool (each creates it when missing)."""

        def exists() -> bool:
            r = httpx.get(f"{self.api_url}/work_pools/{self.pool}", timeout=10)
            return r.status_code == 200 and r.json().get("type") == "process"

        deadline = time.monotonic() + timeout
        while not exists():
            for name, proc in self.procs:
                if name in self.worker_names and proc.poll() is not None:
                    raise StackError(f"worker {name} exited:\n{self.tail(name)}")
            if time.monotonic() > deadline:
                raise StackError(f"pool {self.pool} not created within {timeout} s")
            time.sleep(0.5)

    def deploy(self, *names: str) -> None:
        """Deploy these deployments of deployments/prefect.yaml (all when none is named)."""
        self.prefect(*self._deploy_args(*names))

    def _deploy_args(self, *names: str) -> list[str]:
        which = [a for n in names for a in ("--name", n)] or ["--all"]
        return ["--no-prompt", "deploy", "--prefect-file",
                str(self.repo / "deployments" / "prefect.yaml"), *which]  # fmt: skip

    def start_worker(self, name: str, wait_url: str | None = None) -> None:
        args = ["prefect", "worker", "start", "--pool", self.pool, "--type", "process",
                "--name", name]  # fmt: skip
        if self.worker_limit:
            args += ["--limit", str(self.worker_limit)]
        self._launch(name, args, wait_url, imports=("prefect.workers.process",))

    def online_workers(self) -> list[str]:
        response = httpx.post(f"{self.api_url}/work_pools/{self.pool}/workers/filter", json={},
                              timeout=10)  # fmt: skip
        response.raise_for_status()
        return sorted(w["name"] for w in response.json() if w.get("status") == "ONLINE")

    def wait_workers_online(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while set(self.online_workers()) < set(self.worker_names):
            for name, proc in self.procs:
                if name in self.worker_names and proc.poll() is not None:
                    raise StackError(f"worker {name} exited:\n{self.tail(name)}")
            if time.monotonic() > deadline:
                raise StackError(f"workers not online within {timeout} s: {self.online_workers()}")
            time.sleep(1)
