"""`prefect-ft emergency-stop --reason ...` and `prefect-ft emergency-clear`.

The work is `prefect_ft.ops.emergency` (read it for what a stop changes and what a clear puts
back). A stop while one is active, or a clear without one, prints one line naming why and exits
with status 1, changing nothing.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

from cyclopts import Parameter

from prefect_ft.exceptions import ConfigurationError, StoreUnavailableError

__all__ = ["emergency_clear", "emergency_stop"]


def _fail(message: str) -> int:
    print(f"prefect-ft: error: {message}", file=sys.stderr)
    return 1


def _controls(store_only: bool):  # type: ignore[no-untyped-def]
    from prefect_ft.ops.emergency import PrefectControls

    return None if store_only else PrefectControls()


def _attempt(action):  # type: ignore[no-untyped-def]
    """Run a stop or clear; a refusal or an unreachable store becomes one line and status 1."""
    from prefect_ft.ops.emergency import EmergencyError

    try:
        return action(), 0
    except EmergencyError as exc:
        return None, _fail(str(exc))
    except (ConfigurationError, StoreUnavailableError) as exc:
        return None, _fail(f"{exc}; nothing changed")


def _report(kind: str, out, as_json: bool) -> int:  # type: ignore[no-untyped-def]
    if as_json:
        print(json.dumps({"record": out.record, "breakers": out.breakers, "errors": out.errors}))
    else:
        for name, what in sorted(out.breakers.items()):
            print(f"  breaker {name}: {what}")
        rec = out.record if kind == "stop" else out.record.get("last", {})
        for d in rec.get("paused", {}).get("deployments", []):
            print(f"  deployment {d['name']}: {'paused' if kind == 'stop' else 'resumed'}")
        for a in rec.get("paused", {}).get("automations", []):
            print(f"  automation {a['name']}: {'paused' if kind == 'stop' else 'resumed'}")
        for e in out.errors:
            print(f"prefect-ft: warning: {e}", file=sys.stderr)
    return 1 if out.errors else 0


def emergency_stop(
    *,
    reason: str,
    store: str | None = None,
    deployments: list[str] | None = None,
    store_only: bool = False,
    json_output: Annotated[bool, Parameter(name="--json", negative="")] = False,
) -> int:
    """Force every breaker open in every process and pause deployments and recovery automations.

    Args:
        reason: why (kept with the OS user, host and time in the stop's record and event).
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
        deployments: `flow/deployment` patterns to pause (default: every deployment).
        store_only: only force the breakers open (the Prefect API is not used).
        json_output: print what was done as JSON.
    """
    from prefect_ft.ops import emergency

    out, failed = _attempt(
        lambda: emergency.stop(
            reason, store=store, controls=_controls(store_only), deployments=deployments or ["*"]
        )
    )
    if out is None:
        return failed
    if not json_output:
        print(f"emergency stop active, {emergency.describe(out.record)}")
    return _report("stop", out, json_output)


def emergency_clear(
    *,
    store: str | None = None,
    store_only: bool = False,
    force: bool = False,
    json_output: Annotated[bool, Parameter(name="--json", negative="")] = False,
) -> int:
    """Undo the active emergency stop: restore each breaker's overlay, resume what it paused.

    Args:
        store: store URL (default `PREFECT_FT_STORE_URL`, else SQLite under `PREFECT_HOME`).
        store_only: only restore the breakers (the Prefect API is not used).
        force: clear a stop whose process died while applying it.
        json_output: print what was done as JSON.
    """
    from prefect_ft.ops import emergency

    out, failed = _attempt(
        lambda: emergency.clear(store=store, controls=_controls(store_only), force=force)
    )
    if out is None:
        return failed
    if not json_output:
        print(f"emergency stop cleared (it was {emergency.describe(out.record['last'])})")
    return _report("clear", out, json_output)
