"""The simultaneous-recovery limit and the validation tally, on a fake clock."""

from __future__ import annotations

import json

import pytest

from prefect_ft.core.recovery_limits import RecoverySlots, ValidationTally


def test_one_recovery_per_component_and_n_in_total() -> None:
    slots = RecoverySlots(max_total=2)
    a = slots.acquire("ipc", 0.0, 60)
    assert a.granted
    twice = a.slots.acquire("ipc", 1.0, 60)
    assert not twice.granted and "already running" in twice.reason
    b = a.slots.acquire("ml-inference", 1.0, 60)
    assert b.granted
    third = b.slots.acquire("doc-processing", 2.0, 60)
    assert not third.granted and "the limit is 2" in third.reason
    freed = b.slots.release("ipc", 3.0)
    assert freed.acquire("doc-processing", 3.0, 60).granted


def test_a_dead_recoverers_lease_expires() -> None:
    held = RecoverySlots(max_total=1).acquire("ipc", 0.0, 10).slots
    assert not held.acquire("ipc", 9.9, 10).granted
    again = held.acquire("ipc", 10.0, 10)
    assert again.granted and again.slots.leases == (("ipc", 20.0),)


def test_slots_round_trip_json_and_refuse_bad_input() -> None:
    slots = RecoverySlots(3).acquire("ipc", 0.0, 5).slots
    assert RecoverySlots.from_dict(json.loads(json.dumps(slots.to_dict()))) == slots
    with pytest.raises(ValueError, match="max_total"):
        RecoverySlots(0)
    with pytest.raises(ValueError, match="ttl_seconds"):
        slots.acquire("x", 0.0, 0)


def test_three_consecutive_checks_pass() -> None:
    tally = ValidationTally(100.0)
    assert tally.next_check_at == 100.0
    assert tally.add(True, 100.0) == "pending"
    assert tally.next_check_at == 101.0
    assert tally.add(False, 101.0) == "pending"  # a failure starts the run over
    assert [tally.add(True, t) for t in (102.0, 103.0, 104.0)] == ["pending", "pending", "passed"]
    assert tally.add(False, 105.0) == "passed", "a settled verdict never changes"


def test_validation_times_out_even_without_an_answer() -> None:
    tally = ValidationTally(0.0, required=3, timeout_seconds=30.0)
    for t in range(0, 30, 2):
        assert tally.add(t % 4 == 0, float(t)) == "pending"
    assert tally.verdict(29.9) == "pending"
    assert tally.verdict(30.0) == "failed"  # a check that hangs still ends the validation
    late = ValidationTally(0.0, required=1, timeout_seconds=5.0)
    assert late.add(True, 5.1) == "failed", "an answer after the timeout does not count"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"required": 0}, "required"), ({"interval_seconds": 0}, "interval_seconds")],
)
def test_bad_tally_input_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ValidationTally(0.0, **kwargs)


def test_a_check_that_finds_the_process_down_settles_validation_unless_it_may_still_start() -> None:
    # after a connection reset or a reload, a process that is not running will not start by
    # itself: waiting out the timeout only delays the next phase (a restart)
    tally = ValidationTally(0.0, required=3, interval_seconds=1.0, timeout_seconds=20.0)
    assert tally.add(False, 0.1, down=True) == "failed"
    assert tally.checks == 1
    # after a restart the process may still be coming up: a down answer is one failed check
    patient = ValidationTally(
        0.0, required=3, interval_seconds=1.0, timeout_seconds=20.0, down_is_final=False
    )
    assert patient.add(False, 0.1, down=True) == "pending"
    assert [patient.add(True, t) for t in (1.1, 2.1, 3.1)] == ["pending", "pending", "passed"]


@pytest.mark.parametrize(
    ("strategy", "final"),
    [
        ("connection-reset", True),
        ("model-reload", True),
        ("resource-reallocation", True),
        ("validation-reset", True),
        ("graceful-restart", False),
    ],
)
def test_only_a_restart_may_still_bring_a_down_process_up(strategy: str, final: bool) -> None:
    from prefect_ft.core.recovery_limits import down_is_final

    assert down_is_final(strategy) is final
