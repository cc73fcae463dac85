"""Bulkhead configuration (validated at construction) and the lease maths of shared bulkheads.

A shared bulkhead keeps one record per bulkhead: a list of leases `(holder, expires_at)` in
store-clock seconds. Every function here takes that list and `now` and returns the list to
write (or None when nothing should be written), dropping expired leases as it goes, so a
crashed holder's slot comes back `lease_seconds` after its last renewal.

This module does not read clocks, sleep, lock or touch a store: the driver in
`prefect_ft.bulkhead` does, and calls these functions inside its compare-and-set loop.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass

from prefect_ft.core.backoff import EqualJitter
from prefect_ft.core.validation import require

__all__ = [
    "MAX_CONCURRENT",
    "MAX_QUEUE",
    "BulkheadConfig",
    "Lease",
    "acquire_lease",
    "decode_leases",
    "encode_leases",
    "free_slots",
    "live_leases",
    "poll_delay",
    "release_lease",
    "renew_leases",
]

# Upper bounds, mirrored by the blocks (`le=`) so the UI form refuses them too: a shared record
# holds one lease per running call, and a queue that long is a backlog, not a bulkhead.
MAX_CONCURRENT = 10_000
MAX_QUEUE = 100_000

Lease = tuple[str, float]
"""One permit held in a shared bulkhead: `(holder, expires_at)` in store-clock seconds."""

# Polling a full shared bulkhead: 10 ms first, doubling to 250 ms, at least half of each step
# (equal jitter), so waiters in many processes spread out instead of hitting the store together.
_POLL = EqualJitter(base_seconds=0.01, cap_seconds=0.25)


def _int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _seconds(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True, slots=True)
class BulkheadConfig:
    """How many calls may run at once, and how long a call may wait for a permit.

    Attributes:
        name: the bulkhead's name (also its key in a shared store).
        max_concurrent: calls allowed to run at the same time (1 to 10,000).
        max_wait_seconds: how long a call waits for a permit before `BulkheadFullError`
            (0 = never wait). The default, 60 s, queues the surplus of a `.map()` wider than
            `max_concurrent` the way Prefect's own concurrency limits do, instead of refusing
            (and dead-lettering) it at once, and still bounds how long any call can hang.
        max_queue: calls allowed to wait at once (at most 100,000); further calls are refused
            at once (None = no limit: the default, so a map of any width queues; the wait alone
            bounds it).
        scope: "process" (threads and tasks of one process) or "shared" (every process on the store).
        lease_seconds: for "shared": a permit expires after this long, so a crashed holder frees it.
    """

    name: str
    max_concurrent: int = 10
    max_wait_seconds: float = 60.0
    max_queue: int | None = None
    scope: str = "process"
    lease_seconds: float = 300.0

    def __post_init__(self) -> None:
        require(
            isinstance(self.name, str) and self.name != "", "name", "a non-empty string", self.name
        )
        m = self.max_concurrent
        top = MAX_CONCURRENT
        require(_int(m) and 1 <= m <= top, "max_concurrent", f"an integer in [1, {top}]", m)
        w = self.max_wait_seconds
        require(_seconds(w) and w >= 0, "max_wait_seconds", ">= 0 seconds", w)
        q = self.max_queue
        ok = q is None or (_int(q) and 0 <= q <= MAX_QUEUE)
        require(ok, "max_queue", f"an integer in [0, {MAX_QUEUE}] or None", q)
        require(self.scope in ("process", "shared"), "scope", "'process' or 'shared'", self.scope)
        t = self.lease_seconds
        require(_seconds(t) and t > 0, "lease_seconds", "> 0 seconds", t)


def live_leases(leases: tuple[Lease, ...], now: float) -> tuple[Lease, ...]:
    """The leases still valid at `now` (a lease expiring exactly at `now` is gone)."""
    return tuple(lease for lease in leases if lease[1] > now)


def free_slots(leases: tuple[Lease, ...], now: float, max_concurrent: int) -> int:
    """Permits nobody holds at `now`."""
    return max(0, max_concurrent - len(live_leases(leases, now)))


def acquire_lease(
    leases: tuple[Lease, ...], now: float, holder: str, max_concurrent: int, lease_seconds: float
) -> tuple[Lease, ...] | None:
    """Add `holder`'s lease if a slot is free at `now`; None when the bulkhead is full.

    A holder already present (a retried write whose first answer was lost) keeps its slot
    and gets a fresh expiry instead of a second slot.
    """
    live = live_leases(leases, now)
    others = tuple(lease for lease in live if lease[0] != holder)
    if len(others) == len(live) and len(live) >= max_concurrent:
        return None
    return (*others, (holder, now + lease_seconds))


def release_lease(leases: tuple[Lease, ...], now: float, holder: str) -> tuple[Lease, ...] | None:
    """Remove `holder`'s lease; None when it is not there (expired or never written)."""
    live = live_leases(leases, now)
    kept = tuple(lease for lease in live if lease[0] != holder)
    return None if len(kept) == len(live) else kept


def renew_leases(
    leases: tuple[Lease, ...],
    now: float,
    holders: Collection[str],
    max_concurrent: int,
    lease_seconds: float,
) -> tuple[tuple[Lease, ...] | None, frozenset[str]]:
    """Extend the leases of `holders` to `now + lease_seconds`.

    A holder whose lease already expired (its process stalled past `lease_seconds`) gets it
    back only while a slot is free; otherwise it is reported as lost.

    Returns:
        The leases to write (None when `holders` is empty) and the holders that lost their slot.
    """
    if not holders:
        return None, frozenset()
    expires = now + lease_seconds
    wanted = set(holders)
    kept = [(h, expires if h in wanted else t) for h, t in live_leases(leases, now)]
    lost = set()
    for holder in sorted(wanted - {h for h, _ in kept}):
        if len(kept) < max_concurrent:
            kept.append((holder, expires))
        else:
            lost.add(holder)
    return tuple(kept), frozenset(lost)


def encode_leases(leases: tuple[Lease, ...]) -> str:
    """The record's text: `{"leases": [[holder, expires_at], ...]}`."""
    return json.dumps({"leases": [[h, t] for h, t in leases]}, separators=(",", ":"))


def decode_leases(data: str | None) -> tuple[Lease, ...]:
    """Leases from a record's text; an absent or unreadable record holds none.

    An unreadable record is treated as empty rather than as full: the next write replaces it,
    whereas "full" would block the bulkhead until an operator deleted the record.
    """
    if not data:
        return ()
    try:
        raw = json.loads(data)["leases"]
        return tuple((str(h), float(t)) for h, t in raw)
    except (ValueError, KeyError, TypeError):
        return ()


def poll_delay(attempt: int, u: float, remaining_seconds: float) -> float | None:
    """Seconds to wait before polling a full shared bulkhead again; None once the budget is spent.

    Args:
        attempt: 0-based number of the poll that just failed.
        u: a uniform draw in [0, 1) (the jitter).
        remaining_seconds: what is left of the caller's `max_wait_seconds`.
    """
    if remaining_seconds <= 0:
        return None
    return min(_POLL.delay(attempt, u), remaining_seconds)
