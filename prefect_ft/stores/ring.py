"""A bounded, time-ordered list of rows under one store key, appended with compare-and-set.

Resource samples and replay attempts are both kept this way: many processes append, readers
take the whole list with one read, and the oldest rows drop out past `max_len`.
"""

from __future__ import annotations

import json
from typing import Any

from prefect_ft.stores.base import BreakerStore

__all__ = ["append_to_ring"]


def append_to_ring(
    store: BreakerStore, key: str, row: list[Any], *, order: int, max_len: int, tries: int = 50
) -> bool:
    """Append `row`, keep the list sorted by `row[order]` and at most `max_len` long.

    Returns:
        False when another writer won every one of `tries` compare-and-set rounds.
    """
    for _ in range(tries):  # compare-and-set: retry when another process wrote in between
        cur = store.read(key)
        ring = json.loads(cur.data) if cur.data else []
        ring.append(row)
        ring.sort(key=lambda r: r[order])
        ok, _ = store.cas(key, cur.version, json.dumps(ring[-max_len:]))
        if ok:
            return True
    return False
