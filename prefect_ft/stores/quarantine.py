"""Moving a corrupt record aside: copied to `<key>:corrupt:<timestamp>`, then replaced.

A record that does not parse (a half-written file, a foreign writer, a bug) must neither fail
the calls that read it nor be dropped without a trace: an operator needs to see what was there.
So the bad text is first copied to a new key, then the live key is replaced with compare-and-set
against the bad version (if another process fixed it first, its fix stands), and a warning names
both keys.
"""

from __future__ import annotations

import logging
import os
import time

from prefect_ft.stores.base import BreakerStore, Versioned

__all__ = ["quarantine", "quarantine_suffix"]

log = logging.getLogger("prefect_ft.stores")


def quarantine_suffix() -> str:
    """`corrupt-<UTC timestamp>-<pid>`: sorts by time, and two processes never collide."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"{stamp}.{int(now % 1 * 1000):03d}Z-{os.getpid()}"


def quarantine(
    store: BreakerStore, key: str, bad: Versioned, replacement: str, reason: str
) -> tuple[bool, Versioned]:
    """Copy `bad.data` aside, then write `replacement` over it if `key` is still at `bad.version`.

    Returns:
        The `cas` answer for `key`: `(True, new)` when replaced, `(False, current)` when another
        writer changed it first.

    Raises:
        StoreUnavailableError: the store failed (nothing was replaced then).
    """
    base = f"{key}:corrupt:{quarantine_suffix()}"
    aside = base
    for n in range(1, 100):  # the same millisecond twice in one process: add a counter
        ok, _ = store.cas(aside, 0, bad.data or "")
        if ok:
            break
        aside = f"{base}.{n}"
    ok, current = store.cas(key, bad.version, replacement)
    log.warning(
        "store %s: record %s (version %d) is not valid (%s); its text was copied to %s%s",
        store.url,
        key,
        bad.version,
        reason,
        aside,
        " and the record was replaced" if ok else "; another process already replaced it",
    )
    return ok, current
