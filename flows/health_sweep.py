"""Deployable entrypoint: deep-check every component with a control endpoint; recover the sick.

Meant for a schedule (every minute or so): it catches components that went unhealthy without any
breaker trip or detection event. Each unhealthy or unreachable component gets a `recover`
subflow run (the recovery slots keep at most one per component and N in total).
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client

from prefect_ft.blocks import ComponentSpec
from prefect_ft.exceptions import ControlError
from prefect_ft.recovery.client import connect
from prefect_ft.recovery.control import one_line

try:
    from flows.recovery import recover
except ImportError:  # loaded by path (a deployment's entrypoint) with flows/ itself on sys.path
    from recovery import recover  # type: ignore[no-redef]

__all__ = ["health_sweep"]


async def _specs() -> tuple[list[ComponentSpec], dict[str, str]]:
    """Every readable ComponentSpec, and why the unreadable ones were skipped."""
    async with get_client() as client:
        docs = await client.read_block_documents_by_type(ComponentSpec.get_block_type_slug())
    specs, skipped = [], {}
    for doc in docs:
        try:
            specs.append(ComponentSpec._from_block_document(doc))
        except Exception as exc:  # one bad document must not stop the sweep of the others
            skipped[doc.name or str(doc.id)] = one_line(exc)
    return specs, skipped


async def _check(spec: ComponentSpec, timeout_seconds: float) -> str | None:
    """None when healthy, else why not (one line)."""
    try:
        answer = await connect(spec.control_endpoint, timeout=timeout_seconds).ahealth(deep=True)
    except (ControlError, ValueError) as exc:
        return one_line(exc.reason if isinstance(exc, ControlError) else str(exc))
    if answer.get("healthy") is True:
        return None
    return one_line(str(answer.get("reason") or "unhealthy"))


@flow(name="health-sweep")
async def health_sweep(
    timeout_seconds: float = 5.0, recover_unhealthy: bool = True
) -> dict[str, Any]:
    """Deep-check every ComponentSpec with a control endpoint; start `recover` for unhealthy ones.

    Args:
        timeout_seconds: timeout of each deep health check.
        recover_unhealthy: False only reports.
    """
    logger = get_run_logger()
    specs, skipped = await _specs()
    specs = [spec for spec in specs if spec.control_endpoint]
    # all checks at once: one hanging component costs one timeout, not one per component
    verdicts = await asyncio.gather(*(_check(spec, timeout_seconds) for spec in specs))
    result: dict[str, Any] = {"healthy": [], "unhealthy": {}, "recoveries": {}, "skipped": skipped}
    for name, why in skipped.items():
        logger.warning("skipped ComponentSpec %s: %s", name, why)
    sick = []
    for spec, why in zip(specs, verdicts, strict=True):
        if why is None:
            result["healthy"].append(spec.component)
        else:
            result["unhealthy"][spec.component] = why
            logger.warning("%s is unhealthy: %s", spec.component, why)
            sick.append(spec.component)
    if recover_unhealthy and sick:
        # concurrently: the recovery slots bound how many really run (one per component, N in all)
        states = await asyncio.gather(
            *(
                recover(
                    component=c, reason=f"health sweep: {result['unhealthy'][c]}", return_state=True
                )
                for c in sick
            )
        )
        result["recoveries"] = {c: state.name for c, state in zip(sick, states, strict=True)}
    return result
