"""Recovery records in the breaker store: the running-recovery slots and each component's state.

| key | record |
|---|---|
| `prefect-ft:recovery:slots` | `core.recovery_limits.RecoverySlots`: leases, one per component, N in all |
| `prefect-ft:recovery:state:<component>` | `core.recovery.RecoveryState`: phase, backoff, stats |

Every write is a read-modify-`cas` loop, so two processes never both take a component's slot;
the leases expire (store clock), so a crashed recovery frees its slot. The store calls block:
async callers await them through `stores.offloop.off_loop`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from prefect_ft.core.recovery import RecoveryState
from prefect_ft.core.recovery_limits import Grant, RecoverySlots
from prefect_ft.exceptions import StoreUnavailableError
from prefect_ft.stores.base import BreakerStore

__all__ = [
    "SLOTS_KEY",
    "acquire_slot",
    "load_state",
    "release_slot",
    "save_state",
    "state_key",
]

SLOTS_KEY = "prefect-ft:recovery:slots"
T = TypeVar("T")
_CAS_ATTEMPTS = 100


def state_key(component: str) -> str:
    return f"prefect-ft:recovery:state:{component}"


def _update(
    store: BreakerStore,
    key: str,
    decode: Callable[[str | None], T],
    change: Callable[[T, float], tuple[T | None, Any]],
    encode: Callable[[T], str],
) -> Any:
    """Apply `change(value, store_time) -> (new value or None for no write, result)` with cas."""
    for _ in range(_CAS_ATTEMPTS):
        current = store.read(key)
        new, result = change(decode(current.data), current.store_time)
        if new is None:
            return result
        ok, _ = store.cas(key, current.version, encode(new))
        if ok:
            return result
    raise StoreUnavailableError(f"{key}: {_CAS_ATTEMPTS} compare-and-set attempts lost")


def _slots(data: str | None) -> RecoverySlots:
    return RecoverySlots.from_dict(json.loads(data)) if data else RecoverySlots()


def _dump_slots(slots: RecoverySlots) -> str:
    return json.dumps(slots.to_dict())


def acquire_slot(
    store: BreakerStore, component: str, ttl_seconds: float, max_total: int, renew: bool = False
) -> Grant:
    """Take (or, with `renew`, extend our own) slot for `component` until store time + ttl."""

    def change(slots: RecoverySlots, now: float) -> tuple[RecoverySlots | None, Grant]:
        base = RecoverySlots(max_total, slots.leases)
        if renew:
            base = base.release(component, now)
        grant = base.acquire(component, now, ttl_seconds)
        return (grant.slots if grant.granted else None), grant

    return _update(store, SLOTS_KEY, _slots, change, _dump_slots)


def release_slot(store: BreakerStore, component: str) -> None:
    """Free `component`'s slot."""

    def change(slots: RecoverySlots, now: float) -> tuple[RecoverySlots, None]:
        return slots.release(component, now), None

    _update(store, SLOTS_KEY, _slots, change, _dump_slots)


def load_state(store: BreakerStore, component: str) -> RecoveryState:
    """The component's recovery state (a fresh one when none is stored)."""
    data = store.read(state_key(component)).data
    return RecoveryState.from_dict(json.loads(data)) if data else RecoveryState(component)


def save_state(store: BreakerStore, state: RecoveryState) -> None:
    """Store `state` (the caller holds the component's slot, so last writer is the only writer)."""

    def change(_: Any, __: float) -> tuple[RecoveryState, None]:
        return state, None

    _update(
        store,
        state_key(state.component),
        lambda data: data,
        change,
        lambda s: json.dumps(s.to_dict()),
    )
