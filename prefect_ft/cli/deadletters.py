"""`prefect-ft deadletters ls|retry|purge`: look at dead letters and act on them.

Items are named `BREAKER/N`, as in replay reports and task-run state messages. `retry` makes an
item pending again (the next replay runs it); `purge` deletes items for good. Done and
superseded items are also deleted by every replay once `PREFECT_FT_DEADLETTER_RETENTION_SECONDS`
(7 days) have passed since they finished.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import cyclopts

from prefect_ft.deadletter.queue import (
    ACTIVE,
    DeadLetter,
    DeadLetterQueue,
    ItemStatus,
    dead_letter_breakers,
)
from prefect_ft.exceptions import ConfigurationError, StoreUnavailableError
from prefect_ft.stores import BreakerStore, shared_store

__all__ = ["deadletters_app"]

STATUSES: tuple[str, ...] = ItemStatus.__args__  # type: ignore[attr-defined]

deadletters_app = cyclopts.App(name="deadletters", help="List, retry and purge dead letters.")


class _Refused(Exception):
    """Bad input: the message names the option and what it accepts."""


def _fail(message: str) -> int:
    print(f"prefect-ft: error: {message}", file=sys.stderr)
    return 1


def _statuses(status: list[str] | None) -> set[str] | None:
    for s in status or ():
        if s not in STATUSES:
            raise _Refused(f"--status must be one of {', '.join(STATUSES)} (got {s!r})")
    return set(status) if status else None


def _age(older_than: float | None) -> float:
    if older_than is not None and not 0 <= older_than < float("inf"):
        raise _Refused(f"--older-than must be a number of seconds >= 0 (got {older_than})")
    return older_than or 0.0


def _select(
    store: BreakerStore, breaker: list[str] | None, status: set[str] | None, older_than: float
) -> Iterator[tuple[DeadLetterQueue, DeadLetter]]:
    now = store.time()
    for name in breaker or dead_letter_breakers(store):
        queue = DeadLetterQueue(name, store)
        for item in queue.all_items():
            if status is not None and item.status not in status:
                continue
            if now - (item.finished_at or item.at) >= older_than:
                yield queue, item


def _run(action: object) -> int:
    try:
        return action()  # type: ignore[operator]
    except _Refused as exc:
        return _fail(str(exc))
    except (ConfigurationError, StoreUnavailableError) as exc:
        return _fail(str(exc))


@deadletters_app.command(name="ls")
def ls(
    *,
    breaker: list[str] | None = None,
    status: list[str] | None = None,
    older_than: float | None = None,
    store: str | None = None,
) -> int:
    """List dead letters, oldest first in each breaker.

    Args:
        breaker: only these breakers (components); repeat the option for several.
        status: only these statuses (pending, running, done, failed, in-doubt, superseded,
            unreplayable, rejected-signature).
        older_than: only items that reached their status at least this many seconds ago.
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
    """

    def action() -> int:
        wanted, age = _statuses(status), _age(older_than)
        opened = shared_store(store)
        print(f"{'id':32} {'status':18} {'attempts':>8}  {'task':24} parameters / error")
        for _, item in _select(opened, breaker, wanted, age):
            detail = item.error if item.status not in ("pending", "done") and item.error else ""
            params = ", ".join(f"{k}={v!r}" for k, v in item.parameters.items())
            text = f"{params}  {detail}".strip()
            text = text if len(text) <= 100 else text[:97] + "..."
            print(f"{item.id:32} {item.status:18} {item.attempts:8d}  {item.task_name:24} {text}")
        return 0

    return _run(action)


@deadletters_app.command(name="retry")
def retry(ids: list[str], *, store: str | None = None) -> int:
    """Make dead letters pending again; the next replay runs them.

    Args:
        ids: items as `BREAKER/N` (as `ls` prints them).
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
    """

    def action() -> int:
        opened = shared_store(store)
        targets = []
        for ident in ids:
            name, _, number = ident.rpartition("/")
            if not name or not number.isdigit():
                raise _Refused(f"ID must be BREAKER/N, e.g. ipc/3 (got {ident!r})")
            targets.append((DeadLetterQueue(name, opened), int(number)))
        for queue, seq in targets:
            try:
                item = queue.retry(seq)
            except (KeyError, ValueError) as exc:
                raise _Refused(str(exc).strip("'\"")) from None
            print(f"{item.id}: pending")
        return 0

    return _run(action)


@deadletters_app.command(name="purge")
def purge(
    *,
    breaker: list[str] | None = None,
    status: list[str] | None = None,
    older_than: float | None = None,
    store: str | None = None,
) -> int:
    """Delete dead letters for good (never pending or running ones).

    Args:
        breaker: only these breakers (components); repeat the option for several.
        status: only these statuses (default: done and superseded).
        older_than: only items that reached their status at least this many seconds ago.
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
    """

    def action() -> int:
        wanted = _statuses(status) or {"done", "superseded"}
        if wanted & ACTIVE:
            raise _Refused(
                f"refusing to purge {'/'.join(sorted(wanted & ACTIVE))} items: they have not "
                "run yet (use `ls`, or wait for a replay)"
            )
        age = _age(older_than)
        opened = shared_store(store)
        purged = 0
        for name in breaker or dead_letter_breakers(opened):
            purged += len(DeadLetterQueue(name, opened).purge(wanted, age))
        print(f"{purged} purged")
        return 0

    return _run(action)
