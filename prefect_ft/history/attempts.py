"""The plain `HistoryRow`, and the failed attempts of retried Prefect task runs as such rows.

`read_task_runs` gives one row per task run, but each failed attempt of a run that Prefect retried
is a call that failed. Prefect 3.9 records no `Failed` state for those attempts: a failed attempt
ends in `AwaitingRetry` (SCHEDULED, when there is a retry delay) or in `Retrying` (RUNNING, which
also starts the next attempt), both with an empty message; the failure itself is only in the
engine's log line "Task run failed with exception: X(...) - Retry n/m will start ...". So for runs
with `run_count > 1` (rare) the states are read (`read_task_run_states`) and the retry log lines
(one `read_logs` call with a text filter), and each failed attempt becomes one extra FAILED row
ending at its `AwaitingRetry`/`Retrying` state. An attempt is emitted in the window that holds its
end, like any row: runs that ended in the window, runs still retrying, and runs that started
before the window's end but ended after it are looked at. At most `max_retried_runs` runs a pass;
the rest are counted and logged.

Pure: `HistoryRow`, `parse_retry_log`, `attempt_rows`. Reading from Prefect:
`aread_failed_attempts`, called by `prefect_ft.history.aread_history` with its open client.
`HistoryRow` and `PAGE_LIMIT` live here, not in `prefect_ft.history` (which re-exports them),
so that this module does not import that one back.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "MAX_RETRIED_RUNS",
    "PAGE_LIMIT",
    "FailedAttempts",
    "HistoryRow",
    "aread_failed_attempts",
    "attempt_rows",
    "parse_retry_log",
]

PAGE_LIMIT = 200  # the server refuses larger pages (PREFECT_SERVER_API_DEFAULT_LIMIT)
MAX_RETRIED_RUNS = 200  # per pass; each costs one read_task_run_states call
_MAX_EXTRA_PAGES = 5  # in-flight and log reads: beyond this the rest is reported, not read
_RETRY_STATE_NAMES = ("AwaitingRetry", "Retrying")
_RETRY_LOG = re.compile(
    r"Task run failed with (exception|state): (.*) - Retry (\d+)/\d+ will start", re.DOTALL
)
_EXC_REPR = re.compile(r"([A-Za-z_][\w.]*)\(")
_log = logging.getLogger("prefect_ft.history")  # the history read's logger, as before the split


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One finished task run, or one failed attempt of a retried run, as plain data.

    `exception_type` is the exception class name when known apart from the message (a failed
    attempt's, from the engine's retry log line); otherwise it is read from the message.
    """

    id: str
    component: str | None
    state_type: str
    state_name: str | None
    message: str | None
    start: float | None
    end: float
    duration: float | None
    exception_type: str | None = None


@dataclass(frozen=True, slots=True)
class FailedAttempts:
    """What `aread_failed_attempts` found for one window.

    Attributes:
        rows: one FAILED row per failed attempt ending in the window.
        last_start: per run id, the start of the run's last attempt.
        retried_runs: retried runs whose states were read.
        over_cap: retried runs left unread because of `max_retried_runs`.
    """

    rows: list[HistoryRow]
    last_start: dict[str, float]
    retried_runs: int
    over_cap: int


def parse_retry_log(message: str) -> tuple[int, str | None, str] | None:
    """Parse the engine's log line for a failed attempt that will be retried.

    Returns:
        (retry number n, so the failed attempt is the n-th; the exception type name or None for
        a returned state; the failure as Prefect logged it), or None for any other line.
    """
    found = _RETRY_LOG.search(message)
    if found is None:
        return None
    kind, text, n = found.group(1), found.group(2).strip(), int(found.group(3))
    exc = _EXC_REPR.match(text) if kind == "exception" else None
    return n, exc.group(1) if exc else None, text


def attempt_rows(
    run_id: str,
    component: str | None,
    states: Iterable[tuple[str, str | None, float]],
    failures: dict[int, tuple[str | None, str]] | None = None,
) -> tuple[list[HistoryRow], float | None]:
    """The failed attempts of one task run, from its state history.

    An attempt starts at a RUNNING state (`Running`, or `Retrying` for a retry) and, when it
    failed and was retried, ends at the next `AwaitingRetry` (retry with a delay) or `Retrying`
    (retry at once) state: Prefect records no `Failed` state for it.

    Args:
        run_id: the task run's id; attempt rows get `<run_id>#attempt-<n>`.
        component: the run's component.
        states: `(state type, state name, timestamp)` in any order.
        failures: per attempt number (1-based), `(exception type, message)` from the logs.

    Returns:
        One FAILED row per failed attempt (attempt order), and the start of the last attempt
        (None when no attempt has started).
    """
    failures = failures or {}
    rows: list[HistoryRow] = []
    started: float | None = None
    for stype, name, ts in sorted(states, key=lambda s: s[2]):
        stype = stype.upper().replace("STATETYPE.", "")
        if name in _RETRY_STATE_NAMES and started is not None:
            exc, message = failures.get(len(rows) + 1, (None, None))
            timed_out = (exc or "").endswith("TaskRunTimeoutError")
            rows.append(
                HistoryRow(
                    id=f"{run_id}#attempt-{len(rows) + 1}",
                    component=component,
                    state_type="FAILED",
                    state_name="TimedOut" if timed_out else "Failed",
                    message=message,
                    start=started,
                    end=ts,
                    duration=ts - started,
                    exception_type=exc,
                )
            )
            started = None
        if stype == "RUNNING":
            started = ts
    return rows, started


async def aread_failed_attempts(
    client: Any,
    window_runs: list[Any],
    start: float,
    end: float,
    *,
    component: Callable[[Any], str | None],
    max_retried_runs: int = MAX_RETRIED_RUNS,
) -> FailedAttempts:
    """The failed attempts ending in `(start, end]` of retried runs, read with `client`.

    Args:
        client: an open Prefect client.
        window_runs: the Prefect task runs read for the window; those with `run_count > 1` are
            looked at, and so are retried runs in flight at `end`.
        start: the window's start (exclusive).
        end: the window's end (inclusive).
        component: a Prefect task run's component (`prefect_ft.history.components`); None for
            runs the caller does not watch, whose attempts are neither read nor counted.
        max_retried_runs: at most this many retried runs have their attempts read; the rest are
            counted in `over_cap` and logged.
    """
    retried = [run for run in window_runs if (run.run_count or 0) > 1]
    retried += await _in_flight_retried(client, end)
    # the window and in-flight queries cover every task run of the workspace
    retried = [run for run in retried if component(run) is not None]
    candidates = list({str(r.id): r for r in reversed(retried)}.values())[::-1]
    over = len(candidates) - max(0, int(max_retried_runs))
    if over > 0:
        _log.warning(
            "%d retried task runs in (%s, %s]: the failed attempts of %d were not read "
            "(max_retried_runs=%d)",
            len(candidates),
            start,
            end,
            over,
            max_retried_runs,
        )
        candidates = candidates[: max(0, int(max_retried_runs))]
    rows, last_start = await _failed_attempts(client, candidates, start, end, component)
    return FailedAttempts(rows, last_start, len(candidates), max(0, over))


async def _in_flight_retried(client: Any, end: float) -> list[Any]:
    """Retried runs not finished by `end` that may have failed attempts ending by then.

    Those are runs still retrying now and runs that started by `end` and ended after it; the
    next read will not look at their attempts again, so this one has to.
    """
    from prefect.client.schemas.filters import (
        TaskRunFilter,
        TaskRunFilterEndTime,
        TaskRunFilterStartTime,
        TaskRunFilterState,
        TaskRunFilterStateName,
    )

    at = datetime.fromtimestamp(end, tz=UTC)
    filters = (
        TaskRunFilter(
            state=TaskRunFilterState(name=TaskRunFilterStateName(any_=list(_RETRY_STATE_NAMES))),
            start_time=TaskRunFilterStartTime(before_=at),
        ),
        TaskRunFilter(
            start_time=TaskRunFilterStartTime(before_=at),
            end_time=TaskRunFilterEndTime(after_=at),
        ),
    )
    found: list[Any] = []
    for filt, min_runs in zip(filters, (1, 2), strict=True):
        for page_no in range(_MAX_EXTRA_PAGES):
            page = await client.read_task_runs(
                task_run_filter=filt, limit=PAGE_LIMIT, offset=page_no * PAGE_LIMIT
            )
            # a run waiting for its first retry still has run_count 1
            found += [r for r in page if (r.run_count or 0) >= min_runs]
            if len(page) < PAGE_LIMIT:
                break
        else:
            _log.warning(
                "more than %d task runs were in flight at %s; retried ones beyond are not read",
                _MAX_EXTRA_PAGES * PAGE_LIMIT,
                at,
            )
    return found


async def _failed_attempts(
    client: Any,
    runs: list[Any],
    start: float,
    end: float,
    component: Callable[[Any], str | None],
) -> tuple[list[HistoryRow], dict[str, float]]:
    """FAILED rows for the failed attempts of `runs` ending in `(start, end]`, and each run's
    last attempt start."""
    if not runs:
        return [], {}
    states: list[Any] = []
    for i in range(0, len(runs), 8):  # a few requests at a time
        chunk = runs[i : i + 8]
        states += await asyncio.gather(*(client.read_task_run_states(r.id) for r in chunk))
    failures = await _retry_failures(client, [r.id for r in runs])
    rows: list[HistoryRow] = []
    last_start: dict[str, float] = {}
    for run, run_states in zip(runs, states, strict=True):
        run_id = str(run.id)
        plain = [
            (str(st.type.value), st.name, st.timestamp.timestamp())
            for st in run_states
            if st.timestamp is not None
        ]
        attempts, started = attempt_rows(run_id, component(run), plain, failures.get(run_id, {}))
        rows += [a for a in attempts if start < a.end <= end]
        if started is not None:
            last_start[run_id] = started
    return rows, last_start


async def _retry_failures(client: Any, run_ids: list[Any]) -> dict[str, dict[int, tuple[str | None, str]]]:  # fmt: skip
    """Per run and attempt, the failure the engine logged before retrying (empty if not logged)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId, LogFilterTextSearch
    from prefect.client.schemas.sorting import LogSort

    filt = LogFilter(
        task_run_id=LogFilterTaskRunId(any_=list(run_ids)),
        text=LogFilterTextSearch(query='"will start"'),
    )
    out: dict[str, dict[int, tuple[str | None, str]]] = {}
    try:
        for page_no in range(_MAX_EXTRA_PAGES):
            page = await client.read_logs(
                log_filter=filt,
                limit=PAGE_LIMIT,
                offset=page_no * PAGE_LIMIT,
                sort=LogSort.TIMESTAMP_ASC,
            )
            for entry in page:
                parsed = parse_retry_log(entry.message)
                if parsed is not None and entry.task_run_id is not None:
                    n, exc, text = parsed
                    out.setdefault(str(entry.task_run_id), {})[n] = (exc, text)
            if len(page) < PAGE_LIMIT:
                break
    except Exception:  # the logs only refine the classification; the attempts still count
        _log.warning("could not read the retry log lines of %d task runs", len(run_ids), exc_info=True)  # fmt: skip
    return out
