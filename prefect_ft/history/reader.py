"""Read task-run history and resource samples from Prefect and the store into detection batches.

This is the adapter between Prefect models and the pure `prefect_ft.detection` layer: task runs
become plain `HistoryRow`s and then a `TaskRunBatch` (`prefect_ft.history.rows`, whose
`rows_to_batch` is re-exported here); nothing from Prefect reaches detectors.

Reading is incremental over a window `(after, until]` of end times, with `until = now - lag_s`:
the API records a run about a second after its final state (DESIGN §10), so a window ending
`lag_s` in the past is complete when read, and the next read starts exactly at `until`.

Paging: `read_task_runs` returns at most 200 rows a call and `TaskRunSort` has no ascending
end-time sort, so the window is fixed before the first page, paged by offset with
`END_TIME_DESC`, de-duplicated by run id and sorted locally. A run recorded late inside the window
shifts later pages by one (read twice, dropped by id), never skips one; runs are not deleted from
a recent window, which is the only way offset paging could skip a row.

Retried runs: each failed attempt of a run Prefect retried is one more FAILED row, read with the
same client once the window is paged; `prefect_ft.history.attempts` holds that code and the plain
`HistoryRow` (both re-exported here with `PAGE_LIMIT` and `MAX_RETRIED_RUNS`).

Components: a guarded task run names its component in its `task_key` (or, opt-in and in older
runs, in the tag `ft:component:<name>`); `prefect_ft.history.components` reads either. Runs
without one (unguarded tasks) are counted in `ignored["unguarded"]`.

Resource samples live in the breaker store under `prefect-ft:resources:<component>`, a bounded
ring written with compare-and-set, so any process can record and the detection flow can read.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from prefect_ft.detection import ResourceBatch, TaskRunBatch
from prefect_ft.detection.batch import RunningBatch
from prefect_ft.detection.classify import DEFAULT_RULES, ClassificationRules
from prefect_ft.history.attempts import (
    MAX_RETRIED_RUNS,
    PAGE_LIMIT,
    HistoryRow,
    aread_failed_attempts,
    attempt_rows,
    parse_retry_log,
)
from prefect_ft.history.components import COMPONENT_TAG_PREFIX, run_component
from prefect_ft.history.resources import record_resource_sample, resource_key
from prefect_ft.history.rows import rows_to_batch
from prefect_ft.history.running import aread_running
from prefect_ft.stores import BreakerStore, shared_store

__all__ = [
    "COMPONENT_TAG_PREFIX",
    "MAX_RETRIED_RUNS",
    "PAGE_LIMIT",
    "History",
    "HistoryRow",
    "aread_history",
    "attempt_rows",
    "parse_retry_log",
    "read_history",
    "read_resource_samples",
    "record_resource_sample",
    "resource_key",
    "rows_to_batch",
]


@dataclass(frozen=True, slots=True, eq=False)
class History:
    """The result of one history read.

    Attributes:
        batch: rows of known components, in end-time order, for `DetectionEngine.update`.
        until: the window's end; pass it as `after` to the next read.
        runs: task runs read in the window (after de-duplication).
        ignored: counts of rows left out, by reason (`unguarded`: no component, `not_a_call`,
            `retried_runs_over_cap`: retried runs whose failed attempts were not read,
            `running_over_cap`: 1 when more runs were in flight than `MAX_RUNNING`,
            `running_orphans`: RUNNING task runs whose flow run has ended).
        unknown_components: runs per component the engine does not know.
        retried_runs: runs with more than one attempt whose states were read.
        failed_attempts: FAILED rows added for failed attempts of retried runs.
        running: runs of known components still RUNNING when read that had started by
            `until` (`prefect_ft.history.running`); None when not read.
    """

    batch: TaskRunBatch
    until: float
    runs: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    unknown_components: dict[str, int] = field(default_factory=dict)
    retried_runs: int = 0
    failed_attempts: int = 0
    running: RunningBatch | None = None


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _component(run: Any) -> str | None:
    return run_component(run.task_key, run.tags)


def _to_row(run: Any) -> HistoryRow | None:
    """Convert a Prefect `TaskRun` (None when it has no end time yet)."""
    end = _ts(run.end_time)
    if end is None:
        return None
    state = run.state
    total = run.total_run_time.total_seconds() if run.total_run_time is not None else None
    return HistoryRow(
        id=str(run.id),
        component=_component(run),
        state_type=str(run.state_type.value if run.state_type is not None else ""),
        state_name=run.state_name,
        message=state.message if state is not None else None,
        start=_ts(run.start_time),
        end=end,
        duration=total if total else None,
    )


async def aread_history(
    components: tuple[str, ...],
    after: float | None,
    *,
    until: float | None = None,
    lag_s: float = 5.0,
    max_age_s: float = 6 * 3600.0,
    page_limit: int = PAGE_LIMIT,
    rules: ClassificationRules = DEFAULT_RULES,
    max_retried_runs: int = MAX_RETRIED_RUNS,
) -> History:
    """Read finished task runs with end time in `(after, until]` into a batch, and the runs
    still in flight that had started by `until` (`History.running`).

    Failed attempts of retried runs (`run_count > 1`) that ended in the window are added as
    FAILED rows (see `prefect_ft.history.attempts`); a retried run's own row then starts at its
    last attempt.

    Args:
        components: the engine's component names; runs of other components are reported.
        after: the previous read's `until` (exclusive); None reads back `max_age_s`.
        until: the window end; defaults to `now - lag_s` (history lags behind events).
        lag_s: how far behind the clock the window ends.
        max_age_s: how far back a first read (`after=None`) looks.
        page_limit: rows per `read_task_runs` call (at most 200).
        rules: failure classification rules.
        max_retried_runs: at most this many retried runs have their attempts read per call; the
            rest are counted in `ignored["retried_runs_over_cap"]` and logged.

    Returns:
        The batch, the new watermark (`until`) and what was left out.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        TaskRunFilter,
        TaskRunFilterEndTime,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import TaskRunSort

    page_limit = max(1, min(int(page_limit), PAGE_LIMIT))
    end = float(until) if until is not None else time.time() - lag_s
    start = float(after) if after is not None else end - max_age_s
    if end <= start:  # nothing new can be complete yet; keep the watermark where it is
        return History(TaskRunBatch.empty(components), start)
    filt = TaskRunFilter(
        # widened by 1 us for the API's microsecond rounding; the exact bounds are applied below
        end_time=TaskRunFilterEndTime(
            after_=datetime.fromtimestamp(start - 1e-6, tz=UTC),
            before_=datetime.fromtimestamp(end + 1e-6, tz=UTC),
        ),
        state=TaskRunFilterState(
            type=TaskRunFilterStateType(
                any_=[StateType.COMPLETED, StateType.FAILED, StateType.CRASHED]
            )
        ),
    )
    seen: dict[str, HistoryRow] = {}
    runs: list[Any] = []
    offset = 0
    async with get_client() as client:
        while True:
            page = await client.read_task_runs(
                task_run_filter=filt,
                sort=TaskRunSort.END_TIME_DESC,
                limit=page_limit,
                offset=offset,
            )
            runs += page
            for run in page:
                row = _to_row(run)
                # the API's bounds are inclusive; the window is (start, end]
                if row is not None and start < row.end <= end:
                    seen[row.id] = row
            offset += len(page)
            if len(page) < page_limit:
                break
        watched = set(components)

        def component_of(run: Any) -> str | None:
            name = _component(run)
            return name if name in watched else None

        attempts = await aread_failed_attempts(
            client, runs, start, end, component=component_of, max_retried_runs=max_retried_runs
        )
        # runs still in flight: a hung stage ends none, so the window above never holds them
        running, truncated, orphans = await aread_running(
            client, components, end, component_of, page_limit=page_limit
        )
    for run_id, started in attempts.last_start.items():
        row = seen.get(run_id)
        if row is not None and started <= row.end:  # the run's own row is its last attempt
            seen[run_id] = replace(row, start=started, duration=row.end - started)
    rows = list(seen.values()) + attempts.rows
    batch, ignored, unknown = rows_to_batch(rows, components, rules=rules)
    if attempts.over_cap > 0:
        ignored["retried_runs_over_cap"] = attempts.over_cap
    if truncated:
        ignored["running_over_cap"] = 1
    if orphans:
        ignored["running_orphans"] = orphans
    return History(
        batch,
        end,
        len(seen),
        ignored,
        unknown,
        attempts.retried_runs,
        len(attempts.rows),
        running,
    )


def read_history(components: tuple[str, ...], after: float | None, **kwargs: Any) -> History:
    """Synchronous `aread_history` (same arguments); not for use inside a running event loop."""
    from prefect.utilities.asyncutils import run_coro_as_sync

    return run_coro_as_sync(aread_history(components, after, **kwargs))  # type: ignore[return-value]


# -- resource samples (written by `prefect_ft.history.resources`) ------------------------------------
def read_resource_samples(
    components: tuple[str, ...],
    after: float | None,
    until: float,
    *,
    store: BreakerStore | str | None = None,
) -> ResourceBatch:
    """Samples of `components` with time in `(after, until]`, as a `ResourceBatch`."""
    st = shared_store(store)
    found = st.read_many([resource_key(c) for c in components])
    lo = -math.inf if after is None else after
    rows = []
    for i, comp in enumerate(components):
        rec = found.get(resource_key(comp))
        for ts, mem, limit, cpu in json.loads(rec.data) if rec and rec.data else []:
            if lo < ts <= until:
                rows.append((ts, i, mem, limit, math.nan if cpu is None else cpu))
    rows.sort()
    cols = list(zip(*rows, strict=True)) if rows else [()] * 5
    return ResourceBatch(components, *(np.asarray(c, dtype=float) for c in cols))
