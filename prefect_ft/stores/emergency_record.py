"""The emergency-stop record in the store, as a breaker built during a stop needs it.

`prefect_ft.ops.emergency` writes the record (`prefect-ft:emergency`) and forces every breaker
in the index open. A breaker first built after the stop read the index is not in that list, so
the breaker itself joins the stop when it registers a new name: it forces itself open and adds
its name, with the overlay it had, to the record, so `clear` puts it back like the others. Why
this is race-free: the stop writes its claim before it reads the index, and a new breaker
registers in the index before it reads the claim, so one of the two always sees the other.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from prefect_ft.core import machine
from prefect_ft.core.states import BreakerRecord, OverlayName
from prefect_ft.stores.base import BreakerStore

__all__ = ["EMERGENCY_KEY", "join_active_stop", "overlay_op", "read_active"]

EMERGENCY_KEY = "prefect-ft:emergency"


def read_active(store: BreakerStore) -> tuple[dict[str, Any] | None, int]:
    """The active stop (None when there is none) and the record's version."""
    v = store.read(EMERGENCY_KEY)
    try:
        data = json.loads(v.data) if v.data else None
    except ValueError:  # unreadable: a stop must still be possible (it overwrites it)
        data = None
    if not isinstance(data, dict) or not data.get("active"):
        return None, v.version
    return data, v.version


def overlay_op(
    seen: list[OverlayName | None], want: OverlayName | None, only_if: OverlayName | None = None
) -> Callable[[BreakerRecord, float], machine.Transition]:
    """A decision that records the overlay it replaced (the last call is the written one)."""

    def op(r: BreakerRecord, now: float) -> machine.Transition:
        seen.append(r.overlay)
        if only_if is not None and r.overlay != only_if:
            return machine.Transition(r)
        return machine.set_overlay(r, want, now)

    return op


def join_active_stop(breaker: Any) -> bool:
    """Force a newly registered `breaker` open when a stop is active, and list it in the stop.

    Returns whether it joined. When the stop is cleared between the force and the listing, the
    force is undone (only if it is still FORCED_OPEN: an operator's later change stands).
    """
    store = breaker.store
    active, version = read_active(store)
    if active is None:
        return False
    seen: list[OverlayName | None] = []
    breaker._apply(overlay_op(seen, "FORCED_OPEN"))
    if not breaker.store_available:
        return False
    for _ in range(32):  # lost races are the stop's own writes or other joiners
        if active is None or active.get("id") is None:
            break
        listed = active.get("breakers", {})
        # the stop may have listed us after we forced ourselves: our own view of before wins
        if breaker.name in listed and seen[-1] in (listed[breaker.name], "FORCED_OPEN"):
            return True
        active["breakers"] = {**listed, breaker.name: seen[-1]}
        ok, _ = store.cas(EMERGENCY_KEY, version, json.dumps(active))
        if ok:
            return True
        active, version = read_active(store)
    breaker._apply(overlay_op([], seen[-1], only_if="FORCED_OPEN"))
    return False
