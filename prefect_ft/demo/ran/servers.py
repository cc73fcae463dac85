"""The demo's processes: a Prefect server with its UI on loopback, and a restartable model server.

Both are stopped by their owner on every exit path (the demo's test checks the process table).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["CONTROL_ENDPOINT", "ModelServer", "free_port", "prefect_server", "serve_model"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _snapshot(db: Path, template: Path) -> None:
    """Copy the live server's database (consistently, through SQLite's backup) to `template`."""
    template.parent.mkdir(parents=True, exist_ok=True)
    tmp = template.with_name(f"{template.name}.{os.getpid()}.tmp")
    src, dst = sqlite3.connect(db), sqlite3.connect(tmp)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    os.replace(tmp, template)  # atomic: a concurrent demo sees all of it or none


@contextlib.contextmanager
def prefect_server(
    home: Path, timeout: float = 180.0, template: Path | None = None, port: int | None = None
) -> Iterator[str]:
    """A `prefect server start` (API and UI) on loopback; yields the UI address; stops it after.

    `template`: a database file already migrated by this Prefect version. When it exists it is
    copied in before the start; when it does not, the fresh server's database is saved there once
    it answers. A fresh SQLite database runs every migration at start, a large part of the server's
    start time on a loaded machine, and the demo starts a fresh server each run.
    """
    db = home / "prefect.db"
    own_db = template is not None and "PREFECT_API_DATABASE_CONNECTION_URL" not in os.environ
    if own_db and template.exists() and not db.exists():  # type: ignore[union-attr]
        shutil.copyfile(template, db)  # type: ignore[arg-type]
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_UI_API_URL": f"{url}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": f"{url}/api",
        # server.log then shows what the automations did (each run the actions service starts)
        "PREFECT_SERVER_LOGGING_LEVEL": "INFO",
    }
    log = open(home / "server.log", "w")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"the Prefect server exited with {proc.returncode}; see {home / 'server.log'}"
                )
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server did not answer within {timeout:.0f}s")
            time.sleep(0.3)
        if own_db and not template.exists() and db.exists():  # type: ignore[union-attr]
            with contextlib.suppress(OSError, sqlite3.Error):  # only a lost speed-up
                _snapshot(db, template)  # type: ignore[arg-type]
        os.environ["PREFECT_API_URL"] = f"{url}/api"
        yield url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the server and the processes it started
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


class ModelServer:
    """The model server process and its supervisor, which is also its control channel.

    The crash fault kills the process; `restore` (the fault's end: a supervisor of last resort)
    or a recovery's `restart` starts it again on the same port, so clients keep their URL. The
    control calls (`health`, `reload`, `restart`, `reset_connections`, `set_resources`) answer
    for the process from outside it: a crashed process cannot answer its own `/restart`, so
    recovery reaches it through `CONTROL_ENDPOINT` (this object, in this process) and `restart`
    respawns a dead process instead of asking it.
    """

    def __init__(
        self, model_dir: Path, timeout: float = 120.0, memory_mb: float | None = None
    ) -> None:
        from prefect_ft.demo.ran.model_server import start_model_server

        self.proc = start_model_server(model_dir, port=0, timeout=timeout, memory_mb=memory_mb)
        self.url = self.proc.url
        self.down = False
        self._lock = threading.Lock()

    def crash(self) -> None:
        with self._lock:
            self.proc.kill()  # SIGKILL: a crash, no cleanup
            self.down = True

    def restore(self) -> None:
        with self._lock:
            respawned = self.down or not self.proc.alive
            if respawned:
                self.proc.respawn()  # same port: the clients keep their URL
            self.down = False
        if respawned:
            self.announce_ready()

    def announce_ready(self) -> None:
        """The supervisor's readiness push: once the restarted server's deep check passes, the
        breakers of the components it serves verify it and half-open at once
        (`prefect_ft.announce_ready`) instead of waiting out their open time."""
        from prefect_ft.core.probe import healthy_answer
        from prefect_ft.recovery.readiness import announce_ready

        if not healthy_answer(self.health(deep=True)):
            return
        for name in SERVED:
            try:
                announce_ready(name)
            except Exception as exc:  # a store hiccup must not fail the restart itself
                print(f"model server: announcing {name} ready failed: {exc}", file=sys.stderr)

    def stop(self) -> None:
        global current
        if current is self:
            current = None
        self.proc.stop()  # also removes its log directory

    # -- the control channel (prefect_ft.recovery.control's ComponentControl) ---------------
    def _client(self) -> Any:
        from prefect_ft.recovery.client import ControlClient

        return ControlClient(self.url, timeout=60.0)

    def _forward(self, op: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        from prefect_ft.exceptions import ControlError

        try:
            call = getattr(self._client(), op)
            return call() if op == "reset_connections" else call(**(body or {}))
        except ControlError as exc:
            return {"ok": False, "healthy": False, "reason": exc.reason}

    def health(self, deep: bool = False) -> dict[str, Any]:
        if self.down or not self.proc.alive:
            # `running: false`: no wait makes this pass; only a restart (see the executor)
            return {
                "healthy": False,
                "running": False,
                "reason": "the model server process is not running",
            }
        try:
            return self._client().health(deep=deep)
        except Exception as exc:  # unreachable: unhealthy, with the reason
            return {"healthy": False, "reason": str(getattr(exc, "reason", exc))}

    def restart(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.down or not self.proc.alive:
            self.restore()
            return {"ok": True, "restarted": "respawned the dead process"}
        return self._forward("restart", body)

    def reload(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._forward("reload", body)

    def reset_connections(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._forward("reset_connections", body)

    def set_resources(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._forward("resources", body)

    def set_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /faults` on the model server (a fault injected inside it); raises when the
        server does not take it (down, or a bad body)."""
        import httpx

        answer = httpx.post(f"{self.url}/faults", json=body, timeout=10.0)
        answer.raise_for_status()
        return dict(answer.json())


# the components whose calls the model server answers (as `apply.SERVED`)
SERVED = ("ml-inference", "ipc")
# the running demo's model server, for `python:` control endpoints (set by `serve_model`)
current: ModelServer | None = None
CONTROL_ENDPOINT = "python:prefect_ft.demo.ran.servers:current"


def serve_model(
    model_dir: Path, timeout: float = 120.0, memory_mb: float | None = None
) -> ModelServer:
    """Start the model server (with a memory budget of `memory_mb` when given) and make it this
    process's `current` (its control endpoint)."""
    global current
    current = ModelServer(model_dir, timeout, memory_mb)
    return current
