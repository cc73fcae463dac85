"""`Bulkhead`: cap how many calls run at once, in one process or across processes.

With scope "process" only the process-local count applies: one per bulkhead name, shared by
every thread and event loop, granted in arrival order (`prefect_ft.bulkhead.slots`).

With scope "shared" a call also needs a lease in the store record `prefect-ft:bulkhead:<name>`,
written with compare-and-set (`prefect_ft.core.bulkhead` holds the lease maths). A lease expires
`lease_seconds` after its last renewal, so a killed holder frees its slot; a background thread
renews live holders every `lease_seconds / 3`. A full bulkhead is polled with jittered backoff.
While the store is down, only the process-local limit applies and a warning is logged once.
The store side (leases, renewal, degradation) is `prefect_ft.bulkhead.leases`.

`GlobalConcurrencyBulkhead` (server-side, for whole flows) lives in `prefect_ft.bulkhead.global_concurrency`
and is re-exported here. This module does not choose policies (`prefect_ft.tasks.policies`) or
publish metrics (`available` is what a metrics exporter reads).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from prefect_ft.bulkhead.global_concurrency import GlobalConcurrencyBulkhead
from prefect_ft.bulkhead.leases import SharedLeases
from prefect_ft.bulkhead.slots import _Decorates, _off_loop, _slots_for
from prefect_ft.core.bulkhead import (
    BulkheadConfig,
    decode_leases,
    free_slots,
    poll_delay,
)
from prefect_ft.exceptions import BulkheadFullError, StoreUnavailableError
from prefect_ft.stores import BreakerStore, Versioned

__all__ = ["Bulkhead", "GlobalConcurrencyBulkhead"]

_holder_ids = itertools.count()
_HOST = socket.gethostname()


class Bulkhead(_Decorates, SharedLeases):
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
        from prefect_ft.bulkhead.permits import Bulkhead
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
        c = self.config
        self._slots.take(c.max_queue, c.max_wait_seconds, lambda: self._full(start))
        try:
            return self._lease(start) if self._shared else None
        except BaseException:
            self._slots.release()
            raise

    async def _aacquire(self) -> str | None:
        start = time.monotonic()
        c = self.config
        await self._slots.atake(c.max_queue, c.max_wait_seconds, lambda: self._full(start))
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
