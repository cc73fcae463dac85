"""Hypothesis drives two `CircuitBreaker`s ("processes") on one store through random traffic.

The window lives in the driver, so the window invariants of issue 8 item 1 are checked here:
a success that is not slow never opens a breaker, and every state a process sees (CLOSED after
RECOVERY included, whether it made the transition or adopted it) starts with an empty window.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from prefect_ft import CircuitBreaker, CircuitOpenError, FailureRate, SlowCallRate
from prefect_ft.core import ConsecutiveFailures, OutcomeClassifier
from prefect_ft.core.events import BreakerEvent
from prefect_ft.stores import InMemoryBreakerStore
from tests.conftest import FakeClock

SLOW = 2.0


class Down(Exception):
    pass


class Ignored(Exception):
    pass


class TwoProcesses(RuleBasedStateMachine):
    @initialize(
        window_type=st.sampled_from(["count", "time"]),
        recovery=st.sampled_from([0.0, 8.0]),
        k=st.integers(1, 2),
    )
    def setup(self, window_type: str, recovery: float, k: int) -> None:
        self.clock = FakeClock()
        store = InMemoryBreakerStore(clock=self.clock, url="memory://")
        trip = (
            FailureRate(50, minimum_calls=4)
            | SlowCallRate(50, slow_seconds=SLOW, minimum_calls=4)
            | ConsecutiveFailures(6)
        )
        self.violations: list[str] = []
        self.local_events: list[BreakerEvent] = []
        self.breakers = [
            CircuitBreaker(
                "dep",
                store=store,
                clock=self.clock,
                refresh_seconds=None,
                trip=trip,
                window_type=window_type,
                window_size=6,
                open_seconds=5,
                half_open_calls=k,
                probe_ttl_seconds=4,
                recovery_seconds=recovery,
                recovery_minimum_calls=3,
                recovery_min_fraction=0.5,
                classifier=OutcomeClassifier(ignore=(Ignored,)),
                listeners=[self._seen],
            )
            for _ in range(2)
        ]

    def _seen(self, b: CircuitBreaker, event: BreakerEvent) -> None:
        # listener errors are swallowed by the driver, so violations are collected instead
        if not event.remote:
            self.local_events.append(event)
        calls = b.window_counts().calls
        if calls:
            self.violations.append(f"{event.kind} ({event.reason}) with {calls} calls in window")

    @rule(dt=st.floats(0, 6))
    def advance(self, dt: float) -> None:
        self.clock.advance(dt)

    @rule(i=st.integers(0, 1))
    def refresh(self, i: int) -> None:
        self.breakers[i].refresh()

    @rule(i=st.integers(0, 1))
    def operator_reset(self, i: int) -> None:
        self.breakers[i].reset()

    @rule(i=st.integers(0, 1), outcome=st.sampled_from(["ok", "slow", "down", "ignored"]))
    def call(self, i: int, outcome: str) -> None:
        b = self.breakers[i]

        def dep() -> Any:
            if outcome == "slow":
                self.clock.advance(SLOW + 0.5)
            if outcome == "down":
                raise Down()
            if outcome == "ignored":
                raise Ignored()

        self.local_events.clear()
        try:
            b.call(dep)
        except (CircuitOpenError, Down, Ignored):
            pass
        if outcome == "ok":
            opened = [
                e for e in self.local_events if e.from_state == "CLOSED" and e.to_state == "OPEN"
            ]
            assert not opened, f"a fast success opened the breaker: {opened}"

    @invariant()
    def every_state_starts_with_an_empty_window(self) -> None:
        if getattr(self, "violations", None):
            raise AssertionError(self.violations)


TwoProcesses.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestTwoProcesses = TwoProcesses.TestCase
