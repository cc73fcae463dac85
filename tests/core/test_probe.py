"""Active health checks (`core.probe`): what one check's answer does to the breaker record."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from prefect_ft.core import (
    BreakerConfig,
    BreakerRecord,
    ConsecutiveFailures,
    admit,
    on_outcome,
    readiness,
)
from prefect_ft.core.machine import ramp_seconds, trip
from prefect_ft.core.probe import (
    confirm_wanted,
    healthy_answer,
    on_health,
    probe_delay,
    probe_interval,
)
from prefect_ft.exceptions import ConfigurationError


def check() -> bool:
    return True


def cfg(**kw: object) -> BreakerConfig:
    fields: dict[str, object] = {
        "trip": ConsecutiveFailures(8),
        "open_seconds": 5.0,
        "recovery_seconds": 2.0,
        "health_check": check,
        "probe_interval_seconds": 0.5,
        "probe_confirm_failures": 2,
    }
    fields.update(kw)
    return BreakerConfig("ipc", **fields)  # type: ignore[arg-type]


def opened(c: BreakerConfig, now: float = 10.0) -> BreakerRecord:
    rec = BreakerRecord()
    for _ in range(8):
        rec = on_outcome(rec, c, now, "failure").record
    assert rec.state == "OPEN"
    return rec


def test_a_passing_check_half_opens_an_open_breaker_before_its_open_time() -> None:
    c = cfg()
    rec = opened(c)
    t = on_health(rec, c, 11.0, True)
    assert t.record.state == "HALF_OPEN" and t.record.open_until == 11.0
    assert [e.kind for e in t.events] == ["half-opened"]
    assert t.events[0].reason == "active health check passed"
    assert admit(t.record, c, 11.1, "w").decision == "probe"  # a work call then decides


def test_a_failing_check_keeps_the_breaker_open_past_its_open_time() -> None:
    c = cfg()
    rec = opened(c)  # open until 15.0
    assert on_health(rec, c, 12.0, False).record is rec  # open long enough: nothing to write
    t = on_health(rec, c, 14.8, False)
    assert t.record.state == "OPEN" and t.record.open_until == pytest.approx(15.8)
    assert t.events == ()  # the state did not change: no second `opened`
    assert admit(t.record, c, 15.1, "w").decision == "reject"  # no work call against it


def test_a_failing_confirming_check_opens_a_closed_breaker_before_the_trip_count() -> None:
    c = cfg()
    rec = on_outcome(BreakerRecord(), c, 1.0, "failure").record
    assert not confirm_wanted(rec, c)  # one failure: not enough evidence to ask
    assert on_health(rec, c, 1.0, False).record is rec
    rec = on_outcome(rec, c, 1.1, "failure").record
    assert confirm_wanted(rec, c)
    t = on_health(rec, c, 1.2, False)
    assert t.record.state == "OPEN" and t.record.open_until == pytest.approx(6.2)
    assert t.events[0].reason == "2 consecutive failure(s) and the health check failed"


def test_a_passing_confirming_check_leaves_the_trip_to_the_trip_condition() -> None:
    c = cfg()
    rec = BreakerRecord()
    for _ in range(3):
        rec = on_outcome(rec, c, 1.0, "failure").record
    assert on_health(rec, c, 1.0, True).record is rec


@pytest.mark.parametrize("overlay", ["FORCED_OPEN", "DISABLED", "METRICS_ONLY"])
def test_an_operator_overlay_is_never_overridden(overlay: str) -> None:
    c = cfg()
    for rec in (opened(c), replace(BreakerRecord(), consecutive_failures=5)):
        rec = replace(rec, overlay=overlay)
        assert on_health(rec, c, 11.0, True).record is rec
        assert on_health(rec, c, 11.0, False).record is rec
        assert probe_delay(rec, c, 11.0, None) is None
        assert not confirm_wanted(rec, c)


def test_probe_delay_schedules_one_check_per_interval_while_open() -> None:
    c = cfg()
    rec = opened(c)
    assert probe_delay(rec, c, 10.0, None) == 0.0
    assert probe_delay(rec, c, 10.2, 10.0) == pytest.approx(0.3)
    assert probe_delay(rec, c, 9.0, 8.0) == 0.0  # a check before this open period: check now
    assert probe_delay(BreakerRecord(), c, 10.0, None) is None
    assert probe_delay(rec, cfg(probe_interval_seconds=None), 10.0, None) is None
    assert probe_delay(rec, cfg(health_check=None), 10.0, None) is None


def test_without_an_interval_a_check_never_moves_an_open_breaker() -> None:
    c = cfg(probe_interval_seconds=None)
    rec = opened(c)
    assert on_health(rec, c, 11.0, True).record is rec
    assert on_health(rec, c, 14.9, False).record is rec


def test_trip_opens_only_a_closed_breaker() -> None:
    c = cfg()
    rec = opened(c)
    assert trip(rec, c, 11.0, 0.5, "x").record is rec
    assert trip(BreakerRecord(), c, 1.0, 0.5, "x").record.state == "OPEN"


@pytest.mark.parametrize(
    ("answer", "healthy"),
    [(None, True), (True, True), ({"healthy": True}, True), (False, False),
     ({"healthy": False, "reason": "down"}, False), ({"status": "ok"}, True)],
)  # fmt: skip
def test_healthy_answer(answer: object, healthy: bool) -> None:
    assert healthy_answer(answer) is healthy


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("probe_interval_seconds", 0, "probe_interval_seconds"),
     ("probe_interval_seconds", float("nan"), "probe_interval_seconds"),
     ("probe_interval_seconds", 7200, "3600"),
     ("probe_confirm_failures", 0, "probe_confirm_failures"),
     ("probe_confirm_failures", 1.5, "probe_confirm_failures"),
     ("health_check", "http://x/health", "health_check")],
)  # fmt: skip
def test_bad_probe_settings_name_the_field_and_range(field: str, value: object, message: str) -> None:  # fmt: skip
    with pytest.raises(ConfigurationError, match=message):
        cfg(**{field: value})


class ProbedBreaker(RuleBasedStateMachine):
    """Random work outcomes, health answers, readiness announcements and time: a failing check
    never lets work through, an announcement makes a check due at once and never moves the
    state by itself, and only a verified one shortens the ramp."""

    @initialize(n=st.integers(1, 4), backoff=st.sampled_from([1.0, 2.0]))
    def setup(self, n: int, backoff: float) -> None:
        self.cfg = cfg(
            probe_confirm_failures=n,
            trip=ConsecutiveFailures(6),
            probe_backoff=backoff,
            probe_max_interval_seconds=4.0,
            ready_recovery_seconds=0.0,
        )
        self.rec = BreakerRecord()
        self.now = 0.0
        self.last_check: tuple[float, bool] | None = None
        self.k = 0
        self.checks = 0  # checks in the current open period (the driver's count)
        self.period = -1.0

    @rule()
    def announce(self) -> None:
        before = self.rec
        after = readiness.announce(before, self.cfg, self.now).record
        assert after.state == before.state  # with a health check, only the check moves it
        if before.state == "OPEN" and before.overlay is None:
            assert readiness.pending(after)
            last = self.last_check[0] if self.last_check else None
            assert probe_delay(after, self.cfg, self.now, last, self.checks) == 0.0
        else:
            assert after is before
        self.rec = after

    @rule(dt=st.floats(0, 3))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule(failed=st.booleans())
    def work_call(self, failed: bool) -> None:
        self.k += 1
        a = admit(self.rec, self.cfg, self.now, f"h{self.k}")
        if a.decision == "reject":
            self.rec = a.record
            return
        if a.decision == "admit" and self.last_check is not None and not self.last_check[1]:
            # a check failed and the breaker still admits: only when it was CLOSED and short
            # of the confirming count then, or the check is older than one interval
            assert a.record.state == "CLOSED"
        probe = "h" + str(self.k) if a.decision == "probe" else None
        outcome = "failure" if failed else "success"
        self.rec = on_outcome(
            a.record, self.cfg, self.now, outcome, probe=probe, ramp=a.decision == "ramp"
        ).record

    @rule(healthy=st.booleans())
    def health_check(self, healthy: bool) -> None:
        before = self.rec
        if before.opened_at != self.period:
            self.period, self.checks = before.opened_at, 0
        self.checks += before.state == "OPEN"
        t = on_health(before, self.cfg, self.now, healthy, checks=self.checks)
        after = t.record
        if healthy:
            assert after.state == ("HALF_OPEN" if before.state == "OPEN" else before.state)
            if before.state == "OPEN":  # verified exactly when an announcement was pending
                assert readiness.verified(after) == readiness.pending(before)
        elif before.state == "OPEN":
            assert after.state == "OPEN"
            interval = probe_interval(self.cfg, self.checks)
            assert after.open_until >= self.now + 2 * interval - 1e-9  # type: ignore[operator]
            assert not readiness.pending(after)  # an unconfirmed announcement is dropped
        elif before.state == "CLOSED":
            n = self.cfg.probe_confirm_failures
            want = "OPEN" if before.consecutive_failures >= n else "CLOSED"  # type: ignore[operator]
            assert after.state == want
        else:  # HALF_OPEN and RECOVERY are left to the work probes and the ramp
            assert after is before
        self.rec = after
        self.last_check = (self.now, healthy)

    @invariant()
    def only_a_verified_readiness_shortens_the_ramp(self) -> None:
        if self.rec.state in ("HALF_OPEN", "RECOVERY") and not readiness.verified(self.rec):
            assert ramp_seconds(self.rec, self.cfg) == self.cfg.recovery_seconds
        if self.rec.state == "RECOVERY":  # a verified readiness closes after its probe (0 s)
            assert not readiness.verified(self.rec)

    @invariant()
    def open_after_a_failed_check_admits_nothing_within_the_interval(self) -> None:
        if self.last_check is None or self.last_check[1] or self.rec.state != "OPEN":
            return
        at = self.last_check[0]
        if self.now < at + 2 * self.cfg.probe_interval_seconds:  # type: ignore[operator]
            assert admit(self.rec, self.cfg, self.now, "x").decision == "reject"


TestProbedBreaker = ProbedBreaker.TestCase
TestProbedBreaker.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
