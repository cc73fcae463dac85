"""The ways to call through a breaker: `call`, `acall`, the decorator, the context managers.

Every surface runs the same admission and outcome bodies (`circuit.admission`): the sync ones
directly, the async ones on the event loop while they only touch local state and on a worker
thread (`stores.offloop`) when they may write to the store.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar

from prefect_ft.circuit.admission import Token
from prefect_ft.core.states import CLOSED, OPEN, BreakerRecord
from prefect_ft.stores.offloop import off_loop

__all__ = ["CallingMixin"]

P = ParamSpec("P")
R = TypeVar("R")


class CallingMixin:
    """The call surfaces of `CircuitBreaker` (see the module docstring)."""

    # provided by CircuitBreaker
    _record: BreakerRecord
    _fast: bool
    _cm_tokens: contextvars.ContextVar[tuple[Any, ...]]

    if TYPE_CHECKING:  # provided by CircuitBreaker and SharedRecordMixin; declared here, not
        # defined, so nothing here shadows them in the class's method order

        def now(self) -> float: ...

        def _enter(self) -> Token | None: ...

        def _exit_ok(self, token: Token | None) -> None: ...

        def _exit_error(self, token: Token | None, exc: BaseException) -> None: ...

    # -- calling -----------------------------------------------------------------------------
    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn(*args, **kwargs)` through the breaker.

        Raises:
            CircuitOpenError: the breaker rejected the call (`fn` did not run).
        """
        token = self._enter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._exit_error(token, exc)
            raise
        self._exit_ok(token)
        return result

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await `fn(*args, **kwargs)` through the breaker; see `call`.

        Store writes (a failure's count, a half-open admission) run on a worker thread, so the
        event loop never waits on the store; calls that need none stay on the loop.
        """
        # the fast paths of `_aenter` / `_aexit_ok` inlined: no coroutine frame per call
        token = self._enter() if self._fast else await self._aenter()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            await self._aexit_error(token, exc)
            raise
        if (token is None or token[0] == "c") and not self._record.consecutive_failures:
            self._exit_ok(token)
        else:
            await self._aexit_ok(token)
        return result

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate a sync or async function (the wrapper keeps its signature)."""
        enter, exit_ok, exit_error = self._enter, self._exit_ok, self._exit_error
        if inspect.iscoroutinefunction(fn):
            aenter, aexit_ok, aexit_error = self._aenter, self._aexit_ok, self._aexit_error

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                # the body of `acall`, inlined: one coroutine frame less per call
                # and the on-loop fast paths of `_aenter` / `_aexit_ok` too: no frame at all
                token = enter() if self._fast else await aenter()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    await aexit_error(token, exc)
                    raise
                if (token is None or token[0] == "c") and not self._record.consecutive_failures:
                    exit_ok(token)
                else:
                    await aexit_ok(token)
                return result

            async_wrapper.breaker = self  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = enter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                exit_error(token, exc)
                raise
            exit_ok(token)
            return result

        wrapper.breaker = self  # type: ignore[attr-defined]
        return wrapper

    def __enter__(self) -> Self:
        token = self._enter()
        self._cm_tokens.set((*self._cm_tokens.get(), token))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        stack = self._cm_tokens.get()
        token = stack[-1]
        self._cm_tokens.set(stack[:-1])
        if exc is None:
            self._exit_ok(token)
        else:
            self._exit_error(token, exc)

    async def __aenter__(self) -> Self:
        token = await self._aenter()
        self._cm_tokens.set((*self._cm_tokens.get(), token))
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        stack = self._cm_tokens.get()
        token = stack[-1]
        self._cm_tokens.set(stack[:-1])
        if exc is None:
            await self._aexit_ok(token)
        else:
            await self._aexit_error(token, exc)

    # -- async: store I/O off the event loop ---------------------------------------------------
    # The sync bodies above run unchanged; where they may write to the store they run on a worker
    # thread. On the loop stay the calls that only touch local state (`_lock` is never held
    # across a store round trip): admission while CLOSED or a local OPEN rejection, and a
    # CLOSED success while no failures are counted. One write can still happen there: a success
    # or a stuck slow call that trips a rate condition writes that one transition.
    async def _aenter(self) -> Token | None:
        rec = self._record
        if self._fast or (
            rec.overlay is None
            and (rec.state == CLOSED or (rec.state == OPEN and self.now() < rec.open_until))
        ):
            return self._enter()
        return await off_loop(self._enter)

    async def _aexit_ok(self, token: Token | None) -> None:
        if (token is None or token[0] == "c") and not self._record.consecutive_failures:
            self._exit_ok(token)
        else:  # a probe, a ramp call, or a success that resets the shared failure count
            await _finish(off_loop(self._exit_ok, token))

    async def _aexit_error(self, token: Token | None, exc: BaseException) -> None:
        await _finish(off_loop(self._exit_error, token, exc))


async def _finish(settling: Awaitable[None]) -> None:
    """Await an outcome's write; a cancellation meanwhile does not cancel the write itself (a
    probe's result must reach the store), it only stops waiting for it."""
    await asyncio.shield(settling)
