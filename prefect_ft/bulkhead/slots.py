"""The process-local half of a bulkhead: one permit count per name, and waiting for a permit.

A `_Slots` keeps one count per bulkhead name for the whole process (`_slots_for`), shared by
every thread and every event loop: Prefect runs each async task with `asyncio.run` in a worker
thread, so an `asyncio.Semaphore` would only limit the callers of one loop. Waiting threads block
on an `Event`; waiting coroutines await a future that the releasing thread resolves with
`call_soon_threadsafe` (`_wake_soon`), so no event loop ever blocks. Permits go to waiters in
arrival order. `_off_loop` (`prefect_ft.stores.offloop`, shared with async breakers) runs blocking
store I/O on a worker thread for coroutines, and `_Decorates` turns any object with `permit()` /
`apermit()` into a decorator; both bulkhead modules use them, so they live here, below both, to
avoid an import cycle.

This module does not talk to a store, take leases or poll with backoff (`prefect_ft.bulkhead`
does; `_Slots` only counts its polling callers against `max_queue`), does not limit across
processes, and does not reset counts in a forked child (only the worker pool is per process).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from prefect_ft.stores.offloop import off_loop as _off_loop

__all__ = [
    "_Decorates",
    "_Refused",
    "_Slots",
    "_Waiter",
    "_off_loop",
    "_slots_for",
    "_wake_soon",
    "live_slots",
]

P = ParamSpec("P")
R = TypeVar("R")


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
        # queue waits of callers that had to wait (metrics read them; the fast path pays nothing)
        self.waits, self.waited_seconds = 0, 0.0

    def take(
        self, max_queue: int | None, max_wait: float, full: Callable[[], BaseException]
    ) -> None:
        """Hold a permit, blocking this thread up to `max_wait` seconds; raises `full()` if none."""
        event = threading.Event()
        try:
            waiter = self.enter(event.set, max_queue, max_wait > 0)
        except _Refused:
            raise full() from None
        if waiter is not None:
            t0 = time.monotonic()
            event.wait(max_wait)
            if not self.settle(waiter, time.monotonic() - t0):
                raise full()

    async def atake(
        self, max_queue: int | None, max_wait: float, full: Callable[[], BaseException]
    ) -> None:
        """Async twin of `take`: waits without blocking the event loop."""
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[None] = loop.create_future()
        wake = functools.partial(_wake_soon, loop, granted)
        try:
            waiter = self.enter(wake, max_queue, max_wait > 0)
        except _Refused:
            raise full() from None
        if waiter is not None:
            t0 = time.monotonic()
            try:
                await asyncio.wait((granted,), timeout=max_wait)
            except BaseException:  # cancelled: a permit given meanwhile passes to the next
                if self.settle(waiter):
                    self.release()
                raise
            if not self.settle(waiter, time.monotonic() - t0):
                raise full()

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

    def settle(self, waiter: _Waiter, waited: float | None = None) -> bool:
        """After a wait: True when `waiter` was given a permit, else it leaves the queue."""
        with self.lock:
            if waited is not None:
                self.waits, self.waited_seconds = self.waits + 1, self.waited_seconds + waited
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


def live_slots() -> dict[str, _Slots]:
    """Every bulkhead name in use in this process, with its count (metrics read it)."""
    with _registry_lock:
        return dict(_registry)


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
