"""`announce_ready(name)`: a component's supervisor says the component is up again.

The decision is `prefect_ft.core.readiness`; this is its driver for code that has no breaker
object at hand (a supervisor process, a restart hook): every breaker of that name alive in
this process is told directly (`CircuitBreaker.ready()`, its check runs at once), and the
announcement is written to the shared store, where the breakers of other processes see it at
their next refresh (`PREFECT_FT_REFRESH_SECONDS`, 0.2 s by default) and verify it with their
own health check.
"""

from __future__ import annotations

import json

from prefect_ft.core import readiness
from prefect_ft.core.states import BreakerRecord
from prefect_ft.stores import BreakerStore, shared_store

__all__ = ["announce_ready"]


def announce_ready(name: str, *, store: BreakerStore | str | None = None) -> bool:
    """Announce that the component behind breaker `name` is ready; True when a breaker moved.

    Args:
        name: the breaker's name (e.g. `"ipc"`).
        store: the breakers' store (default `PREFECT_FT_STORE_URL`, else SQLite).

    Raises:
        ValueError: `name` is not a non-empty string.

    Examples:
        ```python
        from prefect_ft import announce_ready

        restart_model_server()
        if deep_health_check_passes():
            announce_ready("ipc")
        ```
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty breaker name (got {name!r})")
    from prefect_ft.breaker import live_breakers

    store = shared_store(store)
    moved = False
    for breaker in live_breakers():
        if breaker.name == name and breaker.store.url == store.url:
            moved = bool(breaker.ready()) or moved
    # a breaker here that recorded it wrote it to the store too: one round trip less on the
    # path from "up" to half-open; otherwise other processes learn it from the store
    return moved or _announce_in_store(store, name)


def _announce_in_store(store: BreakerStore, name: str) -> bool:
    key = f"prefect-ft:breaker:{name}"
    for _ in range(16):  # compare-and-set: retried on a concurrent write
        v = store.read(key)
        if v.data is None:
            return False  # the breaker never wrote a record: it was never open
        rec = BreakerRecord.from_dict(json.loads(v.data))
        new = readiness.announce(rec, None, v.store_time).record
        if new is rec:
            return False
        ok, _ = store.cas(key, v.version, json.dumps(new.to_dict()))
        if ok:
            return True
    return False
