"""`CircuitBreaker`: the driver around the pure core, for sync and async code.

Admission is decided from the local view of the breaker's record: while CLOSED or OPEN a call
costs no store round trip and takes no lock. Failures and transitions go to the shared store
as compare-and-set writes (exactly one process wins a transition); successes are flushed in
batches by the refresher. The lock guards only state updates, never the protected call.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import itertools
import os
import random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from prefect_ft.core import machine, readiness
from prefect_ft.core.classify import Outcome, retry_after_of
from prefect_ft.core.config import BreakerConfig
from prefect_ft.core.ramp import ramp_admits
from prefect_ft.core.states import CLOSED, HALF_OPEN, OPEN, BreakerRecord, OverlayName
from prefect_ft.core.windows import WindowCounts
from prefect_ft.exceptions import CircuitOpenError, ConfigurationError
from prefect_ft.stores import BreakerStore, shared_store
from prefect_ft.stores.emergency_record import join_active_stop
from prefect_ft.stores.forking import relock_after_fork
from prefect_ft.stores.index import register_breaker
from prefect_ft.stores.offloop import off_loop
from prefect_ft.stores.refresher import Refresher
from prefect_ft.stores.shared_record import (
    BreakerListener,
    SharedRecordMixin,
    add_global_listener,
    remove_global_listener,
)

__all__ = [
    "BreakerListener",
    "CircuitBreaker",
    "RecoveryMove",
    "add_global_listener",
    "live_breakers",
    "remove_global_listener",
]

P = ParamSpec("P")
R = TypeVar("R")
_holder_ids = itertools.count()
# every breaker alive in this process: metrics and health read them when scraped, so a call
# pays nothing for being observed (prefect_ft.ops)
_live: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()


def live_breakers() -> list[CircuitBreaker]:
    """The breakers alive in this process."""
    return list(_live)


@dataclass(frozen=True, slots=True)
class RecoveryMove:
    """What `mark_recovered` / `mark_recovery_failed` did: `moved`, the state now, why not.

    Truthy when the breaker moved.
    """

    moved: bool
    state: str
    reason: str = ""

    def __bool__(self) -> bool:
        return self.moved


class CircuitBreaker(SharedRecordMixin):
    """A circuit breaker shared by every thread, task and (through its store) process.

    Args:
        config: the policy, or a name to build a default `BreakerConfig` with `**fields`.
        store: a `BreakerStore`, or its URL; default `PREFECT_FT_STORE_URL`, else SQLite under
            `PREFECT_HOME` (shared by every process on the machine).
        clock: seconds, monotonic; tests pass a fake one (with `store="memory://"` the store
            then shares it).
        listeners: `listener(breaker, event)` callables for transitions.
        refresh_seconds: how often to re-read shared state and flush successes; None = never
            (tests drive `refresh()` by hand, and the health checks with
            `health_prober.step()`: no thread). Default: `PREFECT_FT_REFRESH_SECONDS` or 0.2.
        rng: a `random.Random`-like source for open-time jitter.
        **fields: `BreakerConfig` fields when `config` is a name.

    Examples:
        ```python
        from prefect_ft import CircuitBreaker

        breaker = CircuitBreaker("ipc", open_seconds=5, store="memory://")

        @breaker
        def fetch(doc_id: str) -> bytes: ...

        with breaker:
            ...
        result = breaker.call(fetch, "doc-1")
        ```
    """

    def __init__(
        self,
        config: BreakerConfig | str,
        *,
        store: BreakerStore | str | None = None,
        clock: Callable[[], float] | None = None,
        listeners: Iterable[BreakerListener] = (),
        refresh_seconds: float | str | None = "default",
        rng: random.Random | None = None,
        **fields: Any,
    ) -> None:
        if isinstance(config, str):
            if "failure_threshold" in fields:
                from prefect_ft.core.conditions import ConsecutiveFailures

                if "trip" in fields:
                    raise ConfigurationError("give either failure_threshold or trip, not both")
                fields["trip"] = ConsecutiveFailures(fields.pop("failure_threshold"))
            config = BreakerConfig(name=config, **fields)
        elif fields:
            raise TypeError("pass either a BreakerConfig or a name with fields, not both")
        self.config = config
        self.name = config.name
        self.key = f"prefect-ft:breaker:{config.name}"
        self._clock = clock or time.monotonic
        self.store: BreakerStore = shared_store(store, clock=clock)
        self._listeners = list(listeners)
        self._rng = (rng or random.Random()).random
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        relock_after_fork(self)  # a thread of the parent may hold them at fork time
        self._window = config.new_window() if config.trip.uses_window else None
        self._slow_s = config.slow_call_seconds
        self._inflight: dict[int, float] = {}
        self._window_since = float("-inf")  # when the current window began (store clock)
        self._ramp = [0, 0]  # offered, admitted in the current RECOVERY episode
        self._offset = 0.0
        self._record = BreakerRecord()
        self._version = 0
        self._prober: Any = None
        self._set(self._record, 0)  # computes the fast-path flag
        self._pending_success = False
        self._dirty = False
        self.store_available = True
        self.counts = {"successful": 0, "failed": 0, "ignored": 0, "not_permitted": 0, "slow": 0}
        self._cm_tokens: contextvars.ContextVar[tuple[Any, ...]] = contextvars.ContextVar(
            f"prefect_ft_cm_{config.name}", default=()
        )
        # active health checks (core.probe) and readiness (core.readiness): a thread only
        # while a check is due
        if config.health_check is not None:
            from prefect_ft.recovery.prober import HealthProber

            self._prober = HealthProber(self, threaded=refresh_seconds is not None)
            self._listeners.append(self._prober)
        self.refresh()
        if self._prober is not None and self._record.state == OPEN:
            self._prober.poke()  # opened before this process built the breaker
        if self.store_available and register_breaker(self.store, self.name):
            join_active_stop(self)  # a stop's index read missed a breaker built after it
        _live.add(self)
        interval = refresh_seconds
        if interval == "default":
            from prefect_ft.settings import refresh_seconds as default_interval

            interval = default_interval()
        if interval is not None:
            Refresher.attach(self, self.store, float(interval))

    @classmethod
    def from_preset(
        cls, name: str, *, store: BreakerStore | str | None = None, **kwargs: Any
    ) -> CircuitBreaker:
        """A breaker configured by a built-in preset (`ipc`, `ml-inference`, ...)."""
        from prefect_ft.presets import preset_config

        overrides = {
            k: kwargs.pop(k) for k in list(kwargs) if k in BreakerConfig.__dataclass_fields__
        }
        return cls(preset_config(name, **overrides), store=store, **kwargs)

    # -- views -------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """The effective state: an overlay when set, else CLOSED/OPEN/HALF_OPEN/RECOVERY."""
        return self._record.effective_state

    @property
    def record(self) -> BreakerRecord:
        return self._record

    def now(self) -> float:
        """The store clock, estimated locally (no round trip)."""
        return self._clock() + self._offset

    def seconds_until_admission(self) -> float | None:
        """From the local view: 0 when a call would be let through now, else how long until it
        could be (None: forced open until an operator clears it)."""
        return machine.seconds_until_admission(self._record, self.config, self.now())

    @property
    def health_prober(self) -> Any:
        """The `HealthProber` running this breaker's active health checks, or None."""
        return self._prober

    def window_counts(self) -> WindowCounts:
        with self._lock:
            return self._counts(self.now())

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state}, store={self.store.url!r})"

    # -- admission ---------------------------------------------------------------------------
    def _enter(self) -> tuple[str, Any, float] | None:
        if self._fast:
            return None
        rec = self._record
        if rec.state == OPEN and rec.overlay is None:  # inlined: a rejection must stay cheap
            now = self._clock() + self._offset
            if now < rec.open_until:
                self.counts["not_permitted"] += 1
                raise CircuitOpenError(self.name, rec.open_until - now, OPEN)
        return self._enter_slow()

    def _reject(self, retry_after: float | None) -> CircuitOpenError:
        self.counts["not_permitted"] += 1
        rec = self._record
        return CircuitOpenError(self.name, retry_after, rec.overlay or rec.state)

    def _enter_slow(self) -> tuple[str, Any, float] | None:
        now = self.now()
        rec = self._record
        if rec.overlay is None:  # answer OPEN and a full HALF_OPEN from the local view
            if rec.state == OPEN and now < rec.open_until:
                raise self._reject(rec.open_until - now)
            if rec.state == HALF_OPEN:
                live = [t for _, t in rec.probes if t > now]
                if len(live) + rec.probe_successes >= self.config.half_open_calls:
                    raise self._reject(min(live, default=now) - now)
            if rec.state == CLOSED:
                return self._enter_closed(now)
        holder = f"{os.getpid()}-{next(_holder_ids)}"
        u = self._rng()
        adm = self._apply(lambda r, n: machine.admit(r, self.config, n, holder, u=u))
        if adm.decision == "reject":
            raise self._reject(adm.retry_after)
        if adm.decision == "probe":
            return ("p", holder, now)
        if adm.decision == "ramp":
            with self._lock:
                offered, admitted = self._ramp
                self._ramp[0] = offered + 1
                if not ramp_admits(offered, admitted, adm.fraction):
                    raise self._reject(min(1.0, machine.ramp_seconds(self._record, self.config)))
                self._ramp[1] = admitted + 1
            return ("r", holder, now)
        if self._record.state == CLOSED and self._record.overlay is None:
            return self._enter_closed(now)
        return ("c", None, now)

    def _enter_closed(self, now: float) -> tuple[str, Any, float]:
        if self._slow_s is None:
            return ("c", None, now)
        inflight = self._inflight
        if inflight and now - next(iter(inflight.values())) >= self._slow_s:
            # calls stuck in flight already count as slow: judge them before admitting more
            counts = self.window_counts()
            self._apply(lambda r, n: machine.evaluate(r, self.config, n, counts, self._rng()))
            if self._record.state != CLOSED:
                return self._enter_slow()  # type: ignore[return-value]
        token = next(_holder_ids)
        with self._lock:
            inflight[token] = now
        return ("c", token, now)

    # -- outcomes ----------------------------------------------------------------------------
    def _exit_ok(self, token: tuple[str, Any, float] | None) -> None:
        self.counts["successful"] += 1
        if token is None:
            if self._record.consecutive_failures:
                self._settle(None, "success", None)
            return
        self._settle(token, "success", None)

    def _exit_error(self, token: tuple[str, Any, float] | None, exc: BaseException) -> None:
        outcome = self.config.classifier.classify(exc)
        self.counts[
            "failed"
            if outcome == "failure"
            else "ignored"
            if outcome == "ignored"
            else "successful"
        ] += 1
        self._settle(token, outcome, exc)

    def _settle(
        self, token: tuple[str, Any, float] | None, outcome: Outcome, exc: BaseException | None
    ) -> None:
        now = self.now()
        kind, holder, start = token if token is not None else ("c", None, now)
        slow = self._slow_s is not None and now - start >= self._slow_s
        if slow:
            self.counts["slow"] += 1
        counts = WindowCounts()
        stale = False
        if kind == "c":
            with self._lock:
                if holder is not None:
                    self._inflight.pop(holder, None)
                # admitted before the last transition this process saw: it describes the
                # dependency as it was then, so it must not land in the fresh window
                stale = start < self._window_since
                if self._window is not None and outcome != "ignored" and not stale:
                    self._window.record(outcome == "failure", slow, now)
                    counts = self._counts(now)
        if stale or (outcome == "ignored" and kind != "p"):
            return
        retry_after = retry_after_of(exc) if exc is not None else None
        u = self._rng()

        def op(r: BreakerRecord, n: float) -> machine.Transition:
            return machine.on_outcome(
                r,
                self.config,
                n,
                outcome,
                probe=holder if kind == "p" else None,
                ramp=kind == "r",
                counts=counts,
                u=u,
                retry_after=retry_after,
                slow=slow,
            )

        if outcome == "success" and kind == "c" and self._window is None:
            self._apply_locally(op)  # batched: the refresher flushes it to the store
        else:
            self._apply(op)
        if outcome == "failure" and self._prober is not None:
            self._prober.poke(confirm=True)  # a confirming health check, if one is wanted

    def _counts(self, now: float) -> WindowCounts:
        c = self._window.counts(now) if self._window is not None else WindowCounts()
        if self._slow_s is not None and self._inflight:
            stuck = sum(1 for t in self._inflight.values() if now - t >= self._slow_s)
            c = WindowCounts(c.calls + stuck, c.failures, c.slow + stuck)
        return c

    # -- state updates -----------------------------------------------------------------------
    def _set(self, record: BreakerRecord, version: int) -> None:
        old = self._record
        if record.state != old.state or record.closed_at != old.closed_at:
            # every transition this process sees, made here or adopted from the store (a reset
            # elsewhere shows as a new closed_at), starts a fresh rate/slow-call window (issue 8)
            if record.state == "RECOVERY":
                self._ramp = [0, 0]
            if self._window is not None:
                self._window.clear()
            self._inflight.clear()
            self._window_since = self.now()
        if self._prober is not None and record.ready_at != old.ready_at and readiness.pending(record):  # fmt: skip
            self._prober.poke()  # an announcement, made here or seen in the store: verify it now
        self._record = record
        self._version = version
        self._fast = (
            record.state == CLOSED
            and record.overlay is None
            and self._window is None
            and self._slow_s is None
        )

    # -- admin -------------------------------------------------------------------------------
    def force_open(self) -> None:
        self._apply(lambda r, n: machine.set_overlay(r, "FORCED_OPEN", n))

    def disable(self) -> None:
        self._apply(lambda r, n: machine.set_overlay(r, "DISABLED", n))

    def metrics_only(self) -> None:
        self._apply(lambda r, n: machine.set_overlay(r, "METRICS_ONLY", n))

    def clear_overlay(self) -> None:
        self._apply(lambda r, n: machine.set_overlay(r, None, n))

    def reset(self, overlay: OverlayName | None = None) -> None:
        """Back to CLOSED with counters cleared (and the window emptied)."""
        if self._window is not None:
            with self._lock:
                self._window.clear()
        self._apply(lambda r, n: machine.set_overlay(r, overlay, n, reset=True))

    # -- recovery (issue 9): the outcome of a recovery moves the breaker ------------------------
    def mark_recovered(self) -> RecoveryMove:
        """A recovery validated the component: OPEN -> HALF_OPEN now, then probes and the ramp.

        Returns whether the breaker moved; it does not when it is not OPEN or an operator's
        overlay is set (a forced open is never overridden), and `reason` says why.
        """
        return self._recovery_move(lambda r, n: machine.mark_recovered(r, self.config, n))

    def mark_recovery_failed(self, open_seconds: float) -> RecoveryMove:
        """A recovery failed: stay OPEN for `open_seconds` from now (longer than usual).

        Raises:
            ValueError: `open_seconds` is not a finite number > 0.
        """
        machine.mark_recovery_failed(self._record, self.config, 0.0, open_seconds)  # validates
        return self._recovery_move(
            lambda r, n: machine.mark_recovery_failed(r, self.config, n, open_seconds)
        )

    def _recovery_move(self, decide: Callable[[BreakerRecord, float], Any]) -> RecoveryMove:
        self.refresh()  # the local view may be older than the outage the recovery answers
        seen: list[tuple[BreakerRecord, Any]] = []

        def op(r: BreakerRecord, n: float) -> Any:
            t = decide(r, n)
            seen.append((r, t))
            return t

        self._apply(op)
        before, t = seen[-1]
        moved = t.record is not before
        reason = "" if moved else (machine.recovery_blocked(before) or "nothing to change")
        return RecoveryMove(moved, self.state, reason)

    def ready(self) -> RecoveryMove:
        """The component announces it is ready (its supervisor restarted it and its deep health
        check passed): an OPEN breaker verifies it with one health check now and half-opens on
        a pass, every process through the store (`prefect_ft.core.readiness`).

        Returns whether the record moved (recorded the announcement, or half-opened when there
        is no health check to verify it); `reason` says why not.
        """
        move = self._recovery_move(lambda r, n: readiness.announce(r, self.config, n))
        if self._prober is not None and readiness.pending(self._record):
            self._prober.poke()  # also when it was already recorded (a repeated announcement)
        return move

    def add_listener(self, listener: BreakerListener) -> None:
        """Call `listener(breaker, event)` on each transition, before the global listeners."""
        self._listeners.append(listener)

    def remove_listener(self, listener: BreakerListener) -> None:
        """Stop calling `listener` (nothing happens when it was not added)."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # -- calling -----------------------------------------------------------------------------
    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn(*args, **kwargs)` through the breaker.

        Raises:
            CircuitOpenError: the breaker rejected the call (`fn` did not run).
        """
        token = self._enter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._exit_error(token, exc)
            raise
        self._exit_ok(token)
        return result

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await `fn(*args, **kwargs)` through the breaker; see `call`.

        Store writes (a failure's count, a half-open admission) run on a worker thread, so the
        event loop never waits on the store; calls that need none stay on the loop.
        """
        # the fast paths of `_aenter` / `_aexit_ok` inlined: no coroutine frame per call
        token = self._enter() if self._fast else await self._aenter()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            await self._aexit_error(token, exc)
            raise
        if (token is None or token[0] == "c") and not self._record.consecutive_failures:
            self._exit_ok(token)
        else:
            await self._aexit_ok(token)
        return result

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate a sync or async function (the wrapper keeps its signature)."""
        enter, exit_ok, exit_error = self._enter, self._exit_ok, self._exit_error
        if inspect.iscoroutinefunction(fn):
            aenter, aexit_ok, aexit_error = self._aenter, self._aexit_ok, self._aexit_error

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                # the body of `acall`, inlined: one coroutine frame less per call
                # and the on-loop fast paths of `_aenter` / `_aexit_ok` too: no frame at all
                token = enter() if self._fast else await aenter()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    await aexit_error(token, exc)
                    raise
                if (token is None or token[0] == "c") and not self._record.consecutive_failures:
                    exit_ok(token)
                else:
                    await aexit_ok(token)
                return result

            async_wrapper.breaker = self  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = enter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                exit_error(token, exc)
                raise
            exit_ok(token)
            return result

        wrapper.breaker = self  # type: ignore[attr-defined]
        return wrapper

    def __enter__(self) -> CircuitBreaker:
        token = self._enter()
        self._cm_tokens.set((*self._cm_tokens.get(), token))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        stack = self._cm_tokens.get()
        token = stack[-1]
        self._cm_tokens.set(stack[:-1])
        if exc is None:
            self._exit_ok(token)
        else:
            self._exit_error(token, exc)

    async def __aenter__(self) -> CircuitBreaker:
        token = await self._aenter()
        self._cm_tokens.set((*self._cm_tokens.get(), token))
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        stack = self._cm_tokens.get()
        token = stack[-1]
        self._cm_tokens.set(stack[:-1])
        if exc is None:
            await self._aexit_ok(token)
        else:
            await self._aexit_error(token, exc)

    # -- async: store I/O off the event loop ---------------------------------------------------
    # The sync bodies above run unchanged; where they may write to the store they run on a worker
    # thread. On the loop stay the calls that only touch local state (`_lock` is never held
    # across a store round trip): admission while CLOSED or a local OPEN rejection, and a
    # CLOSED success while no failures are counted. One write can still happen there: a success
    # or a stuck slow call that trips a rate condition writes that one transition.
    async def _aenter(self) -> tuple[str, Any, float] | None:
        rec = self._record
        if self._fast or (
            rec.overlay is None
            and (rec.state == CLOSED or (rec.state == OPEN and self.now() < rec.open_until))
        ):
            return self._enter()
        return await off_loop(self._enter)

    async def _aexit_ok(self, token: tuple[str, Any, float] | None) -> None:
        if (token is None or token[0] == "c") and not self._record.consecutive_failures:
            self._exit_ok(token)
        else:  # a probe, a ramp call, or a success that resets the shared failure count
            await _finish(off_loop(self._exit_ok, token))

    async def _aexit_error(self, token: tuple[str, Any, float] | None, exc: BaseException) -> None:
        await _finish(off_loop(self._exit_error, token, exc))


async def _finish(settling: Awaitable[None]) -> None:
    """Await an outcome's write; a cancellation meanwhile does not cancel the write itself (a
    probe's result must reach the store), it only stops waiting for it."""
    await asyncio.shield(settling)
