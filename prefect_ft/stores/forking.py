"""What a forked child must renew: locks another thread held at fork time, and threads.

`fork()` copies memory but only the forking thread. A lock that another thread of the parent held
at that moment stays locked in the child forever, and background threads (the refresher) are
simply gone. Objects that own such a lock register here (`relock_after_fork`); modules that own
threads register a restart (`after_fork_in_child`). One hook renews the locks first, then runs
the restarts, so a restarted thread never meets a stale lock.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["after_fork_in_child", "relock_after_fork"]

_RELOCK: weakref.WeakSet[Any] = weakref.WeakSet()
_RESTARTS: list[Callable[[], None]] = []


def relock_after_fork(obj: Any) -> None:
    """Give `obj` a fresh `obj._lock` (and `obj._io_lock`, if any) in every forked child."""
    _RELOCK.add(obj)


def after_fork_in_child(callback: Callable[[], None]) -> None:
    """Run `callback()` in every forked child, after the locks were renewed."""
    _RESTARTS.append(callback)


def _renew() -> None:
    for obj in list(_RELOCK):
        obj._lock = threading.Lock()
        if hasattr(obj, "_io_lock"):
            obj._io_lock = threading.Lock()
    for callback in _RESTARTS:
        callback()


os.register_at_fork(after_in_child=_renew)
