"""How many replayed dead letters may be in flight at once (`core.replay_pace`), per breaker state."""

from __future__ import annotations

from dataclasses import replace

import pytest

from prefect_ft.core.config import BreakerConfig
from prefect_ft.core.replay_pace import replay_slots
from prefect_ft.core.states import BreakerRecord
from prefect_ft.exceptions import ConfigurationError

CFG = BreakerConfig("r", recovery_seconds=2.0, recovery_min_fraction=0.1, replay_concurrency=4)


def rec(**fields: object) -> BreakerRecord:
    return replace(BreakerRecord(), **fields)  # type: ignore[arg-type]


def test_closed_runs_the_policy_s_concurrency() -> None:
    assert replay_slots(rec(), CFG, 100.0) == 4
    assert replay_slots(rec(), CFG, 100.0, concurrency=8) == 8  # replay(concurrency=8) wins


def test_open_runs_nothing_until_its_time_is_up_then_one_probe() -> None:
    opened = rec(state="OPEN", opened_at=10.0, open_until=15.0)
    assert replay_slots(opened, CFG, 12.0) == 0
    assert replay_slots(opened, CFG, 15.0) == 1  # the call that half-opens it is the probe


def test_half_open_runs_only_its_probes() -> None:
    half = rec(state="HALF_OPEN", open_until=20.0)
    assert replay_slots(half, CFG, 20.1) == 1
    assert replay_slots(half, replace(CFG, half_open_calls=3), 20.1) == 3
    assert replay_slots(half, replace(CFG, half_open_calls=9), 20.1) == 4  # never above N


def test_recovery_follows_the_ramp() -> None:
    ramp = rec(state="RECOVERY", recovery_started_at=50.0)
    assert replay_slots(ramp, CFG, 50.0) == 1  # 10 % of 4: still one at a time
    assert replay_slots(ramp, CFG, 51.0) == 2  # half-way up the 2 s ramp: half of 4
    assert replay_slots(ramp, CFG, 51.9) == 3
    assert replay_slots(ramp, CFG, 52.0) == 4  # the ramp is over


def test_a_verified_readiness_with_no_ramp_runs_all_at_once() -> None:
    cfg = replace(CFG, ready_recovery_seconds=0.0)
    ready = rec(state="RECOVERY", recovery_started_at=50.0, opened_at=40.0, ready_at=49.0, ready_verified=True)  # fmt: skip
    assert replay_slots(ready, cfg, 50.0) == 4


def test_overlays() -> None:
    assert replay_slots(rec(overlay="FORCED_OPEN"), CFG, 1.0) == 0
    assert replay_slots(rec(state="OPEN", open_until=99.0, overlay="DISABLED"), CFG, 1.0) == 4


def test_the_bulkhead_bounds_it() -> None:
    assert replay_slots(rec(), CFG, 1.0, bulkhead=2) == 2
    assert replay_slots(rec(), CFG, 1.0, bulkhead=16) == 4


@pytest.mark.parametrize("bad", [0, -1, 65, 2.5, True, None])
def test_bad_concurrency_names_the_field_and_the_range(bad: object) -> None:
    with pytest.raises(ConfigurationError, match=r"replay_concurrency.*\[1, 64\]"):
        BreakerConfig("r", replay_concurrency=bad)  # type: ignore[arg-type]
    if bad is not None:  # None is "the policy's" for replay(concurrency=...)
        with pytest.raises(ValueError, match=r"concurrency.*\[1, 64\]"):
            replay_slots(rec(), CFG, 1.0, concurrency=bad)  # type: ignore[arg-type]
