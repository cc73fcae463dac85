"""A real `prefect server start` with the UI, and Debian's Chromium to drive it.

The server runs in its own process group with its own `PREFECT_HOME` (SQLite), on a free
loopback port; the prefect-ft block types are registered with `prefect block register`.
Chromium is the system binary (`shutil.which("chromium")`); Playwright's own browsers are never
downloaded. Without Chromium the tests fail under `CI=true` and are skipped (loudly) elsewhere.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class UIServer:
    url: str  # the UI, e.g. http://127.0.0.1:PORT
    api_url: str  # its API, e.g. http://127.0.0.1:PORT/api
    log: Path


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required under CI=true)")
    warnings.warn(f"UI TEST NOT RUN: {reason}", stacklevel=2)
    pytest.skip(f"UI TEST NOT RUN: {reason}")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system Chromium, waiting for it a while in case apt is still installing it."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed")
    deadline = time.monotonic() + float(os.environ.get("PREFECT_FT_CHROMIUM_WAIT", "120"))
    while True:
        found = shutil.which("chromium")
        if found:
            return found
        if time.monotonic() > deadline:
            _unavailable("no `chromium` on PATH (apt-get install chromium)")
        time.sleep(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started with `start_new_session=True`, with everything it started."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def client_env(server: UIServer, home: Path) -> dict[str, str]:
    """The environment of a user's process that talks to `server` (its own PREFECT_HOME, breaker
    store and dead-letter key under `home`, so nothing is shared with other tests)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTHONPATH"))}
    env.update(
        PYTHONPATH=str(REPO),
        PREFECT_HOME=str(home / "client-home"),
        PREFECT_API_URL=server.api_url,
        PREFECT_FT_STORE_URL=f"sqlite:///{home / 'prefect-ft.db'}",
        PREFECT_FT_DEADLETTER_KEY=f"ui-test-{uuid.uuid4().hex}",  # >= 16 characters
    )
    return env


def keep_artifact(path: Path) -> None:
    """Copy a test artifact (a screenshot) to `$PREFECT_FT_ARTIFACTS` when that is set."""
    target = os.environ.get("PREFECT_FT_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(target) / path.name)


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    """`prefect server start` on a free loopback port, prefect-ft block types registered."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    url, api_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="true",
        PREFECT_UI_API_URL=api_url,  # the UI calls this API; its default is port 4200
        PREFECT_API_URL=api_url,
    )
    prefect = str(Path(sys.executable).with_name("prefect"))
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not _healthy(f"{api_url}/health"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prefect server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        done = subprocess.run(
            [prefect, "block", "register", "-m", "prefect_ft.blocks"],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        yield UIServer(url, api_url, log)
    finally:
        stop_process(proc)
