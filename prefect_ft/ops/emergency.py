"""Emergency stop and clear: every breaker forced open through the store, schedules paused.

One store record (`prefect-ft:emergency`) holds the stop: who (OS user, host), when (store
clock), why, and what it changed, so `clear` puts back exactly that and no more:

| part | stop | clear |
|---|---|---|
| breakers in the store's index | each set FORCED_OPEN, its previous overlay kept | the kept overlay is put back, only where the breaker is still FORCED_OPEN (an operator's change during the stop stands); a breaker FORCED_OPEN before the stop stays so |
| deployments (matching the `deployments` patterns) | those not paused are paused (`pause_deployment`, which stops their schedules) | only those are resumed |
| automations that start runs of those deployments (a `run-deployment` action) | those enabled are paused | only those are resumed |

Every process sees a breaker change on its next refresh (0.2 s by default), since the overlay is
written to the shared record with compare-and-set. The stop is claimed in the store first, so a
second stop (from any process) is refused with the first one's who and when; the claim is what
makes stop and clear safe to run from two terminals at once.

Notification automations are left alone: the stop itself must still be announced
(`prefect-ft.emergency.shutdown`). A breaker first built after the stop read the index joins
the stop itself (`prefect_ft.stores.emergency_record`): forced open and listed in the record, so
`clear` restores it too.

The Prefect half is `PrefectControls`; `stop`/`clear` take `controls=None` to act on the store
only (tests, or an operator whose Prefect API is down: `--store-only`).
"""

from __future__ import annotations

import fnmatch
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from prefect_ft.breaker import CircuitBreaker
from prefect_ft.core.states import OverlayName
from prefect_ft.ops.audit import actor
from prefect_ft.ops.audit import record as audit_record
from prefect_ft.stores import BreakerStore, shared_store
from prefect_ft.stores.emergency_record import EMERGENCY_KEY, overlay_op, read_active
from prefect_ft.stores.index import known_breakers

__all__ = [
    "EMERGENCY_KEY",
    "EmergencyError",
    "Outcome",
    "PrefectControls",
    "actor",
    "clear",
    "current",
    "describe",
    "stop",
]

SHUTDOWN_EVENT = "prefect-ft.emergency.shutdown"
CLEARED_EVENT = "prefect-ft.emergency.cleared"


class EmergencyError(Exception):
    """A stop while one is active, a clear without one: the message is the one line to print."""


class Controls(Protocol):
    """What a stop pauses besides breakers (the Prefect API in production)."""

    def pause(self, patterns: Sequence[str]) -> dict[str, list[dict[str, str]]]: ...

    def resume(self, paused: dict[str, list[dict[str, str]]]) -> list[str]: ...

    def announce(self, event: str, payload: dict[str, Any]) -> None: ...


@dataclass
class Outcome:
    """What a stop or a clear did (the CLI prints it; `--json` dumps it)."""

    record: dict[str, Any]
    breakers: dict[str, str] = field(default_factory=dict)  # name -> what happened
    errors: list[str] = field(default_factory=list)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def current(store: BreakerStore | str | None = None) -> tuple[dict[str, Any] | None, int]:
    """The active stop (None when there is none) and the record's version."""
    return read_active(shared_store(store))


def describe(record: dict[str, Any]) -> str:
    """`by alice@host at 2026-12-01T23:00:00+00:00 (reason: ...)`."""
    by = record.get("by", {})
    return (
        f"by {by.get('user', '?')}@{by.get('host', '?')} at {record.get('at_iso', '?')} "
        f"(reason: {record.get('reason', '')})"
    )


def _write(store: BreakerStore, version: int, record: dict[str, Any]) -> int:
    """Write the stop's record; breakers that joined the same stop meanwhile are kept (their
    own view of their overlay wins: the stop may have seen the FORCED_OPEN they set)."""
    for _ in range(32):
        ok, v = store.cas(EMERGENCY_KEY, version, json.dumps(record))
        if ok:
            return v.version
        theirs = json.loads(v.data) if v.data else {}
        if theirs.get("active") and theirs.get("id") != record.get("id"):
            raise EmergencyError(f"an emergency stop is already active, {describe(theirs)}")
        if not theirs.get("active") or not record.get("active"):
            break
        record["breakers"] = {**record["breakers"], **theirs.get("breakers", {})}
        version = v.version
    raise EmergencyError("the emergency record changed meanwhile (another stop or clear?)")


def stop(
    reason: str,
    *,
    store: BreakerStore | str | None = None,
    controls: Controls | None = None,
    deployments: Sequence[str] = ("*",),
    who: dict[str, Any] | None = None,
) -> Outcome:
    """Force every indexed breaker open, pause deployments and run-deployment automations.

    Raises:
        EmergencyError: a stop is already active (nothing changed), or `reason` is empty.
    """
    if not reason.strip():
        raise EmergencyError("--reason must say why (got an empty reason); nothing changed")
    s = shared_store(store)
    active, version = current(s)
    if active is not None:
        raise EmergencyError(
            f"an emergency stop is already active, {describe(active)}; nothing changed"
        )
    now = s.time()
    record: dict[str, Any] = {
        "active": True,
        "id": uuid.uuid4().hex,
        "by": who or actor(),
        "at": now,
        "at_iso": _iso(now),
        "reason": reason,
        "breakers": {},
        "paused": {"deployments": [], "automations": []},
        "complete": False,
    }
    version = _write(s, version, record)  # the claim: a second stop now fails
    out = Outcome(record)
    for name in known_breakers(s):
        b = CircuitBreaker(name, store=s, refresh_seconds=None)
        seen: list[OverlayName | None] = []
        b._apply(overlay_op(seen, "FORCED_OPEN"))
        if not b.store_available:
            out.errors.append(f"{name}: store unavailable, not forced open")
            continue
        record["breakers"][name] = seen[-1]
        out.breakers[name] = f"{seen[-1] or b.record.state} -> FORCED_OPEN"
    version = _write(s, version, record)
    if controls is not None:
        try:
            record["paused"] = controls.pause(deployments)
        except Exception as exc:  # breakers are stopped; say what was not
            out.errors.append(
                f"pausing deployments/automations failed: {type(exc).__name__}: {exc}"
            )
    record["complete"] = True
    _write(s, version, record)
    audit_record(s, {"action": "emergency-stop", "by": record["by"], "reason": reason})
    if controls is not None:
        controls.announce(SHUTDOWN_EVENT, _payload(record))
    return out


def clear(
    *,
    store: BreakerStore | str | None = None,
    controls: Controls | None = None,
    who: dict[str, Any] | None = None,
    force: bool = False,
) -> Outcome:
    """Undo the active stop: put back each breaker's overlay and resume what it paused.

    Args:
        force: clear a stop that is still being applied (its process died half way: what it
            recorded is restored, the rest an operator checks by hand).

    Raises:
        EmergencyError: no stop is active, or it is still being applied (nothing changed).
    """
    s = shared_store(store)
    active, version = current(s)
    if active is None:
        raise EmergencyError("no emergency stop is active; nothing changed")
    if not active.get("complete") and not force:
        raise EmergencyError(
            f"the emergency stop {describe(active)} is still being applied; run emergency-clear "
            "again when it is done (--force if its process died); nothing changed"
        )
    out = Outcome(active)
    stop_id = active.get("id")
    _restore(s, active, out)
    if controls is not None:
        out.errors += controls.resume(active.get("paused", {}))
    for _ in range(32):  # a breaker built meanwhile may have joined the stop: restore it too
        now = s.time()
        done = {
            "active": False,
            "last": active,
            "cleared_by": who or actor(),
            "cleared_at": now,
            "cleared_at_iso": _iso(now),
        }
        ok, _ = s.cas(EMERGENCY_KEY, version, json.dumps(done))
        if ok:
            break
        active, version = current(s)
        if active is None or active.get("id") != stop_id:
            raise EmergencyError("the emergency record changed meanwhile (another clear?)")
        _restore(s, active, out)
    else:
        raise EmergencyError("the emergency record kept changing; run emergency-clear again")
    audit_record(s, {"action": "emergency-clear", "by": done["cleared_by"], "stop": active["id"]})
    out.record = done
    if controls is not None:
        controls.announce(CLEARED_EVENT, {**_payload(active), "cleared_by": done["cleared_by"]})
    return out


def _restore(store: BreakerStore, active: dict[str, Any], out: Outcome) -> None:
    """Put back each listed breaker's overlay (once), only where it is still FORCED_OPEN."""
    known = set(known_breakers(store))
    for name, before in active.get("breakers", {}).items():
        if name in out.breakers:
            continue
        if name not in known and not store.read(f"prefect-ft:breaker:{name}").data:
            # `breakers forget` ran during the stop (record and listing gone, not only a
            # listing lost to a corrupt index): building it here would bring it back
            out.breakers[name] = "forgotten during the stop"
            continue
        b = CircuitBreaker(name, store=store, refresh_seconds=None)
        seen: list[OverlayName | None] = []
        b._apply(overlay_op(seen, before, only_if="FORCED_OPEN"))
        if not b.store_available:
            out.errors.append(f"{name}: store unavailable, still FORCED_OPEN")
        elif seen[-1] != "FORCED_OPEN":
            out.breakers[name] = f"left {seen[-1] or 'without overlay'} (changed during the stop)"
        else:
            out.breakers[name] = f"FORCED_OPEN -> {before or b.record.state}"


def _payload(record: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "by", "at_iso", "reason", "breakers", "paused")
    return {k: record[k] for k in keep if k in record}


def _starts(action: Any, deployments: set[Any]) -> bool:
    """Whether an automation action starts runs of one of `deployments` (an inferred deployment
    could be any of them)."""
    if getattr(action, "type", "") != "run-deployment":
        return False
    return action.source == "inferred" or action.deployment_id in deployments


class PrefectControls:
    """Pauses and resumes through the Prefect API, and emits the emergency events."""

    def pause(self, patterns: Sequence[str]) -> dict[str, list[dict[str, str]]]:
        from prefect.client.orchestration import get_client

        paused: dict[str, list[dict[str, str]]] = {"deployments": [], "automations": []}
        with get_client(sync_client=True) as client:
            flows = {f.id: f.name for f in client.read_flows(limit=200)}
            matched = set()
            for d in client.read_deployments(limit=200):
                full = f"{flows.get(d.flow_id, '?')}/{d.name}"
                if not any(fnmatch.fnmatchcase(full, p) for p in patterns):
                    continue
                matched.add(d.id)
                if not d.paused:
                    client.pause_deployment(d.id)
                    paused["deployments"].append({"id": str(d.id), "name": full})
            for a in client.read_automations():
                if a.enabled and any(_starts(x, matched) for x in a.actions):
                    client.pause_automation(a.id)
                    paused["automations"].append({"id": str(a.id), "name": a.name})
        return paused

    def resume(self, paused: dict[str, list[dict[str, str]]]) -> list[str]:
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        errors = []
        with get_client(sync_client=True) as client:
            for d in paused.get("deployments", []):
                try:
                    client.resume_deployment(d["id"])
                except ObjectNotFound:
                    errors.append(f"deployment {d['name']} is gone; not resumed")
            for a in paused.get("automations", []):
                try:
                    client.resume_automation(uuid.UUID(a["id"]))
                except ObjectNotFound:
                    errors.append(f"automation {a['name']} is gone; not resumed")
        return errors

    def announce(self, event: str, payload: dict[str, Any]) -> None:
        from prefect_ft.ops.audit import emit_and_flush

        emit_and_flush(event, "prefect-ft.emergency", payload)
