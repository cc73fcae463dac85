"""A call's admission and its outcome: the per-call half of the `CircuitBreaker` driver.

Admission is answered from the local record while CLOSED or OPEN (no store round trip, no
lock); a HALF_OPEN probe, a RECOVERY ramp call and every failure go through `core.machine` and
the shared store (`stores.shared_record`). Successes while CLOSED are batched.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prefect_ft.core import machine
from prefect_ft.core.classify import Outcome, retry_after_of
from prefect_ft.core.ramp import ramp_admits
from prefect_ft.core.states import CLOSED, HALF_OPEN, OPEN, BreakerRecord
from prefect_ft.core.windows import WindowCounts
from prefect_ft.exceptions import CircuitOpenError

__all__ = ["AdmissionMixin", "Token"]

# what `_enter` hands to the outcome: (kind, holder, admitted at); kind "c" closed, "p" probe,
# "r" ramp. None: the fast path (CLOSED, nothing to count)
Token = tuple[str, Any, float]
_holder_ids = itertools.count()


class AdmissionMixin:
    """Admission and outcomes of `CircuitBreaker` (see the module docstring)."""

    # provided by CircuitBreaker
    name: str
    config: Any
    counts: dict[str, int]
    _record: BreakerRecord
    _fast: bool
    _clock: Callable[[], float]
    _offset: float
    _rng: Callable[[], float]
    _lock: Any
    _window: Any
    _window_since: float
    _slow_s: float | None
    _inflight: dict[int, float]
    _ramp: list[int]
    _prober: Any

    if TYPE_CHECKING:  # provided by CircuitBreaker and SharedRecordMixin; declared here, not
        # defined, so nothing here shadows them in the class's method order

        def now(self) -> float: ...

        def window_counts(self) -> WindowCounts: ...

        def _apply(self, op: Callable[[BreakerRecord, float], Any]) -> Any: ...

        def _apply_locally(self, op: Callable[[BreakerRecord, float], Any]) -> None: ...

    # -- admission ---------------------------------------------------------------------------
    def _enter(self) -> Token | None:
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

    def _enter_slow(self) -> Token | None:
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

    def _enter_closed(self, now: float) -> Token:
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
    def _exit_ok(self, token: Token | None) -> None:
        self.counts["successful"] += 1
        if token is None:
            if self._record.consecutive_failures:
                self._settle(None, "success", None)
            return
        self._settle(token, "success", None)

    def _exit_error(self, token: Token | None, exc: BaseException) -> None:
        outcome = self.config.classifier.classify(exc)
        self.counts[
            "failed"
            if outcome == "failure"
            else "ignored"
            if outcome == "ignored"
            else "successful"
        ] += 1
        self._settle(token, outcome, exc)

    def _settle(self, token: Token | None, outcome: Outcome, exc: BaseException | None) -> None:
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
