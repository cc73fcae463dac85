"""Supersede: a dead letter whose call a later run of the same task completed is never replayed.

Prefect re-runs work itself: a flow's `retries`, Retry on a flow run in the UI (the same flow
run id, run again), or another run with the same cache key. If such a run completes the call
that a breaker refused earlier, replaying the dead letter would run it twice. So a dead letter
records *match keys*, and every guarded call that completes in a task run computes its own and
marks the pending dead letters with a matching key `superseded` (kept and visible, never
replayed):

- `call:<flow run id>:<task key>:<dynamic key>:<inputs digest>`: the same task at the same place
  of the same flow run, with the same inputs (a flow retry, a re-run of the flow run). The
  inputs are part of it so that a flow that calls something else the second time never
  supersedes work that did not happen.
- `cache:<key>`: the task run's Prefect cache key (its transaction key), when it has one. With
  `cache_key_fn` (or `cache_policy=INPUTS`) this is the caller's own idempotency key, and it
  matches across flow runs: `ft_task(..., cache_key_fn=lambda ctx, p: p["order_id"])`.

Cost and freshness: a completing call looks at the breaker's open keys (one store record) at
most every `PREFECT_FT_REFRESH_SECONDS` per process, and always when its flow run is a re-run
(run count > 1), so a re-run of the same flow run never misses its dead letter. A cache-key match
in another process can miss a dead letter written less than that interval before; then a
replay runs it (key its effect on `current_replay().key` for exactly-once). A dead letter that a
replayer is already running is not superseded: both runs go ahead.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from prefect.context import TaskRunContext
from prefect.transactions import get_transaction

from prefect_ft import settings
from prefect_ft.deadletter.queue import DeadLetterQueue, encode_inputs

__all__ = ["asupersede_completed", "match_keys", "supersede_completed"]

log = logging.getLogger("prefect_ft.deadletter")


def match_keys(args: Any, kwargs: Any, payload: str | None = None) -> list[str]:
    """The match keys of this call in the current task run ([] outside one).

    `payload`: the call's encoded inputs when the caller has them (else they are encoded here;
    inputs that cannot be encoded give no `call:` key).
    """
    ctx = TaskRunContext.get()
    if ctx is None:
        return []
    run, keys = ctx.task_run, []
    if payload is None:
        try:
            payload = encode_inputs(tuple(args), dict(kwargs))[1]
        except Exception:  # not picklable: only the cache key can match it
            payload = None
    if payload is not None and run.flow_run_id is not None:
        digest = hashlib.sha256(payload.encode()).hexdigest()[:32]
        keys.append(f"call:{run.flow_run_id}:{run.task_key}:{run.dynamic_key}:{digest}")
    txn = get_transaction()
    if txn is not None and txn.key:
        keys.append(f"cache:{txn.key}")
    return keys


_refresh: list[float] = []  # PREFECT_FT_REFRESH_SECONDS, read once per process (per call is µs)


def _max_age() -> float:
    """0 (read now) inside a re-run of a flow run, else the refresh interval."""
    ctx = TaskRunContext.get()
    if ctx is None:
        return -1.0  # not a task run: nothing to supersede
    if (ctx.task_run.flow_run_run_count or 0) > 1:
        return 0.0
    if not _refresh:
        _refresh.append(settings.refresh_seconds())
    return _refresh[0]


def supersede_completed(queue: DeadLetterQueue, args: Any, kwargs: Any) -> list[str]:
    """Mark the pending dead letters that this completed call matches superseded; never raises.

    Returns:
        The ids of the items superseded now.
    """
    try:
        max_age = _max_age()
        if max_age < 0 or not queue.open_keys(max_age):
            return []
        ctx = TaskRunContext.get()
        by = f"task run {ctx.task_run.id}" if ctx is not None else "a completed run"
        done = []
        for key in match_keys(args, kwargs):
            seq = queue.open_keys(max_age).get(key)
            item = queue.supersede(seq, by) if seq is not None else None
            if item is not None:
                log.info("dead letter %s superseded by %s", item.id, by)
                done.append(item.id)
        return done
    except Exception:  # the call itself succeeded: never fail it for our bookkeeping
        log.warning("could not check dead letters of %s for supersession", queue.breaker,
                    exc_info=True)  # fmt: skip
        return []


async def asupersede_completed(queue: DeadLetterQueue, args: Any, kwargs: Any) -> list[str]:
    """`supersede_completed` for async callers: store reads run off the event loop."""
    max_age = _max_age()
    if max_age < 0 or queue.cached_open_keys(max_age) == {}:
        return []  # nothing pending here, known without I/O
    return await asyncio.to_thread(supersede_completed, queue, args, kwargs)
