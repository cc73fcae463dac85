"""prefect_ft: fault tolerance for Prefect 3 pipelines.

Circuit breakers (CLOSED, OPEN, HALF_OPEN, RECOVERY and operator overlays) shared across
processes through a store, with presets for the RAN pipeline's components.
"""

from prefect_ft.blocks import BulkheadPolicy, CircuitBreakerPolicy, ComponentSpec, RecoveryPolicy
from prefect_ft.breaker import CircuitBreaker, add_global_listener, remove_global_listener
from prefect_ft.core.classify import OutcomeClassifier
from prefect_ft.core.conditions import AllOf, AnyOf, ConsecutiveFailures, FailureRate, SlowCallRate
from prefect_ft.core.config import BreakerConfig
from prefect_ft.core.events import BreakerEvent
from prefect_ft.exceptions import (
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    FaultToleranceError,
    StoreUnavailableError,
)
from prefect_ft.policies import FTPolicy, aresolve_policy, resolve_policy
from prefect_ft.presets import PRESETS

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "AllOf",
    "AnyOf",
    "BreakerConfig",
    "BreakerEvent",
    "BulkheadFullError",
    "BulkheadPolicy",
    "CircuitBreaker",
    "CircuitBreakerPolicy",
    "CircuitOpenError",
    "ComponentSpec",
    "ConfigurationError",
    "ConsecutiveFailures",
    "FTPolicy",
    "FailureRate",
    "FaultToleranceError",
    "OutcomeClassifier",
    "RecoveryPolicy",
    "SlowCallRate",
    "StoreUnavailableError",
    "add_global_listener",
    "aresolve_policy",
    "remove_global_listener",
    "resolve_policy",
]
