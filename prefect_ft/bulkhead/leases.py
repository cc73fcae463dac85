"""The shared scope of a `Bulkhead`: its leases in the store record, renewal and degradation.

`Bulkhead` (`prefect_ft.bulkhead.permits`) grants permits: the process-local slot first, then,
for scope "shared", a lease from this base. Here is everything that touches the store: the
compare-and-set loop on `prefect-ft:bulkhead:<name>` (decisions in `prefect_ft.core.bulkhead`),
the store-clock offset, the background renewal thread, and falling back to the local limit
while the store is down. Split from the permits so waiting and store I/O each stay one concern.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from prefect_ft.core.bulkhead import (
    BulkheadConfig,
    Lease,
    acquire_lease,
    decode_leases,
    encode_leases,
    release_lease,
    renew_leases,
)
from prefect_ft.exceptions import StoreUnavailableError
from prefect_ft.stores import BreakerStore, Versioned, shared_store

__all__ = ["SharedLeases"]

log = logging.getLogger("prefect_ft.bulkhead")
_STORE_RETRY_SECONDS = 5.0  # while degraded, how long before a call tries the store again
_CAS_ATTEMPTS = 32


class SharedLeases:
    """The store side of a shared-scope bulkhead (the base of `Bulkhead`)."""

    config: BulkheadConfig
    name: str
    key: str
    store: BreakerStore | None
    store_available: bool
    _args: tuple[Any, Any]
    _clock: Callable[[], float]
    _lock: threading.Lock
    _held: set[str]
    _renewer: threading.Thread | None
    _last: Versioned | None
    _offset: float
    _retry_store_at: float

    @property
    def _max(self) -> int:
        return self.config.max_concurrent

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
