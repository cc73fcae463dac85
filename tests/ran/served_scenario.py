"""The demo's served recovery, alone: run as `python -m tests.ran.served_scenario TMP`.

The demo's pieces (`prefect_server`, the model server and its supervisor's control channel on
loopback, the block presets, `served`), then the model server crashes and the `ipc` breaker
opens (with a long open time, so only a recovery can move it on). The `prefect-ft.breaker.opened`
event must start `recover` in `prefect-ft serve`, which restarts the model server through the
supervisor and half-opens the breaker. Prints one JSON line: the served runs, the breaker's
state, whether the model server runs again. Everything started is stopped on the way out.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(tmp: Path) -> dict:
    from prefect_ft.demo.ran.servers import free_port, prefect_server, serve_model
    from tests.ran.model_support import PARAGRAPHS, TEST_BUDGET

    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_FT_STORE_URL"] = f"sqlite:///{home}/prefect-ft.db"
    os.environ["PREFECT_FT_DEADLETTER_KEY"] = f"served-{os.getpid()}"
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    port = free_port()
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    from prefect_ft.demo.ran.model import ensure_model

    model_dir = ensure_model(tmp / "models", PARAGRAPHS, TEST_BUDGET)
    out: dict = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(prefect_server(home, 900.0, None, port))
        server = serve_model(model_dir, 600.0)
        stack.callback(server.stop)
        from prefect_ft.demo.ran.apply import apply_demo_blocks
        from prefect_ft.demo.ran.served import served, served_recoveries
        from prefect_ft.recovery.control import serve_control

        control = serve_control(server)
        stack.callback(control.stop)
        apply_demo_blocks(REPO / "blocks", control.url, lambda _m: None)
        serve = stack.enter_context(served(home, REPO, {}))
        if not serve.wait_ready(900.0):
            return {"error": f"serve not ready: {serve.tail()}"}
        out["serve_ready_after"] = serve.ready_after
        from prefect_ft import CircuitBreaker
        from prefect_ft.tasks import events

        events.install()  # the breaker's transitions go out as prefect-ft.breaker.* events
        since = time.time()
        server.crash()
        ipc = CircuitBreaker("ipc", failure_threshold=1, open_seconds=900.0, refresh_seconds=0.5)
        with contextlib.suppress(ConnectionError):
            ipc.call(lambda: (_ for _ in ()).throw(ConnectionError("connection reset")))
        out["opened"] = ipc.state
        deadline = time.monotonic() + 600.0  # a loaded 2-core machine: generous
        runs: list = []
        while time.monotonic() < deadline:
            ipc.refresh()
            if ipc.state != "OPEN":
                break
            time.sleep(1.0)
        out["breaker"] = ipc.state
        out["seconds_to_move_on"] = round(time.time() - since, 1)
        runs = served_recoveries(since, wait_seconds=120.0)
        out["runs"] = runs
        out["model_server_running"] = server.proc.alive and not server.down
    return out


if __name__ == "__main__":
    result = main(Path(sys.argv[1]))
    print("RESULT " + json.dumps(result, default=str), flush=True)
