"""Bulkheads: cap how many calls run at once, in one process or across processes.

`slots` counts permits inside a process, `permits` adds shared leases in the store, and
`global_concurrency` delegates whole-flow limits to Prefect's global concurrency limits. Nothing
here imports Prefect at module level, so a bulkhead works in any Python process.
"""

from prefect_ft.bulkhead.global_concurrency import GlobalConcurrencyBulkhead
from prefect_ft.bulkhead.permits import Bulkhead

__all__ = ["Bulkhead", "GlobalConcurrencyBulkhead"]
