"""`off_loop`: run blocking store I/O on a worker thread, so no event loop waits on it.

Store calls block (a SQLite lock, a Redis round trip, an outage's timeout). A coroutine that made
them directly would stall every other task of its loop, so async breakers and bulkheads await
them here instead. One small pool per process (a forked child makes its own: pool threads do not
survive fork). The caller's context variables go along, so listeners that read a run context
(Prefect events) see the same one as in sync code.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from prefect_ft.stores.forking import after_fork_in_child

__all__ = ["off_loop"]

R = TypeVar("R")

_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    pid = os.getpid()
    found = _pool
    if found is not None and found[0] == pid:
        return found[1]
    with _pool_lock:
        if _pool is None or _pool[0] != pid:  # a forked child: the parent's pool threads are gone
            _pool = (pid, ThreadPoolExecutor(8, thread_name_prefix="prefect-ft-io"))
        return _pool[1]


def _relock() -> None:
    global _pool_lock
    _pool_lock = threading.Lock()


after_fork_in_child(_relock)


async def off_loop(fn: Callable[..., R], *args: Any, undo: Callable[[R], None] | None = None) -> R:
    """Await `fn(*args)` run on a worker thread.

    Args:
        undo: when the awaiting task is cancelled but the thread still completes `fn`, called
            with its result (a permit taken for nobody is given back).
    """
    future = _executor().submit(contextvars.copy_context().run, fn, *args)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        if undo is not None:  # the thread may still succeed: undo its effect when it does

            def settle(done: Future[R]) -> None:
                if not done.cancelled() and done.exception() is None:
                    undo(done.result())

            future.add_done_callback(settle)
        raise
