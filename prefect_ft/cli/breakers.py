"""`prefect-ft status` and `prefect-ft breakers ls|reset|force-open|disable|metrics-only|clear|forget`.

Operators act on the shared record in the store, so a change made here reaches every process
using the breaker within one refresh (0.2 s by default), and is announced like any transition.
Each action is audited (`prefect_ft.ops.audit`): who (OS user, host), what, and why (`--reason`),
in the store's audit log and as a `prefect-ft.audit.<action>` event when a Prefect API is set.

A name must be known, that is in the store's index (`prefect_ft.stores.index`) or a preset:
acting on a typo would create a record nothing uses and leave the real breaker as it was, so an
unknown name exits with status 2 and a "did you mean" (`--create` acts on a new name anyway).
"""

from __future__ import annotations

import difflib
import sys

import cyclopts

from prefect_ft.breaker import CircuitBreaker
from prefect_ft.exceptions import ConfigurationError, StoreUnavailableError
from prefect_ft.presets import PRESETS
from prefect_ft.stores import shared_store
from prefect_ft.stores.index import known_breakers, unregister_breaker

__all__ = ["breakers_app", "status"]

breakers_app = cyclopts.App(name="breakers", help="List breakers and act on them (all processes).")

_AUDIT_NAMES = {
    "reset": "reset",
    "force_open": "force-open",
    "disable": "disable",
    "metrics_only": "metrics-only",
    "clear_overlay": "clear",
}
_UNKNOWN_NAME = 2  # the exit status of a usage error, as for an unknown option


def _fail(message: str, code: int = 1) -> int:
    print(f"prefect-ft: error: {message}", file=sys.stderr)
    return code


def _open(name: str, store: str | None) -> CircuitBreaker:
    return CircuitBreaker(name, store=store, refresh_seconds=None)


def _unknown(name: str, store: str | None) -> str | None:
    """Why `name` is not a known breaker of `store` (None when it is known)."""
    known = sorted({*known_breakers(shared_store(store)), *PRESETS})
    if name in known:
        return None
    close = difflib.get_close_matches(name, known, n=3)
    if close:
        return f"unknown breaker {name!r}; did you mean {' or '.join(map(repr, close))}?"
    return f"unknown breaker {name!r}; known breakers: {', '.join(known)}"


@breakers_app.command(name="ls")
def status(store: str | None = None) -> int:
    """List the breakers a store knows, with their shared state.

    Args:
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
    """
    try:
        opened = shared_store(store)
        names = known_breakers(opened)
        print(f"store {opened.url}: {len(names)} breaker(s)")
        print(f"{'breaker':28} {'state':13} {'failures':>8} {'trips':>5} {'reopens in':>10}")
        for name in names:
            b = _open(name, store)
            r = b.record
            wait = max(0.0, r.open_until - b.now()) if r.state == "OPEN" else 0.0
            reopen = f"{wait:9.1f}s" if wait else ""
            print(f"{name:28} {b.state:13} {r.consecutive_failures:8d} {r.trips:5d} {reopen:>10}")
    except (ConfigurationError, StoreUnavailableError) as exc:
        return _fail(str(exc))
    return 0


def _audit(action: str, b: CircuitBreaker, reason: str, before: str) -> None:
    """Record who did what and why: the store's audit log, and an event when an API is set."""
    from prefect_ft.ops import audit

    by = audit.actor()
    entry = {"action": action, "breaker": b.name, "by": by, "reason": reason}
    audit.record(b.store, {**entry, "from_state": before, "to_state": b.state})
    if not audit.api_configured():
        print("prefect-ft: audit event not sent (PREFECT_API_URL is not set)", file=sys.stderr)
        return
    try:
        audit.audit(action, b.name, by, reason, before, b.state)
    except Exception as exc:  # the action is done; losing its event must not hide that
        print(f"prefect-ft: audit event not sent: {type(exc).__name__}: {exc}", file=sys.stderr)


def _act(name: str, store: str | None, action: str, create: bool, reason: str = "") -> int:
    try:
        unknown = None if create else _unknown(name, store)
        if unknown is not None:
            _fail(unknown, _UNKNOWN_NAME)
            print(f"prefect-ft: pass --create to act on a new breaker {name!r}", file=sys.stderr)
            return _UNKNOWN_NAME
        b = _open(name, store)
        if not b.store_available:
            return _fail(f"store {b.store.url} is unavailable; nothing changed")
        before = b.state
        getattr(b, action)()
        b.refresh()
        print(f"{name}: {b.state}")
        _audit(_AUDIT_NAMES[action], b, reason, before)
    except (ConfigurationError, StoreUnavailableError) as exc:
        return _fail(str(exc))
    return 0


@breakers_app.command(name="reset")
def reset(name: str, store: str | None = None, create: bool = False, reason: str = "") -> int:
    """Close a breaker and clear its counters and any overlay.

    Args:
        name: the breaker; it must be known to the store or be a preset.
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
        create: act even when no breaker of that name is known (creates its record).
        reason: why (kept with the OS user and host in the audit log and event).
    """
    return _act(name, store, "reset", create, reason)


@breakers_app.command(name="force-open")
def force_open(name: str, store: str | None = None, create: bool = False, reason: str = "") -> int:
    """Reject every call until `clear` or `reset` (FORCED_OPEN).

    Args:
        name: the breaker; it must be known to the store or be a preset.
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
        create: act even when no breaker of that name is known (creates its record).
        reason: why (kept with the OS user and host in the audit log and event).
    """
    return _act(name, store, "force_open", create, reason)


@breakers_app.command(name="disable")
def disable(name: str, store: str | None = None, create: bool = False, reason: str = "") -> int:
    """Let every call through and record nothing (DISABLED).

    Args:
        name: the breaker; it must be known to the store or be a preset.
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
        create: act even when no breaker of that name is known (creates its record).
        reason: why (kept with the OS user and host in the audit log and event).
    """
    return _act(name, store, "disable", create, reason)


@breakers_app.command(name="metrics-only")
def metrics_only(
    name: str, store: str | None = None, create: bool = False, reason: str = ""
) -> int:
    """Let every call through and count, but never trip (METRICS_ONLY).

    Args:
        name: the breaker; it must be known to the store or be a preset.
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
        create: act even when no breaker of that name is known (creates its record).
        reason: why (kept with the OS user and host in the audit log and event).
    """
    return _act(name, store, "metrics_only", create, reason)


@breakers_app.command(name="clear")
def clear(name: str, store: str | None = None, create: bool = False, reason: str = "") -> int:
    """Remove an operator overlay; the breaker's own state takes over again.

    Args:
        name: the breaker; it must be known to the store or be a preset.
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
        create: act even when no breaker of that name is known (creates its record).
        reason: why (kept with the OS user and host in the audit log and event).
    """
    return _act(name, store, "clear_overlay", create, reason)


@breakers_app.command(name="forget")
def forget(name: str, store: str | None = None) -> int:
    """Delete a breaker's shared record (and its prober lease) and unlist it from the store.

    Meant for a name nothing uses any more (a typo made with `--create`, a retired component):
    a process still using the breaker writes a fresh record and lists it again. Dead letters
    kept under the name are left alone.

    Args:
        name: the breaker; it must be known to the store or be a preset.
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
    """
    try:
        unknown = _unknown(name, store)
        if unknown is not None:
            return _fail(unknown, _UNKNOWN_NAME)
        b = _open(name, store)  # the breaker knows its record's key
        if not b.store_available:
            return _fail(f"store {b.store.url} is unavailable; nothing changed")
        b.store.delete(b.key)
        # the health prober's lease lives beside the record (recovery/prober.py); it only
        # expires logically, so a forgotten name would keep it in the store for good
        b.store.delete(f"prefect-ft:prober:{name}")
        unregister_breaker(b.store, name)  # after the delete: building `b` listed the name
        print(f"{name}: forgotten")
    except (ConfigurationError, StoreUnavailableError) as exc:
        return _fail(str(exc))
    return 0
