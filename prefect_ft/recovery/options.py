"""What a recovery run is asked (checked at once) and how it runs (timeouts, clock, limits)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prefect_ft.core.recovery import FAILURE_TYPES, STRATEGIES
from prefect_ft.recovery.control import one_line
from prefect_ft.recovery.events import emit_recovery
from prefect_ft.stores.base import BreakerStore

__all__ = ["RecoveryOptions", "aload_spec", "check_request"]


@dataclass
class RecoveryOptions:
    """How a recovery run talks, validates and waits (defaults: issue 9's numbers).

    Attributes:
        checks: consecutive healthy deep checks that validate (k).
        check_interval_seconds: spacing of the checks.
        validation_timeout_seconds: None for the policy's `health_check_timeout_seconds` (30 s).
        action_timeout_seconds: timeout of one control call (a graceful restart drains first).
        max_total: recoveries running at once over all components.
        max_run_seconds: a run does not back off past this; the breaker's open time carries on.
        store: the breaker store (object or URL); None for the spec's `store_url` or the default.
        clock, sleep, rng: injected so tests run on a fake clock (`clock` as for CircuitBreaker).
        emit: `emit_recovery`-like sender of `prefect-ft.recovery.*` (tests record instead).
        skip_if_closed: do nothing when the breaker serves again (CLOSED or RECOVERY) as the
            run starts: a run started by `prefect-ft.breaker.opened` that arrives after another
            recovery or a readiness push healed the component finds nothing to recover.
    """

    checks: int = 3
    check_interval_seconds: float = 1.0
    validation_timeout_seconds: float | None = None
    action_timeout_seconds: float = 30.0
    max_total: int = 2
    max_run_seconds: float = 300.0
    store: BreakerStore | str | None = None
    clock: Callable[[], float] | None = None
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    emit: Callable[[str, str, str, str, dict[str, Any]], str | None] = emit_recovery
    skip_if_closed: bool = False


def check_request(component: Any, strategy: Any = None, failure_type: Any = None) -> None:
    """Refuse a malformed request at once, naming the field (e.g. an event without a component)."""
    if not isinstance(component, str) or not component.strip() or "{{" in component:
        raise ValueError(f"component: must be a component name (got {component!r})")
    if strategy is not None and strategy not in STRATEGIES:
        raise ValueError(f"strategy: must be one of {', '.join(STRATEGIES)} (got {strategy!r})")
    if failure_type is not None and failure_type not in FAILURE_TYPES:
        raise ValueError(
            f"failure_type: must be one of {', '.join(FAILURE_TYPES)} (got {failure_type!r})"
        )


async def aload_spec(component: str) -> Any:
    """The component's ComponentSpec block; LookupError with a one-line reason when missing."""
    from prefect_ft.blocks import ComponentSpec

    try:
        return await ComponentSpec.aload(component)
    except Exception as exc:
        raise LookupError(
            f"unknown component {component!r}: no ComponentSpec block of that name ({one_line(exc)})"
        ) from None
