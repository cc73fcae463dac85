"""The rule table of failure classification: what names, messages and components mean.

Holds the built-in tables (exception class names, message patterns, component defaults and the
default severity of each failure type) and `ClassificationRules`, the table users extend with
`extended`. Kept apart from the decision code in `classify.py`, which applies a table in the
priority order of research/detection.md section 2.6, so the tables read as data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prefect_ft.detection.alarms import FailureType, Severity

__all__ = ["DEFAULT_RULES", "ClassificationRules"]

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
