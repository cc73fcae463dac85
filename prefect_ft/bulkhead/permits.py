"""`Bulkhead`: cap how many calls run at once, in one process or across processes.

With scope "process" only the process-local count applies: one per bulkhead name, shared by
every thread and event loop, granted in arrival order (`prefect_ft.bulkhead.slots`).

With scope "shared" a call also needs a lease in the store record `prefect-ft:bulkhead:<name>`,
written with compare-and-set (`prefect_ft.core.bulkhead` holds the lease maths). A lease expires
`lease_seconds` after its last renewal, so a killed holder frees its slot; a background thread
renews live holders every `lease_seconds / 3`. A full bulkhead is polled with jittered backoff.
While the store is down, only the process-local limit applies and a warning is logged once.

`GlobalConcurrencyBulkhead` (server-side, for whole flows) lives in `prefect_ft.bulkhead.global_concurrency`
and is re-exported here. This module does not choose policies (`prefect_ft.tasks.policies`) or
publish metrics (`available` is what a metrics exporter reads).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from prefect_ft.bulkhead.global_concurrency import GlobalConcurrencyBulkhead
from prefect_ft.bulkhead.slots import _Decorates, _off_loop, _slots_for
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
from prefect_ft.exceptions import BulkheadFullError, StoreUnavailableError
from prefect_ft.stores import BreakerStore, Versioned, shared_store

__all__ = ["Bulkhead", "GlobalConcurrencyBulkhead"]

log = logging.getLogger("prefect_ft.bulkhead")
_holder_ids = itertools.count()
_HOST = socket.gethostname()
_STORE_RETRY_SECONDS = 5.0  # while degraded, how long before a call tries the store again
_CAS_ATTEMPTS = 32


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
