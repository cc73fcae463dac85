"""The recovery side of the control channel: an httpx client and an in-process twin.

`connect(endpoint)` takes a `ComponentSpec.control_endpoint`:

- `http://HOST:PORT[/PREFIX]` -> `ControlClient`, httpx with a timeout on every call;
- `python:module:attr` -> `LocalControl`, which calls a `ComponentControl` object in this
  process (for components without a server) through the same `dispatch` the HTTP app uses.

Both offer `health(deep=True)`, `reload(**body)`, `restart(**body)`, `reset_connections()`,
`resources(**budget)` and `a`-prefixed async twins. `health` returns the component's answer,
healthy or not (200 or 503); every other failure raises `ControlError` with a one-line reason:
`unreachable`, `timed out after N s`, or `HTTP <status>: <reason>`. One private body
(`_request` -> transport -> `_interpret`) serves the sync and the async path.
"""

from __future__ import annotations

import asyncio
import importlib
import ssl
import threading
from typing import Any

import httpx

from prefect_ft.exceptions import ConfigurationError, ControlError
from prefect_ft.recovery.control import OPERATIONS, dispatch, one_line

__all__ = ["DEFAULT_TIMEOUT", "ControlClient", "LocalControl", "connect"]

DEFAULT_TIMEOUT = 10.0


_tls_lock = threading.Lock()
_tls: list[ssl.SSLContext] = []


def _tls_context() -> ssl.SSLContext:
    # httpx builds a TLS context for every client, 0.3-0.7 s on a loaded 2-core machine (seen
    # here); one shared context keeps a control call at milliseconds (a client per call stays:
    # an async pool belongs to one event loop, and recovery makes few calls)
    if not _tls:
        with _tls_lock:
            if not _tls:
                _tls.append(httpx.create_ssl_context())
    return _tls[0]


def _check_timeout(timeout: float) -> float:
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0:
        raise ConfigurationError(f"timeout: must be a number of seconds > 0 (got {timeout!r})")
    return float(timeout)


def _interpret(endpoint: str, op: str, status: int, payload: Any) -> dict[str, Any]:
    """The component's answer as a dict, or ControlError with a one-line reason."""
    if not isinstance(payload, dict):
        raise ControlError(endpoint, op, f"HTTP {status}: answer is not a JSON object", status)
    if 200 <= status < 300 or (op == "health" and status == 503 and "healthy" in payload):
        return payload
    reason = one_line(str(payload.get("reason") or "no reason given"))
    raise ControlError(endpoint, op, f"HTTP {status}: {reason}", status)


class _Operations:
    """The five operations and their async twins over one `_send` / `_asend` pair."""

    endpoint: str
    timeout: float

    def _send(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def _asend(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def health(self, deep: bool = True) -> dict[str, Any]:
        """The component's health answer (`healthy` true or false)."""
        return self._send("health", {"deep": deep})

    async def ahealth(self, deep: bool = True) -> dict[str, Any]:
        """Async twin of `health`."""
        return await self._asend("health", {"deep": deep})

    def reload(self, **body: Any) -> dict[str, Any]:
        """`POST /reload` with `body` (e.g. `version="v1"`)."""
        return self._send("reload", body)

    async def areload(self, **body: Any) -> dict[str, Any]:
        """Async twin of `reload`."""
        return await self._asend("reload", body)

    def restart(self, **body: Any) -> dict[str, Any]:
        """`POST /restart`: the component drains, then restarts."""
        return self._send("restart", body)

    async def arestart(self, **body: Any) -> dict[str, Any]:
        """Async twin of `restart`."""
        return await self._asend("restart", body)

    def reset_connections(self) -> dict[str, Any]:
        """`POST /reset-connections`."""
        return self._send("reset_connections", {})

    async def areset_connections(self) -> dict[str, Any]:
        """Async twin of `reset_connections`."""
        return await self._asend("reset_connections", {})

    def resources(self, **budget: Any) -> dict[str, Any]:
        """`POST /resources` with `memory_mb` and/or `concurrency`."""
        return self._send("resources", budget)

    async def aresources(self, **budget: Any) -> dict[str, Any]:
        """Async twin of `resources`."""
        return await self._asend("resources", budget)


class ControlClient(_Operations):
    """httpx client of one component's control channel.

    Args:
        url: `http://HOST:PORT[/PREFIX]`.
        timeout: seconds for each of connect, write and read of one call.
    """

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"control_endpoint: must start with http:// or https:// (got {url!r})"
            )
        self.endpoint = url.rstrip("/")
        self.timeout = _check_timeout(timeout)

    def __repr__(self) -> str:
        return f"ControlClient({self.endpoint!r}, timeout={self.timeout})"

    def _request(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        method, path, _ = OPERATIONS[op]
        if op == "health":
            return {
                "method": method,
                "url": self.endpoint + path,
                "params": {"deep": int(bool(body["deep"]))},
            }
        return {"method": method, "url": self.endpoint + path, "json": body}

    def _failure(self, op: str, exc: httpx.HTTPError) -> ControlError:
        if isinstance(exc, httpx.ConnectTimeout):
            reason = f"unreachable (connect timed out after {self.timeout:g} s)"
        elif isinstance(exc, httpx.TimeoutException):
            reason = f"timed out after {self.timeout:g} s"
        elif isinstance(exc, httpx.ConnectError | httpx.RemoteProtocolError):
            reason = f"unreachable ({one_line(exc)})"
        else:
            reason = one_line(exc)
        return ControlError(self.endpoint, op, reason)

    def _decode(self, op: str, response: httpx.Response) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            raise ControlError(
                self.endpoint,
                op,
                f"HTTP {response.status_code}: answer is not JSON",
                response.status_code,
            ) from None
        return _interpret(self.endpoint, op, response.status_code, payload)

    def _send(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            with httpx.Client(timeout=self.timeout, verify=_tls_context()) as http:
                response = http.request(**self._request(op, body))
        except httpx.HTTPError as exc:
            raise self._failure(op, exc) from None
        return self._decode(op, response)

    async def _asend(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout, verify=_tls_context()) as http:
                response = await http.request(**self._request(op, body))
        except httpx.HTTPError as exc:
            raise self._failure(op, exc) from None
        return self._decode(op, response)


class LocalControl(_Operations):
    """In-process control of a `ComponentControl` object, with the HTTP path's answers and timeout."""

    def __init__(
        self, target: Any, endpoint: str = "python:<object>", timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.target = target
        self.endpoint = endpoint
        self.timeout = _check_timeout(timeout)

    def __repr__(self) -> str:
        return f"LocalControl({self.endpoint!r}, timeout={self.timeout})"

    def _timed_out(self, op: str) -> ControlError:
        return ControlError(self.endpoint, op, f"timed out after {self.timeout:g} s")

    def _send(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        # a daemon thread with its own loop: works whether or not the caller runs a loop, and a
        # hanging handler is abandoned after the timeout instead of hanging the recovery
        box: list[tuple[int, dict]] = []
        worker = threading.Thread(
            target=lambda: box.append(asyncio.run(dispatch(self.target, op, body))),
            name="prefect-ft-local-control",
            daemon=True,
        )
        worker.start()
        worker.join(self.timeout)
        if not box:
            raise self._timed_out(op)
        return _interpret(self.endpoint, op, *box[0])

    async def _asend(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            status, payload = await asyncio.wait_for(dispatch(self.target, op, body), self.timeout)
        except TimeoutError:
            raise self._timed_out(op) from None
        return _interpret(self.endpoint, op, status, payload)


def _resolve(endpoint: str) -> Any:
    spec = endpoint.removeprefix("python:")
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(
            f"control_endpoint: a Python entry point is python:module:attr (got {endpoint!r})"
        )
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:
        raise ControlError(endpoint, "connect", f"cannot load {spec} ({one_line(exc)})") from None
    return target


def connect(endpoint: str, timeout: float = DEFAULT_TIMEOUT) -> ControlClient | LocalControl:
    """A control client for a `ComponentSpec.control_endpoint` (HTTP URL or `python:module:attr`).

    Raises:
        ConfigurationError: the endpoint has neither form.
        ControlError: a Python entry point cannot be imported.
    """
    if isinstance(endpoint, str) and endpoint.startswith("python:"):
        return LocalControl(_resolve(endpoint), endpoint, timeout)
    if isinstance(endpoint, str) and endpoint.startswith(("http://", "https://")):
        return ControlClient(endpoint, timeout)
    raise ConfigurationError(
        "control_endpoint: must be http(s)://HOST:PORT[/PREFIX] or python:module:attr "
        f"(got {endpoint!r})"
    )
