"""`memory://`: a per-process store, the reference implementation of the contract."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prefect_ft.stores.base import Versioned
from prefect_ft.stores.forking import relock_after_fork

__all__ = ["InMemoryBreakerStore"]


class InMemoryBreakerStore:
    """Records in a dict behind a lock; shared by the threads and tasks of one process.

    Args:
        clock: the store clock; defaults to `time.monotonic`. Tests pass a fake clock so that
            leases and open windows move only when the test says so.
    """

    def __init__(self, clock: Callable[[], float] | None = None, url: str = "memory://") -> None:
        self.url = url
        self.round_trips = 0
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        relock_after_fork(self)  # a forked child gets a copy of the records, and a free lock
        self._data: dict[str, tuple[str, int]] = {}

    def read(self, key: str) -> Versioned:
        with self._lock:
            self.round_trips += 1
            data, version = self._data.get(key, (None, 0))
            return Versioned(data, version, self._clock())

    def read_many(self, keys: list[str]) -> dict[str, Versioned]:
        with self._lock:
            self.round_trips += 1
            now = self._clock()
            return {k: Versioned(*self._data.get(k, (None, 0)), now) for k in keys}

    def cas(self, key: str, expected_version: int, data: str) -> tuple[bool, Versioned]:
        with self._lock:
            self.round_trips += 1
            current, version = self._data.get(key, (None, 0))
            now = self._clock()
            if version != expected_version:
                return False, Versioned(current, version, now)
            self._data[key] = (data, version + 1)
            return True, Versioned(data, version + 1, now)

    def delete(self, key: str) -> None:
        with self._lock:
            self.round_trips += 1
            self._data.pop(key, None)

    def time(self) -> float:
        return self._clock()

    def close(self) -> None:
        with self._lock:
            self._data.clear()
