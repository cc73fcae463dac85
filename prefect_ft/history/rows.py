"""Plain history rows into a detection batch: the pure half of the history reader.

`rows_to_batch` classifies each finished run of a known component (success, failure type, or
not a call) and lays the rows out as a `TaskRunBatch` in end-time order. It imports nothing from
Prefect and reads no clock, so the reader, the replays of a stored history and the tests share
it without a server; `prefect_ft.history.reader` re-exports it.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from prefect_ft.detection import FailureType, TaskRunBatch, classify_state
from prefect_ft.detection.classify import DEFAULT_RULES, ClassificationRules
from prefect_ft.history.attempts import HistoryRow

__all__ = ["rows_to_batch"]

_EXC_IN_MESSAGE = re.compile(r"encountered an exception:? ([A-Za-z_][\w.]*)")


def rows_to_batch(
    rows: list[HistoryRow],
    components: tuple[str, ...],
    *,
    rules: ClassificationRules = DEFAULT_RULES,
) -> tuple[TaskRunBatch, dict[str, int], dict[str, int]]:
    """Turn plain rows into a `TaskRunBatch` of the known components.

    A completed run is a success; a failed or crashed run is classified with `classify_state`
    (the exception type name is taken from Prefect's message "encountered an exception X: ...");
    anything else (cancelled, or a breaker's own `CircuitOpen`/`BulkheadFull` refusal, which
    `classify_state` says is no failure of the dependency) is not a call and is left out.

    Returns:
        The batch (end-time order), ignored counts by reason, and runs per unknown component.
    """
    index = {c: i for i, c in enumerate(components)}
    ignored: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    cols: dict[str, list[float]] = {k: [] for k in ("start", "end", "failed", "ft", "comp", "dur")}
    for row in sorted(rows, key=lambda r: (r.end, r.id)):
        if row.component is None:
            ignored["unguarded"] += 1
            continue
        if row.component not in index:
            unknown[row.component] += 1
            continue
        stype = row.state_type.upper()
        start = row.start if row.start is not None else row.end
        duration = row.duration if row.duration is not None else row.end - start
        if stype == "COMPLETED":
            code = -1
        else:
            found = _EXC_IN_MESSAGE.search(row.message or "")
            cls = classify_state(
                stype,
                row.state_name,
                row.message,
                row.exception_type or (found.group(1) if found else None),
                component=row.component,
                duration_s=duration,
                rules=rules,
            )
            if cls is None:
                ignored["not_a_call"] += 1
                continue
            code = FailureType(cls.failure_type).code
        for key, value in zip(
            cols,
            (start, row.end, code >= 0, code, index[row.component], duration),
            strict=True,
        ):
            cols[key].append(float(value))
    batch = TaskRunBatch(
        components,
        np.asarray(cols["start"]),
        np.asarray(cols["end"]),
        np.asarray(cols["failed"], dtype=bool),
        np.asarray(cols["ft"], dtype=np.int64),
        np.asarray(cols["comp"], dtype=np.int64),
        np.asarray(cols["dur"]),
    )
    return batch, dict(ignored), dict(unknown)
