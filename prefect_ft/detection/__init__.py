"""Pure fault detection for prefect_ft: numpy and scipy only, no Prefect, no I/O, no clock.

Detectors are causal (an alarm at time t uses only data up to t) and incremental:

- `DetectionEngine.update(TaskRunBatch, ResourceBatch)` for task-run history (bursts, degradation,
  exhaustion, cyclic and cascading failures), with a JSON-ready `state()`;
- `detect_metric(timestamps, values, kind=...)` for a single metric stream, and `MetricStream`
  for the same one sample at a time;
- `classify_exception` / `classify_state` for the 8 failure types and 4 severities.

Not imported by `prefect_ft/__init__.py` (Prefect imports collections eagerly; scipy is slow).
Methods and targets: research/detection.md; `benchmarks/detection.py` measures them.
"""

from prefect_ft.detection.alarms import (
    FAILURE_TYPES,
    Alarm,
    DetectionResult,
    FailureType,
    Pattern,
    Severity,
    Skipped,
)
from prefect_ft.detection.batch import ResourceBatch, TaskRunBatch
from prefect_ft.detection.classify import (
    DEFAULT_RULES,
    Classification,
    ClassificationRules,
    classify_exception,
    classify_state,
)
from prefect_ft.detection.engine import PIPELINE, DetectionEngine, EngineConfig
from prefect_ft.detection.metric import MetricKind, analyse_metric, detect_metric
from prefect_ft.detection.stream import MetricStream
from prefect_ft.detection.thresholds import VERSION as THRESHOLDS_VERSION
from prefect_ft.detection.thresholds import Thresholds, load_thresholds

__all__ = [
    "DEFAULT_RULES",
    "FAILURE_TYPES",
    "PIPELINE",
    "THRESHOLDS_VERSION",
    "Alarm",
    "Classification",
    "ClassificationRules",
    "DetectionEngine",
    "DetectionResult",
    "EngineConfig",
    "FailureType",
    "MetricKind",
    "MetricStream",
    "Pattern",
    "ResourceBatch",
    "Severity",
    "Skipped",
    "TaskRunBatch",
    "Thresholds",
    "analyse_metric",
    "classify_exception",
    "classify_state",
    "detect_metric",
    "load_thresholds",
]
