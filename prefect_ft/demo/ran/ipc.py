"""The `ipc` component: the client connection pool between pipeline tasks and the model server.

`ModelClient(url, pool_size=8, timeout=30)` keeps one httpx pool (sync) and one per event loop
(async), bounded by `pool_size` connections. `reset()` drops the pools and builds fresh ones: the
connection-reset recovery. Failures come out as exceptions whose class names the failure type
(DESIGN §7 classifies by the class names in the MRO):

| what happened | raised |
|---|---|
| refused, reset, dropped mid-answer, server restarting (503) | `ModelServerUnavailable` (a `ConnectionError`) |
| connect/read/pool timeout | `ModelTimeout` (a `TimeoutError`) |
| the server's generation failed (500) | `ModelInferenceError` |
| concurrency limit (429) or memory budget (507) | `ModelResourceExhausted` (`ResourceExhausted`) |
| a bad request (422) | `ValueError` with the server's reason |
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any

import httpx

__all__ = [
    "ModelClient",
    "ModelInferenceError",
    "ModelResourceExhausted",
    "ModelServerUnavailable",
    "ModelTimeout",
    "ResourceExhausted",
]


class ModelServerUnavailable(ConnectionError):
    """The model server could not be reached, or cut the connection."""


class ModelTimeout(TimeoutError):
    """The model server did not answer in time."""


class ModelInferenceError(RuntimeError):
    """The model server answered, but generation failed."""


class ResourceExhausted(RuntimeError):
    """A budget (memory, concurrency) refused the call."""


class ModelResourceExhausted(ResourceExhausted):
    """The model server refused the call: concurrency limit or memory budget."""


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("error") or body.get("reason") or body)
    except ValueError:
        return response.text[:200] or response.reason_phrase


class ModelClient:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 8,
        timeout: float = 30.0,
        connect_timeout: float = 2.0,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url: must be an http(s) URL (got {url!r})")
        if not 1 <= pool_size <= 1024:
            raise ValueError(f"pool_size: must be in [1, 1024] (got {pool_size})")
        if not 0 < timeout <= 3600:
            raise ValueError(f"timeout: must be seconds in (0, 3600] (got {timeout})")
        self.url = url.rstrip("/")
        self.pool_size = pool_size
        self._timeout = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
        self._limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
        self._lock = threading.Lock()
        self._sync: httpx.Client | None = None
        # one pool per event loop (an async pool is bound to its loop); keyed weakly by the loop
        # object, since a new loop can reuse a dead one's id()
        self._async: weakref.WeakKeyDictionary[Any, httpx.AsyncClient] = weakref.WeakKeyDictionary()
        self.resets = 0

    # -- pools -----------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._sync is None:
                self._sync = httpx.Client(
                    base_url=self.url, timeout=self._timeout, limits=self._limits
                )
            return self._sync

    def _aclient(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async.get(loop)
            if client is None:
                client = httpx.AsyncClient(
                    base_url=self.url, timeout=self._timeout, limits=self._limits
                )
                self._async[loop] = client
            return client

    def reset(self) -> None:
        """Drop every pooled connection; the next call opens fresh ones."""
        with self._lock:
            old, self._sync = self._sync, None
            stale = list(self._async.values())
            self._async = weakref.WeakKeyDictionary()
            self.resets += 1
        if old is not None:
            old.close()
        for client in stale:
            # an async pool can only be closed on its own loop; dropping it closes its sockets
            # when it is collected, and it is never handed out again
            del client

    def close(self) -> None:
        self.reset()

    def __enter__(self) -> ModelClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one body for sync and async -------------------------------------------------------------

    @staticmethod
    def _payload(prompt: str, max_tokens: int) -> dict[str, Any]:
        if not isinstance(prompt, str) or not prompt:
            raise ValueError("prompt: must be a non-empty string")
        return {"prompt": prompt, "max_tokens": int(max_tokens)}

    def _translate(self, exc: httpx.HTTPError) -> Exception:
        where = f"model server at {self.url}"
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return ModelTimeout(f"{where} timed out ({detail})")
        # the kind of failure first, in words: the detection pass classifies a failed run from
        # its state message, where "model server ... ConnectError" read as a model error
        return ModelServerUnavailable(
            f"connection refused or reset ({detail}): {where} unreachable or dropped the connection"
        )

    def _result(self, response: httpx.Response) -> str:
        status = response.status_code
        if status == 200:
            try:
                return str(response.json()["text"])
            except (ValueError, KeyError, TypeError):
                raise ModelServerUnavailable(
                    f"model server at {self.url} sent a malformed answer"
                ) from None
        reason = f"model server at {self.url}: HTTP {status}: {_reason(response)}"
        if status == 503:
            raise ModelServerUnavailable(reason)
        if status in (429, 507):
            # said in words: the detection pass classifies a failed run from its state message
            # (the class name alone is not a type it knows)
            raise ModelResourceExhausted(f"resource exhausted: {reason}")
        if status == 422:
            raise ValueError(reason)
        raise ModelInferenceError(reason)

    def generate(self, prompt: str, max_tokens: int = 32) -> str:
        payload = self._payload(prompt, max_tokens)
        try:
            response = self._client().post("/generate", json=payload)
        except httpx.HTTPError as exc:
            raise self._translate(exc) from exc
        return self._result(response)

    async def agenerate(self, prompt: str, max_tokens: int = 32) -> str:
        payload = self._payload(prompt, max_tokens)
        try:
            response = await self._aclient().post("/generate", json=payload)
        except httpx.HTTPError as exc:
            raise self._translate(exc) from exc
        return self._result(response)
