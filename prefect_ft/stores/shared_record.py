"""How a breaker keeps its record in step with the shared store (the I/O half of the driver).

Decisions come from `prefect_ft.core.machine` as functions `op(record, now) -> result`; this
mixin runs them against the local record, writes the result with compare-and-set, adopts a
newer record written elsewhere, batches successes, and degrades to local state when the store is
down (then converges when it returns). It decides nothing itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from prefect_ft.core import machine
from prefect_ft.core.events import BreakerEvent
from prefect_ft.core.states import BreakerRecord
from prefect_ft.exceptions import StoreUnavailableError
from prefect_ft.stores import Versioned
from prefect_ft.stores.index import register_breaker
from prefect_ft.stores.quarantine import quarantine

__all__ = ["BreakerListener", "SharedRecordMixin", "add_global_listener", "remove_global_listener"]

# (breaker, event); typed Any here so this module never imports the driver it serves
BreakerListener = Callable[[Any, BreakerEvent], None]
log = logging.getLogger("prefect_ft.breaker")
_global_listeners: list[BreakerListener] = []
_REMOTE_KIND = {
    "OPEN": "opened",
    "HALF_OPEN": "half-opened",
    "RECOVERY": "recovering",
    "CLOSED": "closed",
    "FORCED_OPEN": "forced-open",
    "DISABLED": "disabled",
    "METRICS_ONLY": "metrics-only",
}


def add_global_listener(listener: BreakerListener) -> None:
    """Call `listener(breaker, event)` on every transition of every breaker in this process."""
    _global_listeners.append(listener)


def remove_global_listener(listener: BreakerListener) -> None:
    if listener in _global_listeners:
        _global_listeners.remove(listener)


class SharedRecordMixin:
    """The store-facing half of `CircuitBreaker` (see the module docstring)."""

    # provided by CircuitBreaker
    name: str
    key: str
    config: Any
    store: Any
    store_available: bool
    _record: BreakerRecord
    _version: int
    _offset: float
    _pending_success: bool
    _dirty: bool
    _listeners: list[BreakerListener]
    _lock: Any  # guards the local record; never held across a store round trip
    _io_lock: Any  # one store writer per breaker in this process

    def _set(self, record: BreakerRecord, version: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def now(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply_locally(self, op: Callable[[BreakerRecord, float], Any]) -> None:
        with self._lock:
            result = op(self._record, self.now())
            if result.record is not self._record:
                self._set(result.record, self._version)
                self._pending_success = True
        self._emit(result.events)

    def _apply(self, op: Callable[[BreakerRecord, float], Any]) -> Any:
        """Run a decision against the current record and write it with compare-and-set.

        `_io_lock` keeps one writer per breaker in this process; `_lock` is held only around
        the local record, never across the store round trip, so a caller that only reads or
        updates local state (an async caller on its event loop) never waits on store I/O.
        """
        events: list[BreakerEvent] = []
        with self._io_lock:
            for _ in range(16):
                with self._lock:
                    before, version = self._record, self._version
                    result = op(before, self.now())
                    if result.record is before:
                        break
                    if not self.store_available:
                        self._set(result.record, version)
                        self._dirty = True
                        break
                try:
                    ok, current = self.store.cas(
                        self.key, version, json.dumps(result.record.to_dict())
                    )
                except StoreUnavailableError as exc:
                    with self._lock:
                        self._degrade(exc)
                        self._set(result.record, self._version)
                        self._dirty = True
                    break
                with self._lock:
                    self._sync_clock(current)
                    if ok:
                        # a success batched meanwhile (`_apply_locally`) stays pending: the
                        # refresher flushes it on top of this write
                        batched = self._record is not before
                        self._set(result.record, current.version)
                        self._pending_success = self._pending_success and batched
                        break
                    if current.version < version:  # the store lost the record: rewrite ours
                        self._version = current.version
                        continue
                    if self._version != version:  # adopted a newer record meanwhile: decide again
                        continue
                    try:
                        events.extend(self._adopt(current))
                    except StoreUnavailableError as exc:
                        self._degrade(exc)
                        self._set(result.record, self._version)
                        self._dirty = True
                        break
            else:  # pragma: no cover - 16 lost races in a row
                log.warning("breaker %s: gave up writing after 16 conflicting updates", self.name)
        self._emit((*events, *result.events))
        return result

    def _sync_clock(self, v: Versioned) -> None:
        self._offset = v.store_time - self._clock()

    def _adopt(self, v: Versioned) -> list[BreakerEvent]:
        """Take a newer record written elsewhere; returns the remote transition it shows."""
        if v.version == self._version and v.data is not None:
            return []
        before = self._record.effective_state
        for _ in range(4):
            try:
                record = BreakerRecord.from_dict(json.loads(v.data)) if v.data else BreakerRecord()
                break
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                # Corrupt: keep our local view, and move the bad text aside for an operator.
                ok, v = quarantine(
                    self.store, self.key, v, json.dumps(self._record.to_dict()), repr(exc)
                )
                if ok:
                    self._set(self._record, v.version)
                    return []
        else:  # rewritten corrupt again and again by someone else: treat as an outage
            raise StoreUnavailableError(f"breaker record {self.key} keeps being corrupt")
        self._set(record, v.version)
        after = record.effective_state
        if after == before:
            return []
        kind = _REMOTE_KIND.get(after, "closed")
        return [
            BreakerEvent(
                kind, before, after, v.store_time, "changed by another process", remote=True
            )
        ]  # type: ignore[arg-type]

    def _degrade(self, exc: BaseException) -> None:
        if self.store_available:
            log.warning(
                "breaker %s: store %s unavailable, running on local state: %s",
                self.name,
                self.store.url,
                exc,
            )
        self.store_available = False

    def refresh(self, current: Versioned | None = None) -> None:
        """Re-read shared state (or take `current` from a batched read) and flush successes."""
        try:
            v = current if current is not None else self.store.read(self.key)
        except StoreUnavailableError as exc:
            self._degrade(exc)
            return
        events: list[BreakerEvent] = []
        push = back = False
        with self._lock:
            self._sync_clock(v)
            if not self.store_available:
                log.warning("breaker %s: store %s is back", self.name, self.store.url)
                self.store_available = back = True
                push = (
                    self._dirty and v.version == self._version
                )  # nobody wrote meanwhile: ours wins
                self._dirty = False
            if v.version < self._version:  # the store lost the record (e.g. a restart): ours wins
                self._version = v.version
                push = True
            elif not push and v.version != self._version:
                try:
                    events = self._adopt(v)
                except StoreUnavailableError as exc:
                    self._degrade(exc)
                    return
            flush = self._pending_success
        self._emit(events)
        if back:  # a store that was down when this breaker was built never saw its name
            register_breaker(self.store, self.name)
        if push:
            self._apply(lambda r, n: machine.Transition(replace(r)))
        elif flush:  # successes seen here reset the shared consecutive-failure count
            self._apply(lambda r, n: machine.on_outcome(r, self.config, n, "success"))
            self._pending_success = False

    def _emit(self, events: Iterable[BreakerEvent]) -> None:
        for event in events:
            for listener in (*self._listeners, *_global_listeners):
                try:
                    listener(self, event)
                except Exception:  # a listener must never break a call
                    log.exception("breaker %s: listener %r failed", self.name, listener)
