"""The demo's processes: a Prefect server with its UI on loopback, and a restartable model server.

Both are stopped by their owner on every exit path (the demo's test checks the process table).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ModelServer", "prefect_server"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def prefect_server(home: Path, timeout: float = 180.0) -> Iterator[str]:
    """A `prefect server start` (API and UI) on loopback; yields the UI address; stops it after."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_UI_API_URL": f"{url}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": f"{url}/api",
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
    """The model server; the crash fault kills it and restores it on the same port (`respawn`)."""

    def __init__(self, model_dir: Path) -> None:
        from prefect_ft.demo.ran.model_server import start_model_server

        self.proc = start_model_server(model_dir, port=0)
        self.url = self.proc.url
        self.down = False

    def crash(self) -> None:
        self.proc.kill()  # SIGKILL: a crash, no cleanup
        self.down = True

    def restore(self) -> None:
        if self.down:
            self.proc.respawn()  # same port: the clients keep their URL
            self.down = False

    def stop(self) -> None:
        self.proc.stop()  # also removes its log directory
