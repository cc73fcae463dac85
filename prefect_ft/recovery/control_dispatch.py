"""The transport-free side of the control channel: the operations, the handler protocol, the
checks of a request and `dispatch`, the one body that runs an operation on a handler.

Both entry points call `dispatch`: the HTTP routes of `prefect_ft.recovery.control` (which
re-exports every public name here) and the in-process client (`prefect_ft.recovery.client`,
`python:module:attr`), so both answer alike. Split from the Starlette app and the uvicorn
server so what an operation answers and how it travels each stay one concern.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
from typing import Any, Protocol, runtime_checkable

__all__ = ["OPERATIONS", "ComponentControl", "check_budget", "dispatch", "one_line"]

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
