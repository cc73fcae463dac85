"""Bulkheads: cap how many calls run at once, in one process, across processes, or server-side.

`Bulkhead` with scope "process" keeps one count per bulkhead name for the whole process, shared
by every thread and every event loop: Prefect runs each async task with `asyncio.run` in a
worker thread, so an `asyncio.Semaphore` would only limit the callers of one loop. Waiting
threads block on an `Event`; waiting coroutines await a future that the releasing thread
resolves with `call_soon_threadsafe`, so no event loop ever blocks. Permits go to waiters in
arrival order.

With scope "shared" a call also needs a lease in the store record `prefect-ft:bulkhead:<name>`,
written with compare-and-set (`prefect_ft.core.bulkhead` holds the lease maths). A lease expires
`lease_seconds` after its last renewal, so a killed holder frees its slot; a background thread
renews live holders every `lease_seconds / 3`. A full bulkhead is polled with jittered backoff.
While the store is down, only the process-local limit applies and a warning is logged once.

`GlobalConcurrencyBulkhead` delegates to a Prefect global concurrency limit, for whole flows.

This module does not choose policies (`prefect_ft.policies`) or publish metrics (`available`
is what a metrics exporter reads).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
import os
import random
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from typing import Any, ParamSpec, TypeVar

from prefect_ft.core.bulkhead import (
    BulkheadConfig,
    Lease,
    acquire_lease,
    decode_leases,
    encode_leases,
    free_slots,
    poll_delay,
    release_lease,
    renew_leases,
)
from prefect_ft.core.validation import require
from prefect_ft.exceptions import BulkheadFullError, ConfigurationError, StoreUnavailableError
from prefect_ft.stores import BreakerStore, Versioned, shared_store

__all__ = ["Bulkhead", "GlobalConcurrencyBulkhead"]

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger("prefect_ft.bulkhead")
_holder_ids = itertools.count()
_HOST = socket.gethostname()
_STORE_RETRY_SECONDS = 5.0  # while degraded, how long before a call tries the store again
_CAS_ATTEMPTS = 32


class _Refused(Exception):
    """The caller may not wait (no wait budget, or the queue is full)."""


class _Waiter:
    __slots__ = ("granted", "wake")

    def __init__(self, wake: Callable[[], None]) -> None:
        self.granted = False
        self.wake = wake


class _Slots:
    """The process-wide count of one bulkhead name: permits held and waiters in arrival order.

    Invariant: waiters exist only while `held >= limit`, so a newcomer never overtakes them.
    A release hands its permit straight to the first waiter (`held` stays the same).
    """

    def __init__(self, limit: int) -> None:
        self.lock = threading.Lock()
        self.limit, self.held, self.pollers = limit, 0, 0
        self.waiters: deque[_Waiter] = deque()

    def enter(
        self, wake: Callable[[], None], max_queue: int | None, may_wait: bool
    ) -> _Waiter | None:
        """Take a permit (returns None) or queue a waiter (returns it); `_Refused` otherwise."""
        with self.lock:
            if self.held < self.limit:
                self.held += 1
                return None
            if not may_wait or not self._room(max_queue):
                raise _Refused
            waiter = _Waiter(wake)
            self.waiters.append(waiter)
            return waiter

    def settle(self, waiter: _Waiter) -> bool:
        """After a wait: True when `waiter` was given a permit, else it leaves the queue."""
        with self.lock:
            if not waiter.granted:
                self.waiters.remove(waiter)
            return waiter.granted

    def release(self) -> None:
        self._grant(-1)

    def resize(self, limit: int) -> None:
        """A newer configuration of the same name changes the limit for every holder."""
        self._grant(0, limit)

    def _grant(self, delta: int, limit: int | None = None) -> None:
        woken = []
        with self.lock:
            self.held += delta
            self.limit = self.limit if limit is None else limit
            while self.waiters and self.held < self.limit:
                waiter = self.waiters.popleft()
                waiter.granted, self.held = True, self.held + 1
                woken.append(waiter.wake)
        for wake in woken:  # outside the lock: a wake-up may run arbitrary loop code
            wake()

    def _room(self, max_queue: int | None) -> bool:
        return max_queue is None or len(self.waiters) + self.pollers < max_queue

    def poll(self, max_queue: int | None, delta: int) -> bool:
        """Count a caller polling the store as waiting (+1) or no longer (-1)."""
        with self.lock:
            if delta > 0 and not self._room(max_queue):
                return False
            self.pollers += delta
            return True

    def free(self) -> int:
        return max(0, self.limit - self.held)

    def waiting(self) -> int:
        return len(self.waiters) + self.pollers


_registry: weakref.WeakValueDictionary[str, _Slots] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def _slots_for(name: str, limit: int) -> _Slots:
    with _registry_lock:
        slots = _registry.get(name)
        if slots is None:
            slots = _registry[name] = _Slots(limit)
    if slots.limit != limit:
        slots.resize(limit)
    return slots


def _wake_soon(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    try:
        loop.call_soon_threadsafe(lambda: future.done() or future.set_result(None))
    except RuntimeError:  # loop closed: its waiter was cancelled and settles its own permit
        pass


async def _off_loop(fn: Callable[..., R], *args: Any, undo: Callable[[R], None] | None = None) -> R:
    """Run blocking store I/O on a worker thread, so no event loop waits on a socket or a lock."""
    global _pool
    with _registry_lock:
        if _pool is None or _pool[0] != os.getpid():  # a forked child has no pool threads
            _pool = (os.getpid(), ThreadPoolExecutor(8, thread_name_prefix="prefect-ft-bulkhead"))
        future = _pool[1].submit(fn, *args)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        if undo is not None:  # the thread may still succeed: undo its effect when it does

            def settle(done: Future[R]) -> None:
                if not done.cancelled() and done.exception() is None:
                    undo(done.result())

            future.add_done_callback(settle)
        raise


class _Decorates:
    """`__call__` for any bulkhead with `permit()` and `apermit()`."""

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate a sync or async function; the wrapper keeps its name and signature."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with self.apermit():  # type: ignore[attr-defined]
                    return await fn(*args, **kwargs)

            async_wrapper.bulkhead = self  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.permit():  # type: ignore[attr-defined]
                return fn(*args, **kwargs)

        wrapper.bulkhead = self  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]


class Bulkhead(_Decorates):
    """At most `max_concurrent` calls at once, per process or across every process on a store.

    Bulkheads of the same name in one process share one count (the latest configuration's
    `max_concurrent` applies), so a policy rebuilt on reload still limits the same calls.

    Args:
        config: the limits and the scope.
        store: for scope "shared": a `BreakerStore` or its URL; default `PREFECT_FT_STORE_URL`,
            else SQLite under `PREFECT_HOME`.
        clock: the local clock used to estimate store time (monotonic seconds); tests pass a fake
            one together with a `memory://` store on the same clock. Waits use real time.

    Raises:
        BulkheadFullError: from `permit()` / `apermit()` when no permit came within
            `max_wait_seconds`, or at once when `max_queue` callers are already waiting.

    Examples:
        ```python
        from prefect_ft.bulkhead import Bulkhead
        from prefect_ft.core.bulkhead import BulkheadConfig

        gpu = Bulkhead(BulkheadConfig("ml-inference", max_concurrent=2, max_wait_seconds=30))

        @gpu
        async def generate(prompt: str) -> str: ...

        with gpu.permit():
            ...
        ```
    """

    def __init__(
        self,
        config: BulkheadConfig,
        *,
        store: BreakerStore | str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(config, BulkheadConfig):
            raise TypeError(f"config must be a BulkheadConfig (got {type(config).__name__})")
        self.config, self.name = config, config.name
        self.key = f"prefect-ft:bulkhead:{config.name}"
        self._args = (store, clock)
        self._clock = clock or time.monotonic
        self._slots = _slots_for(config.name, config.max_concurrent)
        self._lock = threading.Lock()
        self._held: set[str] = set()  # this object's live leases, renewed in the background
        self._renewer: threading.Thread | None = None
        self._last: Versioned | None = None  # the record as last seen; may be stale
        self._offset = 0.0  # store clock minus local clock
        self._retry_store_at = 0.0
        self.store_available = True
        self.store: BreakerStore | None = None
        self._shared = config.scope == "shared"
        if self._shared:
            try:
                self._reach()
            except StoreUnavailableError as exc:  # e.g. an unwritable SQLite path: opened later
                self._degrade(exc)

    def __getstate__(self) -> dict[str, Any]:
        # Locks and threads cannot travel (process-pool and Dask runners pickle tasks).
        return {"config": self.config, "args": self._args}

    def __setstate__(self, state: dict[str, Any]) -> None:
        store, clock = state["args"]
        self.__init__(state["config"], store=store, clock=clock)  # type: ignore[misc]

    def __repr__(self) -> str:
        c = self.config
        return f"Bulkhead({c.name!r}, max_concurrent={c.max_concurrent}, scope={c.scope!r})"

    @property
    def available(self) -> int:
        """Free permits as this process sees them (the last store answer, for scope "shared")."""
        local, last = self._slots.free(), self._last
        if not self._shared or not self.store_available or last is None:
            return local
        return min(local, free_slots(decode_leases(last.data), self._now(), self._max))

    @property
    def waiting(self) -> int:
        """Callers in this process waiting for a permit of this name (the queue `max_queue` caps)."""
        return self._slots.waiting()

    @property
    def _max(self) -> int:
        return self.config.max_concurrent

    # -- permits: sync and async twins -------------------------------------------------------
    @contextmanager
    def permit(self) -> Iterator[None]:
        """Hold a permit for the `with` block; raises `BulkheadFullError` when none comes."""
        holder = self._acquire()
        try:
            yield
        finally:
            self._release(holder)

    @asynccontextmanager
    async def apermit(self) -> AsyncIterator[None]:
        """Async twin of `permit`: waits without blocking the event loop."""
        holder = await self._aacquire()
        try:
            yield
        finally:
            await self._arelease(holder)

    def _acquire(self) -> str | None:
        start = time.monotonic()
        event = threading.Event()
        waiter = self._enter(event.set, start)
        if waiter is not None:
            event.wait(self.config.max_wait_seconds)
            if not self._slots.settle(waiter):
                raise self._full(start)
        try:
            return self._lease(start) if self._shared else None
        except BaseException:
            self._slots.release()
            raise

    async def _aacquire(self) -> str | None:
        start = time.monotonic()
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[None] = loop.create_future()
        waiter = self._enter(functools.partial(_wake_soon, loop, granted), start)
        if waiter is not None:
            try:
                await asyncio.wait((granted,), timeout=self.config.max_wait_seconds)
            except BaseException:  # cancelled: a permit given meanwhile passes to the next
                if self._slots.settle(waiter):
                    self._slots.release()
                raise
            if not self._slots.settle(waiter):
                raise self._full(start)
        try:
            return await self._alease(start) if self._shared else None
        except BaseException:
            self._slots.release()
            raise

    def _release(self, holder: str | None) -> None:
        try:
            if holder is not None:
                self._drop(holder)
        finally:
            self._slots.release()

    async def _arelease(self, holder: str | None) -> None:
        try:
            if holder is not None:  # on cancellation the worker thread still drops the lease
                await _off_loop(self._drop, holder)
        finally:
            self._slots.release()

    def _lease(self, start: float) -> str | None:
        holder = f"{_HOST}:{os.getpid()}:{next(_holder_ids)}"
        with self._polling(start) as next_delay:
            while (got := self._try_lease(holder)) is False:
                time.sleep(next_delay())
        return holder if got else None

    async def _alease(self, start: float) -> str | None:
        holder = f"{_HOST}:{os.getpid()}:{next(_holder_ids)}"
        undo = lambda got: got and self._drop(holder)  # noqa: E731
        with self._polling(start) as next_delay:
            while (got := await _off_loop(self._try_lease, holder, undo=undo)) is False:
                await asyncio.sleep(next_delay())
        return holder if got else None

    # -- shared helpers ----------------------------------------------------------------------
    def _enter(self, wake: Callable[[], None], start: float) -> _Waiter | None:
        try:
            return self._slots.enter(wake, self.config.max_queue, self.config.max_wait_seconds > 0)
        except _Refused:
            raise self._full(start) from None

    def _full(self, start: float) -> BulkheadFullError:
        return BulkheadFullError(self.name, self._max, time.monotonic() - start)

    @contextmanager
    def _polling(self, start: float) -> Iterator[Callable[[], float]]:
        """Yields `next_delay()`: the next backoff, or `BulkheadFullError` once the wait is over."""
        attempts = itertools.count()
        counted = False

        def next_delay() -> float:
            nonlocal counted
            if not counted and not self._slots.poll(self.config.max_queue, +1):
                raise self._full(start)
            counted = True
            remaining = start + self.config.max_wait_seconds - time.monotonic()
            delay = poll_delay(next(attempts), random.random(), remaining)
            if delay is None:
                raise self._full(start)
            return delay

        try:
            yield next_delay
        finally:
            if counted:
                self._slots.poll(None, -1)

    def _reach(self) -> BreakerStore:
        if self.store is None:
            self.store = shared_store(self._args[0], clock=self._args[1])
        return self.store

    def _now(self) -> float:
        return self._clock() + self._offset

    def _seen(self, v: Versioned) -> Versioned:
        self._last, self._offset = v, v.store_time - self._clock()
        return v

    def _write(self, op: Callable[[tuple[Lease, ...], float], tuple[Lease, ...] | None]) -> bool:
        """Apply `op(leases, now)` to the record with compare-and-set; False when `op` declines."""
        store = self._reach()
        v, fresh = self._last, False
        for _ in range(_CAS_ATTEMPTS):
            if v is None:
                v, fresh = self._seen(store.read(self.key)), True
            new = op(decode_leases(v.data), self._now())
            if new is None:
                if fresh:
                    return False
                v = None  # judged on a cached copy: read again before declining
                continue
            ok, current = store.cas(self.key, v.version, encode_leases(new))
            v, fresh = self._seen(current), True
            if ok:
                return True
        return False  # lost every race: treated as full, the caller backs off and tries again

    def _try_lease(self, holder: str) -> bool | None:
        """One attempt: True (leased), False (full), None (store down: the local limit applies)."""
        if self._store_paused():
            return None
        c = self.config
        try:
            ok = self._write(lambda ls, now: acquire_lease(ls, now, holder, c.max_concurrent, c.lease_seconds))  # fmt: skip
        except StoreUnavailableError as exc:
            self._degrade(exc)
            return None
        self._recovered()
        if ok:
            with self._lock:
                self._held.add(holder)
                if self._renewer is None:
                    self._renewer = threading.Thread(
                        target=self._renew_loop,
                        name=f"prefect-ft-bulkhead-{self.name}",
                        daemon=True,
                    )
                    self._renewer.start()
        return ok

    def _drop(self, holder: str) -> None:
        with self._lock:  # before the write, so a concurrent renewal cannot bring it back
            self._held.discard(holder)
        if self._store_paused():
            return  # the lease expires on its own
        try:
            self._write(lambda leases, now: release_lease(leases, now, holder))
        except StoreUnavailableError as exc:
            self._degrade(exc)

    def renew(self) -> int:
        """Extend this object's leases to `lease_seconds` from now; returns how many it holds.

        A background thread calls this every `lease_seconds / 3` while leases are held.
        """
        lost: frozenset[str] = frozenset()

        def op(leases: tuple[Lease, ...], now: float) -> tuple[Lease, ...] | None:
            nonlocal lost
            with self._lock:  # read at each attempt: a holder released meanwhile is not renewed
                holders = set(self._held)
            new, lost = renew_leases(leases, now, holders, self._max, self.config.lease_seconds)
            return new

        try:
            self._write(op)
        except StoreUnavailableError as exc:
            self._degrade(exc)
        else:
            self._recovered()
            if lost:
                log.warning("bulkhead %s: %d lease(s) expired and were taken", self.name, len(lost))
        return len(self._held)

    def _renew_loop(self) -> None:
        while True:
            time.sleep(self.config.lease_seconds / 3)
            with self._lock:
                if not self._held:
                    self._renewer = None
                    return
            self.renew()

    def _store_paused(self) -> bool:
        """Degraded, and too soon to try the store again."""
        return not self.store_available and time.monotonic() < self._retry_store_at

    def _degrade(self, exc: BaseException) -> None:
        self._retry_store_at = time.monotonic() + _STORE_RETRY_SECONDS
        if self.store_available:
            self.store_available = False
            log.warning(
                "bulkhead %s: store %s unavailable, limiting this process alone to %d calls: %s",
                self.name,
                getattr(self.store, "url", "?"),
                self._max,
                exc,
            )

    def _recovered(self) -> None:
        if not self.store_available:
            self.store_available = True
            log.warning("bulkhead %s: store %s is back", self.name, getattr(self.store, "url", "?"))


class GlobalConcurrencyBulkhead(_Decorates):
    """A bulkhead on a Prefect global concurrency limit, shared by every worker and machine.

    !!! warning
        Each acquire costs about 0.1 s (HTTP calls, a lease-renewal thread, events), and a full
        limit is polled at the server's `Retry-After`. Use it for whole flows or coarse stages
        (a call of 5-10 s or more), never per call: use `Bulkhead` for that.

    The limit must exist (`prefect gcl create NAME --limit N`, or the UI): acquisition is strict,
    so a missing or inactive limit raises `ConfigurationError` instead of silently not limiting.

    Args:
        limit_name: the global concurrency limit's name.
        occupy: slots one holder takes.
        max_wait_seconds: how long to wait for the slots; None waits as long as it takes,
            0 gives up at the first refusal.
        lease_seconds: the server frees the slots of a crashed holder after this long (60 s to 1 day).

    Examples:
        ```python
        from prefect import flow
        from prefect_ft.bulkhead import GlobalConcurrencyBulkhead

        model_server = GlobalConcurrencyBulkhead("ml-inference", max_wait_seconds=600)

        @flow
        @model_server
        def generate_batch(batch_id: str) -> None: ...
        ```
    """

    def __init__(
        self,
        limit_name: str,
        occupy: int = 1,
        *,
        max_wait_seconds: float | None = None,
        lease_seconds: float = 300.0,
    ) -> None:
        require(isinstance(limit_name, str) and limit_name != "", "limit_name", "a non-empty string", limit_name)  # fmt: skip
        require(isinstance(occupy, int) and not isinstance(occupy, bool) and occupy >= 1, "occupy", "an integer >= 1", occupy)  # fmt: skip
        w = max_wait_seconds
        require(w is None or (isinstance(w, int | float) and 0 <= w < float("inf")), "max_wait_seconds", ">= 0 seconds or None", w)  # fmt: skip
        t = lease_seconds
        require(isinstance(t, int | float) and 60 <= t <= 86400, "lease_seconds", "in [60, 86400] seconds", t)  # fmt: skip
        self.limit_name, self.occupy = limit_name, occupy
        self.max_wait_seconds, self.lease_seconds = max_wait_seconds, lease_seconds

    def __repr__(self) -> str:
        return f"GlobalConcurrencyBulkhead({self.limit_name!r}, occupy={self.occupy})"

    def _options(self) -> dict[str, Any]:
        w = self.max_wait_seconds
        return {
            "occupy": self.occupy,
            "timeout_seconds": w or None,
            "max_retries": 0 if w == 0 else None,  # 0: one try, no wait at the server's pace
            "lease_duration": self.lease_seconds,
            "strict": True,
        }

    def _error(self, exc: Exception, start: float, size: int | None) -> Exception | None:
        """The error to raise instead of `exc` (None: let `exc` through unchanged).

        `size` is the limit's size, read only when `_is_full(exc)`, for the message.
        """
        if size is not None:
            return BulkheadFullError(self.limit_name, size, time.monotonic() - start)
        from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

        if isinstance(exc, ConcurrencySlotAcquisitionError) and exc.__cause__ is None:
            # with strict=True this is raised without a cause exactly when no active limit exists
            return ConfigurationError(
                f"limit_name must name an existing, active global concurrency limit "
                f"(got {self.limit_name!r}); create it with "
                f"`prefect gcl create {self.limit_name} --limit N`"
            )
        return None

    @contextmanager
    def permit(self) -> Iterator[None]:
        """Hold the limit's slots for the `with` block (see the class for the costs)."""
        from prefect.concurrency.sync import concurrency

        start = time.monotonic()
        with ExitStack() as stack:
            try:
                stack.enter_context(concurrency(self.limit_name, **self._options()))
            except Exception as exc:
                size = self._size() if _is_full(exc) else None
                if (error := self._error(exc, start, size)) is None:
                    raise
                raise error from exc
            yield

    @asynccontextmanager
    async def apermit(self) -> AsyncIterator[None]:
        """Async twin of `permit`."""
        from prefect.concurrency.asyncio import concurrency

        start = time.monotonic()
        async with AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(concurrency(self.limit_name, **self._options()))
            except Exception as exc:
                size = await _off_loop(self._size) if _is_full(exc) else None
                if (error := self._error(exc, start, size)) is None:
                    raise
                raise error from exc
            yield

    def _size(self) -> int:
        """The limit's size for `BulkheadFullError` (0 when it cannot be read)."""
        from prefect import get_client

        try:
            with get_client(sync_client=True) as client:
                return int(client.read_global_concurrency_limit_by_name(self.limit_name).limit)
        except Exception:  # only a message detail: never hide the real error behind this one
            return 0


def _is_full(exc: Exception) -> bool:
    """A timed-out wait, or (with `max_retries=0`) the server's first "locked" (423) answer."""
    from prefect.concurrency.asyncio import (
        AcquireConcurrencySlotTimeoutError,
        ConcurrencySlotAcquisitionError,
    )

    status = getattr(getattr(exc.__cause__, "response", None), "status_code", None)
    return isinstance(exc, AcquireConcurrencySlotTimeoutError) or (
        isinstance(exc, ConcurrencySlotAcquisitionError) and status == 423
    )
