"""Readiness push (`core.readiness`) and the probe backoff (`core.probe.probe_interval`)."""

from __future__ import annotations

import json

import pytest

from prefect_ft.core import (
    BreakerConfig,
    BreakerRecord,
    admit,
    on_outcome,
    readiness,
)
from prefect_ft.core.machine import mark_recovered, ramp_seconds, set_overlay
from prefect_ft.core.probe import on_health, probe_delay, probe_interval
from prefect_ft.exceptions import ConfigurationError
from tests.core.test_probe import cfg as probe_cfg
from tests.core.test_probe import opened


def cfg(**kw: object) -> BreakerConfig:
    """`test_probe`'s configuration with backoff and a verified-readiness ramp of 0."""
    fields: dict[str, object] = {
        "probe_confirm_failures": None,
        "probe_backoff": 2.0,
        "probe_max_interval_seconds": 10.0,
        "ready_recovery_seconds": 0.0,
    }
    fields.update(kw)
    return probe_cfg(**fields)


def test_the_interval_doubles_per_failed_check_up_to_the_cap() -> None:
    c = cfg()
    assert [probe_interval(c, n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert probe_interval(c, 10**6) == 10  # no float overflow for a very long outage
    assert probe_interval(cfg(probe_backoff=1.0), 9) == 0.5  # the default: a fixed interval
    assert probe_interval(cfg(probe_max_interval_seconds=None), 30) == 8.0  # 16 x interval
    assert probe_interval(cfg(probe_interval_seconds=None, probe_max_interval_seconds=None), 3) is None  # fmt: skip


def _checks_over(c: BreakerConfig, outage: float) -> int:
    """Drive probe_delay/on_health over an outage (every check fails); count the checks."""
    rec, now, last, n = opened(c, 0.0), 0.0, None, 0
    while now < outage:
        delay = probe_delay(rec, c, now, last, n)
        assert delay is not None
        if delay > 0:
            now += delay
            continue
        n, last = n + 1, now
        rec = on_health(rec, c, now, False, checks=n, started=now).record
        assert rec.state == "OPEN"
    return n


def test_a_25_s_outage_costs_a_few_checks_with_backoff_and_50_without() -> None:
    assert _checks_over(cfg(), 25.0) == 6  # 0, 0.5, 1.5, 3.5, 7.5, 15.5
    assert _checks_over(cfg(probe_backoff=1.0), 25.0) == 50


def test_a_failed_check_holds_the_breaker_open_for_two_backed_off_intervals() -> None:
    c = cfg()
    rec = opened(c)  # open until 15
    t = on_health(rec, c, 14.0, False, checks=4)  # the next check is 4 s away
    assert t.record.open_until == pytest.approx(22.0)
    assert admit(t.record, c, 21.9, "w").decision == "reject"


def test_an_announcement_makes_a_check_due_now_whatever_the_backoff() -> None:
    c = cfg()
    rec = opened(c)
    assert probe_delay(rec, c, 20.0, 19.9, 5) == pytest.approx(7.9)  # backed off to 8 s
    t = readiness.announce(rec, c, 20.0)
    assert t.record.state == "OPEN" and t.events == ()  # only a check moves it
    assert readiness.pending(t.record) and t.record.ready_at == 20.0
    assert probe_delay(t.record, c, 20.0, 19.9, 5) == 0.0
    assert readiness.announce(t.record, c, 20.5).record is t.record  # already pending


def test_a_passing_check_verifies_it_and_the_short_ramp_follows_one_work_probe() -> None:
    c = cfg()
    rec = readiness.announce(opened(c), c, 20.0).record
    t = on_health(rec, c, 20.01, True, checks=1, started=20.0)
    assert t.record.state == "HALF_OPEN" and readiness.verified(t.record)
    assert t.events[0].reason == "readiness announced; health check passed"
    assert ramp_seconds(t.record, c) == 0.0
    a = admit(t.record, c, 20.02, "w")
    assert a.decision == "probe"  # still one real work call before the load comes back
    closed = on_outcome(a.record, c, 20.03, "success", probe="w")
    assert closed.record.state == "CLOSED"
    assert closed.events[0].reason == "1 half-open probe(s) succeeded"


def test_a_pass_without_an_announcement_keeps_the_full_ramp() -> None:
    c = cfg()
    t = on_health(opened(c), c, 11.0, True)
    assert not readiness.verified(t.record) and ramp_seconds(t.record, c) == 2.0
    a = admit(t.record, c, 11.1, "w")
    assert on_outcome(a.record, c, 11.2, "success", probe="w").record.state == "RECOVERY"
    # a verified readiness with ready_recovery_seconds unset keeps recovery_seconds too
    c2 = cfg(ready_recovery_seconds=None)
    rec = readiness.announce(opened(c2), c2, 20.0).record
    assert ramp_seconds(on_health(rec, c2, 20.0, True).record, c2) == 2.0


def test_a_failed_check_drops_the_announcement_it_answered_only() -> None:
    c = cfg()
    rec = readiness.announce(opened(c), c, 20.0).record
    dropped = on_health(rec, c, 20.1, False, checks=2, started=20.05).record
    assert dropped.state == "OPEN" and not readiness.pending(dropped)
    # announced while the check ran (it started before): the next check answers it
    kept = on_health(rec, c, 20.1, False, checks=2, started=19.9).record
    assert readiness.pending(kept) and probe_delay(kept, c, 20.1, 19.9, 2) == 0.0


def test_a_new_trip_forgets_an_earlier_readiness() -> None:
    c = cfg()
    rec = readiness.announce(opened(c), c, 20.0).record
    half = on_health(rec, c, 20.0, True).record
    a = admit(half, c, 20.0, "w")
    reopened = on_outcome(a.record, c, 20.0, "failure", probe="w").record  # the same instant
    assert reopened.state == "OPEN" and reopened.ready_at is None
    assert not readiness.verified(on_health(reopened, c, 21.0, True).record)


@pytest.mark.parametrize("state", ["CLOSED", "HALF_OPEN", "RECOVERY"])
def test_an_announcement_changes_nothing_unless_open(state: str) -> None:
    c = cfg()
    rec = BreakerRecord(state=state)  # type: ignore[arg-type]
    assert readiness.announce(rec, c, 1.0).record is rec


def test_an_announcement_never_overrides_an_operator_overlay() -> None:
    c = cfg()
    forced = set_overlay(opened(c), "FORCED_OPEN", 11.0).record
    assert readiness.announce(forced, c, 12.0).record is forced


def test_without_a_health_check_an_announcement_half_opens_now_with_the_full_ramp() -> None:
    c = cfg(health_check=None)
    t = readiness.announce(opened(c), c, 12.0)
    assert t.record.state == "HALF_OPEN" and [e.kind for e in t.events] == ["half-opened"]
    assert not readiness.verified(t.record) and ramp_seconds(t.record, c) == 2.0
    # an announcement written without the policy (straight to the store) waits for a check
    assert readiness.pending(readiness.announce(opened(c), None, 12.0).record)


def test_a_recovery_validation_is_not_a_verified_readiness() -> None:
    c = cfg()
    assert not readiness.verified(mark_recovered(opened(c), c, 11.0).record)


def test_the_record_round_trips_and_old_records_load() -> None:
    rec = readiness.announce(opened(cfg()), cfg(), 20.0).record
    assert BreakerRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec
    old = {k: v for k, v in BreakerRecord().to_dict().items() if not k.startswith("ready")}
    assert BreakerRecord.from_dict(old).ready_at is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("probe_backoff", 0.5, r"probe_backoff.*\[1, 100\]"),
     ("probe_backoff", float("inf"), "probe_backoff"),
     ("probe_max_interval_seconds", 0.1, "probe_max_interval_seconds.*>= probe_interval_seconds"),
     ("probe_max_interval_seconds", 7200, "probe_max_interval_seconds.*3600"),
     ("ready_recovery_seconds", -1, "ready_recovery_seconds.*>= 0")],
)  # fmt: skip
def test_bad_settings_name_the_field_and_range(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        cfg(**{field: value})


def test_one_prober_lease_per_breaker_across_processes() -> None:
    from prefect_ft.core.probe import lease_ttl, take_lease

    assert take_lease(None, "a", 10.0, 2.0) == (True, ("a", 12.0))
    assert take_lease(("a", 12.0), "b", 11.0, 2.0) == (False, None)  # a holds it: b waits
    assert take_lease(("a", 12.0), "a", 11.0, 2.0) == (True, ("a", 13.0))  # a renews
    assert take_lease(("a", 12.0), "b", 12.0, 2.0) == (True, ("b", 14.0))  # a died: b takes over
    c = cfg()
    assert lease_ttl(c, 1) == 2.0 and lease_ttl(c, 9) == 21.0  # two backed-off intervals + 1 s
