"""The records under a dead-letter queue: items by number, counters, match keys and the index.

`DeadLetterQueue` (`prefect_ft.deadletter.queue`) decides how an item moves between statuses; this
base holds how those decisions reach the `BreakerStore`: reading and writing one item record by
compare-and-set, the `next` / `low` / `pruned` counter records, the `keys` record of match keys
(with its per-process cache) and the `prefect-ft:dlq:index` record of breaker names. Split from
the queue so each module stays one concern: record layout here, item life cycle there.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

from prefect_ft.deadletter.item import ACTIVE, DeadLetter
from prefect_ft.stores import BreakerStore, shared_store

__all__ = ["QueueRecords", "dead_letter_breakers"]

_DELETED = '"deleted"'  # a record on its way out
_INDEX_KEY = "prefect-ft:dlq:index"
_CAS_ATTEMPTS = 32


class QueueRecords:
    """The store records of one breaker's dead letters (the base of `DeadLetterQueue`)."""

    breaker: str
    store: BreakerStore
    _prefix: str
    _marker: tuple[str, str]
    _indexed: set[tuple[int, str, str]] = set()  # (store id, url, breaker) known to be indexed
    _indexed_lock = threading.Lock()
    # (store url, breaker) -> (when read, monotonic; match key -> item number)
    _keys_cache: dict[tuple[str, str], tuple[float, dict[str, int]]] = {}

    def _key(self, seq: int) -> str:
        return f"{self._prefix}{seq}"

    def get(self, seq: int) -> DeadLetter | None:
        v = self.store.read(self._key(seq))
        if v.data is None or v.data == _DELETED:
            return None
        return DeadLetter._load(v.data, v.version)

    def open_keys(self, max_age: float) -> dict[str, int]:
        """Match key -> number of each pending item that has one, read at most `max_age` ago
        in this process (a put in this process refreshes it)."""
        cached = self._keys_cache.get(self._marker)
        now = time.monotonic()
        if cached is not None and now - cached[0] < max_age:
            return cached[1]
        v = self.store.read(self._prefix + "keys")
        keys = json.loads(v.data) if v.data is not None else {}
        self._keys_cache[self._marker] = (now, keys)
        return keys

    def cached_open_keys(self, max_age: float) -> dict[str, int] | None:
        """`open_keys` without I/O: None when this process's copy is older than `max_age`."""
        cached = self._keys_cache.get(self._marker)
        if cached is None or time.monotonic() - cached[0] >= max_age:
            return None
        return cached[1]

    def _same_call(self, match_keys: list[str]) -> DeadLetter | None:
        if not match_keys:
            return None
        known = self.open_keys(0.0)
        for seq in {known[k] for k in match_keys if k in known}:
            item = self.get(seq)
            if item is not None and item.status in ACTIVE:
                return item
        return None

    def _edit_keys(self, add: dict[str, int] | None = None, drop: list[str] | None = None) -> None:
        key = self._prefix + "keys"
        for _ in range(_CAS_ATTEMPTS):
            v = self.store.read(key)
            keys = json.loads(v.data) if v.data is not None else {}
            new = {k: n for k, n in keys.items() if k not in set(drop or ())} | (add or {})
            if new == keys or self.store.cas(key, v.version, json.dumps(new))[0]:
                self._keys_cache[self._marker] = (time.monotonic(), new)
                return

    def _write(self, new: DeadLetter) -> DeadLetter | None:
        ok, v = self.store.cas(self._key(new.seq), new.version, new._dump())
        return replace(new, version=v.version) if ok else None

    def _delete(self, item: DeadLetter) -> bool:
        # a compare-and-set to a tombstone first: an operator's concurrent `retry` wins or loses
        # cleanly; then the record goes (scans step over deleted numbers below `next`)
        if not self.store.cas(self._key(item.seq), item.version, _DELETED)[0]:
            return False
        self.store.delete(self._key(item.seq))
        if item.match_keys:
            self._edit_keys(drop=item.match_keys)
        return True

    def _lower_int(self, name: str, value: int) -> None:
        """Set a counter record to `value` if it is higher."""
        key = self._prefix + name
        for _ in range(_CAS_ATTEMPTS):
            v = self.store.read(key)
            if v.data is None or int(json.loads(v.data)) <= value:
                return
            if self.store.cas(key, v.version, json.dumps(value))[0]:
                return

    def _read_int(self, name: str, default: int) -> int:
        v = self.store.read(self._prefix + name)
        return int(json.loads(v.data)) if v.data is not None else default

    def _raise_int(self, name: str, value: int) -> None:
        """Set a counter record to `value` unless it is already higher."""
        key = self._prefix + name
        for _ in range(_CAS_ATTEMPTS):
            v = self.store.read(key)
            if v.data is not None and int(json.loads(v.data)) >= value:
                return
            if self.store.cas(key, v.version, json.dumps(value))[0]:
                return

    def _index(self) -> None:
        marker = (id(self.store), self.store.url, self.breaker)
        if marker in self._indexed:
            return
        for _ in range(_CAS_ATTEMPTS):
            v = self.store.read(_INDEX_KEY)
            names = json.loads(v.data) if v.data is not None else []
            if self.breaker in names:
                break
            if self.store.cas(_INDEX_KEY, v.version, json.dumps(sorted({*names, self.breaker})))[0]:
                break
        with self._indexed_lock:
            self._indexed.add(marker)


def dead_letter_breakers(store: BreakerStore | str | None = None) -> list[str]:
    """The names of the breakers that have (or had) dead letters in `store`."""
    v = shared_store(store).read(_INDEX_KEY)
    return list(json.loads(v.data)) if v.data is not None else []
