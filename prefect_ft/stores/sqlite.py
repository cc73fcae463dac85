"""`sqlite:///PATH`: the embedded default store, shared by every process on one machine.

One table, `records(key, data, version)`, in a WAL-mode database file. WAL lets readers run
while one process writes, and `busy_timeout` makes a writer wait for the lock instead of failing
at once. Every `cas` is one `BEGIN IMMEDIATE` transaction (read, compare, write), so exactly one
process wins a given version, and the record it returns is exactly the one it compared against.
The store clock is the wall clock, the one clock every process on a host shares.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect_ft.exceptions import StoreUnavailableError
from prefect_ft.stores.base import Versioned
from prefect_ft.stores.quarantine import quarantine_suffix

__all__ = ["SQLiteBreakerStore"]

_BUSY_TIMEOUT_MS = 5000
# SQLITE_CORRUPT and SQLITE_NOTADB: the file is there but is not a usable database.
_CORRUPT_CODES = (11, 26)
log = logging.getLogger("prefect_ft.stores")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records ("
    "key TEXT PRIMARY KEY, data TEXT NOT NULL, version INTEGER NOT NULL)"
)
# Connections inherited through fork() must be neither used nor closed in the child (SQLite's
# rule: closing one could release the parent's locks or checkpoint under its feet). The child
# parks them here, so they are never finalised, and opens its own on first use.
_INHERITED: list[sqlite3.Connection] = []
_LIVE: weakref.WeakSet[SQLiteBreakerStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # Another thread of the parent may have held a store's lock at fork time; in the child that
    # thread does not exist, so the copied lock would never be released.
    for store in list(_LIVE):
        store._lock = threading.Lock()
        if store._conn is not None:
            _INHERITED.append(store._conn)
            store._conn = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _prepare(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL and create the table, racing safely with other processes.

    When fresh connections race to switch the journal mode, SQLite answers "database is locked"
    at once instead of waiting (its deadlock avoidance skips the busy handler). So this one-off
    setup, unlike requests, tries again within the busy_timeout budget.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            # IMMEDIATE: the schema is read under the write lock, so two creators cannot both
            # decide that the table is missing.
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(_SCHEMA)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


class SQLiteBreakerStore:
    """Versioned records in a SQLite file; safe across the threads and processes of one host.

    One connection per process, guarded by a lock (SQLite serialises writers anyway, and one
    connection is simpler to close than one per thread). The constructor tries to open it but
    never raises: a directory that is missing or read-only is an outage like any other (each
    request then raises `StoreUnavailableError` and tries again), so breakers run on local
    state and converge once an operator fixes it. `open_error` says why the last open failed.
    A file that is not a valid database is renamed to `PATH.corrupt-<timestamp>` (reported in
    a warning, never deleted) and a new database is started in its place.

    Args:
        path: the database file; parent directories are created. `~` is expanded.
        url: the URL the store was opened with; defaults to `sqlite:///` + `path`.

    Examples:
        ```python
        store = SQLiteBreakerStore("/tmp/prefect-ft/breakers.db")
        ok, record = store.cas("prefect-ft:breaker:ipc", 0, '{"state": "CLOSED"}')
        ```
    """

    def __init__(self, path: str, url: str | None = None) -> None:
        self.path = os.path.expanduser(path)
        self.url = url if url is not None else f"sqlite:///{path}"
        self.round_trips = 0
        self._init_runtime()
        with self._lock, contextlib.suppress(StoreUnavailableError):
            self._connection()  # early when it works; otherwise the first request says why

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.open_error: str | None = None
        self._last_time = 0.0
        self._closed = False
        _LIVE.add(self)

    def __getstate__(self) -> dict[str, Any]:
        # Connections and locks cannot travel; the copy reopens its own on first use.
        return {"path": self.path, "url": self.url, "round_trips": self.round_trips}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def __repr__(self) -> str:
        return f"SQLiteBreakerStore({self.path!r})"

    # -- protocol -------------------------------------------------------------------------

    def read(self, key: str) -> Versioned:
        """Read one record (version 0 and data None when absent)."""
        return self.read_many([key])[key]

    def read_many(self, keys: list[str]) -> dict[str, Versioned]:
        """Read several records in one query; an empty list costs no query."""
        if not keys:
            return {}
        # One bound parameter whatever the number of keys: SQLite caps bound variables.
        sql = "SELECT key, data, version FROM records WHERE key IN (SELECT value FROM json_each(?))"
        with self._request() as conn:
            rows = conn.execute(sql, (json.dumps(list(keys)),)).fetchall()
            now = self._now()
        found = {k: (d, v) for k, d, v in rows}
        return {k: Versioned(*found.get(k, (None, 0)), now) for k in keys}

    def cas(self, key: str, expected_version: int, data: str) -> tuple[bool, Versioned]:
        """Write `data` if the current version is `expected_version` (0 = absent).

        Returns:
            `(True, new)` with `new.version == expected_version + 1`, else `(False, current)`.
        """
        with self._request() as conn:
            # IMMEDIATE takes the write lock up front (waiting up to busy_timeout), so the
            # read below cannot go stale before the write: no lost update across processes.
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT data, version FROM records WHERE key = ?", (key,)
                ).fetchone()
                current, version = row if row is not None else (None, 0)
                ok = version == expected_version
                if ok and version == 0:
                    conn.execute(
                        "INSERT INTO records (key, data, version) VALUES (?, ?, 1)", (key, data)
                    )
                elif ok:
                    conn.execute(
                        "UPDATE records SET data = ?, version = ? WHERE key = ?",
                        (data, version + 1, key),
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            now = self._now()
        if ok:
            return True, Versioned(data, version + 1, now)
        return False, Versioned(current, version, now)

    def delete(self, key: str) -> None:
        """Remove a record; deleting an absent key is not an error."""
        with self._request() as conn:
            conn.execute("DELETE FROM records WHERE key = ?", (key,))

    def time(self) -> float:
        """The store clock: wall-clock seconds, never going backwards for this object."""
        with self._lock:
            return self._now()

    def close(self) -> None:
        """Close the connection; the store may not be used afterwards."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    # -- internals --------------------------------------------------------------------------

    def _now(self) -> float:
        # Caller holds the lock. The wall clock can step back (NTP); clamping keeps lease and
        # window arithmetic of this process from seeing time run backwards.
        self._last_time = max(self._last_time, time.time())
        return self._last_time

    @contextmanager
    def _request(self) -> Iterator[sqlite3.Connection]:
        """One backend request: holds the lock, counts the round trip, wraps backend errors."""
        with self._lock:
            conn = self._connection()
            self.round_trips += 1
            try:
                yield conn
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailableError(f"sqlite store {self.path!r}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        # Caller holds the lock.
        if self._closed:
            raise StoreUnavailableError(f"{self!r} is closed")
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        try:
            try:
                conn = self._connect()
            except sqlite3.DatabaseError as exc:
                if getattr(exc, "sqlite_errorcode", None) not in _CORRUPT_CODES:
                    raise
                self._move_aside(exc)
                conn = self._connect()
        except (sqlite3.Error, OSError) as exc:
            self.open_error = str(exc)
            raise StoreUnavailableError(f"sqlite store {self.path!r}: {exc}") from exc
        self.open_error = None
        return conn

    def _connect(self) -> sqlite3.Connection:
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        self._inode = _inode(self.path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves; the lock makes the
        # connection safe to share between threads.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            # NORMAL is durable against process crashes in WAL mode, which is what breaker
            # state needs; FULL would fsync on every transition.
            conn.execute("PRAGMA synchronous = NORMAL")
            _prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _move_aside(self, exc: sqlite3.DatabaseError) -> None:
        """Rename a corrupt database file (and its WAL files) aside, and say where it went."""
        if _inode(self.path) != self._inode:
            return  # another process already moved it and started a new one: just reopen
        target = f"{self.path}.corrupt-{quarantine_suffix()}"
        os.replace(self.path, target)
        for side in ("-wal", "-shm"):  # they belong to the bad file, never to the new one
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.path + side, target + side)
        log.warning(
            "sqlite store %r: the file is not a valid database (%s); moved it to %s (kept for "
            "inspection) and started a new one",
            self.path,
            exc,
            target,
        )
