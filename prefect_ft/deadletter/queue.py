"""Dead letters: the inputs of rejected calls, kept in the breaker store until they are replayed.

Built only on the `BreakerStore` protocol (versioned records + compare-and-set), so it works on
every backend and is shared by every process that shares the breakers. Records per breaker:

| key | holds |
|---|---|
| `prefect-ft:dlq:<breaker>:<n>` | item number n (1, 2, ...): one JSON document |
| `prefect-ft:dlq:<breaker>:next` | a hint: every number below it has been used |
| `prefect-ft:dlq:<breaker>:low` | no item below it is pending or running (replay scans start here) |
| `prefect-ft:dlq:<breaker>:pruned` | retention has dealt with every item below it |
| `prefect-ft:dlq:<breaker>:keys` | match key -> number of each pending item (see `supersede`) |
| `prefect-ft:dlq:index` | the names of the breakers that have dead letters |

Items are numbered without gaps: a writer creates item n with `cas(key, 0, ...)` (succeeds only
if absent) and moves to n + 1 when n exists, starting from the hint, so adding one costs one
write when uncontended and a scan stops at the first absent number.

An item moves `pending -> running -> done`; a failed run goes back to `pending` (or to `failed`
after `max_attempts`). A pending item whose call a later run of the same task completed (a flow
retry, a re-run of the flow run, the same cache key) becomes `superseded` and is never replayed. `running` carries the holder and a lease: only the holder may finish it,
and a second replayer takes it over only once the lease has expired (the holder died), as an
*in-doubt* re-run, or parks it as `in-doubt` (see `prefect_ft.replay`).

Each item is signed when written (`signing`): replay refuses one that is unsigned or whose
signature does not match. Done and superseded items are deleted `retention` seconds after they
finish (`expire`, run by every replay); the `pruned` record marks how far that has gone.
Deleted numbers leave gaps below `next`, which scans step over. The item itself, its statuses
and its encodings: `prefect_ft.deadletter.item`; how the records above are read and written:
`prefect_ft.deadletter.records`.

This module does not run anything (`prefect_ft.replay` does).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from prefect_ft.deadletter import signing
from prefect_ft.deadletter.item import (
    ACTIVE,
    FINISHED,
    FINISHED_KEPT,
    TERMINAL,
    DeadLetter,
    ItemStatus,
    encode_inputs,
    render,
)
from prefect_ft.deadletter.records import (
    _CAS_ATTEMPTS,
    _DELETED,
    QueueRecords,
    dead_letter_breakers,
)
from prefect_ft.stores import BreakerStore, shared_store

__all__ = [
    "ACTIVE",
    "FINISHED",
    "TERMINAL",
    "DeadLetter",
    "DeadLetterQueue",
    "ItemStatus",
    "dead_letter_breakers",
    "encode_inputs",
    "render",
]

_SCAN_CHUNK = 64


class DeadLetterQueue(QueueRecords):
    """The dead letters of one breaker, in a `BreakerStore`.

    Args:
        breaker: the breaker's name.
        store: a `BreakerStore` or its URL (default `PREFECT_FT_STORE_URL`, else SQLite).

    Examples:
        ```python
        from prefect_ft.deadletter.queue import DeadLetterQueue

        queue = DeadLetterQueue("ipc")
        for item in queue.items(status="pending"):
            print(item.id, item.task_name, item.parameters)
        ```
    """

    def __init__(self, breaker: str, store: BreakerStore | str | None = None) -> None:
        self.breaker = breaker
        self.store = shared_store(store)
        self._prefix = f"prefect-ft:dlq:{breaker}:"
        self._hint = 1
        self._marker = (self.store.url, breaker)

    def put(self, **fields: Any) -> DeadLetter:
        """Add an item (fields as in `DeadLetter`, without `breaker`, `seq` and `at`).

        A call whose match key a pending or running item already has (the same call refused
        again, on a flow retry) is not added twice: that item is returned.
        """
        self._index()
        item = DeadLetter(breaker=self.breaker, seq=0, at=self.store.time(), **fields)
        same = self._same_call(item.match_keys)
        if same is not None:
            return same
        seq = max(self._hint, self._read_int("next", 1))
        key = signing.current_key()
        for _ in range(100_000):
            item = replace(item, seq=seq)
            item = replace(item, signature=signing.sign(item, key))
            ok, _ = self.store.cas(self._key(seq), 0, item._dump())
            if ok:
                break
            seq = max(seq + 1, self._read_int("next", 1))
        self._hint = seq + 1
        self._raise_int("next", seq + 1)
        if item.match_keys and item.status == "pending":
            self._edit_keys(add={k: seq for k in item.match_keys})
        return replace(item, version=1)

    def items(self, status: ItemStatus | None = None, *, start: int | None = None) -> Iterator[DeadLetter]:  # fmt: skip
        """Items in order from `start`, by default the low-water mark (so items that replay will
        not run again are skipped: `all_items` lists them). Deleted numbers are stepped over."""
        seq = self._read_int("low", 1) if start is None else start
        used = self._read_int("next", 1)  # every number below it was used (maybe deleted since)
        while True:
            keys = [self._key(n) for n in range(seq, seq + _SCAN_CHUNK)]
            found = self.store.read_many(keys)
            for n, key in enumerate(keys, seq):
                v = found[key]
                if v.data is None and n >= used:
                    return
                if v.data is None or v.data == _DELETED:
                    continue
                item = DeadLetter._load(v.data, v.version)
                if status is None or item.status == status:
                    yield item
            seq += _SCAN_CHUNK

    def all_items(self, status: ItemStatus | None = None) -> Iterator[DeadLetter]:
        """Every item still kept, in order (operators; replay reads `items`)."""
        return self.items(status, start=1)

    # -- transitions (compare-and-set on the item's version) ---------------------------------
    def claim(
        self, item: DeadLetter, holder: str, lease_seconds: float, *, take_over: bool = True
    ) -> DeadLetter | None:
        """Start running `item` as `holder`; None when someone else has it or it is finished.

        A `running` item whose lease has expired was being run by a replayer that died: with
        `take_over` it is claimed again (`in_doubt_reruns` + 1), else it is parked `in-doubt`.
        """
        now = self.store.time()
        if item.status == "running" and item.lease_until <= now:
            if not take_over:
                self._write(replace(item, status="in-doubt", holder=None))
                return None
            item = replace(item, in_doubt_reruns=item.in_doubt_reruns + 1)
        elif item.status != "pending":
            return None
        new = replace(
            item,
            status="running",
            holder=holder,
            lease_until=now + lease_seconds,
            attempts=item.attempts + 1,
        )
        return self._write(new)

    def complete(self, item: DeadLetter, result: str | None) -> bool:
        """Mark a claimed item done; False if its lease was lost to another replayer."""
        done = replace(item, status="done", holder=None, result=result)
        return self._finish(item, replace(done, finished_at=self.store.time()))

    def supersede(self, seq: int, by: str) -> DeadLetter | None:
        """Mark pending item `seq` superseded (its call was completed by `by`); None if it is
        not pending (a replayer holds it, or it is finished)."""
        for _ in range(_CAS_ATTEMPTS):
            item = self.get(seq)
            if item is None or item.status not in ACTIVE:  # gone or finished: forget its keys
                self._edit_keys(drop=[k for k, n in self.open_keys(0.0).items() if n == seq])
                return None
            if item.status != "pending":
                return None  # a replayer runs it now: too late to stop it
            new = replace(item, status="superseded", result=f"superseded by {by}")
            written = self._write(replace(new, finished_at=self.store.time()))
            if written is not None:
                self._edit_keys(drop=item.match_keys)
                return written
        return None

    def fail(self, item: DeadLetter, error: str, max_attempts: int) -> bool:
        """Record a failed run: back to pending, or `failed` after `max_attempts` runs."""
        status: ItemStatus = "failed" if item.attempts >= max_attempts else "pending"
        return self._finish(item, replace(item, status=status, holder=None, error=error))

    def release(self, item: DeadLetter) -> bool:
        """Give a claimed item back unrun (the breaker refused it): pending, attempt undone."""
        new = replace(item, status="pending", holder=None, attempts=max(0, item.attempts - 1))
        return self._finish(item, new)

    def advance_low(self) -> int:
        """Move the low-water mark past every item that replay will not run (anything but
        pending and running: an item parked in-doubt no longer makes each replay rescan all
        that follows it); returns it."""
        v = self.store.read(self._prefix + "low")
        low = start = int(json.loads(v.data)) if v.data is not None else 1
        for item in self.items(start=start):
            if item.status in ACTIVE:
                break
            low = item.seq + 1
        # only from the value read: an operator's `retry` may have lowered it meanwhile
        if low > start and not self.store.cas(self._prefix + "low", v.version, json.dumps(low))[0]:
            return self._read_int("low", 1)
        return low

    def retry(self, seq: int) -> DeadLetter:
        """Make item `seq` pending again (an operator's decision), attempts reset.

        Raises:
            KeyError: no such item.
            ValueError: it is pending or running already, or its inputs were never kept.
        """
        for _ in range(_CAS_ATTEMPTS):
            item = self.get(seq)
            if item is None:
                raise KeyError(f"no dead letter {self.breaker}/{seq}")
            if item.status in ACTIVE or item.status == "unreplayable":
                why = "its inputs were not kept" if item.status == "unreplayable" else "it is"
                raise ValueError(f"dead letter {item.id} cannot be retried: {why} {item.status}")
            new = replace(item, status="pending", attempts=0, holder=None, error=None,
                          result=None, finished_at=0.0)  # fmt: skip
            written = self._write(new)
            if written is not None:
                self._lower_int("low", seq)  # so that replay scans it again
                self._lower_int("pruned", seq)
                return written
        raise ValueError(f"dead letter {self.breaker}/{seq} kept changing; try again")

    def refuse(self, item: DeadLetter, status: ItemStatus, error: str) -> bool:
        """Park an item that must not run (`rejected-signature`), keeping it for an operator."""
        return self._write(replace(item, status=status, holder=None, error=error)) is not None

    def expire(self, retention_seconds: float) -> int:
        """Delete done and superseded items that finished `retention_seconds` ago or more.

        Scans from the `pruned` mark (below it everything is deleted or waits for an operator)
        up to the low-water mark, and stops at the first item finished too recently.

        Returns:
            How many items were deleted.
        """
        cutoff = self.store.time() - retention_seconds
        start, low = self._read_int("pruned", 1), self.advance_low()
        mark, deleted = start, 0
        for item in self.items(start=start):
            if item.seq >= low or (item.status in FINISHED_KEPT and item.finished_at > cutoff):
                break
            if item.status in FINISHED_KEPT:
                deleted += self._delete(item)
            mark = item.seq + 1
        if mark > start:
            self._raise_int("pruned", mark)
        return deleted

    def purge(self, statuses: Iterable[str], older_than: float = 0.0) -> list[DeadLetter]:
        """Delete the items in `statuses` that reached them `older_than` seconds ago or more
        (dead-lettered, for items that never finished). Never pending or running items."""
        wanted = set(statuses)
        if wanted & ACTIVE:
            raise ValueError(f"refusing to purge {'/'.join(sorted(wanted & ACTIVE))} items")
        cutoff = self.store.time() - older_than
        return [
            item
            for item in self.all_items()
            if item.status in wanted and (item.finished_at or item.at) <= cutoff
            and self._delete(item)
        ]  # fmt: skip

    # -- internals ---------------------------------------------------------------------------
    def _finish(self, claimed: DeadLetter, new: DeadLetter) -> bool:
        # The claim's version: if another replayer took the item over meanwhile, this fails.
        ok = self._write(replace(new, version=claimed.version)) is not None
        if ok and new.status not in ACTIVE and new.match_keys:
            self._edit_keys(drop=new.match_keys)
        return ok
