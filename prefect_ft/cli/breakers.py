"""`prefect-ft status` and `prefect-ft breakers ls|reset|force-open|disable|metrics-only|clear`.

Operators act on the shared record in the store, so a change made here reaches every process
using the breaker within one refresh (0.2 s by default), and is announced like any transition.
"""

from __future__ import annotations

import sys

import cyclopts

from prefect_ft.breaker import CircuitBreaker
from prefect_ft.exceptions import ConfigurationError, StoreUnavailableError
from prefect_ft.stores import shared_store
from prefect_ft.stores.index import known_breakers

__all__ = ["breakers_app", "status"]

breakers_app = cyclopts.App(name="breakers", help="List breakers and act on them (all processes).")


def _fail(message: str) -> int:
    print(f"prefect-ft: error: {message}", file=sys.stderr)
    return 1


def _open(name: str, store: str | None) -> CircuitBreaker:
    return CircuitBreaker(name, store=store, refresh_seconds=None)


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


def _act(name: str, store: str | None, action: str) -> int:
    try:
        b = _open(name, store)
        if not b.store_available:
            return _fail(f"store {b.store.url} is unavailable; nothing changed")
        getattr(b, action)()
        b.refresh()
        print(f"{name}: {b.state}")
    except (ConfigurationError, StoreUnavailableError) as exc:
        return _fail(str(exc))
    return 0


@breakers_app.command(name="reset")
def reset(name: str, store: str | None = None) -> int:
    """Close a breaker and clear its counters and any overlay."""
    return _act(name, store, "reset")


@breakers_app.command(name="force-open")
def force_open(name: str, store: str | None = None) -> int:
    """Reject every call until `clear` or `reset` (FORCED_OPEN)."""
    return _act(name, store, "force_open")


@breakers_app.command(name="disable")
def disable(name: str, store: str | None = None) -> int:
    """Let every call through and record nothing (DISABLED)."""
    return _act(name, store, "disable")


@breakers_app.command(name="metrics-only")
def metrics_only(name: str, store: str | None = None) -> int:
    """Let every call through and count, but never trip (METRICS_ONLY)."""
    return _act(name, store, "metrics_only")


@breakers_app.command(name="clear")
def clear(name: str, store: str | None = None) -> int:
    """Remove an operator overlay; the breaker's own state takes over again."""
    return _act(name, store, "clear_overlay")
