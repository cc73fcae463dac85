"""Failure-type and severity classification of live exceptions and of history rows."""

from __future__ import annotations

import errno
import re
import socket

import pytest

from prefect_ft.detection import (
    DEFAULT_RULES,
    FailureType,
    Severity,
    classify_exception,
    classify_state,
)

FT = FailureType


class ModelInferenceError(RuntimeError):
    pass


class PoolTimeout(TimeoutError):  # a subclass inherits its parent's mapping through the MRO
    pass


@pytest.mark.parametrize(
    ("exc", "component", "expected"),
    [
        (TimeoutError("slow"), None, FT.TIMEOUT),
        (PoolTimeout(), None, FT.TIMEOUT),
        (MemoryError(), None, FT.RESOURCE_EXHAUSTION),
        (ConnectionRefusedError(), None, FT.CONNECTION_ERROR),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), None, FT.NETWORK_ERROR),
        (ConnectionError(errno.EHOSTUNREACH, "no route"), None, FT.NETWORK_ERROR),
        (socket.gaierror("name"), None, FT.NETWORK_ERROR),
        (ModelInferenceError("bad logits"), None, FT.MODEL_INFERENCE_ERROR),
        (RuntimeError("boom"), "ml-inference", FT.MODEL_INFERENCE_ERROR),
        (ValueError("score below floor"), "quality-validation", FT.VALIDATION_ERROR),
        (RuntimeError("boom"), "doc-processing", FT.PROCESSING_ERROR),
        (KeyError("x"), None, FT.PROCESSING_ERROR),
    ],
)
def test_exceptions_map_to_the_eight_types(exc, component, expected) -> None:
    assert classify_exception(exc, component=component).failure_type is expected


def test_a_duration_over_the_timeout_wins_over_the_exception() -> None:
    got = classify_exception(ConnectionResetError(), duration_s=31.0, timeout_s=30.0)
    assert got.failure_type is FT.TIMEOUT
    assert (
        classify_exception(ConnectionResetError(), duration_s=29.0, timeout_s=30.0).failure_type
        is FT.CONNECTION_ERROR
    )


def test_default_severities_are_pinned() -> None:
    assert classify_exception(MemoryError()).severity is Severity.HIGH
    assert classify_exception(TimeoutError()).severity is Severity.MEDIUM
    assert classify_exception(KeyError()).severity is Severity.LOW


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("FAILED", "Failed", "Task run encountered an exception", "TimeoutError"), FT.TIMEOUT),
        (("FAILED", "TimedOut", "Task run exceeded timeout of 30.0 seconds", None), FT.TIMEOUT),
        (("FAILED", "Failed", "boom", "httpx.ConnectError"), FT.CONNECTION_ERROR),
        (("FAILED", "Failed", "Temporary failure in name resolution", None), FT.NETWORK_ERROR),
        (
            ("FAILED", "Failed", "pydantic ValidationError: 2 errors", "ValidationError"),
            FT.VALIDATION_ERROR,
        ),
        (("FAILED", "Failed", "mlx generation failed", "RuntimeError"), FT.MODEL_INFERENCE_ERROR),
        (("FAILED", "Failed", "list index out of range", "IndexError"), FT.PROCESSING_ERROR),
    ],
)
def test_history_states_classify_from_plain_strings(args, expected) -> None:
    got = classify_state(*args)
    assert got is not None
    assert got.failure_type is expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # "error" inside an exception name is no model error: the server was not reached at all
        ("model server at http://127.0.0.1:5000 unavailable: ConnectError: [Errno 111]", FT.CONNECTION_ERROR),
        ("ModelServerUnavailable: model server down (httpx.ConnectError)", FT.CONNECTION_ERROR),
        ("the model failed to generate", FT.MODEL_INFERENCE_ERROR),
        ("model error: NaN in logits", FT.MODEL_INFERENCE_ERROR),
        ("ModelError: bad weights", FT.MODEL_INFERENCE_ERROR),
    ],
)  # fmt: skip
def test_a_model_servers_connection_failure_is_a_connection_error(message: str, expected: FT) -> None:  # fmt: skip
    got = classify_state("FAILED", "Failed", message, None, component="ipc")
    assert got is not None and got.failure_type is expected


def test_a_crash_is_one_severity_level_worse() -> None:
    crashed = classify_state("CRASHED", "Crashed", "Process killed (exit code 137)")
    assert crashed is not None
    assert crashed.failure_type is FT.RESOURCE_EXHAUSTION
    assert crashed.severity is Severity.CRITICAL  # HIGH bumped once


@pytest.mark.parametrize(
    ("state_type", "name"),
    [
        ("COMPLETED", "Completed"),
        ("CANCELLED", "Cancelled"),
        ("FAILED", "CircuitOpen"),
        ("RUNNING", "Running"),
        ("", None),
    ],
)
def test_non_failures_and_breaker_rejections_are_not_classified(state_type, name) -> None:
    assert classify_state(state_type, name, "msg") is None


def test_a_bulkhead_refusal_is_no_failure_of_the_dependency() -> None:
    # the demo's history: 12 `BulkheadFull` refusals of ml-inference in 0.1 s were counted as
    # ModelInferenceError failures (by the component default) and raised a burst alarm
    msg = (
        "bulkhead 'ml-inference' is full (4 concurrent); waited 0.000 s; inputs kept as dead letter"
    )
    assert classify_state("FAILED", "BulkheadFull", msg, component="ml-inference") is None


@pytest.mark.parametrize("exc", ["CircuitOpenError", "prefect_ft.exceptions.BulkheadFullError"])
def test_a_nested_guards_refusal_is_no_failure_of_the_enclosing_component(exc: str) -> None:
    # the demo's history: ml-inference task runs ended Failed with "CircuitOpenError: circuit
    # breaker 'ipc' is OPEN" (its nested ipc call was refused); ml-inference's own breaker ignores
    # such a refusal, detection counted 46 of them as ModelInferenceError and alarmed
    msg = "Task run encountered an exception CircuitOpenError: circuit breaker 'ipc' is OPEN"
    assert classify_state("FAILED", "Failed", msg, exc, component="ml-inference") is None


def test_rules_are_user_extensible() -> None:
    class GPUHang(Exception):
        pass

    assert classify_exception(GPUHang()).failure_type is FT.PROCESSING_ERROR
    rules = DEFAULT_RULES.extended(
        exception_names={"GPUHang": "ModelInferenceError"},
        message_patterns=[(r"quota exceeded", "ResourceExhaustion")],
        severities={"ModelInferenceError": "CRITICAL"},
    )
    got = classify_exception(GPUHang(), rules=rules)
    assert got.failure_type is FT.MODEL_INFERENCE_ERROR
    assert got.severity is Severity.CRITICAL
    state = classify_state("FAILED", "Failed", "Quota exceeded for GPU", None, rules=rules)
    assert state is not None and state.failure_type is FT.RESOURCE_EXHAUSTION
    # the defaults are untouched
    assert classify_exception(GPUHang()).failure_type is FT.PROCESSING_ERROR


def test_a_bad_user_pattern_fails_at_construction() -> None:
    with pytest.raises(re.error):
        DEFAULT_RULES.extended(message_patterns=[("(unclosed", "Timeout")])
