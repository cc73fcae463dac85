"""Operator actions as Prefect events: who (OS user, host) did what, to which breaker, and why.

| event | resource | payload |
|---|---|---|
| `prefect-ft.audit.<action>` (`force-open`, `reset`, `disable`, `metrics-only`, `clear`, `forget`) | `prefect-ft.breaker.<name>` | `by` {user, host, pid}, `reason`, `from_state`, `to_state` |
| `prefect-ft.emergency.shutdown` / `.cleared` | `prefect-ft.emergency` | see `prefect_ft.ops.emergency` |

Each action is also appended to an audit log in the store (`prefect-ft:audit`, the newest
500 kept), so it is recorded when the Prefect API is down or not configured.

An audit event is emitted even when the action changed nothing (forcing open a breaker that is
already FORCED_OPEN): the record is of what the operator asked for. A command line process exits
right after, so `emit_and_flush` waits for Prefect's events worker to send the event; a Prefect
API that cannot be reached costs the event, never the action (the caller reports it).
"""

from __future__ import annotations

import getpass
import inspect
import os
import socket
from typing import Any

__all__ = [
    "AUDIT_KEY",
    "AUDIT_PREFIX",
    "actor",
    "api_configured",
    "audit",
    "emit_and_flush",
    "read_log",
    "record",
]

AUDIT_PREFIX = "prefect-ft.audit."


def actor() -> dict[str, Any]:
    """Who is acting: OS user, host and process id."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = f"uid:{os.getuid()}"
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


def emit_and_flush(
    event: str,
    resource_id: str,
    payload: dict[str, Any],
    *,
    labels: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> bool:
    """Emit one event and wait (at most `timeout` s) until it is sent; False when events are off."""
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    sent = emit_event(
        event,
        resource={"prefect.resource.id": resource_id, **(labels or {})},
        payload=payload,
    )
    result = EventsWorker.drain_all(timeout=timeout, at_exit=False)
    if inspect.isawaitable(result):  # pragma: no cover - only inside a running event loop
        result.close()  # type: ignore[union-attr]
    return sent is not None


def audit(
    action: str,
    breaker: str,
    by: dict[str, Any],
    reason: str,
    from_state: str,
    to_state: str,
) -> bool:
    """Emit `prefect-ft.audit.<action>` for `breaker` (see the module docstring)."""
    payload = {
        "by": by,
        "reason": reason,
        "from_state": from_state,
        "to_state": to_state,
    }
    labels = {"prefect.resource.name": breaker, "prefect-ft.component": breaker}
    return emit_and_flush(
        f"{AUDIT_PREFIX}{action}", f"prefect-ft.breaker.{breaker}", payload, labels=labels
    )


AUDIT_KEY = "prefect-ft:audit"
AUDIT_KEEP = 500  # the newest entries kept in the store's audit log


def record(store: Any, entry: dict[str, Any]) -> None:
    """Append `entry` to the store's audit log (compare-and-set; the newest AUDIT_KEEP kept).

    The log is what an operator reads when the Prefect API was down at the time of the action.
    """
    import json

    v = store.read(AUDIT_KEY)
    for _ in range(32):  # a lost race only means another operator logged meanwhile
        try:
            entries = json.loads(v.data) if v.data else []
        except ValueError:
            entries = []  # an unreadable log is started again rather than blocking the action
        if not isinstance(entries, list):
            entries = []
        entries = [*entries, {**entry, "at": v.store_time}][-AUDIT_KEEP:]
        ok, v = store.cas(AUDIT_KEY, v.version, json.dumps(entries))
        if ok:
            return


def read_log(store: Any) -> list[dict[str, Any]]:
    """The store's audit log, oldest first."""
    import json

    v = store.read(AUDIT_KEY)
    try:
        entries = json.loads(v.data) if v.data else []
    except ValueError:
        return []
    return entries if isinstance(entries, list) else []


def api_configured() -> bool:
    """Whether a Prefect API URL is set (without one, emitting would start an ephemeral server,
    about 20 s for a command that takes a fraction of a second)."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())
