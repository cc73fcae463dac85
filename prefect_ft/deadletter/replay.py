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
import base64
import contextvars
import importlib
import inspect
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import cloudpickle

from prefect_ft import settings
from prefect_ft.core.replay_pace import check_concurrency
from prefect_ft.deadletter import signing
from prefect_ft.deadletter.pacer import Pacer
from prefect_ft.deadletter.queue import (
    ACTIVE,
    DeadLetter,
    DeadLetterQueue,
    dead_letter_breakers,
    render,
)
from prefect_ft.exceptions import ConfigurationError
from prefect_ft.history.replays import record_replay_attempt
from prefect_ft.stores import BreakerStore, shared_store

# Prefect (and the modules that need it) is imported on first use, so that `prefect_ft` can bind
# the function `replay` at import time without importing Prefect.
if TYPE_CHECKING:
    from prefect_ft.tasks.gates import Gate

__all__ = ["ReplayInfo", "ReplayReport", "areplay", "current_replay", "replay"]


@dataclass(frozen=True, slots=True)
class ReplayInfo:
    """The replayed call being run (see `current_replay`).

    Attributes:
        key: deterministic per dead letter, the same on every re-run: use it as an idempotency key.
        item_id: the dead letter's id, `<breaker>/<n>`.
        attempt: which run of this item this is (1 for the first).
        in_doubt: True when an earlier replayer died while running this item.
    """

    key: str
    item_id: str
    attempt: int
    in_doubt: bool


@dataclass
class ReplayReport:
    """What one `replay()` did.

    Attributes:
        done: ids of the items run and marked done now.
        failed: ids of the items whose call raised (pending again, or failed for good after
            `max_attempts` runs).
        rejected: ids of items refused for a missing or wrong signature (never unpickled; see
            `prefect_ft.deadletter.signing`), now `rejected-signature`.
        expired: done and superseded items deleted after `PREFECT_FT_DEADLETTER_RETENTION_SECONDS`.
        in_doubt: ids of items taken over from a replayer that died mid-run (re-run, or parked
            with `in_doubt="skip"`).
        waiting: breaker -> why its items were not (all) replayed now.
        remaining: items that a later replay may still run (pending, or running elsewhere).
            Items parked for an operator (in-doubt, failed, unreplayable, rejected-signature)
            are not counted: `prefect-ft deadletters ls --status in-doubt` lists them.
    """

    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    in_doubt: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    expired: int = 0
    waiting: dict[str, str] = field(default_factory=dict)
    remaining: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_current: contextvars.ContextVar[ReplayInfo | None] = contextvars.ContextVar(
    "prefect_ft_replay", default=None
)


def current_replay() -> ReplayInfo | None:
    """The replayed call running in this context, or None outside a replay."""
    return _current.get()


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
        _replay_queue(queue, report, holder, budget, wait_seconds, lease_seconds, in_doubt,
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


def _replay_queue(
    queue: DeadLetterQueue,
    report: ReplayReport,
    holder: str,
    budget: list[int],
    wait_seconds: float,
    lease_seconds: float,
    in_doubt: str,
    max_attempts: int,
    functions: Mapping[str, Callable[..., Any]],
    concurrency: int | None = None,
) -> None:
    from prefect_ft.tasks.gates import gate_for

    key = signing.current_key()
    open_items = [
        i for i in queue.items() if i.status in ACTIVE and _trusted(queue, i, key, report)
    ]
    if not open_items:
        return
    try:
        gate = gate_for(_policy(open_items[0]))
    except ConfigurationError as exc:  # e.g. a policy name that no longer resolves
        report.waiting[queue.breaker] = str(exc)
        return
    n = gate.policy.breaker.replay_concurrency if concurrency is None else concurrency
    with Pacer(gate, concurrency, time.monotonic() + wait_seconds) as pacer:
        run = _QueueRun(queue, report, holder, budget, lease_seconds, in_doubt, max_attempts,
                        functions, key, gate, pacer, open_items)  # fmt: skip
        # one body: the calling thread is the first worker; more only when there is more work
        workers = [threading.Thread(target=run.work, name=f"prefect-ft-replay-{i}", daemon=True)
                   for i in range(1, min(n, len(open_items)))]  # fmt: skip
        for w in workers:
            w.start()
        run.work()
        for w in workers:
            w.join()
    if pacer.stopped is not None and queue.breaker not in report.waiting:
        report.waiting[queue.breaker] = pacer.stopped


@dataclass
class _QueueRun:
    """One breaker's queue replayed by one or more workers sharing the pending list."""

    queue: DeadLetterQueue
    report: ReplayReport
    holder: str
    budget: list[int]
    lease_seconds: float
    in_doubt: str
    max_attempts: int
    functions: Mapping[str, Callable[..., Any]]
    key: bytes
    gate: Gate
    pacer: Pacer
    pending: list[DeadLetter]
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_seq: int = 0  # the highest item number read so far
    topped_at: float = 0.0  # monotonic time of the last top-up

    def __post_init__(self) -> None:
        self.last_seq = max((i.seq for i in self.pending), default=0)

    def _next(self) -> DeadLetter | None:
        with self.lock:
            if not self.pending and self.pacer.stopped is None:
                self._refill()
            if self.pacer.stopped is not None or not self.pending:
                return None
            if self.budget[0] == 0:
                self.pacer.stop("limit reached")
                return None
            self.budget[0] -= 1  # reserved; given back unless the item ran
            return self.pending.pop(0)

    def _refill(self) -> None:
        # items dead-lettered after this pass read the queue: a pass that waited for the
        # breaker goes on with them (until its wait budget is spent) instead of ending and
        # leaving them to a later pass, which would read the whole queue again first
        if time.monotonic() >= self.pacer.deadline:
            return
        fresh = [i for i in self.queue.items(start=self.last_seq + 1) if i.status in ACTIVE]
        self.last_seq = max((i.seq for i in fresh), default=self.last_seq)
        self.pending += [i for i in fresh if _trusted(self.queue, i, self.key, self.report)]

    def _top_up(self) -> None:
        # while the pass waits for the breaker: read the letters refused since (a few, from the
        # last number read), so the whole backlog is known the moment the breaker admits; a
        # refill after the list ran dry cost ~70 ms under load in the middle of the recovery
        with self.lock:
            now = time.monotonic()
            if now - self.topped_at >= 0.2:  # one read per 0.2 s, however many workers wait
                self.topped_at = now
                self._refill()

    def _give_back(self, item: DeadLetter | None) -> None:
        with self.lock:
            self.budget[0] += 1
            if item is not None:
                self.pending.insert(0, item)

    def work(self) -> None:
        while (item := self._next()) is not None:
            if not self.pacer.acquire(self._top_up):
                self._give_back(item)
                b = self.gate.breaker
                self.pacer.stop(f"breaker {b.name!r} is {b.state}")
                return
            try:
                self._one(item)
            finally:
                self.pacer.release()

    def _one(self, item: DeadLetter) -> None:
        from prefect_ft.tasks.gates import Rejected

        queue, report = self.queue, self.report
        if not _trusted(queue, item, self.key, report):  # re-read after a refusal: check it again
            return self._give_back(None)
        fn = _function(item, self.functions)
        if fn is None:
            report.waiting[queue.breaker] = f"cannot find {item.task_path!r} (pass functions=)"
            return self._give_back(None)
        claimed = queue.claim(item, self.holder, self.lease_seconds, take_over=self.in_doubt == "rerun")  # fmt: skip
        if claimed is None:
            if item.status == "running" and self.in_doubt != "rerun" and _parked(queue, item):
                report.in_doubt.append(item.id)
            return self._give_back(None)
        taken_over = claimed.in_doubt_reruns > item.in_doubt_reruns
        if taken_over:
            report.in_doubt.append(item.id)
        info = ReplayInfo(claimed.replay_key, claimed.id, claimed.attempts, taken_over)
        token = _current.set(info)
        ran_at = time.time()
        try:
            out = _run(self.gate, fn, claimed)
        except Exception as exc:
            queue.fail(claimed, f"{type(exc).__name__}: {exc}", self.max_attempts)
            report.failed.append(item.id)
            # a replay is a call that leaves no task run: detection reads this record instead
            record_replay_attempt(claimed.component, ran_at, time.time(), exc, store=queue.store)
            return None
        finally:
            _current.reset(token)
        if type(out) is Rejected:
            # the breaker is probing or ramping up again: hand the item back, and go on with
            # it once the breaker admits calls (within the wait budget); honour the refusal's
            # retry_after (a transition wakes it sooner): retrying at once would inflate the
            # RECOVERY ramp's count of offered calls and spin on the store
            queue.release(claimed)
            fresh = queue.get(item.seq)
            if fresh is None:
                self.pacer.stop(f"refused while replaying: {out.error}")
                return self._give_back(None)
            self._give_back(fresh)
            self.pacer.hold(getattr(out.error, "retry_after", None) or 0.2)
            return None
        queue.complete(claimed, str(render(out, 200)))
        report.done.append(item.id)
        record_replay_attempt(claimed.component, ran_at, time.time(), store=queue.store)
        return None


def _run(gate: Gate, fn: Callable[..., Any], item: DeadLetter) -> Any:
    from prefect.client.schemas.objects import State

    from prefect_ft.tasks.gates import acall_guarded, call_guarded

    args, kwargs = item.inputs()
    if inspect.iscoroutinefunction(fn):
        out = asyncio.run(acall_guarded(gate, fn, args, kwargs))
    else:
        out = call_guarded(gate, fn, args, kwargs)
    if isinstance(out, State) and out.is_failed():
        raise RuntimeError(f"returned a {out.name} state: {out.message}")
    return out


def _trusted(queue: DeadLetterQueue, item: DeadLetter, key: bytes, report: ReplayReport) -> bool:
    """False (and the item parked `rejected-signature`) unless it carries our signature."""
    try:
        signing.check(item, key)
        return True
    except signing.SignatureError as exc:
        if queue.refuse(item, "rejected-signature", str(exc)):
            report.rejected.append(item.id)
        return False


def _parked(queue: DeadLetterQueue, item: DeadLetter) -> bool:
    now = queue.get(item.seq)
    return now is not None and now.status == "in-doubt"


def _policy(item: DeadLetter) -> Any:
    if item.policy.startswith("pickle:"):
        return cloudpickle.loads(base64.b64decode(item.policy[len("pickle:") :]))
    from prefect_ft.tasks.policies import resolve_policy

    return resolve_policy(item.policy)


def _function(item: DeadLetter, functions: Mapping[str, Callable[..., Any]]) -> Callable[..., Any] | None:  # fmt: skip
    from prefect_ft.tasks.guard import find_site
    from prefect_ft.tasks.guard import original_function as _original

    given = functions.get(item.task_path) or functions.get(item.task_name)
    if given is not None:
        return _original(given)
    site = find_site(item.task_path)
    if site is not None:
        return site.fn
    module, _, qualname = item.task_path.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return _original(obj)
