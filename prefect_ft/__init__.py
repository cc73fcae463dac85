"""prefect_ft: fault tolerance for Prefect 3 pipelines.

Circuit breakers (CLOSED, OPEN, HALF_OPEN, RECOVERY and operator overlays) shared across
processes through a store, bulkheads, presets for the RAN pipeline's components, and Prefect
Blocks to configure them from the UI.

`import prefect_ft` stays light (no Prefect, numpy or scipy): the names that need Prefect are
loaded on first use. Prefect itself imports `prefect_ft.blocks` through the
`prefect.collections` entry point, which registers the blocks in servers and workers.
"""

import importlib as _importlib
import typing as _typing

from prefect_ft.breaker import CircuitBreaker, add_global_listener, remove_global_listener
from prefect_ft.core.bulkhead import BulkheadConfig
from prefect_ft.core.classify import OutcomeClassifier
from prefect_ft.core.conditions import AllOf, AnyOf, ConsecutiveFailures, FailureRate, SlowCallRate
from prefect_ft.core.config import BreakerConfig
from prefect_ft.core.events import BreakerEvent
from prefect_ft.deadletter.queue import DeadLetter, DeadLetterQueue
from prefect_ft.deadletter.replay import ReplayReport, areplay, current_replay, replay
from prefect_ft.exceptions import (
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    ControlError,
    FaultToleranceError,
    StoreUnavailableError,
)
from prefect_ft.presets import PRESETS

if _typing.TYPE_CHECKING:
    from prefect_ft.blocks import (
        BulkheadPolicy,
        CircuitBreakerPolicy,
        ComponentSpec,
        RecoveryPolicy,
    )
    from prefect_ft.bulkhead.permits import Bulkhead, GlobalConcurrencyBulkhead
    from prefect_ft.recovery.readiness import announce_ready
    from prefect_ft.tasks.decorator import FaultTolerantTask, ft_task
    from prefect_ft.tasks.policies import FTPolicy, aresolve_policy, resolve_policy
    from prefect_ft.tasks.runner import FaultTolerantTaskRunner

__version__ = "0.1.0"

# name -> module, imported on first attribute access (they import Prefect)
_LAZY = {
    "Bulkhead": "prefect_ft.bulkhead",
    "BulkheadPolicy": "prefect_ft.blocks",
    "CircuitBreakerPolicy": "prefect_ft.blocks",
    "ComponentSpec": "prefect_ft.blocks",
    "FTPolicy": "prefect_ft.tasks.policies",
    "FaultTolerantTask": "prefect_ft.tasks.decorator",
    "FaultTolerantTaskRunner": "prefect_ft.tasks.runner",
    "ft_task": "prefect_ft.tasks.decorator",
    "GlobalConcurrencyBulkhead": "prefect_ft.bulkhead",
    "RecoveryPolicy": "prefect_ft.blocks",
    "announce_ready": "prefect_ft.recovery.readiness",
    "aresolve_policy": "prefect_ft.tasks.policies",
    "resolve_policy": "prefect_ft.tasks.policies",
}

__all__ = [
    "PRESETS",
    "AllOf",
    "AnyOf",
    "BreakerConfig",
    "BreakerEvent",
    "Bulkhead",
    "BulkheadConfig",
    "BulkheadFullError",
    "BulkheadPolicy",
    "CircuitBreaker",
    "CircuitBreakerPolicy",
    "CircuitOpenError",
    "ComponentSpec",
    "ConfigurationError",
    "ConsecutiveFailures",
    "ControlError",
    "DeadLetter",
    "DeadLetterQueue",
    "FTPolicy",
    "FailureRate",
    "FaultToleranceError",
    "FaultTolerantTask",
    "FaultTolerantTaskRunner",
    "GlobalConcurrencyBulkhead",
    "OutcomeClassifier",
    "RecoveryPolicy",
    "ReplayReport",
    "SlowCallRate",
    "StoreUnavailableError",
    "add_global_listener",
    "announce_ready",
    "areplay",
    "aresolve_policy",
    "current_replay",
    "ft_task",
    "remove_global_listener",
    "replay",
    "resolve_policy",
]


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'prefect_ft' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
