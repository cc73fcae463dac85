"""Task runs still in flight (RUNNING, no end time) as a `RunningBatch` for the engine.

A stage that hangs ends no run: its runs start and stay RUNNING, and a read of finished runs by
end time never sees them. The detection engine needs their starts to tell a hung stage from one
that nothing reached (`prefect_ft.detection.hang`). A run's current attempt started at its
RUNNING state's timestamp (`Running`, or `Retrying` for a retry); `start_time` is its first
attempt's, used only when the state has no timestamp.

Runs in flight are few (the workers' slots), so they are read in pages of `page_limit` up to
`MAX_RUNNING` runs; any beyond are flagged, not read. A task run left RUNNING by a flow run that
has ended (a crashed process never recorded the task's end) is no work in flight, and would read
as a run stuck for hours: runs whose flow run is in a final state are left out (`orphans`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from prefect_ft.detection.batch import RunningBatch

__all__ = ["MAX_RUNNING", "aread_running", "attempt_start", "running_batch"]

MAX_RUNNING = 2000  # runs in flight read per pass (10 pages of 200)


def attempt_start(run: Any) -> float | None:
    """When a RUNNING run's current attempt started (epoch seconds), or None if unknown."""
    state = getattr(run, "state", None)
    ts = getattr(state, "timestamp", None) if state is not None else None
    if ts is None:
        ts = run.start_time
    return None if ts is None else ts.timestamp()


def running_batch(
    found: Iterable[tuple[str | None, float | None]], components: tuple[str, ...], until: float
) -> RunningBatch:
    """`(component, attempt start)` pairs of runs in flight -> a batch of the watched components'
    runs that had started by `until` (a run starting later was not in flight in the window)."""
    index = {c: i for i, c in enumerate(components)}
    kept = [
        (start, index[comp])
        for comp, start in found
        if comp in index and start is not None and start <= until
    ]
    starts = np.asarray([s for s, _ in kept], dtype=float)
    comps = np.asarray([c for _, c in kept], dtype=np.int64)
    return RunningBatch(components, starts, comps)


async def aread_running(
    client: Any,
    components: tuple[str, ...],
    until: float,
    component: Callable[[Any], str | None],
    *,
    page_limit: int = 200,
) -> tuple[RunningBatch, bool, int]:
    """Runs RUNNING now that started by `until`, of `components`, whose flow run has not ended.

    Returns:
        The batch, True when more than `MAX_RUNNING` runs were in flight (the rest unread), and
        how many RUNNING runs were left out because their flow run had ended.
    """
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        TaskRunFilter,
        TaskRunFilterStartTime,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import TERMINAL_STATES, StateType
    from prefect.client.schemas.sorting import TaskRunSort

    filt = TaskRunFilter(
        state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.RUNNING])),
        # the first attempt's start; the current attempt's is checked below
        start_time=TaskRunFilterStartTime(before_=datetime.fromtimestamp(until + 1e-6, tz=UTC)),
    )
    runs: dict[str, Any] = {}
    offset, truncated = 0, False
    while True:
        page = await client.read_task_runs(
            task_run_filter=filt, sort=TaskRunSort.ID_DESC, limit=page_limit, offset=offset
        )
        for run in page:
            runs[str(run.id)] = run
        offset += len(page)
        if len(page) < page_limit:
            break
        if offset >= MAX_RUNNING:
            truncated = True
            break
    live = [r for r in runs.values() if r.end_time is None and component(r) is not None]
    flows = sorted({r.flow_run_id for r in live if r.flow_run_id is not None}, key=str)
    ended: set[Any] = set()
    for lo in range(0, len(flows), page_limit):
        ended |= {
            f.id
            for f in await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=flows[lo : lo + page_limit]),
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=sorted(TERMINAL_STATES))
                    ),
                ),
                limit=page_limit,
            )
        }
    orphans = [r for r in live if r.flow_run_id in ended]
    found = [(component(r), attempt_start(r)) for r in live if r.flow_run_id not in ended]
    return running_batch(found, components, until), truncated, len(orphans)
