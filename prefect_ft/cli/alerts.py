"""`prefect-ft alerts apply`: the notification block and the alert automations, idempotently.

See `prefect_ft.ops.alerts` for what the automations send and how a failed delivery is retried.
Bad input (a webhook that does not answer, a block that does not exist) prints one line and
exits with status 1 before anything is created.
"""

from __future__ import annotations

import sys

import cyclopts

__all__ = ["alerts_app"]

alerts_app = cyclopts.App(name="alerts", help="Send alarms, health changes and stops to people.")


@alerts_app.command(name="apply")
def apply(
    *, block: str = "prefect-ft-alerts", webhook_url: str | None = None, check: bool = True
) -> int:
    """Create or update the alert automations (and the webhook block with `--webhook-url`).

    Args:
        block: the notification block: a name for `--webhook-url`, else TYPE-SLUG/NAME of an
            existing notification block (e.g. `slack-webhook/ops`).
        webhook_url: send through a Custom Webhook block to this URL (created or updated).
        check: send a test notification first; an unreachable webhook stops everything.
    """
    from prefect_ft.ops.alerts import AlertsError, apply_alerts

    try:
        written = apply_alerts(block, webhook_url, check=check)
    except AlertsError as exc:
        print(f"prefect-ft: error: {exc}; nothing applied", file=sys.stderr)
        return 1
    except Exception as exc:  # the API
        print(
            f"prefect-ft: error: applying alerts failed: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    print(f"alerts: {written} automation(s) written")
    return 0
