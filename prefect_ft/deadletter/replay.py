"""Replay dead-lettered calls once their breaker is CLOSED, each to completion exactly once.

`replay()` walks each breaker's dead-letter queue (`prefect_ft.deadletter`) in order. A breaker
that is not CLOSED is skipped (or waited for, up to `wait_seconds`); the natural trigger is an
automation on `prefect-ft.breaker.closed` running the `replay-dead-letters` deployment. Each item
is claimed with a lease (compare-and-set), run through the breaker and bulkhead like a live call
(its outcome counts; a refusal gives the item back and stops that breaker), then marked done.

What is guaranteed, precisely:

1. At most one replayer holds an item at a time: a claim is a compare-and-set on the item's
   version, and a live lease is never taken over.
2. An item marked done is never run again, and is marked done at most once.
3. An item whose replayer died before claiming it, or whose run was refused, is run by a later
   replay; nothing is dropped.
4. The one window: a replayer that dies *after claiming an item and before marking it done*
   (while the call runs, or between its return and the done write) leaves that item `running`.
   Nobody can know whether its effect happened. Once its lease expires, the next replay either
   re-runs it (`in_doubt="rerun"`, the default: at-least-once for that item, at most one such
   item per worker of the dead replayer: `concurrency`) or parks it as `in-doubt` for an operator (`in_doubt="skip"`:
   at-most-once). Either way the call sees the same deterministic key,
   `current_replay().key` (`prefect-ft-replay:<breaker>/<n>`): a function that keys its side
   effect on it (an idempotency key, `INSERT ... ON CONFLICT DO NOTHING`, an upsert) is applied
   exactly once. `current_replay().in_doubt` tells the function it is such a re-run.

5. Prefect's own re-runs: a dead letter whose call a later run of the same task completed (a
   flow retry, a re-run of the flow run, the same cache key) is `superseded` and never
   replayed (`prefect_ft.deadletter.supersede`; one that a replayer already holds still runs).
6. Only what this deployment wrote runs: an item that is unsigned or whose signature does not
   match is parked `rejected-signature` without being unpickled, imported or run
   (`prefect_ft.deadletter.signing`).

After each breaker's queue, done and superseded items older than
`PREFECT_FT_DEADLETTER_RETENTION_SECONDS` are deleted. `replay()` is sync: inside a running
event loop it refuses to start (use `await areplay(...)`), since async items would need a loop
of their own.

Parallelism: up to `concurrency` items per breaker run at once (the policy's
`replay_concurrency`, default 4), each claimed on its own; the breaker's state bounds it
(one probe while HALF_OPEN, the ramp's share in RECOVERY, the bulkhead's permits:
`prefect_ft.core.replay_pace`, driven by `prefect_ft.deadletter.pacer`), and a waiting replay
starts on the breaker's transition, not on a poll.

The lease must outlast the longest call (`lease_seconds`, default 300): a replayer that
overruns its lease can be taken over while still running.

Replayed calls run in the replaying process as plain function calls (not as new task runs), with
their recorded arguments; the function is found by the recorded `module:qualname`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from prefect_ft import settings
from prefect_ft.core.replay_pace import check_concurrency
from prefect_ft.deadletter.queue import ACTIVE, DeadLetterQueue, dead_letter_breakers
from prefect_ft.deadletter.replay_pass import replay_queue
from prefect_ft.deadletter.report import ReplayInfo, ReplayReport, current_replay
from prefect_ft.stores import BreakerStore, shared_store

__all__ = ["ReplayInfo", "ReplayReport", "areplay", "current_replay", "replay"]


def replay(
    breakers: str | Iterable[str] | None = None,
    *,
    store: BreakerStore | str | None = None,
    limit: int | None = None,
    wait_seconds: float = 0.0,
    lease_seconds: float = 300.0,
    in_doubt: Literal["rerun", "skip"] = "rerun",
    max_attempts: int = 3,
    functions: Mapping[str, Callable[..., Any]] | None = None,
    concurrency: int | None = None,
) -> ReplayReport:
    """Re-run the dead-lettered calls of CLOSED breakers; see the module for the guarantees.

    Args:
        breakers: a breaker name, several, or None for every breaker with dead letters.
        store: where the dead letters are (default `PREFECT_FT_STORE_URL`, else SQLite).
        limit: run at most this many items in all.
        wait_seconds: wait up to this long for a breaker to be CLOSED before skipping it.
        lease_seconds: how long a claim lasts; must outlast the longest call.
        in_doubt: "rerun" or "skip" an item whose replayer died while running it.
        max_attempts: runs of an item that raises before it is parked as failed.
        functions: `module:qualname` or task name -> function, for functions that cannot be
            imported by their recorded path (defined in `__main__` or inside a function).
        concurrency: replayed calls in flight at once per breaker while it is CLOSED (1 to
            64; default: the policy's `replay_concurrency`, 4). While HALF_OPEN only the probe
            runs, in RECOVERY the ramp's share, within the bulkhead (`core.replay_pace`).

    Returns:
        A `ReplayReport`.

    Raises:
        RuntimeError: called inside a running event loop (use `await areplay(...)` there);
            nothing is touched.
        ValueError: `concurrency` is not an integer in [1, 64]; nothing is touched.
        ConfigurationError: the signing key is unusable (see `prefect_ft.deadletter.signing`).

    Examples:
        ```python
        from prefect_ft import replay

        report = replay("ipc", wait_seconds=30)
        print(len(report.done), "replayed;", report.remaining, "left")
        ```
    """
    _refuse_inside_a_running_loop()
    if concurrency is not None:
        check_concurrency(concurrency)
    retention = settings.deadletter_retention_seconds()
    store = shared_store(store)
    names = [breakers] if isinstance(breakers, str) else breakers
    names = dead_letter_breakers(store) if names is None else list(names)
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    report = ReplayReport()
    budget = [limit if limit is not None else -1]
    for name in names:
        queue = DeadLetterQueue(name, store)
        replay_queue(queue, report, holder, budget, wait_seconds, lease_seconds, in_doubt,
                      max_attempts, functions or {}, concurrency)  # fmt: skip
        report.expired += queue.expire(retention)  # advances the low-water mark first
        report.remaining += sum(1 for item in queue.items() if item.status in ACTIVE)
    return report


def _refuse_inside_a_running_loop() -> None:
    # an async dead letter would need asyncio.run(), which fails inside a running loop: the item
    # would be marked failed although its function never ran
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "replay() was called inside a running event loop: use `await areplay(...)` inside a "
        "running event loop (nothing was replayed)"
    )


async def areplay(breakers: str | Iterable[str] | None = None, **options: Any) -> ReplayReport:
    """Async twin of `replay` (runs it in a worker thread; async functions get their own loop)."""
    return await asyncio.to_thread(replay, breakers, **options)
