"""The replayer's gate to its breaker: in-flight slots per state, woken by the breaker's moves.

`core.replay_pace.replay_slots` decides how many replayed calls may run at once; this holds the
count and makes workers wait. A worker waiting for an OPEN breaker (or for a free slot) sleeps
on a condition that the breaker's transitions notify (its own listener, called before the
global ones: transitions made in this process, and those adopted from the store by the
refresher), so a replay starts the moment
the breaker half-opens or closes instead of on its next poll; `POLL_SECONDS` is only the
fallback for a breaker that is not refreshed, and the longest a missed notice can cost.

Why the parallelism is safe for a component that has just come back: nothing runs while OPEN;
while HALF_OPEN only the probes do (a replayed call may be the probe: with no other traffic an
OPEN breaker would otherwise never be probed); in RECOVERY the ramp's share of `concurrency`,
and the ramp still admits or refuses each call; every replayed call takes a bulkhead permit
like a live one. A failure that reopens the breaker makes the other workers' next admission
wait again (their calls are refused and handed back, not lost).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prefect_ft.core.replay_pace import replay_slots

if TYPE_CHECKING:
    from prefect_ft.tasks.gates import Gate

__all__ = ["POLL_SECONDS", "Pacer"]

POLL_SECONDS = 0.2


class Pacer:
    """In-flight slots for one breaker's replay workers, until `deadline` (monotonic seconds).

    Use as a context manager (the listener is removed on exit).
    """

    def __init__(self, gate: Gate, concurrency: int | None, deadline: float) -> None:
        self.gate = gate
        self.breaker = gate.breaker
        self.concurrency = concurrency
        self.deadline = deadline
        self.bulkhead = gate.bulkhead.config.max_concurrent if gate.bulkhead is not None else None
        self._cond = threading.Condition()
        self._inflight = 0
        self._moves = 0  # transitions seen: a wait is skipped when one landed since the check
        self._hold = (0.0, 0)  # (monotonic time, moves): no call before it unless moved since
        self.stopped: str | None = None

    def __enter__(self) -> Pacer:
        # the breaker's own listener: told before the global ones (the Prefect event of the
        # transition is built and queued there, which took ~0.2 s under load)
        self.breaker.add_listener(self._moved)
        return self

    def __exit__(self, *exc: object) -> None:
        self.breaker.remove_listener(self._moved)

    def _moved(self, breaker: Any, event: Any) -> None:
        if breaker is self.breaker:
            with self._cond:
                self._moves += 1
                self._cond.notify_all()

    def _admission_wait(self, fresh: bool) -> float | None:
        """Seconds until the breaker (and its upstreams) would admit a call; None: never.
        `fresh`: re-read the shared record first (before a wait, not before every item: the
        refresher keeps the local view current)."""
        from prefect_ft.tasks.isolation import upstream_wait

        if fresh:
            self.breaker.refresh()
        wait = self.breaker.seconds_until_admission()
        if wait == 0 and self.gate.policy.depends_on:  # its upstreams too (upstream-open)
            wait = upstream_wait(self.gate.policy)
        return wait

    def slots(self) -> int:
        b = self.breaker
        return replay_slots(b.record, b.config, b.now(), concurrency=self.concurrency, bulkhead=self.bulkhead)  # fmt: skip

    def acquire(self, idle: Callable[[], None] | None = None) -> bool:
        """Wait for a slot; True with one held (give it back with `release`), False when the
        deadline passed, the breaker will not admit without an operator, or `stop` was called.
        `idle` runs before each wait for the breaker (the replay tops up its list of letters
        then, so the backlog is known when the breaker admits)."""
        fresh = False  # the local view first: the refresher and our own transitions keep it
        while True:
            with self._cond:
                moves = self._moves
            wait = self._admission_wait(fresh)  # store I/O outside the lock
            with self._cond:
                if self.stopped is not None:
                    return False
                held = self._hold[0] - time.monotonic()
                if wait == 0 and held > 0 and self._hold[1] == self._moves:
                    wait = held
                elif wait == 0:
                    if self._inflight < self.slots():
                        self._inflight += 1
                        return True
                    if self._inflight:
                        # a fellow worker holds the slot: its release wakes us; this is no
                        # wait for the breaker, so `wait_seconds=0` does not end it
                        self._cond.wait(POLL_SECONDS)
                        continue
                    wait = POLL_SECONDS
                left = self.deadline - time.monotonic()
                if wait is None or left <= 0:
                    return False
            if idle is not None:
                idle()  # outside the lock: store I/O
            with self._cond:
                if self._moves == moves:
                    self._cond.wait(min(POLL_SECONDS, max(0.01, wait), left))
                # woken by a transition: the record it set is here already, no store read
                # before the call (one round trip less on the way to the half-open probe);
                # a timeout or a release re-reads it
                fresh = self._moves == moves

    def release(self) -> None:
        with self._cond:
            self._inflight -= 1
            self._cond.notify_all()

    def hold(self, seconds: float) -> None:
        """Every worker waits `seconds` (a refusal's retry_after) before its next call, unless
        the breaker moves first: one refusal by the ramp holds them all, instead of each
        worker being refused in turn (each refusal counts as an offered call)."""
        with self._cond:
            self._hold = (max(self._hold[0], time.monotonic() + seconds), self._moves)

    def stop(self, reason: str) -> None:
        """Make every worker's next `acquire` return False (the first reason is kept)."""
        with self._cond:
            if self.stopped is None:
                self.stopped = reason
            self._cond.notify_all()
