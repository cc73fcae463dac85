"""One background thread per store: re-reads shared breaker records and flushes batched outcomes.

This is how a process learns of a transition made elsewhere within one interval (default
0.2 s, inside the 250 ms budget) without a store round trip on any call. It is also how a
degraded breaker notices its store is back.

Breakers are held weakly: when the last breaker of a store is gone, its thread ends and the
store is released (a process that builds and drops breakers keeps no threads). A forked child
restarts the thread of every refresher it inherited, so an inherited breaker keeps seeing other
processes' transitions and operator overrides.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from prefect_ft.exceptions import StoreUnavailableError
from prefect_ft.stores import forking
from prefect_ft.stores.base import BreakerStore

__all__ = ["Refresher"]

log = logging.getLogger("prefect_ft.refresher")


class Refresher:
    """Polls one store for the breakers attached to it (held weakly)."""

    # id(store) -> its refresher; the refresher holds the store, so the id cannot be reused
    # while the entry exists
    _instances: dict[int, Refresher] = {}
    _guard = threading.Lock()

    def __init__(self, store: BreakerStore, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._breakers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._start()

    def _start(self) -> None:
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prefect-ft-refresher", daemon=True)
        self._thread.start()

    @classmethod
    def attach(cls, breaker: Any, store: BreakerStore, interval: float) -> Refresher:
        """Poll `store` for `breaker` every `interval` seconds (or faster, if another asks)."""
        with cls._guard:  # the thread decides to stop under the same lock: no lost attach
            found = cls._instances.get(id(store))
            if found is None:
                found = cls._instances[id(store)] = cls(store, interval)
            found.interval = min(found.interval, interval)
            found._breakers.add(breaker)
            return found

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
            self.poll_once()  # its strong references to the breakers end with the call
            with Refresher._guard:
                if not self._breakers:  # the last breaker is gone: so is this thread
                    if Refresher._instances.get(id(self.store)) is self:
                        del Refresher._instances[id(self.store)]
                    return


def _restart_in_child() -> None:
    Refresher._guard = threading.Lock()
    for refresher in list(Refresher._instances.values()):
        refresher._start()


forking.after_fork_in_child(_restart_in_child)
