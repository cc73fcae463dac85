"""The pure state machine, transition by transition, on explicit times."""

from __future__ import annotations

import pytest

from prefect_ft.core import (
    BreakerConfig,
    BreakerRecord,
    ConsecutiveFailures,
    FailureRate,
    SlowCallRate,
    WindowCounts,
    admit,
    on_outcome,
    set_overlay,
)
from prefect_ft.core.cooldown import decayed_trips, open_duration
from prefect_ft.core.ramp import ramp_admits, recovery_fraction
from prefect_ft.exceptions import ConfigurationError


def cfg(**kw) -> BreakerConfig:
    kw.setdefault("trip", ConsecutiveFailures(3))
    kw.setdefault("open_seconds", 10.0)
    return BreakerConfig("dep", **kw)


def trip(c: BreakerConfig, now: float = 0.0) -> BreakerRecord:
    r = BreakerRecord()
    while r.state == "CLOSED":
        r = on_outcome(r, c, now, "failure").record
    return r


def test_consecutive_failures_open_and_success_resets() -> None:
    c = cfg()
    r = on_outcome(BreakerRecord(), c, 0, "failure").record
    r = on_outcome(r, c, 1, "failure").record
    assert r.consecutive_failures == 2
    r = on_outcome(r, c, 2, "success").record
    assert r.consecutive_failures == 0
    for t in range(3):
        result = on_outcome(r, c, 10 + t, "failure")
        r = result.record
    assert r.state == "OPEN"
    assert r.open_until == pytest.approx(22.0)
    assert [e.kind for e in result.events] == ["opened"]


def test_unchanged_record_is_returned_as_is() -> None:
    c = cfg()
    r = BreakerRecord()
    assert on_outcome(r, c, 0, "success").record is r
    assert admit(r, c, 0, "h").record is r


def test_open_rejects_with_retry_after_then_half_opens() -> None:
    c = cfg()
    r = trip(c, now=0)
    a = admit(r, c, 4.0, "h")
    assert a.decision == "reject" and a.retry_after == pytest.approx(6.0)
    a = admit(r, c, 10.0, "h1")
    assert a.decision == "probe" and a.record.state == "HALF_OPEN"
    assert [e.kind for e in a.events] == ["half-opened"]
    b = admit(a.record, c, 10.5, "h2")
    assert b.decision == "reject"


def test_probe_failure_reopens_longer() -> None:
    c = cfg(open_multiplier=2.0, max_open_seconds=100)
    r = trip(c, now=0)
    a = admit(r, c, 10, "h")
    t = on_outcome(a.record, c, 11, "failure", probe="h")
    assert t.record.state == "OPEN" and t.record.trips == 2
    assert t.record.open_until - 11 == pytest.approx(20.0)


def test_ignored_probe_frees_the_slot_without_using_it() -> None:
    c = cfg()
    a = admit(trip(c), c, 10, "h")
    t = on_outcome(a.record, c, 11, "ignored", probe="h")
    assert t.record.state == "HALF_OPEN" and t.record.probes == () and t.record.probe_successes == 0
    assert admit(t.record, c, 11, "h2").decision == "probe"


def test_crashed_probers_lease_expires() -> None:
    c = cfg(probe_ttl_seconds=5)
    a = admit(trip(c), c, 10, "dead")
    assert admit(a.record, c, 14.9, "h2").decision == "reject"
    assert admit(a.record, c, 15.0, "h2").decision == "probe"


def test_half_open_k_probes_then_recovery_ramp_then_closed() -> None:
    c = cfg(half_open_calls=2, recovery_seconds=10, recovery_min_fraction=0.1)
    r = trip(c)
    a1 = admit(r, c, 10, "a")
    a2 = admit(a1.record, c, 10, "b")
    assert a2.decision == "probe"
    assert admit(a2.record, c, 10, "c").decision == "reject"
    r = on_outcome(a2.record, c, 11, "success", probe="a").record
    assert r.state == "HALF_OPEN" and r.probe_successes == 1
    assert admit(r, c, 11, "c").decision == "reject"  # one lease live + one success = K
    t = on_outcome(r, c, 12, "success", probe="b")
    assert t.record.state == "RECOVERY" and [e.kind for e in t.events] == ["recovering"]
    ramp = admit(t.record, c, 17, "x")
    assert ramp.decision == "ramp" and ramp.fraction == pytest.approx(0.5)
    done = admit(t.record, c, 22, "x")
    assert done.decision == "admit" and done.record.state == "CLOSED"


def test_recovery_reopens_when_failure_rate_passes_threshold() -> None:
    c = cfg(recovery_seconds=10, recovery_minimum_calls=4, recovery_failure_rate=50)
    r = trip(c)
    r = on_outcome(admit(r, c, 10, "p").record, c, 10, "success", probe="p").record
    assert r.state == "RECOVERY"
    for outcome in ("success", "failure", "failure"):
        r = on_outcome(r, c, 11, outcome, ramp=True).record
        assert r.state == "RECOVERY"
    t = on_outcome(r, c, 12, "failure", ramp=True)
    assert t.record.state == "OPEN" and t.record.trips == 2


def test_failure_rate_needs_minimum_calls() -> None:
    c = cfg(trip=FailureRate(50, minimum_calls=10))
    r = BreakerRecord()
    assert on_outcome(r, c, 0, "failure", counts=WindowCounts(9, 9, 0)).record.state == "CLOSED"
    t = on_outcome(r, c, 0, "failure", counts=WindowCounts(10, 5, 0))
    assert t.record.state == "OPEN" and "failure rate 50.0%" in t.events[0].reason


def test_slow_call_rate_trips_on_a_slow_success() -> None:
    c = cfg(trip=SlowCallRate(60, slow_seconds=2, minimum_calls=5))
    counts = WindowCounts(5, 0, 3)
    t = on_outcome(BreakerRecord(), c, 0, "success", counts=counts, slow=True)
    assert t.record.state == "OPEN"
    # a fast success never trips, even when the window already holds enough slow calls
    assert on_outcome(BreakerRecord(), c, 0, "success", counts=counts).record.state == "CLOSED"


def test_composed_conditions() -> None:
    either = ConsecutiveFailures(2) | FailureRate(90, minimum_calls=5)
    both = ConsecutiveFailures(2) & FailureRate(90, minimum_calls=5)
    r = on_outcome(BreakerRecord(), cfg(trip=either), 0, "failure").record
    assert on_outcome(r, cfg(trip=either), 0, "failure").record.state == "OPEN"
    r = on_outcome(BreakerRecord(), cfg(trip=both), 0, "failure").record
    assert on_outcome(r, cfg(trip=both), 0, "failure").record.state == "CLOSED"
    counts = WindowCounts(5, 5, 0)
    assert on_outcome(r, cfg(trip=both), 0, "failure", counts=counts).record.state == "OPEN"


def test_retry_after_sets_the_open_time() -> None:
    c = cfg(trip=ConsecutiveFailures(1))
    t = on_outcome(BreakerRecord(), c, 0, "failure", retry_after=42.0)
    assert t.record.state == "OPEN" and t.record.open_until == pytest.approx(42.0)


def test_overlays() -> None:
    c = cfg()
    forced = set_overlay(BreakerRecord(), "FORCED_OPEN", 0)
    assert forced.events[0].kind == "forced-open"
    a = admit(forced.record, c, 0, "h")
    assert a.decision == "reject" and a.retry_after is None
    disabled = set_overlay(trip(c), "DISABLED", 0).record
    assert admit(disabled, c, 0, "h").decision == "admit"
    metrics = set_overlay(BreakerRecord(), "METRICS_ONLY", 0).record
    for _ in range(10):
        metrics = on_outcome(metrics, c, 0, "failure").record
    assert metrics.state == "CLOSED" and metrics.consecutive_failures == 10
    reset = set_overlay(trip(c), None, 5, reset=True)
    assert reset.record.state == "CLOSED" and reset.record.overlay is None


def test_open_duration_grows_caps_jitters_and_decays() -> None:
    assert open_duration(10, 2, 100, 0, 1, 0.5) == 10
    assert open_duration(10, 2, 100, 0, 3, 0.5) == 40
    assert open_duration(10, 2, 100, 0, 9, 0.5) == 100
    assert open_duration(10, 2, 100, 0.2, 1, 0.0) == pytest.approx(8)
    assert open_duration(10, 2, 100, 0.2, 1, 0.999999) == pytest.approx(12, abs=1e-4)
    assert open_duration(10, 2, 100, 0, 5, 0.5, override=3) == 3
    assert decayed_trips(4, closed_at=100, now=100 + 250, decay_seconds=100) == 2
    assert decayed_trips(4, closed_at=100, now=100 + 1e6, decay_seconds=100) == 0


def test_decay_while_healthy_shortens_the_next_open() -> None:
    c = cfg(open_multiplier=2, max_open_seconds=1000, decay_seconds=100)
    r = trip(c, now=0)
    r = on_outcome(admit(r, c, 10, "p").record, c, 10, "failure", probe="p").record
    assert r.trips == 2
    r = on_outcome(admit(r, c, 40, "p").record, c, 40, "success", probe="p").record
    assert r.state == "CLOSED"
    later = r
    for _ in range(3):
        later = on_outcome(later, c, 40 + 1000, "failure").record
    assert later.trips == 1 and later.open_until - 1040 == pytest.approx(10)


def test_ramp_curve_and_admission_track_each_other() -> None:
    assert recovery_fraction(0, 10, 0.1, 1) == 0.1
    assert recovery_fraction(5, 10, 0.1, 1) == 0.5
    assert recovery_fraction(2.5, 10, 0.1, 2) == pytest.approx(0.5)
    assert recovery_fraction(10, 10, 0.1, 1) == 1.0
    admitted = 0
    for offered in range(1000):
        if ramp_admits(offered, admitted, 0.3):
            admitted += 1
    assert admitted == 300


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"trip": ConsecutiveFailures(5), "half_open_calls": 0}, "half_open_calls"),
        ({"open_seconds": -1}, "open_seconds"),
        ({"window_size": 0}, "window_size"),
        ({"recovery_failure_rate": 150}, "recovery_failure_rate"),
        ({"open_jitter": 1.5}, "open_jitter"),
        ({"max_open_seconds": 1}, "max_open_seconds"),
        ({"window_type": "sliding"}, "window_type"),
    ],
)
def test_bad_config_names_the_field_and_range(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigurationError, match=field) as info:
        cfg(**kwargs)
    assert "must be" in str(info.value)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: ConsecutiveFailures(-1), "failure_threshold"),
        (lambda: FailureRate(0), "failure_rate_threshold"),
        (lambda: FailureRate(101), "failure_rate_threshold"),
        (lambda: FailureRate(50, minimum_calls=0), "minimum_calls"),
        (lambda: SlowCallRate(50, slow_seconds=0), "slow_call_seconds"),
    ],
)
def test_bad_conditions_name_the_field(make, field: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{field} must be"):
        make()
