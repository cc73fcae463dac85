"""Issue 8 items 1, 4 and 5 at the level of the pure machine: trips, late probes, Retry-After."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prefect_ft.core import (
    BreakerConfig,
    BreakerRecord,
    ConsecutiveFailures,
    FailureRate,
    SlowCallRate,
    WindowCounts,
    admit,
    machine,
    on_outcome,
)
from prefect_ft.core.classify import retry_after_of
from prefect_ft.core.cooldown import open_duration


def cfg(**kw) -> BreakerConfig:
    kw.setdefault("trip", ConsecutiveFailures(3))
    kw.setdefault("open_seconds", 10.0)
    return BreakerConfig("dep", **kw)


def trip(c: BreakerConfig, now: float = 0.0) -> BreakerRecord:
    r = BreakerRecord()
    while r.state == "CLOSED":
        r = on_outcome(r, c, now, "failure", counts=WindowCounts(100, 100, 100)).record
    return r


# -- item 1: a success never opens a breaker ----------------------------------------------------
RATE = FailureRate(50, minimum_calls=4) | SlowCallRate(50, slow_seconds=2, minimum_calls=4)


@given(
    calls=st.integers(0, 50),
    failures=st.integers(0, 50),
    slow=st.integers(0, 50),
    consecutive=st.integers(0, 2),
)
def test_a_fast_success_never_opens_a_breaker(
    calls: int, failures: int, slow: int, consecutive: int
) -> None:
    c = cfg(trip=ConsecutiveFailures(3) | RATE)
    rec = BreakerRecord(consecutive_failures=consecutive)
    counts = WindowCounts(calls, min(failures, calls), min(slow, calls))
    t = on_outcome(rec, c, 5.0, "success", counts=counts)
    assert t.record.state == "CLOSED" and t.events == ()


def test_a_slow_success_can_open_a_slow_call_breaker() -> None:
    c = cfg(trip=SlowCallRate(50, slow_seconds=2, minimum_calls=4))
    t = on_outcome(BreakerRecord(), c, 5.0, "success", counts=WindowCounts(4, 0, 2), slow=True)
    assert t.record.state == "OPEN"


def test_a_failure_still_trips_on_the_rate() -> None:
    c = cfg(trip=FailureRate(50, minimum_calls=4))
    t = on_outcome(BreakerRecord(), c, 5.0, "failure", counts=WindowCounts(4, 2, 0))
    assert t.record.state == "OPEN"


# -- item 4: a late probe failure reopens; HALF_OPEN is bounded ---------------------------------
def test_a_late_probe_failure_reopens_after_its_lease_was_handed_on() -> None:
    c = cfg(probe_ttl_seconds=5)
    first = admit(trip(c), c, 10, "slow-prober")
    assert first.decision == "probe"
    second = admit(first.record, c, 15.5, "next")  # the first lease expired: a new probe
    assert second.decision == "probe"
    t = on_outcome(second.record, c, 16, "failure", probe="slow-prober")
    assert t.record.state == "OPEN" and [e.kind for e in t.events] == ["opened"]
    assert t.record.trips == 2


def test_a_late_probe_success_counts_only_into_a_free_slot() -> None:
    c = cfg(probe_ttl_seconds=5)
    first = admit(trip(c), c, 10, "slow-prober")
    # nobody took the slot: the late answer still proves the dependency is back
    late = on_outcome(first.record, c, 16, "success", probe="slow-prober")
    assert late.record.state == "CLOSED"
    # the slot went to another probe: the late success must not push K probes past K
    second = admit(first.record, c, 15.5, "next")
    late = on_outcome(second.record, c, 16, "success", probe="slow-prober")
    assert late.record.state == "HALF_OPEN" and late.record.probe_successes == 0
    assert [h for h, _ in late.record.probes] == ["next"]


def test_half_open_never_outlasts_its_deadline_under_steady_traffic() -> None:
    c = cfg(probe_ttl_seconds=5, half_open_calls=1)
    bound = machine.half_open_deadline(c)
    assert bound == pytest.approx(10.0)  # (half_open_calls + 1) x probe_ttl_seconds
    rec = trip(c)
    half_opened_at = None
    t = 10.0
    while t < 100:  # one call a second; every probe hangs and never answers
        a = admit(rec, c, t, f"h{t}")
        if a.record.state == "HALF_OPEN" and half_opened_at is None:
            half_opened_at = t
        if a.record.state == "HALF_OPEN":
            assert t < half_opened_at + bound, "HALF_OPEN outlived its stated bound"
            assert all(exp <= half_opened_at + bound for _, exp in a.record.probes)
        if a.record.state == "OPEN" and rec.state == "HALF_OPEN":
            assert [e.kind for e in a.events] == ["opened"]
            assert "no probe" in a.events[0].reason
            break
        rec = a.record
        t += 1.0
    else:
        pytest.fail("HALF_OPEN never reopened")
    assert t == pytest.approx(half_opened_at + bound)


def test_probes_that_answer_in_time_are_unaffected_by_the_deadline() -> None:
    c = cfg(probe_ttl_seconds=5, half_open_calls=2)
    a = admit(trip(c), c, 10, "a")
    r = on_outcome(a.record, c, 11, "success", probe="a").record
    b = admit(r, c, 14, "b")
    assert b.decision == "probe"
    assert on_outcome(b.record, c, 15, "success", probe="b").record.state == "CLOSED"


def test_the_shared_record_keeps_at_most_k_expired_leases() -> None:
    """Expired leases are remembered for late failures, but the record must not grow with K^2."""
    c = cfg(probe_ttl_seconds=5, half_open_calls=4)
    rec, t, n = trip(c), 10.0, 0
    while t < 10 + machine.half_open_deadline(c):  # every probe hangs; slots are re-leased
        a = admit(rec, c, t, f"h{n}")
        rec, n = a.record, n + 1
        assert len(rec.probes) <= 2 * c.half_open_calls, rec.probes
        t += 0.5
    assert n > 2 * c.half_open_calls


def test_half_open_bound_is_stated_where_users_read_it() -> None:
    assert "(half_open_calls + 1) x probe_ttl_seconds" in (machine.__doc__ or "")
    assert "(half_open_calls + 1) x probe_ttl_seconds" in (BreakerConfig.__doc__ or "")


# -- item 5: Retry-After is capped, finite, and does not bypass the threshold ------------------
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, -1.0, True, "5"])
def test_retry_after_of_refuses_non_finite_and_bogus_hints(value: object) -> None:
    exc = Exception()
    exc.retry_after = value  # type: ignore[attr-defined]
    assert retry_after_of(exc) is None


def test_retry_after_of_keeps_a_finite_hint() -> None:
    exc = Exception()
    exc.retry_after = 86400  # type: ignore[attr-defined]
    assert retry_after_of(exc) == 86400.0


@pytest.mark.parametrize("hint", [86400.0, math.inf])
def test_open_duration_caps_or_refuses_the_hint(hint: float) -> None:
    d = open_duration(10.0, 2.0, 600.0, 0.0, 1, 0.5, hint)
    assert d == (600.0 if math.isfinite(hint) else 10.0)
    assert math.isfinite(d)


def test_retry_after_is_capped_at_max_open_seconds() -> None:
    c = cfg(trip=ConsecutiveFailures(1), max_open_seconds=300)
    t = on_outcome(BreakerRecord(), c, 0, "failure", retry_after=86400.0)
    assert t.record.state == "OPEN" and t.record.open_until == pytest.approx(300.0)


def test_a_non_finite_retry_after_uses_the_normal_open_time() -> None:
    c = cfg(trip=ConsecutiveFailures(1))
    t = on_outcome(BreakerRecord(), c, 0, "failure", retry_after=math.inf)
    assert t.record.open_until == pytest.approx(10.0)
    assert "Infinity" not in str(t.record.to_dict()) and "inf" not in str(t.record.to_dict())


def test_retry_after_does_not_bypass_the_failure_threshold() -> None:
    c = cfg(trip=ConsecutiveFailures(3))
    r = BreakerRecord()
    for _ in range(2):
        r = on_outcome(r, c, 0, "failure", retry_after=42.0).record
        assert r.state == "CLOSED"
    t = on_outcome(r, c, 0, "failure", retry_after=42.0)
    assert t.record.state == "OPEN" and t.record.open_until == pytest.approx(42.0)


def test_retry_after_sets_the_reopen_time_of_a_failed_probe() -> None:
    c = cfg(max_open_seconds=100)
    a = admit(trip(c), c, 10, "p")
    t = on_outcome(a.record, c, 11, "failure", probe="p", retry_after=1e9)
    assert t.record.open_until == pytest.approx(111.0)
