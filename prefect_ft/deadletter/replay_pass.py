"""One replay pass over one breaker's dead-letter queue (the engine behind `replay()`).

The workers of a pass share its pending list (refilled with letters refused meanwhile); the
`Pacer` bounds how many run at once by the breaker's state. Each item is checked (signature),
claimed (compare-and-set lease), run through the breaker and bulkhead like a live call, and
marked done, failed, or given back on a refusal. The guarantees are in `deadletter.replay`.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import inspect
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle

from prefect_ft.deadletter import signing
from prefect_ft.deadletter.pacer import Pacer
from prefect_ft.deadletter.queue import ACTIVE, DeadLetter, DeadLetterQueue, render
from prefect_ft.deadletter.report import ReplayInfo, ReplayReport, replaying
from prefect_ft.exceptions import ConfigurationError
from prefect_ft.history.replays import record_replay_attempt

# Prefect (and the modules that need it) is imported on first use, so that `prefect_ft` can bind
# the function `replay` at import time without importing Prefect.
if TYPE_CHECKING:
    from prefect_ft.tasks.gates import Gate

__all__ = ["QueueRun", "replay_queue"]


def replay_queue(
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
        run = QueueRun(queue, report, holder, budget, lease_seconds, in_doubt, max_attempts,
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
class QueueRun:
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
        ran_at = time.time()
        with replaying(info):
            try:
                out = _run(self.gate, fn, claimed)
            except Exception as exc:
                queue.fail(claimed, f"{type(exc).__name__}: {exc}", self.max_attempts)
                report.failed.append(item.id)
                # a replay is a call that leaves no task run: detection reads this record
                record_replay_attempt(claimed.component, ran_at, time.time(), exc, store=queue.store)  # fmt: skip
                return None
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
