"""Prefect Blocks that hold fault-tolerance policies, editable in the Prefect UI.

`CircuitBreakerPolicy`, `BulkheadPolicy` and `RecoveryPolicy` are flat, bounded forms whose
`to_config()` builds the frozen core configs (`BreakerConfig`, `BulkheadConfig`); `ComponentSpec`
ties one component's policies together by nesting them. Every bound is declared on the field, so
the UI form, `model_validate` and the API refuse the same values; rules between fields live in
model validators whose messages name the fields.

`CircuitBreakerPolicy` lives in `prefect_ft.policy_blocks.breaker` and is re-exported here, so
registering this module registers all four.

This module does no I/O of its own and caches nothing: finding and caching a policy by name is
`prefect_ft.tasks.policies.resolve_policy`; writing documents from YAML is `prefect-ft blocks apply`.
"""

from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, model_validator

from prefect_ft.core.bulkhead import MAX_CONCURRENT, MAX_QUEUE, BulkheadConfig
from prefect_ft.core.recovery import PHASES, RecoveryConfig
from prefect_ft.policy_blocks.breaker import CircuitBreakerPolicy

__all__ = ["BulkheadPolicy", "CircuitBreakerPolicy", "ComponentSpec", "RecoveryPolicy"]

RecoveryAction = Literal[
    "model-reload",
    "graceful-restart",
    "connection-reset",
    "resource-reallocation",
    "validation-reset",
]


class BulkheadPolicy(Block):
    """How many calls of a component may run at once, and how long a call waits for a permit.

    Examples:
        ```python
        from prefect_ft.blocks import BulkheadPolicy

        bulkhead = BulkheadPolicy.load("BLOCK_NAME").to_config("ml-inference")
        ```
    """

    _block_type_name = "FT Bulkhead Policy"
    _description = "Concurrency limit and wait budget of a prefect-ft bulkhead."

    max_concurrent: int = Field(
        default=10, ge=1, le=MAX_CONCURRENT, title="Maximum concurrent calls",
        description="Calls allowed to run at the same time.",
    )  # fmt: skip
    max_wait_seconds: float = Field(
        default=60.0, ge=0, title="Maximum wait (s)",
        description="Seconds a call waits for a permit before it is refused; 0 never waits. The default queues a map wider than the limit instead of refusing its surplus.",
    )  # fmt: skip
    max_queue: int | None = Field(
        default=None, ge=0, le=MAX_QUEUE, title="Maximum queue",
        description="Calls allowed to wait at once; further calls are refused at once. Empty for no limit.",
    )  # fmt: skip
    scope: Literal["process", "shared"] = Field(
        default="process", title="Scope",
        description="Count permits within one process (process) or across every process on the store (shared).",
    )  # fmt: skip
    lease_seconds: float = Field(
        default=300.0, gt=0, title="Permit lease (s)",
        description="For a shared scope: a permit expires after this long, so a crashed holder frees it.",
    )  # fmt: skip

    def to_config(self, name: str) -> BulkheadConfig:
        """The core `BulkheadConfig` of the bulkhead called `name`."""
        return BulkheadConfig(
            name=name,
            max_concurrent=self.max_concurrent,
            max_wait_seconds=self.max_wait_seconds,
            max_queue=self.max_queue,
            scope=self.scope,
            lease_seconds=self.lease_seconds,
        )


class RecoveryPolicy(Block):
    """What recovery does to a failed component, how often it tries and how it backs off.

    Data only: the recovery flows read it.

    Examples:
        ```python
        from prefect_ft.blocks import RecoveryPolicy

        recovery = RecoveryPolicy.load("BLOCK_NAME")
        ```
    """

    _block_type_name = "FT Recovery Policy"
    _description = "Recovery action, attempts, backoff and health check of a prefect-ft component."

    action: RecoveryAction | None = Field(
        default=None, title="Recovery action",
        description="What recovery does first through the component's control channel; empty: chosen by failure type (connection-reset for a ConnectionError, model-reload for a ModelInferenceError, ...).",
    )  # fmt: skip
    max_attempts: int = Field(
        default=3, ge=1, le=100, title="Maximum attempts",
        description="Recovery attempts before recovery gives up.",
    )  # fmt: skip
    base_seconds: float = Field(
        default=1.0, gt=0, title="Backoff base (s)",
        description="Delay before the second attempt; it doubles with each further attempt.",
    )  # fmt: skip
    cap_seconds: float = Field(
        default=60.0, gt=0, title="Backoff cap (s)",
        description="Longest delay between two attempts.",
    )  # fmt: skip
    jitter: Literal["full", "equal", "decorrelated", "none"] = Field(
        default="full", title="Backoff jitter",
        description="How delays are randomised (AWS Architecture Blog, Exponential Backoff and Jitter).",
    )  # fmt: skip
    health_check_timeout_seconds: float = Field(
        default=30.0, gt=0, title="Health check timeout (s)",
        description="Seconds the component has to report healthy after an action.",
    )  # fmt: skip
    rollback_on_failure: bool = Field(
        default=True, title="Roll back on failure",
        description="Undo the action when the health check fails after it.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _check_backoff(self) -> RecoveryPolicy:
        if self.cap_seconds < self.base_seconds:
            raise ValueError(
                f"cap_seconds ({self.cap_seconds}) must be >= base_seconds ({self.base_seconds})"
            )
        return self

    def to_config(self) -> RecoveryConfig:
        """The core `RecoveryConfig`: `action` is the immediate phase's strategy, and
        `max_attempts` is spread over the three escalation phases (at least one each).

        Recovery backs off with full jitter whatever `jitter` says (issue 9 fixes it).
        """
        return RecoveryConfig(
            action=self.action,
            attempts_per_phase=max(1, -(-self.max_attempts // len(PHASES))),
            base_seconds=self.base_seconds,
            cap_seconds=self.cap_seconds,
            rollback=self.rollback_on_failure,
        )


class ComponentSpec(Block):
    """One pipeline component: its breaker, bulkhead, recovery, control endpoint and dependencies.

    Examples:
        ```python
        from prefect_ft.blocks import ComponentSpec

        spec = ComponentSpec.load("BLOCK_NAME")
        breaker = spec.breaker.to_config(spec.component)
        ```
    """

    _block_type_name = "FT Component Spec"
    _description = (
        "A prefect-ft component: breaker, bulkhead and recovery policies, and dependencies."
    )

    component: str = Field(
        default=..., min_length=1, title="Component",
        description="The component's name; keep it equal to the block name, which names its breaker and bulkhead.",
        examples=["ml-inference"],
    )  # fmt: skip
    breaker: CircuitBreakerPolicy = Field(
        default=..., title="Circuit breaker policy",
        description="The component's circuit breaker policy.",
    )  # fmt: skip
    bulkhead: BulkheadPolicy | None = Field(
        default=None, title="Bulkhead policy",
        description="The component's bulkhead policy; empty for no bulkhead.",
    )  # fmt: skip
    recovery: RecoveryPolicy | None = Field(
        default=None, title="Recovery policy",
        description="How the component is recovered; empty for no automatic recovery.",
    )  # fmt: skip
    control_endpoint: str | None = Field(
        default=None, title="Control endpoint",
        description="URL of the component's control channel used by recovery actions.",
        examples=["http://127.0.0.1:8000/control"],
    )  # fmt: skip
    depends_on: list[str] = Field(
        default_factory=list, title="Depends on",
        description="Upstream components this one depends on; cascade detection follows these edges, and calls wait while one is open.",
    )  # fmt: skip
    defer_seconds: float = Field(
        default=5.0, ge=0, le=3600, title="Upstream wait (s)",
        description="Seconds a call waits while an upstream component is open before it is dead-lettered (upstream-open).",
    )  # fmt: skip
    max_deferred: int = Field(
        default=100, ge=0, le=100_000, title="Maximum waiting calls",
        description="Calls that may wait for an open upstream at once; further calls are dead-lettered at once.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _check_depends_on(self) -> ComponentSpec:
        # a cycle through other documents is refused where the graph is built (tasks.isolation)
        for up in self.depends_on:
            if not up.strip():
                raise ValueError("depends_on: a component name must not be empty")
            if up == self.component:
                raise ValueError(
                    f"depends_on: dependency cycle: {self.component} -> {self.component}"
                )
        return self
