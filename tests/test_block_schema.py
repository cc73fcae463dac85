"""Block schemas offline: defaults agree with the core configs, bounds mirror them."""

from __future__ import annotations

from prefect_ft.blocks import BulkheadPolicy
from prefect_ft.core.bulkhead import BulkheadConfig


def test_bulkhead_block_defaults_are_the_core_defaults() -> None:
    block, core = BulkheadPolicy(), BulkheadConfig("x")
    assert block.to_config("x") == core
    assert block.max_wait_seconds > 0  # a .map() wider than the bulkhead queues (item 16)
