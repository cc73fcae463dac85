"""Replay attempts as history: each dead-letter replay is a real call of its component, but it
runs as a plain function (`prefect_ft.replay`), so it leaves no task run for detection to read.

`record_replay_attempt` (called by the replayer after each attempt it ran, not after a breaker's
refusal) appends `[start, end, exception type or None, message]` to a bounded ring per component
in the store, `prefect-ft:replays:<component>`, written with compare-and-set like the resource
samples. `read_replay_rows` turns the attempts of a window into `HistoryRow`s (a completed run,
or a failed one with its exception type), which the detection flow merges into the task-run rows
when asked (`detect(replays=True)`), so a burst that only replays saw is still a burst.
Recording never fails a replay: an error is logged once, later ones at debug level.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from prefect_ft.exceptions import BulkheadFullError
from prefect_ft.history.attempts import HistoryRow
from prefect_ft.stores import BreakerStore, shared_store
from prefect_ft.stores.ring import append_to_ring

if TYPE_CHECKING:
    from prefect_ft.detection import TaskRunBatch

__all__ = [
    "MAX_ATTEMPTS",
    "read_replay_rows",
    "record_replay_attempt",
    "replay_key",
    "with_replays",
]

MAX_ATTEMPTS = 2000  # per component
_log = logging.getLogger("prefect_ft.replays")
_warned: list[bool] = [False]


def replay_key(component: str) -> str:
    """The store key of a component's replay attempts."""
    return f"prefect-ft:replays:{component}"


def record_replay_attempt(
    component: str,
    start: float,
    end: float,
    error: BaseException | None = None,
    *,
    store: BreakerStore | str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> bool:
    """Append one replay attempt of `component` (failed when `error` is given); never raises.

    An attempt refused by a nested guard (an exception marked as a rejection, or a full
    bulkhead) is not recorded: like the component's own breaker, detection ignores it.

    Returns:
        True when it was written.
    """
    if error is not None and (
        isinstance(error, BulkheadFullError) or getattr(error, "_prefect_ft_rejection", False)
    ):
        return False
    row = [
        float(start),
        float(end),
        None if error is None else type(error).__name__,
        None if error is None else str(error)[:300],
    ]
    try:
        st = shared_store(store)
        if append_to_ring(st, replay_key(component), row, order=1, max_len=max_attempts):
            return True
        raise RuntimeError("store contention")
    except Exception:
        level = logging.DEBUG if _warned[0] else logging.WARNING
        _warned[0] = True
        _log.log(level, "could not record a replay attempt of %r", component, exc_info=True)
        return False


def read_replay_rows(
    components: tuple[str, ...],
    after: float | None,
    until: float,
    *,
    store: BreakerStore | str | None = None,
) -> list[HistoryRow]:
    """The replay attempts of `components` that ended in `(after, until]`, as history rows."""
    st = shared_store(store)
    found = st.read_many([replay_key(c) for c in components])
    lo = -float("inf") if after is None else after
    out = []
    for comp in components:
        rec = found.get(replay_key(comp))
        for i, (start, end, exc, msg) in enumerate(
            json.loads(rec.data) if rec and rec.data else []
        ):
            if not lo < end <= until:
                continue
            failed = exc is not None
            out.append(
                HistoryRow(
                    id=f"replay:{comp}:{end!r}:{i}",
                    component=comp,
                    state_type="FAILED" if failed else "COMPLETED",
                    state_name="Failed" if failed else "Completed",
                    message=f"replay encountered an exception {exc}: {msg}" if failed else None,
                    start=start,
                    end=end,
                    duration=end - start,
                    exception_type=exc,
                )
            )
    return out


def with_replays(
    batch: TaskRunBatch,
    after: float | None,
    until: float,
    *,
    store: BreakerStore | str | None = None,
) -> TaskRunBatch:
    """`batch` plus the replay attempts that ended in `(after, until]` (`clean` sorts them)."""
    import numpy as np

    from prefect_ft.detection import TaskRunBatch
    from prefect_ft.history.reader import rows_to_batch
    from prefect_ft.history.snapshot import BATCH_FIELDS

    rows = read_replay_rows(batch.components, after, until, store=store)
    if not rows:
        return batch
    more, _, _ = rows_to_batch(rows, batch.components)
    return TaskRunBatch(
        batch.components,
        *(np.concatenate([getattr(batch, k), getattr(more, k)]) for k in BATCH_FIELDS),
    )
