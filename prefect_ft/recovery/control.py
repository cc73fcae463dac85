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

`dispatch` is the one body behind the routes; the in-process entry point
(`prefect_ft.recovery.client.connect("python:module:attr")`) calls it too, so both paths answer
alike.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import socket
import threading
from typing import Any, Protocol, runtime_checkable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = [
    "OPERATIONS",
    "ComponentControl",
    "ControlServer",
    "check_budget",
    "control_app",
    "dispatch",
    "one_line",
    "serve_control",
]

# operation -> (HTTP method, path, handler method)
OPERATIONS: dict[str, tuple[str, str, str]] = {
    "health": ("GET", "/health", "health"),
    "reload": ("POST", "/reload", "reload"),
    "restart": ("POST", "/restart", "restart"),
    "reset_connections": ("POST", "/reset-connections", "reset_connections"),
    "resources": ("POST", "/resources", "set_resources"),
}

# A budget outside these is a typo, not a plan: 1 TiB of memory, 10,000 concurrent calls.
MAX_MEMORY_MB = 1_048_576
MAX_CONCURRENCY = 10_000
MAX_REASON = 300


@runtime_checkable
class ComponentControl(Protocol):
    """What a component offers to recovery. Methods may be sync or async; each returns a dict."""

    def health(self, deep: bool) -> dict[str, Any]:
        """`{"healthy": bool, "reason": str, ...}`; deep means real work (one generated token)."""
        ...

    def reload(self, body: dict[str, Any]) -> dict[str, Any]:
        """Reload the model or configuration (`body` may name a `version`)."""
        ...

    def restart(self, body: dict[str, Any]) -> dict[str, Any]:
        """Graceful restart: drain in-flight work, then restart."""
        ...

    def reset_connections(self, body: dict[str, Any]) -> dict[str, Any]:
        """Drop and reopen outbound connections and pools."""
        ...

    def set_resources(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a new budget: `memory_mb` and/or `concurrency`."""
        ...


def one_line(exc: BaseException | str) -> str:
    """A reason that fits one log line: `Type: first line of the message`, at most 300 chars."""
    if isinstance(exc, BaseException):
        text = str(exc).strip()
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    else:
        text = str(exc)
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def check_budget(body: dict[str, Any]) -> dict[str, Any]:
    """The `/resources` body, checked: returns it or raises ValueError naming the field."""
    allowed = {"memory_mb", "concurrency"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (allowed: concurrency, memory_mb)")
    if not body:
        raise ValueError("body: give memory_mb and/or concurrency")
    if "memory_mb" in body:
        mem = body["memory_mb"]
        ok = isinstance(mem, int | float) and not isinstance(mem, bool) and math.isfinite(mem)
        if not ok or not 0 < mem <= MAX_MEMORY_MB:
            raise ValueError(f"memory_mb: must be a number in (0, {MAX_MEMORY_MB}] (got {mem!r})")
    if "concurrency" in body:
        conc = body["concurrency"]
        ok = isinstance(conc, int) and not isinstance(conc, bool)
        if not ok or not 1 <= conc <= MAX_CONCURRENCY:
            raise ValueError(
                f"concurrency: must be an integer in [1, {MAX_CONCURRENCY}] (got {conc!r})"
            )
    return body


async def _in_thread(fn: Any, *args: Any) -> Any:
    # A daemon thread per call, not a pool: a handler that hangs is abandoned when its caller
    # times out or the server stops, where a pool's shutdown would wait for it forever.
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result, exc = fn(*args), None
        except BaseException as error:
            result, exc = None, error
        try:
            loop.call_soon_threadsafe(settle, result, exc)
        except RuntimeError:  # the loop closed while the handler ran: nobody waits any more
            pass

    threading.Thread(target=run, name="prefect-ft-control-call", daemon=True).start()
    return await future


async def _call(fn: Any, *args: Any) -> Any:
    # a sync handler runs in a thread so a slow drain never blocks the event loop
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = await _in_thread(fn, *args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def dispatch(handler: Any, op: str, body: dict[str, Any] | None = None) -> tuple[int, dict]:
    """Run one operation on `handler` and return `(HTTP status, JSON payload)`; never raises."""
    if op not in OPERATIONS:
        return 404, {
            "ok": False,
            "reason": f"operation: unknown {op!r} (allowed: {', '.join(OPERATIONS)})",
        }
    method_name = OPERATIONS[op][2]
    fn = getattr(handler, method_name, None)
    body = dict(body or {})
    if op == "health":
        if fn is None:
            return 501, {"healthy": False, "reason": "component has no health()"}
        try:
            result = await _call(fn, bool(body.get("deep", True)))
        except Exception as exc:
            return 503, {"healthy": False, "reason": one_line(exc)}
        if not isinstance(result, dict):
            return 500, {
                "healthy": False,
                "reason": f"health() returned {type(result).__name__}, not a dict",
            }
        if result.get("healthy") is True:
            return 200, result
        return 503, {
            **result,
            "healthy": False,
            "reason": one_line(result.get("reason") or "unhealthy"),
        }
    if fn is None:
        return 501, {"ok": False, "reason": f"component has no {method_name}()"}
    if op == "resources":
        try:
            check_budget(body)
        except ValueError as exc:
            return 422, {"ok": False, "reason": one_line(str(exc))}
    try:
        result = await _call(fn, body)
    except Exception as exc:
        return 500, {"ok": False, "reason": one_line(exc)}
    if result is None:
        result = {}
    if not isinstance(result, dict):
        return 500, {
            "ok": False,
            "reason": f"{method_name}() returned {type(result).__name__}, not a dict",
        }
    if result.get("ok") is False:
        return 409, {**result, "reason": one_line(result.get("reason") or "refused")}
    return 200, {**result, "ok": True}


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
