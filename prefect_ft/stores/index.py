"""The list of breaker names a store has seen, so operators can list breakers without a scan.

One record (`prefect-ft:breakers`) holds a JSON list of names; a breaker adds its name once,
with compare-and-set, when a process first builds it. A store that is down is skipped: the
name is added by the next process that builds the breaker while the store is up (or by this
one, when its refresher sees the store come back). An index that does not parse is moved aside
(`stores.quarantine`) and started again from the names that register next. An operator
removes a name with `prefect-ft breakers forget`; a process still using that breaker adds it
back the next time it builds it.
"""

from __future__ import annotations

import json

from prefect_ft.exceptions import StoreUnavailableError
from prefect_ft.stores.base import BreakerStore, Versioned
from prefect_ft.stores.quarantine import quarantine

__all__ = ["INDEX_KEY", "known_breakers", "register_breaker", "unregister_breaker"]

INDEX_KEY = "prefect-ft:breakers"


def _names(store: BreakerStore, v: Versioned) -> tuple[list[str], Versioned]:
    """The names in `v`; a corrupt index is quarantined and read as empty."""
    for _ in range(4):
        if not v.data:
            return [], v
        try:
            names = json.loads(v.data)
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                return names, v
            reason = "not a JSON list of names"
        except ValueError as exc:
            reason = repr(exc)
        ok, v = quarantine(store, INDEX_KEY, v, "[]", reason)
        if ok:
            return [], v
    raise StoreUnavailableError(f"{INDEX_KEY} keeps being corrupt")


def known_breakers(store: BreakerStore) -> list[str]:
    """The names registered in `store`, sorted."""
    return sorted(_names(store, store.read(INDEX_KEY))[0])


def register_breaker(store: BreakerStore, name: str) -> bool:
    """Add `name` to the index; True when this call added it (False when it was there already,
    or the store is down)."""
    try:
        v = store.read(INDEX_KEY)
        for _ in range(16):  # lost races only mean another process added a name meanwhile
            names, v = _names(store, v)
            if name in names:
                return False
            ok, v = store.cas(INDEX_KEY, v.version, json.dumps(sorted([*names, name])))
            if ok:
                return True
    except StoreUnavailableError:
        return False
    return False


def unregister_breaker(store: BreakerStore, name: str) -> bool:
    """Remove `name` from the index (`prefect-ft breakers forget`); False when it was not there.

    Raises:
        StoreUnavailableError: the store did not answer (an operator must know nothing changed).
    """
    v = store.read(INDEX_KEY)
    for _ in range(64):  # a lost race means another process added a name meanwhile: retry
        names, v = _names(store, v)
        if name not in names:
            return False
        ok, v = store.cas(INDEX_KEY, v.version, json.dumps([n for n in names if n != name]))
        if ok:
            return True
    raise StoreUnavailableError(f"the breaker index of {store.url} kept changing; {name!r} is kept")
