"""The vocabulary every detector speaks: patterns, failure types, severities and the `Alarm`.

Pure data: no detector logic lives here, so adapters (events, artifacts) can import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "FAILURE_TYPES",
    "Alarm",
    "DetectionResult",
    "FailureType",
    "Pattern",
    "Severity",
    "Skipped",
]


class Pattern(StrEnum):
    """What kind of fault an alarm reports."""

    BURST = "burst"
    DEGRADATION = "degradation"
    EXHAUSTION = "exhaustion"
    CYCLIC = "cyclic"
    CASCADE = "cascade"
    LEVEL_SHIFT = "level_shift"
    SPIKE = "spike"


class FailureType(StrEnum):
    """The 8 failure types of DESIGN.md section 7."""

    TIMEOUT = "Timeout"
    RESOURCE_EXHAUSTION = "ResourceExhaustion"
    MODEL_INFERENCE_ERROR = "ModelInferenceError"
    PROCESSING_ERROR = "ProcessingError"
    VALIDATION_ERROR = "ValidationError"
    CONNECTION_ERROR = "ConnectionError"
    PERFORMANCE_DEGRADATION = "PerformanceDegradation"
    NETWORK_ERROR = "NetworkError"

    @property
    def code(self) -> int:
        """Index of this type in `FAILURE_TYPES`, the integer code used in batches."""
        return FAILURE_TYPES.index(self)

    @classmethod
    def from_code(cls, code: int) -> FailureType | None:
        """The type for a batch code, or None for -1 (no failure) and unknown codes."""
        return FAILURE_TYPES[code] if 0 <= code < len(FAILURE_TYPES) else None


FAILURE_TYPES: tuple[FailureType, ...] = tuple(FailureType)


class Severity(StrEnum):
    """Four impact levels, ordered LOW < MEDIUM < HIGH < CRITICAL by `rank`."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        """0 for LOW up to 3 for CRITICAL."""
        return _SEVERITY_ORDER.index(self)

    def bump(self, steps: int = 1) -> Severity:
        """This severity raised (or lowered, for negative steps) within the four levels."""
        return _SEVERITY_ORDER[max(0, min(3, self.rank + steps))]


_SEVERITY_ORDER: tuple[Severity, ...] = tuple(Severity)


@dataclass(frozen=True, slots=True)
class Alarm:
    """One detected fault episode.

    Attributes:
        pattern: which detector raised it.
        components: affected components; for a cascade, root first in propagation order.
        onset: estimated start of the episode (epoch seconds).
        at: detection time (epoch seconds); the alarm used only data up to `at`.
        severity: impact level.
        failure_type: the dominant failure type of the episode.
        score: the detector statistic that crossed its threshold.
        evidence: named numbers behind the decision, e.g. `(("period_s", 300.0),)`.
        explanation: one line a person can read.
    """

    pattern: Pattern
    components: tuple[str, ...]
    onset: float
    at: float
    severity: Severity
    failure_type: FailureType
    score: float
    evidence: tuple[tuple[str, float], ...] = ()
    explanation: str = ""

    def evidence_map(self) -> dict[str, float]:
        """The evidence as a dict."""
        return dict(self.evidence)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (for events and artifacts)."""
        return {
            "pattern": str(self.pattern),
            "components": list(self.components),
            "onset": self.onset,
            "at": self.at,
            "severity": str(self.severity),
            "failure_type": str(self.failure_type),
            "score": self.score,
            "evidence": dict(self.evidence),
            "explanation": self.explanation,
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """Input that was not used, and why (for the caller to log; the pure layer never logs).

    Attributes:
        reason: a short machine-friendly key, e.g. `"nan_values"`.
        count: how many rows or samples it concerns.
        detail: one human-readable line.
    """

    reason: str
    count: int
    detail: str


@dataclass(frozen=True, slots=True)
class DetectionResult:
    """Alarms raised by one call plus the input that was skipped.

    Attributes:
        alarms: new alarms, in detection-time order.
        skipped: reasons some input was ignored (empty when everything was used).
    """

    alarms: tuple[Alarm, ...] = ()
    skipped: tuple[Skipped, ...] = field(default=())
