"""Health in four levels, per component and for the system (issue 10; decided here, pure).

A component's level is the worst level any one rule below gives it; every rule that fires adds
a reason, so an operator sees *why* (worst first). Rates are fractions in [0, 1]; a rate is
judged against the breaker's own threshold, so "Degraded" means "at the point where the
breaker trips", whatever the component's policy.

| signal                   | Warning                          | Degraded                    | Critical                          |
|--------------------------|----------------------------------|-----------------------------|-----------------------------------|
| breaker state            | HALF_OPEN, RECOVERY, DISABLED,   | OPEN, FORCED_OPEN           | OPEN after >= `critical_trips`    |
|                          | METRICS_ONLY (not protecting)    |                             | trips in a row (not healing)      |
| failure rate             | >= `warn_fraction` x threshold   | >= threshold                |                                   |
| slow-call rate           | >= `warn_fraction` x threshold   | >= threshold                |                                   |
| bulkhead saturation      | >= `bulkhead_warning` (0.8)      | 1.0 (full: callers wait)    |                                   |
| recent alarm (severity)  | LOW, MEDIUM                      | HIGH                        | CRITICAL                          |
| recovery                 | running                          |                             | failed                            |
| store                    | unavailable (local state only)   |                             |                                   |

Nothing fires: Healthy. A rate is only judged once the window holds `minimum_calls` calls (the
breaker's own rule), so one failure out of one call is not a 100 % failure rate.

System level (`system_health`): the worst level of the *critical* components (all components
when none are named); a non-critical component lowers the system to Degraded at most; and when
at least half of two or more components are Degraded or worse, the system is Critical (many
outages at once are one incident: the 50 % panic threshold of DESIGN §8a).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from prefect_ft.core.validation import require

__all__ = [
    "ALARM_SEVERITIES",
    "RECOVERY_STATUSES",
    "ComponentHealth",
    "HealthInputs",
    "HealthRules",
    "Level",
    "SystemHealth",
    "component_health",
    "health_level",
    "system_health",
    "system_level",
]


class Level(IntEnum):
    """Ordered: a larger value is worse (`max` of levels is the worst)."""

    HEALTHY = 0
    WARNING = 1
    DEGRADED = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        """`Healthy`, `Warning`, `Degraded` or `Critical` (what operators read)."""
        return self.name.capitalize()


ALARM_SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
RECOVERY_STATUSES = ("running", "failed", "succeeded")
_ALARM_LEVEL = {
    "LOW": Level.WARNING,
    "MEDIUM": Level.WARNING,
    "HIGH": Level.DEGRADED,
    "CRITICAL": Level.CRITICAL,
}
_STATE_LEVEL = {
    "CLOSED": Level.HEALTHY,
    "HALF_OPEN": Level.WARNING,
    "RECOVERY": Level.WARNING,
    "DISABLED": Level.WARNING,
    "METRICS_ONLY": Level.WARNING,
    "OPEN": Level.DEGRADED,
    "FORCED_OPEN": Level.DEGRADED,
}


def _fraction(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and 0.0 <= x <= 1.0


def _rate_ok(x: object) -> bool:
    # a threshold of None means "no such condition"; a NaN rate would silently compare False
    return x is None or (_fraction(x) and not math.isnan(x))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class HealthRules:
    """The tunable edges of the table in the module docstring."""

    warn_fraction: float = 0.5
    bulkhead_warning: float = 0.8
    critical_trips: int = 3

    def __post_init__(self) -> None:
        require(
            _fraction(self.warn_fraction), "warn_fraction", "a number in [0, 1]", self.warn_fraction
        )
        require(
            _fraction(self.bulkhead_warning),
            "bulkhead_warning",
            "a number in [0, 1]",
            self.bulkhead_warning,
        )
        require(
            isinstance(self.critical_trips, int) and self.critical_trips >= 1,
            "critical_trips",
            "an integer >= 1",
            self.critical_trips,
        )


@dataclass(frozen=True, slots=True)
class HealthInputs:
    """What one component's health is decided from (all optional but the state).

    Attributes:
        component: the component's name (for reasons and the system view).
        breaker_state: the effective state (an overlay when set).
        trips: consecutive trips without a full recovery (`BreakerRecord.trips`).
        calls: calls in the current window; rates are judged only from `minimum_calls`.
        failure_rate / slow_call_rate: fractions in [0, 1] of the current window.
        failure_threshold / slow_call_threshold: the breaker's trip thresholds (None: none).
        bulkhead_saturation: permits in use / permits, in [0, 1] (None: no bulkhead).
        alarm_severity: the worst severity of the recent alarms (None: none).
        recovery: the latest recovery's status: running, failed or succeeded (None: none).
        store_available: False when the breaker runs on local state (store down).
    """

    component: str = ""
    breaker_state: str = "CLOSED"
    trips: int = 0
    calls: int = 0
    minimum_calls: int = 1
    failure_rate: float = 0.0
    failure_threshold: float | None = None
    slow_call_rate: float = 0.0
    slow_call_threshold: float | None = None
    bulkhead_saturation: float | None = None
    alarm_severity: str | None = None
    recovery: str | None = None
    store_available: bool = True

    def __post_init__(self) -> None:
        states = tuple(_STATE_LEVEL)
        require(
            self.breaker_state in states, "breaker_state", f"one of {states}", self.breaker_state
        )
        for name in ("failure_rate", "slow_call_rate"):
            value = getattr(self, name)
            require(_rate_ok(value) and value is not None, name, "a number in [0, 1]", value)
        for name in ("failure_threshold", "slow_call_threshold", "bulkhead_saturation"):
            value = getattr(self, name)
            require(_rate_ok(value), name, "None or a number in [0, 1]", value)
        for name in ("trips", "calls", "minimum_calls"):
            value = getattr(self, name)
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            require(ok, name, "an integer >= 0", value)
        require(
            self.alarm_severity is None or self.alarm_severity in ALARM_SEVERITIES,
            "alarm_severity",
            f"None or one of {ALARM_SEVERITIES}",
            self.alarm_severity,
        )
        require(
            self.recovery is None or self.recovery in RECOVERY_STATUSES,
            "recovery",
            f"None or one of {RECOVERY_STATUSES}",
            self.recovery,
        )


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """A component's level and the reasons for it, worst first."""

    component: str
    level: Level
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"level": self.level.label, "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class SystemHealth:
    """The system's level, its reasons, and each component's health."""

    level: Level
    reasons: tuple[str, ...] = ()
    components: Mapping[str, ComponentHealth] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "level": self.level.label,
            "reasons": list(self.reasons),
            "components": {name: h.to_dict() for name, h in self.components.items()},
        }


def _rate_rule(
    found: list[tuple[Level, str]],
    what: str,
    rate: float,
    threshold: float | None,
    rules: HealthRules,
) -> None:
    if threshold is None:
        return
    if rate >= threshold:
        found.append((Level.DEGRADED, f"{what} {rate:.0%} >= threshold {threshold:.0%}"))
    elif rate > 0 and rate >= rules.warn_fraction * threshold:
        found.append((Level.WARNING, f"{what} {rate:.0%} near threshold {threshold:.0%}"))


def component_health(inputs: HealthInputs, rules: HealthRules = HealthRules()) -> ComponentHealth:
    """Apply the table in the module docstring to one component."""
    found: list[tuple[Level, str]] = []
    state = inputs.breaker_state
    if state == "OPEN" and inputs.trips >= rules.critical_trips:
        found.append((Level.CRITICAL, f"breaker OPEN after {inputs.trips} trips in a row"))
    elif _STATE_LEVEL[state] > Level.HEALTHY:
        found.append((_STATE_LEVEL[state], f"breaker {state}"))
    if inputs.calls >= max(1, inputs.minimum_calls):
        _rate_rule(found, "failure rate", inputs.failure_rate, inputs.failure_threshold, rules)
        _rate_rule(
            found, "slow-call rate", inputs.slow_call_rate, inputs.slow_call_threshold, rules
        )
    sat = inputs.bulkhead_saturation
    if sat is not None and sat >= 1.0:
        found.append((Level.DEGRADED, "bulkhead full"))
    elif sat is not None and sat >= rules.bulkhead_warning:
        found.append((Level.WARNING, f"bulkhead {sat:.0%} in use"))
    if inputs.alarm_severity is not None:
        found.append((_ALARM_LEVEL[inputs.alarm_severity], f"recent {inputs.alarm_severity} alarm"))
    if inputs.recovery == "running":
        found.append((Level.WARNING, "recovery running"))
    elif inputs.recovery == "failed":
        found.append((Level.CRITICAL, "recovery failed"))
    if not inputs.store_available:
        found.append((Level.WARNING, "store unavailable: running on local state"))
    found.sort(key=lambda lr: -lr[0])
    level = found[0][0] if found else Level.HEALTHY
    return ComponentHealth(inputs.component, level, tuple(r for _, r in found))


def health_level(inputs: HealthInputs, rules: HealthRules = HealthRules()) -> Level:
    """The level alone (see `component_health` for the reasons)."""
    return component_health(inputs, rules).level


def system_health(
    components: Mapping[str, ComponentHealth | Level],
    critical: Collection[str] | None = None,
) -> SystemHealth:
    """The system's level from its components' (rules in the module docstring).

    Args:
        components: name -> a `ComponentHealth` or a bare `Level`.
        critical: the components whose outage is the system's; None means all of them.
    """
    healths = {
        name: h if isinstance(h, ComponentHealth) else ComponentHealth(name, Level(h))
        for name, h in components.items()
    }
    if not healths:
        return SystemHealth(Level.HEALTHY, ("no components",), {})
    found: list[tuple[Level, str]] = []
    for name, h in healths.items():
        if h.level == Level.HEALTHY:
            continue
        is_critical = critical is None or name in critical
        level = h.level if is_critical else min(h.level, Level.DEGRADED)
        found.append((level, f"{name}: {h.level.label}"))
    down = sum(1 for h in healths.values() if h.level >= Level.DEGRADED)
    if len(healths) >= 2 and 2 * down >= len(healths):
        found.append((Level.CRITICAL, f"{down} of {len(healths)} components degraded or worse"))
    found.sort(key=lambda lr: -lr[0])
    level = found[0][0] if found else Level.HEALTHY
    return SystemHealth(level, tuple(r for _, r in found), healths)


def system_level(
    levels: Mapping[str, Level | ComponentHealth], critical: Collection[str] | None = None
) -> Level:
    """The system's level alone (see `system_health`)."""
    return system_health(levels, critical).level
