"""The component side of the control channel: a protocol, a Starlette app and a loopback server.

A component implements `ComponentControl` (sync or async methods) and exposes it in a few lines:

```python
from prefect_ft.recovery.control import serve_control

with serve_control(MyModelServer()) as server:
    print(server.url)  # http://127.0.0.1:PORT, the ComponentSpec's control_endpoint
    ...
```

| route | handler | answer |
|---|---|---|
| `GET /health?deep=1` | `health(deep)` | 200 `{"healthy": true, ...}` or 503 `{"healthy": false, "reason": ...}` |
| `POST /reload` | `reload(body)` | 200 `{"ok": true, ...}` |
| `POST /restart` | `restart(body)` (the handler drains, then restarts) | 200 `{"ok": true, ...}` |
| `POST /reset-connections` | `reset_connections(body)` | 200 `{"ok": true, ...}` |
| `POST /resources` | `set_resources(body)` with `memory_mb` and/or `concurrency` | 200 `{"ok": true, ...}` |

A supervisor answering for a process that is not running adds `"running": false` to its
unhealthy answer: recovery then fails the validation of an action that cannot start a process
(a connection reset, a reload) at once and moves on to a restart, instead of waiting out its
timeout (`core.recovery_limits.down_is_final`).

Failures answer `{"ok": false, "reason": "one line"}`: 422 for bad JSON or a bad budget (the
reason names the field and the allowed range), 409 when the handler refuses (it returned
`{"ok": false, ...}`), 501 when it lacks the method, 500 when it raised. A health check that
raises answers 503: a component that cannot even run its check is unhealthy, not broken.

`dispatch` (`prefect_ft.recovery.control_dispatch`) is the one body behind the routes; the in-process entry point
(`prefect_ft.recovery.client.connect("python:module:attr")`) calls it too, so both paths answer
alike.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from prefect_ft.recovery import control_dispatch
from prefect_ft.recovery.control_dispatch import OPERATIONS, dispatch, one_line
from prefect_ft.recovery.control_dispatch import (  # re-exported
    ComponentControl as ComponentControl,
)
from prefect_ft.recovery.control_dispatch import (  # re-exported
    check_budget as check_budget,
)

# the operation names come from control_dispatch, written once there
__all__ = [*control_dispatch.__all__, "ControlServer", "control_app", "serve_control"]


async def _read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"body: not valid JSON ({one_line(str(exc))})") from None
    if not isinstance(body, dict):
        raise ValueError(f"body: must be a JSON object (got {type(body).__name__})")
    return body


def control_app(handler: Any) -> Starlette:
    """A Starlette app exposing `handler`'s control operations (see the module docstring)."""

    def route(op: str) -> Route:
        http_method, path, _ = OPERATIONS[op]

        async def endpoint(request: Request) -> JSONResponse:
            if op == "health":
                deep = request.query_params.get("deep", "1").lower() not in {"0", "false", "no"}
                status, payload = await dispatch(handler, op, {"deep": deep})
                return JSONResponse(payload, status_code=status)
            try:
                body = await _read_body(request)
            except ValueError as exc:
                return JSONResponse({"ok": False, "reason": str(exc)}, status_code=422)
            status, payload = await dispatch(handler, op, body)
            return JSONResponse(payload, status_code=status)

        return Route(path, endpoint, methods=[http_method])

    return Starlette(routes=[route(op) for op in OPERATIONS])


class ControlServer:
    """A uvicorn server for one component's control app, on loopback in a daemon thread.

    Attributes:
        url: `http://HOST:PORT`, the value for `ComponentSpec.control_endpoint`.
    """

    def __init__(self, handler: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn  # the server is only needed by components that serve, not by clients

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = host, self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(
            control_app(handler),
            log_level="warning",
            lifespan="off",
            # a hanging handler must not hold stop() for long
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run, name=f"prefect-ft-control-{self.port}", daemon=True
        )
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # reported by start()
            self._error = exc

    def start(self, timeout: float = 10.0) -> ControlServer:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if self._server.started or self._error or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self._server.started:
            self.stop()
            raise RuntimeError(f"control server on {self.url} did not start: {self._error!r}")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and free the port (idempotent)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_control(handler: Any, host: str = "127.0.0.1", port: int = 0) -> ControlServer:
    """Serve `handler`'s control channel on `host:port` (0 picks a free port); started on return."""
    return ControlServer(handler, host, port).start()
