"""Alerts: notifications through Prefect automations and notification blocks.

The path of one alert:

1. Something we emit (`prefect-ft.fault.detected`, `prefect-ft.health.changed`,
   `prefect-ft.recovery.failed`) is passed to `alert_on(...)` by its emitter.
2. `core.alerts.decide` suppresses duplicates and rate-limits per component; its state is one
   store record (`prefect-ft:alerts`, compare-and-set), so every process shares one budget.
3. An alert that passes is emitted as `prefect-ft.alert.<kind>` (kinds: `fault`, `health`,
   `recovery-failed`), payload `summary`, `details`, `suppressed_before`.
4. `prefect-ft alerts apply` (`apply_alerts`) created one automation per kind, named
   `prefect-ft alert: <kind>`, whose `send-notification` action renders the event into the
   notification block (a `CustomWebhookNotificationBlock`, Slack, e-mail: any notification block).
   An emergency stop is announced by `prefect-ft.emergency.shutdown` / `.cleared` directly (they
   are never suppressed).

A failed delivery is not dropped. The server sends through the block under
`raise_on_failure()`. A webhook block (`CustomWebhookNotificationBlock`) raises the HTTP error
itself, and the server's action consumer retries the message (3 times, then its dead-letter
queue); the test answers the first delivery with a 500 and sees the second arrive. An
Apprise-based block (Slack, e-mail, ...) raises `NotificationError`, which ends the action as
`prefect.automation.action.failed`: the automation `prefect-ft alert: retry` sends once more on
that event (naming the failed automation and the reason), and the failure event stays in the
feed. `apply_alerts` sends one test notification first, so an unreachable webhook is reported
before anything is created.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from prefect_ft.core.alerts import Alert, AlertDecision, AlertPolicy, AlertState, decide
from prefect_ft.stores import BreakerStore, shared_store

__all__ = [
    "ALERTS_KEY",
    "AUTOMATION_PREFIX",
    "AlertsError",
    "alert_for",
    "alert_on",
    "apply_alerts",
    "gate",
    "raise_alert",
    "wanted_automations",
]

ALERTS_KEY = "prefect-ft:alerts"
AUTOMATION_PREFIX = "prefect-ft alert: "
ALERT_PREFIX = "prefect-ft.alert."
log = logging.getLogger("prefect_ft.ops.alerts")


class AlertsError(Exception):
    """`alerts apply` cannot go on (the message is the one line to print); nothing was changed."""


def gate(alert: Alert, now: float | None = None, *, store: Any = None, policy: Any = None) -> Any:
    """Decide `alert` against the shared state (compare-and-set; a lost race decides again)."""
    s: BreakerStore = shared_store(store)
    p = policy or AlertPolicy()
    for _ in range(32):
        v = s.read(ALERTS_KEY)
        try:
            state = AlertState.from_dict(json.loads(v.data)) if v.data else AlertState()
        except (ValueError, TypeError, AttributeError):
            state = AlertState()  # an unreadable state forgets old sends: it never blocks one
        decision, new = decide(state, alert, v.store_time if now is None else now, p)
        ok, _ = s.cas(ALERTS_KEY, v.version, json.dumps(new.to_dict()))
        if ok:
            return decision
    return AlertDecision("send")  # the store kept changing: better twice than never


def raise_alert(
    component: str,
    kind: str,
    fingerprint: str,
    summary: str,
    details: dict[str, Any] | None = None,
    *,
    store: Any = None,
    policy: AlertPolicy | None = None,
) -> AlertDecision:
    """Gate one alert and emit `prefect-ft.alert.<kind>` when it passes."""
    decision = gate(Alert(component, kind, fingerprint), store=store, policy=policy)
    if decision.send:
        from prefect.events import emit_event

        held = decision.suppressed_before
        emit_event(
            f"{ALERT_PREFIX}{kind}",
            resource={
                "prefect.resource.id": f"prefect-ft.component.{component}",
                "prefect.resource.name": component,
                "prefect-ft.component": component,
            },
            payload={
                "summary": summary + (f" ({held} similar alerts held back)" if held else ""),
                "fingerprint": fingerprint,
                "suppressed_before": held,
                "details": details or {},
            },
        )
    return decision


def alert_for(event: str, component: str, payload: dict[str, Any]) -> tuple[str, str, str] | None:
    """`(kind, fingerprint, summary)` for one of our events; None for an event that alerts nobody."""
    if event == "prefect-ft.fault.detected":
        pattern, sev = payload.get("pattern", "?"), payload.get("severity", "?")
        return "fault", f"{pattern}:{sev}", f"{component}: {pattern} fault ({sev})"
    if event == "prefect-ft.health.changed":
        level = payload.get("to_level", "?")
        reasons = "; ".join(str(r) for r in payload.get("reasons", []))
        return "health", str(level), f"{component}: health {level} ({reasons or 'no reasons'})"
    if event == "prefect-ft.recovery.failed":
        strategy = payload.get("strategy", "?")
        return "recovery-failed", str(strategy), f"{component}: recovery {strategy} failed"
    return None


def alert_on(event: str, component: str, payload: dict[str, Any], *, store: Any = None) -> None:
    """The hook for our emitters: turn one of our events into an alert. Never raises."""
    try:
        found = alert_for(event, component, payload)
        if found is not None:
            raise_alert(component, *found, payload, store=store)
    except Exception:  # an alert is never worth failing the work that found it
        log.warning("alert for %s on %s not raised", event, component, exc_info=True)


@dataclass(frozen=True)
class _Want:
    name: str
    events: tuple[str, ...]
    subject: str
    body: str
    match: dict[str, str]


_BODY = (
    "{{ event.payload.summary }}\n"
    "component: {{ event.resource['prefect-ft.component'] }}\n"
    "event: {{ event.event }} at {{ event.occurred }}\n"
    "details: {{ event.payload.details }}"
)
_EMERGENCY_BODY = (
    "{{ event.event }}: by {{ event.payload.by.user }}@{{ event.payload.by.host }} "
    "at {{ event.payload.at_iso }}, reason: {{ event.payload.reason }}\n"
    "breakers: {{ event.payload.breakers }}\npaused: {{ event.payload.paused }}"
)
_RETRY_BODY = (
    "Retry of a failed alert delivery by automation "
    "'{{ event.resource['prefect.resource.name'] }}': {{ event.payload.reason }}.\n"
    "The alert is the automation's triggering event ({{ event.related }})."
)


def wanted_automations() -> list[_Want]:
    """The automations `apply_alerts` keeps in place (names are the identity)."""
    ours = {"prefect.resource.id": "prefect-ft.*"}
    out = [
        _Want(
            f"{AUTOMATION_PREFIX}{kind}",
            (f"{ALERT_PREFIX}{kind}",),
            f"prefect-ft {kind}: {{{{ event.payload.summary }}}}",
            _BODY,
            ours,
        )
        for kind in ("fault", "health", "recovery-failed")
    ]
    out.append(
        _Want(
            f"{AUTOMATION_PREFIX}emergency",
            ("prefect-ft.emergency.shutdown", "prefect-ft.emergency.cleared"),
            "prefect-ft EMERGENCY: {{ event.event }}",
            _EMERGENCY_BODY,
            {"prefect.resource.id": "prefect-ft.emergency"},
        )
    )
    out.append(
        _Want(
            f"{AUTOMATION_PREFIX}retry",
            ("prefect.automation.action.failed",),
            "prefect-ft alert delivery failed: retrying",
            _RETRY_BODY,
            {"prefect.resource.name": f"{AUTOMATION_PREFIX}*"},
        )
    )
    return out


def _strip(value: Any) -> Any:
    """Server-side ids aside, what makes two automations the same."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        items = [_strip(v) for v in value]
        # a list of strings here is a dumped set (`expect`, `after`): its order is the hash
        # seed's, not a difference
        return sorted(items) if all(isinstance(v, str) for v in items) else items
    return value


def _automation(want: _Want, block_id: Any) -> Any:
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    trigger = EventTrigger(
        match=want.match, expect=set(want.events), posture=Posture.Reactive, threshold=1, within=0
    )
    action = SendNotification(block_document_id=block_id, subject=want.subject, body=want.body)
    return AutomationCore(
        name=want.name,
        description="Created by `prefect-ft alerts apply`; re-run it to restore.",
        enabled=True,
        trigger=trigger,
        actions=[action],
    )


def _check_webhook(block: Any) -> None:
    from prefect.blocks.abstract import NotificationError

    try:
        with block.raise_on_failure():
            block.notify("prefect-ft alerts are being set up (a test notification)", "prefect-ft")
    except NotificationError as exc:
        raise AlertsError(f"webhook {getattr(block, 'url', '?')} is unreachable: {exc}") from None
    except Exception as exc:  # httpx errors, a refused connection, a bad URL
        url = getattr(block, "url", "?")
        raise AlertsError(f"webhook {url} is unreachable: {type(exc).__name__}: {exc}") from None


def apply_alerts(
    block_name: str, webhook_url: str | None = None, *, check: bool = True, echo: Any = print
) -> int:
    """Create or update the notification block (with `webhook_url`) and the automations.

    Args:
        block_name: the notification block document to send through.
        webhook_url: create/update `block_name` as a `CustomWebhookNotificationBlock` to this URL;
            None: `block_name` must already exist (any notification block type).
        check: send one test notification first (an unreachable webhook stops here).

    Returns:
        How many automations were created or updated.
    """
    from prefect.blocks.core import Block
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client

    if webhook_url is not None:
        if not webhook_url.startswith(("http://", "https://")):
            raise AlertsError(f"--webhook-url must be an http(s) URL (got {webhook_url!r})")
        block: Any = CustomWebhookNotificationBlock(
            name=block_name,
            url=webhook_url,
            json_data={"subject": "{{subject}}", "body": "{{body}}", "source": "prefect-ft"},
        )
    else:
        try:
            block = Block.load(block_name) if "/" in block_name else None
        except ValueError:
            block = None
        if block is None:
            raise AlertsError(
                f"no notification block {block_name!r}: pass --webhook-url to create one, or "
                "give an existing one as TYPE-SLUG/NAME (e.g. slack-webhook/ops)"
            )
    if check:
        _check_webhook(block)
    if webhook_url is not None:
        block.save(block_name, overwrite=True)
    block_id = block._block_document_id
    written = 0
    with get_client(sync_client=True) as client:
        for want in wanted_automations():
            new = _automation(want, block_id)
            found = client.read_automations_by_name(want.name)
            if found and _same(found[0], new):
                echo(f"automation {want.name!r}: unchanged")
                continue
            if found:
                client.update_automation(found[0].id, new)
                echo(f"automation {want.name!r}: updated")
            else:
                client.create_automation(new)
                echo(f"automation {want.name!r}: created")
            written += 1
    return written


def _same(existing: Any, new: Any) -> bool:
    keys = ("name", "description", "enabled", "trigger", "actions")
    have = _strip(existing.model_dump(mode="json", include=set(keys)))
    want = _strip(new.model_dump(mode="json", include=set(keys)))
    return have == want
