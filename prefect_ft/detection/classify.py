"""Map failures to the 8 failure types and 4 severities, from live exceptions or history rows.

Rules follow research/detection.md section 2.6, in priority order: Timeout, ResourceExhaustion,
ModelInferenceError, ConnectionError / NetworkError, ValidationError, ProcessingError.
`PerformanceDegradation` is never assigned here: only the degradation detector raises it.
History rows arrive as plain strings (state type, state name, message, exception type name), never
as Prefect models, so this module stays pure. Users extend `ClassificationRules` with `extended`.
The rule table and its built-in patterns sit in `classify_rules.py`; this module decides.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass

from prefect_ft.detection.alarms import FailureType, Severity
from prefect_ft.detection.classify_rules import DEFAULT_RULES, ClassificationRules

__all__ = [
    "DEFAULT_RULES",
    "Classification",
    "ClassificationRules",
    "classify_exception",
    "classify_state",
]

_FT = FailureType

# errno values that mean the network path, not the peer, failed.
_NETWORK_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENETUNREACH", "EHOSTUNREACH", "ENETDOWN", "EHOSTDOWN", "ENETRESET")
    if hasattr(errno, name)
)
_CONNECTION_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "EPIPE", "ENOTCONN")
    if hasattr(errno, name)
)

_NOT_FAILED_STATES = frozenset(
    {"COMPLETED", "RUNNING", "PENDING", "SCHEDULED", "PAUSED", "CANCELLED", "CANCELLING"}
)
# A breaker's or bulkhead's own rejection is not a failure of the dependency (DESIGN.md section 4).
_IGNORED_STATE_NAMES = frozenset({"circuitopen", "bulkheadfull", "cancelled", "cancelling"})
# A nested guard's refusal ends the enclosing task run plain Failed with the guard's exception;
# the enclosing breaker ignores it (the refusing component's own failures are counted there).
_REJECTION_EXCEPTIONS = frozenset({"CircuitOpenError", "BulkheadFullError"})


@dataclass(frozen=True, slots=True)
class Classification:
    """The failure type and severity of one failure."""

    failure_type: FailureType
    severity: Severity


def _decide(
    rules: ClassificationRules,
    names: Iterable[str],
    message: str,
    component: str | None,
    duration_s: float | None,
    timeout_s: float | None,
    err: int | None,
) -> FailureType:
    # Priority 1: a duration at or over the configured timeout is a Timeout whatever was raised.
    if duration_s is not None and timeout_s is not None and duration_s >= timeout_s:
        return _FT.TIMEOUT
    for name in names:
        if name in rules.exception_names:
            found = rules.exception_names[name]
            if found is _FT.CONNECTION_ERROR and err in _NETWORK_ERRNOS:
                return _FT.NETWORK_ERROR
            return found
    if err in _NETWORK_ERRNOS:
        return _FT.NETWORK_ERROR
    if err in _CONNECTION_ERRNOS:
        return _FT.CONNECTION_ERROR
    by_message = rules._by_message(message) if message else None
    if by_message is not None:
        return by_message
    if component is not None and component in rules.component_defaults:
        return rules.component_defaults[component]
    return _FT.PROCESSING_ERROR


def classify_exception(
    exc: BaseException,
    *,
    component: str | None = None,
    duration_s: float | None = None,
    timeout_s: float | None = None,
    rules: ClassificationRules = DEFAULT_RULES,
) -> Classification:
    """Classify a live exception.

    Args:
        exc: the raised exception.
        component: the component that raised it (used for component defaults).
        duration_s: how long the call ran, if known.
        timeout_s: the call's timeout, if any; a duration at or over it means Timeout.
        rules: the rule table.

    Returns:
        The failure type and its severity.
    """
    names = [cls.__name__ for cls in type(exc).__mro__]
    err = getattr(exc, "errno", None)
    ftype = _decide(
        rules,
        names,
        str(exc),
        component,
        duration_s,
        timeout_s,
        err if isinstance(err, int) else None,
    )
    return Classification(ftype, rules.severities.get(ftype, Severity.MEDIUM))


def classify_state(
    state_type: str,
    state_name: str | None = None,
    message: str | None = None,
    exception_type: str | None = None,
    *,
    component: str | None = None,
    duration_s: float | None = None,
    timeout_s: float | None = None,
    rules: ClassificationRules = DEFAULT_RULES,
) -> Classification | None:
    """Classify one historical task-run state from plain data.

    Args:
        state_type: Prefect state type as a string, e.g. `"FAILED"`, `"CRASHED"`, `"COMPLETED"`.
        state_name: the state's name, e.g. `"TimedOut"` or `"CircuitOpen"`.
        message: the state message.
        exception_type: the exception class name stored with the state, if any.
        component: the component of the task run.
        duration_s: run duration, if known.
        timeout_s: the task's timeout, if known.
        rules: the rule table.

    Returns:
        The classification, or None when the state is not a failure of the dependency (a
        completed or cancelled run, a breaker's or bulkhead's own rejection, or a run that
        ended with a nested guard's `CircuitOpenError` / `BulkheadFullError`).
    """
    stype = (state_type or "").strip().upper().replace("StateType.", "")
    name = (state_name or "").strip()
    if stype in _NOT_FAILED_STATES or name.lower() in _IGNORED_STATE_NAMES:
        return None
    if stype not in {"FAILED", "CRASHED"}:
        return None
    names: list[str] = []
    if exception_type:
        names.append(exception_type.rsplit(".", 1)[-1])
        if names[0] in _REJECTION_EXCEPTIONS:
            return None
    if name.lower() in {"timedout", "timed out"}:
        names.append("TimedOut")
    text = " ".join(filter(None, [message or "", exception_type or ""]))
    ftype = _decide(rules, names, text, component, duration_s, timeout_s, None)
    severity = rules.severities.get(ftype, Severity.MEDIUM)
    if stype == "CRASHED":
        severity = severity.bump(rules.crashed_bump)
    return Classification(ftype, severity)
