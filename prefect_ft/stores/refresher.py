"""One background thread per store: re-reads shared breaker records and flushes batched outcomes.

This is how a process learns of a transition made elsewhere within one interval (default
0.2 s, inside the 250 ms budget) without a store round trip on any call. It is also how a
degraded breaker notices its store is back.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Any

from prefect_ft.exceptions import StoreUnavailableError
from prefect_ft.stores.base import BreakerStore

__all__ = ["Refresher"]

log = logging.getLogger("prefect_ft.refresher")


class Refresher:
    """Polls one store for the breakers registered with it (held weakly)."""

    _instances: dict[tuple[int, int], Refresher] = {}
    _guard = threading.Lock()

    def __init__(self, store: BreakerStore, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._breakers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prefect-ft-refresher", daemon=True)
        self._thread.start()

    @classmethod
    def for_store(cls, store: BreakerStore, interval: float) -> Refresher:
        """The process's refresher for `store` (a forked child gets its own thread)."""
        key = (id(store), os.getpid())
        with cls._guard:
            found = cls._instances.get(key)
            if found is None or not found._thread.is_alive():
                found = cls._instances[key] = cls(store, interval)
            found.interval = min(found.interval, interval)
            return found

    def register(self, breaker: Any) -> None:
        self._breakers.add(breaker)

    def poll_once(self) -> None:
        breakers = list(self._breakers)
        if not breakers:
            return
        try:
            current = self.store.read_many([b.key for b in breakers])
        except StoreUnavailableError as exc:
            for b in breakers:
                b._degrade(exc)
            return
        for b in breakers:
            try:
                b.refresh(current[b.key])
            except Exception:  # keep polling whatever one breaker does
                log.exception("refreshing breaker %s failed", b.name)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.poll_once()
