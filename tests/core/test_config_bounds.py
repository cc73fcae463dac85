"""Every size in a breaker or bulkhead config has an upper bound (issue 8 item 8).

A time window of 5,000,000 s allocated 484 MB per breaker per process; the bounds keep one
window under half a megabyte, and the message names the field and the allowed range.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from prefect_ft.core.bulkhead import BulkheadConfig
from prefect_ft.core.config import BreakerConfig
from prefect_ft.exceptions import ConfigurationError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_size": 10_001}, r"window_size must be an integer in \[1, 10000\] calls"),
        (
            {"window_type": "time", "window_size": 5_000_000},
            r"window_size must be an integer in \[1, 3600\] seconds",
        ),
        ({"half_open_calls": 101}, r"half_open_calls must be an integer in \[1, 100\]"),
        (
            {"recovery_minimum_calls": 10_001},
            r"recovery_minimum_calls must be an integer in \[1, 10000\]",
        ),
    ],
)
def test_breaker_sizes_are_bounded(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{message}.*got"):
        BreakerConfig("x", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_concurrent": 10_001}, r"max_concurrent must be an integer in \[1, 10000\]"),
        ({"max_queue": 100_001}, r"max_queue must be an integer in \[0, 100000\] or None"),
    ],
)
def test_bulkhead_sizes_are_bounded(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{message}.*got"):
        BulkheadConfig("x", **kwargs)


@pytest.mark.parametrize(("window_type", "size"), [("count", 10_000), ("time", 3_600)])
def test_the_largest_window_allowed_stays_small(window_type: str, size: int) -> None:
    config = BreakerConfig("x", window_type=window_type, window_size=size)
    tracemalloc.start()
    try:
        config.new_window()
        allocated, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert allocated < 512 * 1024
