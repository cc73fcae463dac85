"""Map failures to the 8 failure types and 4 severities, from live exceptions or history rows.

Rules follow research/detection.md section 2.6, in priority order: Timeout, ResourceExhaustion,
ModelInferenceError, ConnectionError / NetworkError, ValidationError, ProcessingError.
`PerformanceDegradation` is never assigned here: only the degradation detector raises it.
History rows arrive as plain strings (state type, state name, message, exception type name), never
as Prefect models, so this module stays pure. Users extend `ClassificationRules` with `extended`.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prefect_ft.detection.alarms import FailureType, Severity

__all__ = [
    "DEFAULT_RULES",
    "Classification",
    "ClassificationRules",
    "classify_exception",
    "classify_state",
]

_FT = FailureType

# Exception class names (matched against the whole MRO, so subclasses inherit the mapping).
_EXCEPTION_NAMES: dict[str, FailureType] = {
    "TimeoutError": _FT.TIMEOUT,
    "TimeoutExpired": _FT.TIMEOUT,
    "ReadTimeout": _FT.TIMEOUT,
    "ConnectTimeout": _FT.TIMEOUT,
    "WriteTimeout": _FT.TIMEOUT,
    "PoolTimeout": _FT.TIMEOUT,
    "TimedOut": _FT.TIMEOUT,
    "MemoryError": _FT.RESOURCE_EXHAUSTION,
    "OutOfMemoryError": _FT.RESOURCE_EXHAUSTION,
    "ResourceExhausted": _FT.RESOURCE_EXHAUSTION,
    "ConnectionError": _FT.CONNECTION_ERROR,
    "ConnectionRefusedError": _FT.CONNECTION_ERROR,
    "ConnectionResetError": _FT.CONNECTION_ERROR,
    "ConnectionAbortedError": _FT.CONNECTION_ERROR,
    "BrokenPipeError": _FT.CONNECTION_ERROR,
    "ConnectError": _FT.CONNECTION_ERROR,
    "RedisConnectionError": _FT.CONNECTION_ERROR,
    "gaierror": _FT.NETWORK_ERROR,
    "herror": _FT.NETWORK_ERROR,
    "NetworkError": _FT.NETWORK_ERROR,
    "RemoteProtocolError": _FT.NETWORK_ERROR,
    "ProtocolError": _FT.NETWORK_ERROR,
    "SSLError": _FT.NETWORK_ERROR,
    "ValidationError": _FT.VALIDATION_ERROR,
    "SchemaError": _FT.VALIDATION_ERROR,
    "JSONDecodeError": _FT.VALIDATION_ERROR,
    "ModelInferenceError": _FT.MODEL_INFERENCE_ERROR,
    "InferenceError": _FT.MODEL_INFERENCE_ERROR,
}

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

# Message fragments (case-insensitive regexes), checked in the order of the priority list.
_MESSAGE_PATTERNS: tuple[tuple[str, FailureType], ...] = (
    (r"timed? ?out|timeout|deadline exceeded", _FT.TIMEOUT),
    (
        r"out of memory|\boom\b|memoryerror|killed|exit code 137|resource exhausted",
        _FT.RESOURCE_EXHAUSTION,
    ),
    # Whole words only: "model server ...: ConnectError" is a server not reached, not a model
    # error (the demo's crash read as a model error and fell under the model burst's hold-off).
    (
        r"\bmlx\b|\bmodel(\b.*\b(fail\w*|errors?)\b|error\b)|inference|generation failed|metal",
        _FT.MODEL_INFERENCE_ERROR,
    ),
    (
        r"connection (refused|reset|aborted|closed)|broken pipe|cannot connect|connect(ion)?error",
        _FT.CONNECTION_ERROR,
    ),
    (r"name resolution|unreachable|network|dns|ssl", _FT.NETWORK_ERROR),
    (r"validat|schema|invalid", _FT.VALIDATION_ERROR),
)

_DEFAULT_SEVERITY: dict[FailureType, Severity] = {
    _FT.TIMEOUT: Severity.MEDIUM,
    _FT.RESOURCE_EXHAUSTION: Severity.HIGH,
    _FT.MODEL_INFERENCE_ERROR: Severity.HIGH,
    _FT.PROCESSING_ERROR: Severity.LOW,
    _FT.VALIDATION_ERROR: Severity.LOW,
    _FT.CONNECTION_ERROR: Severity.MEDIUM,
    _FT.PERFORMANCE_DEGRADATION: Severity.MEDIUM,
    _FT.NETWORK_ERROR: Severity.MEDIUM,
}

# Which component's errors default to which type when nothing more specific matches.
_COMPONENT_DEFAULTS: dict[str, FailureType] = {
    "ml-inference": _FT.MODEL_INFERENCE_ERROR,
    "ml_inference": _FT.MODEL_INFERENCE_ERROR,
    "quality-validation": _FT.VALIDATION_ERROR,
    "quality_validation": _FT.VALIDATION_ERROR,
}

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


@dataclass(frozen=True, slots=True)
class ClassificationRules:
    """A user-extensible rule table.

    Attributes:
        exception_names: exception class name (anywhere in the MRO) to failure type.
        message_patterns: (case-insensitive regex, type) pairs, tried in order.
        component_defaults: component name to the type used when nothing else matches.
        severities: default severity per failure type.
        crashed_bump: severity steps added when the run crashed (the process died).
    """

    exception_names: Mapping[str, FailureType] = field(
        default_factory=lambda: dict(_EXCEPTION_NAMES)
    )
    message_patterns: tuple[tuple[str, FailureType], ...] = _MESSAGE_PATTERNS
    component_defaults: Mapping[str, FailureType] = field(
        default_factory=lambda: dict(_COMPONENT_DEFAULTS)
    )
    severities: Mapping[FailureType, Severity] = field(
        default_factory=lambda: dict(_DEFAULT_SEVERITY)
    )
    crashed_bump: int = 1

    def extended(
        self,
        *,
        exception_names: Mapping[str, FailureType | str] | None = None,
        message_patterns: Iterable[tuple[str, FailureType | str]] = (),
        component_defaults: Mapping[str, FailureType | str] | None = None,
        severities: Mapping[FailureType | str, Severity | str] | None = None,
    ) -> ClassificationRules:
        """A copy with extra rules; user message patterns are tried before the built-in ones.

        Example:
            ```python
            rules = DEFAULT_RULES.extended(exception_names={"GPUHang": "ModelInferenceError"})
            classify_exception(exc, rules=rules)
            ```
        """
        names = dict(self.exception_names)
        names.update({k: FailureType(v) for k, v in (exception_names or {}).items()})
        comps = dict(self.component_defaults)
        comps.update({k: FailureType(v) for k, v in (component_defaults or {}).items()})
        sev = dict(self.severities)
        sev.update({FailureType(k): Severity(v) for k, v in (severities or {}).items()})
        extra = tuple((p, FailureType(t)) for p, t in message_patterns)
        for pattern, _ in extra:
            re.compile(pattern)  # fail at construction, not on first use
        return ClassificationRules(
            exception_names=names,
            message_patterns=extra + self.message_patterns,
            component_defaults=comps,
            severities=sev,
            crashed_bump=self.crashed_bump,
        )

    def _by_message(self, text: str) -> FailureType | None:
        for pattern, ftype in self.message_patterns:
            if re.search(pattern, text, flags=re.IGNORECASE):
                return ftype
        return None


DEFAULT_RULES = ClassificationRules()


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
