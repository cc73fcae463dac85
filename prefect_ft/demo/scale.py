"""The scaled-out stack: PostgreSQL, a Prefect server on it, Redis, a process work pool, workers.

`ScaleStack` starts, on free loopback ports in one temporary directory:

1. PostgreSQL (`initdb`, `pg_ctl`; as the `postgres` user when run as root, because PostgreSQL
   refuses to run as root), with its unix socket in that directory and a `prefect` database,
   and alongside it Redis (`redis-server`, no persistence), the breaker store of every process
   (`PREFECT_FT_STORE_URL=redis://...`);
2. `prefect server start` with `PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://...`;
3. `workers` processes `prefect worker start --pool ft-pool --type process` (each at most
   `worker_limit` flow runs at once; the first creates the pool, `deployments/prefect.yaml`'s);
4. the deployments of `deployments/prefect.yaml` (`prefect --no-prompt deploy --name ...`) and
   any `setup` commands, once the pool exists.

Each Prefect process is spawned at once through `prefect_ft.demo.scale_launch`, which imports
Prefect (seconds of CPU each) and then waits for what the process needs (PostgreSQL up, the API
healthy, the pool made): the imports overlap instead of following one another.

Every process gets the same environment (the API URL, the Redis store, one dead-letter key, the
repository first on `PYTHONPATH`) plus a marker variable; `close()` stops them newest first and
then kills any process still carrying the marker (flow runs a worker started in their own
session), stops PostgreSQL with `pg_ctl stop` and removes the directory. `__enter__` closes
whatever it started when a later step fails. `python -m prefect_ft.demo.scale` brings it up and
waits for Ctrl-C. The Prefect steps (server, pool, deploy, workers): `prefect_ft.demo.scale_prefect`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from prefect_ft.demo.scale_host import (
    MARKER,
    StackError,
    _free_port,
    _pg,
    have_services,
    marked_processes,
)
from prefect_ft.demo.scale_prefect import PrefectSteps

__all__ = ["REPO", "ScaleStack", "StackError", "have_services", "marked_processes"]

REPO = Path(__file__).resolve().parents[2]


class ScaleStack(PrefectSteps):
    """PostgreSQL + Prefect server + Redis + a process pool with workers; a context manager."""

    def __init__(
        self,
        *,
        workers: int = 2,
        worker_limit: int | None = 1,
        pool: str = "ft-pool",
        deployments: tuple[str, ...] = ("ran-pipeline", "recover"),
        repo: Path = REPO,
        extra_env: dict[str, str] | None = None,
        setup: tuple[list[str], ...] = (),
    ) -> None:
        if not 1 <= workers <= 8:
            raise ValueError(f"workers must be between 1 and 8, got {workers}")
        self.workers, self.worker_limit, self.pool = workers, worker_limit, pool
        self.deployments, self.repo = deployments, repo
        self.setup = setup  # commands run once the pool exists, alongside the deploy
        self.token = uuid.uuid4().hex
        self.dir = Path(tempfile.mkdtemp(prefix="prefect-ft-scale-"))
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.worker_names = [f"ft-worker-{i + 1}" for i in range(workers)]
        self.pg_port, self.redis_port, self.api_port = _free_port(), _free_port(), _free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}/api"
        self._health_url = f"{self.api_url}/health"
        self._pool_url = f"{self.api_url}/work_pools/{pool}"
        self.db_url = f"postgresql+asyncpg://prefect@127.0.0.1:{self.pg_port}/prefect"
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self._pg_started = False
        self.timings: dict[str, float] = {}  # seconds per start-up step
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.env.update(
            {
                MARKER: self.token,
                "PREFECT_HOME": str(self.dir / "home"),
                "PREFECT_API_URL": self.api_url,
                "PREFECT_API_DATABASE_CONNECTION_URL": self.db_url,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_UI_API_URL": self.api_url,
                "PREFECT_WORKER_QUERY_SECONDS": "1",  # pick runs up within a second, not 10
                "PREFECT_FT_STORE_URL": self.redis_url,
                "PREFECT_FT_DEADLETTER_KEY": f"scale-{self.token}",
                "PREFECT_LOGGING_EXTRA_LOGGERS": "prefect_ft",
                "PYTHONPATH": os.pathsep.join(
                    [str(repo), *filter(None, [os.environ.get("PYTHONPATH")])]
                ),
                "PYTHONUNBUFFERED": "1",
                **(extra_env or {}),
            }
        )

    # start-up ---------------------------------------------------------------------------------
    def __enter__(self) -> ScaleStack:
        # Every Prefect process imports Prefect (seconds of CPU, tens of seconds on a loaded
        # machine) while what it needs comes up: the server while PostgreSQL starts, the
        # workers and the deploy while the server starts (`scale_launch` waits, then runs it).
        try:
            self.start_server(wait=False)
            redis = self.spawn_redis()
            self._step("postgres", self.start_postgres)
            (self.dir / "pg.ready").touch()  # the server launcher goes on
            self._step("redis", lambda: self._wait_redis(redis))
            for i, name in enumerate(self.worker_names):
                # the first worker creates the pool (type process, its default job template);
                # the others wait for it so that they do not race to create it
                self.start_worker(name, wait_url=self._health_url if i == 0 else self._pool_url)
            setup = list(self.setup)
            if self.deployments:
                setup.insert(0, ["prefect", *self._deploy_args(*self.deployments)])
            jobs = [(f"setup-{i}", cmd) for i, cmd in enumerate(setup)]
            procs = [(name, self._launch(name, cmd, self._pool_url)) for name, cmd in jobs]
            self._step("server", self.wait_server)
            self._step("pool", self.wait_pool)
            self._step("setup", lambda: [self._wait_exit(name, p) for name, p in procs])
            self._step("workers", self.wait_workers_online)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _step(self, name: str, fn: Any) -> None:
        t0 = time.monotonic()
        fn()
        self.timings[name] = round(time.monotonic() - t0, 1)

    def _as_postgres(self, args: list[str]) -> list[str]:
        # PostgreSQL refuses to run as root: CI runs as root, so run it as the package's user
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args

    def start_postgres(self) -> None:
        pg = self.dir / "pg"
        pg.mkdir()
        if os.geteuid() == 0:
            shutil.chown(pg, "postgres", "postgres")
            os.chmod(self.dir, 0o755)  # postgres must reach its directory inside ours
        data, log = pg / "data", pg / "postgres.log"
        self._check([_pg("initdb"), "-D", str(data), "-U", "prefect", "--auth=trust",
                     "-E", "UTF8", "--no-sync"], "initdb", as_postgres=True)  # fmt: skip
        opts = f"-p {self.pg_port} -k {pg} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._check([_pg("pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts,
                     "-w", "-t", "60", "start"], "pg_ctl start", as_postgres=True)  # fmt: skip
        self._pg_started = True
        self._check([_pg("createdb"), "-h", "127.0.0.1", "-p", str(self.pg_port),
                     "-U", "prefect", "prefect"], "createdb")  # fmt: skip

    def _check(
        self, args: list[str], what: str, *, as_postgres: bool = False, timeout: float = 120
    ) -> str:
        cmd = self._as_postgres(args) if as_postgres else args
        out = subprocess.run(
            cmd, env=self.env, cwd=self.repo, capture_output=True, text=True, timeout=timeout
        )
        if out.returncode != 0:
            raise StackError(f"{what} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Any:
        with (self.dir / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(
                args, env={**self.env, **(env or {})}, cwd=self.repo, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.procs.append((name, proc))
        return proc

    def tail(self, name: str, chars: int = 3000) -> str:
        log = self.dir / f"{name}.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"

    def start_redis(self) -> None:
        self._wait_redis(self.spawn_redis())

    def spawn_redis(self) -> Any:
        return self.spawn("redis", ["redis-server", "--port", str(self.redis_port), "--bind",
                                    "127.0.0.1", "--save", "", "--appendonly", "no",
                                    "--dir", str(self.dir)])  # fmt: skip

    def _wait_redis(self, proc: Any) -> None:
        self._wait(lambda: "Ready to accept connections" in self.tail("redis"), proc, "redis", 30)

    def _launch(self, name: str, command: list[str], wait_url: str | None = None,
                wait_file: Path | None = None, imports: tuple[str, ...] = ()) -> Any:  # fmt: skip
        """Spawn `command` (`[module or module:function, *args]`) through `scale_launch`."""
        args = [sys.executable, "-m", "prefect_ft.demo.scale_launch"]
        for module in ("prefect.cli", *imports):
            args += ["--import", module]
        if wait_url:
            args += ["--wait-url", wait_url]
        if wait_file:
            args += ["--wait-file", str(wait_file)]
        return self.spawn(name, [*args, "--", *command])

    def _wait_exit(self, name: str, proc: Any, timeout: float = 300) -> None:
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StackError(
                f"{name} did not finish within {timeout} s:\n{self.tail(name)}"
            ) from None
        if code != 0:
            raise StackError(f"{name} failed ({code}):\n{self.tail(name)}")

    def _wait(self, ready: Any, proc: Any, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StackError(f"{name} did not start within {timeout} s:\n{self.tail(name)}")
            time.sleep(0.5)

    # teardown ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop everything started (also half-started), leaving no process; remove the directory."""
        for _, proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs = []
        if self._pg_started:  # before the sweep below: a fast shutdown, not a SIGKILL
            with contextlib.suppress(StackError, subprocess.TimeoutExpired):
                self._check([_pg("pg_ctl"), "-D", str(self.dir / "pg" / "data"), "-m",
                             "fast", "-w", "stop"], "pg_ctl stop", as_postgres=True)  # fmt: skip
            self._pg_started = False
        for pid in marked_processes(self.token):  # flow runs started in their own session
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - a manual entry point
    with ScaleStack() as stack:
        print(f"API {stack.api_url}; database {stack.db_url}; store {stack.redis_url}")
        print(f"workers {stack.online_workers()} on pool {stack.pool}; Ctrl-C stops everything")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
