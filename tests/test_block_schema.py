"""Block schemas offline: defaults agree with the core configs, bounds mirror them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from prefect.blocks.core import Block
from pydantic import ValidationError

from prefect_ft.blocks import BulkheadPolicy, CircuitBreakerPolicy
from prefect_ft.core.bulkhead import BulkheadConfig
from prefect_ft.core.config import BreakerConfig
from prefect_ft.exceptions import ConfigurationError
from prefect_ft.tasks.policies import FTPolicy


def test_bulkhead_block_defaults_are_the_core_defaults() -> None:
    block, core = BulkheadPolicy(), BulkheadConfig("x")
    assert block.to_config("x") == core
    assert block.max_wait_seconds > 0  # a .map() wider than the bulkhead queues (item 16)


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("redis://cache:99999/0", "port"),
        ("redis://cache:0/0", "port"),
        ("redis://cache:6379/zero", "database"),
        ("redis://:6379/0", "host"),
        ("memroy://", "scheme 'memroy'"),
        ("cache:6379", "scheme"),
        ("sqlite:///", "path"),
        ("sqlite://relative.db", "path"),
    ],
)
def test_a_store_url_that_cannot_be_opened_is_refused_naming_the_field(
    url: str, cause: str
) -> None:
    with pytest.raises(ValidationError) as info:
        CircuitBreakerPolicy(store_url=url)
    message = str(info.value)
    assert "store_url" in message and cause in message and url in message


@pytest.mark.parametrize(
    "url",
    [
        None,
        "memory://",
        "sqlite:////tmp/prefect-ft.db",
        "redis://127.0.0.1:6379/0",
        "redis://cache",
        "rediss://user:secret@cache:6380/2",
    ],
)
def test_store_urls_that_can_be_opened_are_kept(url: str | None) -> None:
    assert CircuitBreakerPolicy(store_url=url).store_url == url


def test_an_ft_policy_refuses_a_bad_store_url_when_built() -> None:
    with pytest.raises(ConfigurationError, match=r"^store_url .*99999"):
        FTPolicy("x", BreakerConfig("x"), store_url="redis://cache:99999/0")


@pytest.mark.parametrize(
    ("kind", "values", "field"),
    [
        (CircuitBreakerPolicy, {"window_size": 10_001}, "window_size"),
        (CircuitBreakerPolicy, {"window_type": "time", "window_size": 3_601}, "window_size"),
        (CircuitBreakerPolicy, {"half_open_calls": 101}, "half_open_calls"),
        (CircuitBreakerPolicy, {"failure_threshold": 10_001}, "failure_threshold"),
        (CircuitBreakerPolicy, {"minimum_calls": 10_001}, "minimum_calls"),
        (CircuitBreakerPolicy, {"replay_concurrency": 65}, "replay_concurrency"),
        (CircuitBreakerPolicy, {"replay_concurrency": 0}, "replay_concurrency"),
        (BulkheadPolicy, {"max_concurrent": 10_001}, "max_concurrent"),
        (BulkheadPolicy, {"max_queue": 100_001}, "max_queue"),
    ],
)
def test_block_sizes_are_bounded_naming_the_field(
    kind: type[Block], values: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        kind(**values)
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("kind", "field", "maximum"),
    [
        (CircuitBreakerPolicy, "window_size", 10_000),
        (CircuitBreakerPolicy, "half_open_calls", 100),
        (CircuitBreakerPolicy, "failure_threshold", 10_000),
        (CircuitBreakerPolicy, "minimum_calls", 10_000),
        (CircuitBreakerPolicy, "replay_concurrency", 64),
        (BulkheadPolicy, "max_concurrent", 10_000),
        (BulkheadPolicy, "max_queue", 100_000),
    ],
)
def test_the_ui_form_knows_the_upper_bounds(kind: type[Block], field: str, maximum: int) -> None:
    schema = kind.model_json_schema()["properties"][field]
    bounds = [schema.get("maximum")] + [s.get("maximum") for s in schema.get("anyOf", [])]
    assert maximum in bounds


def test_the_ui_form_refuses_an_unknown_store_scheme() -> None:
    schema = CircuitBreakerPolicy.model_json_schema()["properties"]["store_url"]
    patterns = [s["pattern"] for s in schema.get("anyOf", [schema]) if "pattern" in s]
    assert patterns and all(not re.match(p, "memroy://") for p in patterns)
    assert all(re.match(p, "redis://cache:6379/0") for p in patterns)
