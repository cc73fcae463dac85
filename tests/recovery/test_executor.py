"""The recovery executor on a fake clock and a memory store, with in-process components."""

from __future__ import annotations

import asyncio
import json

import pytest

from prefect_ft.blocks import CircuitBreakerPolicy, ComponentSpec, RecoveryPolicy
from prefect_ft.breaker import CircuitBreaker
from prefect_ft.core.reallocation import budget_of, next_budget
from prefect_ft.exceptions import StoreUnavailableError
from prefect_ft.recovery.executor import RecoveryOptions, arecover
from prefect_ft.recovery.records import SLOTS_KEY, acquire_slot, load_state
from prefect_ft.stores.memory import InMemoryBreakerStore
from tests.conftest import FakeClock
from tests.recovery.components import (
    CrashedProcess,
    Hanging,
    Patient,
    SlowToWake,
    endpoint_for,
)


class FixedRandom:
    """`random()` always answers `u`: full jitter then gives u * the exponential bound."""

    def __init__(self, u: float = 0.99) -> None:
        self.u = u

    def random(self) -> float:
        return self.u


class World:
    """A fake clock, one memory store, a recorder of events, and the options that use them."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = InMemoryBreakerStore(clock=self.clock)
        self.events: list[tuple[str, str, dict]] = []
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    def emit(self, kind, component, recovery_id, phase, payload) -> str:
        self.events.append((kind, phase, payload))
        return f"prefect-ft.recovery.{kind}"

    def options(self, **kw) -> RecoveryOptions:
        return RecoveryOptions(
            store=self.store,
            clock=self.clock,
            sleep=self.sleep,
            emit=self.emit,
            rng=FixedRandom(),
            **kw,
        )

    def spec(self, name: str, component: object, **recovery) -> ComponentSpec:
        policy = RecoveryPolicy(
            **{"max_attempts": 3, "health_check_timeout_seconds": 5, **recovery}
        )
        return ComponentSpec(
            component=name,
            breaker=CircuitBreakerPolicy(failure_threshold=1, open_seconds=10),
            recovery=policy,
            control_endpoint=endpoint_for(component),
        )

    def open_breaker(self, spec: ComponentSpec) -> CircuitBreaker:
        breaker = CircuitBreaker(
            spec.breaker.to_config(spec.component), store=self.store, refresh_seconds=None
        )
        with pytest.raises(ZeroDivisionError):
            breaker.call(lambda: 1 / 0)
        assert breaker.state == "OPEN"
        return breaker


@pytest.fixture
def world() -> World:
    return World()


async def test_success_moves_the_breaker_to_half_open(world: World) -> None:
    patient = Patient(cures={"reset_connections"})
    spec = world.spec("db", patient, action="connection-reset")
    breaker = world.open_breaker(spec)
    report = await arecover(
        "db", failure_type="ConnectionError", reason="breaker opened", spec=spec,
        options=world.options(),
    )  # fmt: skip
    assert report.outcome == "succeeded", report.message
    assert [a.strategy for a in report.attempts] == ["connection-reset"]
    assert report.attempts[0].checks == 3 and report.attempts[0].validation == "passed"
    assert (report.breaker_before, report.breaker_after) == ("OPEN", "HALF_OPEN")
    breaker.refresh()
    assert breaker.state == "HALF_OPEN"
    assert [e[0] for e in world.events] == ["started", "succeeded"]
    state = load_state(world.store, "db")
    assert state.stats_for("connection-reset").success_rate == 1.0
    assert "| 1 | immediate | connection-reset | ok | passed (3 checks)" in report.markdown()
    assert report.stats == [{"strategy": "connection-reset", "attempts": 1, "successes": 1}]
    assert "| connection-reset | 1 | 1 | 100% |" in report.markdown()
    # the slot is free again
    assert json.loads(world.store.read(SLOTS_KEY).data)["leases"] == []


async def test_failing_case_escalates_rolls_back_and_alerts(world: World) -> None:
    patient = Patient(cures=set())  # nothing helps
    spec = world.spec("llm", patient)
    breaker = world.open_breaker(spec)
    opened_until = breaker.record.open_until
    report = await arecover("llm", spec=spec, options=world.options())
    assert report.outcome == "failed"
    assert report.alerted is True
    # immediate -> short-term -> long-term (unknown failure type: restart, restart, reload)
    assert [(a.phase, a.strategy) for a in report.attempts] == [
        ("immediate", "graceful-restart"),
        ("short-term", "graceful-restart"),
        ("long-term", "model-reload"),
    ]
    assert all(a.validation == "failed" for a in report.attempts)
    # the reload is rolled back to the version before it
    assert report.attempts[2].rollback == "done: {'version': 'v2'}"
    assert patient.version == "v2"
    # each next attempt waits longer (full jitter at u=0.99: 0.99, 1.98, 3.96 s)
    waits = [a.backoff_seconds for a in report.attempts]
    assert waits == sorted(waits) and waits[0] < waits[1] < waits[2]
    assert waits[2] == pytest.approx(3.96, abs=0.01)
    # the breaker stays OPEN, for longer than its own open time
    breaker.refresh()
    assert breaker.state == "OPEN"
    assert breaker.record.open_until > opened_until
    kinds = [(e[0], e[1]) for e in world.events]
    assert kinds.count(("failed", "immediate")) == 1
    assert ("escalated", "short-term") in kinds and ("escalated", "long-term") in kinds
    assert kinds[-1] == ("escalated", "operator")
    assert kinds.count(("escalated", "operator")) == 1  # one operator alert, not two
    assert world.events[-1][2]["alert"] is True
    assert "an operator must act" in report.message
    # a further request is refused until the component is healthy or an operator acts
    again = await arecover("llm", spec=spec, options=world.options())
    assert again.outcome == "refused"
    assert "waiting for an operator" in again.message


async def test_one_strategy_flow_makes_one_attempt(world: World) -> None:
    patient = Patient(cures=set())
    spec = world.spec("cache", patient)
    world.open_breaker(spec)
    report = await arecover(
        "cache", strategy="resource-reallocation", spec=spec, options=world.options()
    )
    assert report.outcome == "failed"
    assert len(report.attempts) == 1
    assert report.attempts[0].request == {"memory_mb": 1500.0, "concurrency": 4}
    # rolled back to the old budget
    assert patient.budget == {"memory_mb": 1000, "concurrency": 8}
    assert "resource-reallocation failed" in report.message


async def test_second_recovery_of_one_component_is_refused(world: World) -> None:
    spec = world.spec("gpu", Patient(cures={"restart"}))
    grant = acquire_slot(world.store, "gpu", 60, 2)
    assert grant.granted
    report = await arecover("gpu", spec=spec, options=world.options())
    assert report.outcome == "refused"
    assert "a recovery of gpu is already running" in report.message
    assert report.attempts == []
    # the lease expires, so a crashed holder never blocks recovery for good
    world.clock.advance(61)
    report = await arecover("gpu", spec=spec, options=world.options())
    assert report.outcome == "succeeded", report.message


async def test_two_at_once_only_one_runs(world: World) -> None:
    patient = Patient(cures={"restart"})
    spec = world.spec("ipc", patient)
    first, second = await asyncio.gather(
        arecover("ipc", spec=spec, options=world.options()),
        arecover("ipc", spec=spec, options=world.options()),
    )
    outcomes = sorted([first.outcome, second.outcome])
    assert outcomes == ["refused", "succeeded"]
    assert [c[0] for c in patient.calls].count("restart") == 1


async def test_unreachable_endpoint_fails_with_one_line(world: World) -> None:
    spec = world.spec("dead", Patient())
    spec.control_endpoint = "http://127.0.0.1:9"  # discard port: nothing listens
    world.open_breaker(spec)
    report = await arecover(
        "dead",
        strategy="graceful-restart",
        spec=spec,
        options=world.options(action_timeout_seconds=1),
    )
    assert report.outcome == "failed"
    assert report.attempts[0].error.startswith("unreachable")
    assert "\n" not in report.message and "unreachable" in report.message
    assert report.breaker_after == "OPEN"


async def test_hanging_restart_times_out(world: World) -> None:
    hanging = Hanging()
    spec = world.spec("stuck", hanging)
    world.open_breaker(spec)
    try:
        report = await asyncio.wait_for(
            arecover(
                "stuck",
                strategy="graceful-restart",
                spec=spec,
                options=world.options(action_timeout_seconds=0.3),
            ),
            10,
        )
    finally:
        hanging.release.set()
    assert report.outcome == "failed"
    assert report.attempts[0].error == "timed out after 0.3 s"
    assert report.breaker_after == "OPEN"


async def test_no_control_endpoint_is_nothing_to_recover(world: World) -> None:
    spec = world.spec("mute", Patient())
    spec.control_endpoint = None
    report = await arecover("mute", spec=spec, options=world.options())
    assert report.outcome == "refused"
    assert report.message == "component 'mute' has no control_endpoint: nothing to recover"
    assert world.events == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"component": ""}, "component: must be a component name (got '')"),
        ({"component": None}, "component: must be a component name (got None)"),
        ({"component": "{{ event.payload.component }}"}, "component: must be a component name"),
        ({"component": "x", "strategy": "reboot"}, "strategy: must be one of"),
        ({"component": "x", "failure_type": "Gremlins"}, "failure_type: must be one of"),
    ],
)
async def test_bad_request_fails_fast(world: World, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        await arecover(**kwargs, options=world.options())
    assert world.events == []


async def test_validation_that_can_never_pass_is_refused(world: World) -> None:
    """3 checks 1 s apart need more than 2 s: a 2 s timeout would fail every recovery."""
    patient = Patient(cures={"restart"})
    spec = world.spec("tight", patient, health_check_timeout_seconds=2)
    report = await arecover("tight", spec=spec, options=world.options())
    assert report.outcome == "failed"
    assert report.message == (
        "health_check_timeout_seconds (2 s) must exceed (checks - 1) x check_interval_seconds "
        "(2 s), or validation can never pass"
    )
    assert patient.calls == []


class DownStore(InMemoryBreakerStore):
    """A memory store whose recovery records cannot be written (an outage of the shared store)."""

    def cas(self, key, expected_version, data):
        if key.startswith("prefect-ft:recovery:"):
            raise StoreUnavailableError("redis://127.0.0.1:6379/0: connection refused")
        return super().cas(key, expected_version, data)


async def test_store_outage_is_a_failed_recovery_not_a_crash(world: World) -> None:
    world.store = DownStore(clock=world.clock)
    spec = world.spec("db2", Patient(cures={"restart"}))
    report = await arecover("db2", spec=spec, options=world.options())
    assert report.outcome == "failed"
    assert report.message == (
        "breaker store unavailable: StoreUnavailableError: redis://127.0.0.1:6379/0: "
        "connection refused"
    )
    assert world.events[-1][0] == "failed"


def test_next_budget_gives_memory_and_sheds_concurrency() -> None:
    assert budget_of({"resources": {"memory_mb": 1000, "concurrency": 8}}) == {
        "memory_mb": 1000.0,
        "concurrency": 8,
    }
    assert budget_of({"memory_mb": -5, "concurrency": True}) == {}
    assert next_budget({"memory_mb": 1000.0, "concurrency": 8}) == {
        "memory_mb": 1500.0,
        "concurrency": 4,
    }
    assert next_budget({"concurrency": 1}) == {"concurrency": 1}
    assert next_budget({"memory_mb": 1_000_000.0}) == {"memory_mb": 1_048_576}
    assert next_budget({}) == {"concurrency": 1}


async def test_a_failed_check_before_k_good_ones_is_no_error(world: World) -> None:
    spec = world.spec("warm", SlowToWake())
    report = await arecover("warm", spec=spec, options=world.options())
    assert report.outcome == "succeeded", report.message
    attempt = report.attempts[0]
    assert (attempt.validation, attempt.checks, attempt.error) == ("passed", 4, None)


async def test_recoveries_reach_health_notes_and_metrics(world: World) -> None:
    from prefect_ft.ops import metrics
    from prefect_ft.ops.view import read_notes

    def count(outcome: str) -> float:
        text = metrics.exposition().decode()
        line = f'prefect_ft_recovery_total{{component="obs",outcome="{outcome}",strategy="connection-reset"}}'
        found = [ln for ln in text.splitlines() if ln.startswith(line)]
        return float(found[0].rsplit(" ", 1)[1]) if found else 0.0

    before = count("succeeded")
    patient = Patient(cures={"reset_connections"})
    spec = world.spec("obs", patient, action="connection-reset")
    world.open_breaker(spec)
    report = await arecover("obs", spec=spec, options=world.options())
    assert report.outcome == "succeeded", report.message
    note = read_notes(world.store).recoveries["obs"]
    assert (note["status"], note["strategy"]) == ("succeeded", "connection-reset")
    assert note["recovery_id"] == report.recovery_id
    assert count("succeeded") == before + 1


async def test_a_process_that_is_not_running_fails_validation_at_once(world: World) -> None:
    """The demo's ipc (2026-12-02): a connection reset of a crashed model server waited out its
    20 s validation on answers saying the process was not running, then escalated to the restart
    that helped, 27.8 s after the breaker opened. A check that finds the process down settles
    validation of an action that does not start it; a restart still gets its timeout."""
    crashed = CrashedProcess()
    spec = world.spec("ipc", crashed, health_check_timeout_seconds=20)
    world.open_breaker(spec)
    start = world.clock()
    report = await arecover(
        "ipc", failure_type="ConnectionError", spec=spec, options=world.options()
    )
    assert report.outcome == "succeeded", report.message
    first, second = report.attempts
    assert (first.strategy, first.validation, first.checks) == ("connection-reset", "failed", 1)
    assert "the process is not running" in (first.error or "")
    assert first.seconds < 1.0, first.seconds
    assert (second.strategy, second.validation) == ("graceful-restart", "passed")
    # the reset's 1 s backoff (jitter 0.99) and the restart's 3 checks, not 20 s of waiting
    assert world.clock() - start < 5.0


async def test_a_run_for_an_opening_does_nothing_once_the_component_serves_again(
    world: World,
) -> None:
    """The demo with `prefect-ft serve` (2026-12-02): the served run for ipc's opening started
    16 s after the event, when the in-process recovery had already closed the breaker, and
    restarted the healthy model server. A run asked `skip_if_closed` leaves a breaker that
    serves again (CLOSED, RECOVERY) alone, but still acts on one whose open time ran out."""
    patient = Patient(cures={"restart"})
    spec = world.spec("late", patient)
    breaker = world.open_breaker(spec)
    breaker.mark_recovered()  # another recovery got there first: HALF_OPEN, then the probe
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state in ("RECOVERY", "CLOSED")
    report = await arecover("late", spec=spec, options=world.options(skip_if_closed=True))
    assert report.outcome == "refused", report.message
    assert "serving again, nothing to recover" in report.message
    assert report.attempts == [] and patient.calls == []
    # HALF_OPEN is not serving (its probe has not passed): the component may still be down
    down = Patient(cures={"restart"})
    spec = world.spec("probing", down)
    world.open_breaker(spec).mark_recovered()
    report = await arecover("probing", spec=spec, options=world.options(skip_if_closed=True))
    assert report.breaker_before == "HALF_OPEN"
    assert report.outcome == "succeeded", report.message
