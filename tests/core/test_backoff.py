"""Tests for prefect_ft.core.backoff (Brooker 2015 backoff and jitter formulas)."""

from __future__ import annotations

import doctest
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prefect_ft.core import backoff
from prefect_ft.core.backoff import (
    BackoffStrategy,
    DecorrelatedJitter,
    EqualJitter,
    ExponentialBackoff,
    FullJitter,
    delays,
)
from tests.astutil import parse_file

STRATEGY_CLASSES = (ExponentialBackoff, FullJitter, EqualJitter, DecorrelatedJitter)

# Magnitudes kept away from subnormals/overflow so the reference arithmetic is exact enough.
bases = st.floats(min_value=1e-6, max_value=1e3, allow_nan=False, allow_infinity=False)
cap_factors = st.floats(min_value=1.0, max_value=1e6, allow_nan=False, allow_infinity=False)
attempts = st.integers(min_value=0, max_value=2_000)
us = st.floats(min_value=0.0, max_value=1.0, exclude_max=True, allow_nan=False)


def _ceiling(base: float, cap: float, attempt: int) -> float:
    """Independent reference for min(C, B * 2**n), using exact integer powers of two."""
    # ldexp is exact (a power-of-two scaling) and saturates to inf instead of raising.
    try:
        grown = math.ldexp(base, attempt)
    except OverflowError:
        grown = math.inf
    return min(cap, grown)


# --- exact values ----------------------------------------------------------------------------


def test_exponential_known_sequence_with_aws_parameters() -> None:
    strategy = ExponentialBackoff(base_seconds=5, cap_seconds=2000)
    got = [strategy.delay(n, 0.0) for n in range(12)]
    assert got == [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2000, 2000, 2000]


def test_exponential_multiplier_is_used() -> None:
    strategy = ExponentialBackoff(base_seconds=1, cap_seconds=1000, multiplier=3.0)
    assert [strategy.delay(n, 0.5) for n in range(5)] == [1, 3, 9, 27, 81]


def test_results_are_floats_even_for_int_parameters() -> None:
    assert type(ExponentialBackoff(1, 4).delay(10, 0.0)) is float
    assert type(DecorrelatedJitter(1, 2).delay(0, 0.99, previous=2)) is float


@pytest.mark.parametrize(
    ("strategy", "attempt", "u", "previous", "expected"),
    [
        (FullJitter(1.0, 100.0), 3, 0.25, None, 2.0),  # 0.25 * 8
        (FullJitter(1.0, 100.0), 0, 0.0, None, 0.0),
        (EqualJitter(1.0, 100.0), 3, 0.0, None, 4.0),  # 8/2 + 0
        (EqualJitter(1.0, 100.0), 3, 0.5, None, 6.0),  # 8/2 + 0.5 * 4
        (DecorrelatedJitter(1.0, 100.0), 0, 0.0, None, 1.0),  # U(1, 3) at 0
        (DecorrelatedJitter(1.0, 100.0), 0, 0.5, None, 2.0),  # 1 + 0.5 * (3 - 1)
        (DecorrelatedJitter(1.0, 100.0), 7, 0.5, 10.0, 15.5),  # 1 + 0.5 * (30 - 1)
        (DecorrelatedJitter(1.0, 20.0), 0, 0.5, 10.0, 15.5),
        (DecorrelatedJitter(1.0, 12.0), 0, 0.5, 10.0, 12.0),  # capped
    ],
)
def test_hand_computed_values(
    strategy: BackoffStrategy, attempt: int, u: float, previous: float | None, expected: float
) -> None:
    assert strategy.delay(attempt, u, previous) == pytest.approx(expected, rel=1e-12, abs=0)


def test_huge_attempt_saturates_at_cap_without_overflow() -> None:
    assert ExponentialBackoff(0.1, 30.0).delay(10**6, 0.3) == 30.0
    assert FullJitter(0.1, 30.0).delay(10**6, 0.5) == 15.0
    assert EqualJitter(0.1, 30.0).delay(10**6, 0.5) == 22.5


# --- property tests: bounds ------------------------------------------------------------------


@given(base=bases, factor=cap_factors, attempt=attempts, u=us)
def test_exponential_is_exact(base: float, factor: float, attempt: int, u: float) -> None:
    cap = base * factor
    got = ExponentialBackoff(base, cap).delay(attempt, u)
    assert got == pytest.approx(_ceiling(base, cap, attempt), rel=1e-12, abs=0)
    assert got <= cap


@given(base=bases, factor=cap_factors, attempt=attempts, u=us)
def test_full_jitter_within_zero_and_ceiling(
    base: float, factor: float, attempt: int, u: float
) -> None:
    cap = base * factor
    v = _ceiling(base, cap, attempt)
    got = FullJitter(base, cap).delay(attempt, u)
    assert 0.0 <= got <= v
    assert got == pytest.approx(u * v, rel=1e-12, abs=1e-300)


@given(base=bases, factor=cap_factors, attempt=attempts, u=us)
def test_equal_jitter_within_half_and_ceiling(
    base: float, factor: float, attempt: int, u: float
) -> None:
    cap = base * factor
    v = _ceiling(base, cap, attempt)
    got = EqualJitter(base, cap).delay(attempt, u)
    assert v / 2 <= got <= v
    assert got == pytest.approx(v / 2 + u * v / 2, rel=1e-12, abs=0)


@given(
    base=bases,
    factor=cap_factors,
    prev_factor=st.floats(min_value=1.0, max_value=1e6, allow_nan=False),
    attempt=attempts,
    u=us,
)
def test_decorrelated_within_base_and_three_prev(
    base: float, factor: float, prev_factor: float, attempt: int, u: float
) -> None:
    cap = base * factor
    prev = base * prev_factor
    got = DecorrelatedJitter(base, cap).delay(attempt, u, previous=prev)
    assert base <= got <= min(cap, 3 * prev)
    assert got == pytest.approx(min(cap, base + u * (3 * prev - base)), rel=1e-12, abs=0)


@given(base=bases, factor=cap_factors, u=us)
def test_decorrelated_first_retry_uses_base_as_previous(
    base: float, factor: float, u: float
) -> None:
    cap = base * factor
    strategy = DecorrelatedJitter(base, cap)
    assert strategy.delay(0, u) == strategy.delay(0, u, previous=base)
    assert base <= strategy.delay(0, u) <= min(cap, 3 * base)


@given(base=bases, factor=cap_factors, seed=st.integers(0, 2**32), n=st.integers(0, 60))
def test_delays_generator_respects_cap_and_bounds(
    base: float, factor: float, seed: int, n: int
) -> None:
    cap = base * factor
    for cls in STRATEGY_CLASSES:
        got = list(delays(cls(base, cap), random.Random(seed), n))
        assert len(got) == n
        assert all(0.0 <= d <= cap for d in got)
    decor = list(delays(DecorrelatedJitter(base, cap), random.Random(seed), n))
    previous = base
    for d in decor:
        assert base <= d <= min(cap, 3 * previous)
        previous = d


@given(u=us, attempt=st.integers(0, 30))
def test_jitter_is_monotone_in_u(u: float, attempt: int) -> None:
    lo, hi = u / 2, u
    for strategy in (FullJitter(0.01, 5.0), EqualJitter(0.01, 5.0), DecorrelatedJitter(0.01, 5.0)):
        assert strategy.delay(attempt, lo, 0.02) <= strategy.delay(attempt, hi, 0.02)


def test_jitter_actually_varies_with_u() -> None:
    # Guard against an implementation that ignores u and still lands inside the bounds.
    for strategy in (
        FullJitter(1.0, 100.0),
        EqualJitter(1.0, 100.0),
        DecorrelatedJitter(1.0, 100.0),
    ):
        assert strategy.delay(4, 0.1, 10.0) < strategy.delay(4, 0.9, 10.0)


# --- delays(): threading and determinism -----------------------------------------------------


class _Scripted:
    """A RandomSource returning a fixed script of draws."""

    def __init__(self, values: list[float]) -> None:
        self._values = iter(values)
        self.calls = 0

    def random(self) -> float:
        self.calls += 1
        return next(self._values)


def test_delays_threads_previous_for_decorrelated() -> None:
    got = list(delays(DecorrelatedJitter(1.0, 1000.0), _Scripted([0.5, 0.5, 0.0, 0.5]), 4))
    # prev=1 -> 1+0.5*2=2; prev=2 -> 1+0.5*5=3.5; prev=3.5 -> 1; prev=1 -> 2
    assert got == pytest.approx([2.0, 3.5, 1.0, 2.0])


def test_delays_uses_attempt_numbers_from_zero() -> None:
    got = list(delays(FullJitter(1.0, 1000.0), _Scripted([0.5] * 5), 5))
    assert got == pytest.approx([0.5, 1.0, 2.0, 4.0, 8.0])


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
def test_delays_draws_exactly_one_value_per_delay(cls: type[BackoffStrategy]) -> None:
    source = _Scripted([0.25] * 7)
    assert len(list(delays(cls(1.0, 10.0), source, 7))) == 7
    assert source.calls == 7


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
def test_seeded_random_is_deterministic(cls: type[BackoffStrategy]) -> None:
    strategy = cls(0.05, 30.0)
    first = list(delays(strategy, random.Random(1234), 25))
    second = list(delays(strategy, random.Random(1234), 25))
    assert first == second


@pytest.mark.parametrize("cls", (FullJitter, EqualJitter, DecorrelatedJitter))
def test_different_seeds_differ_for_jittered_strategies(cls: type[BackoffStrategy]) -> None:
    strategy = cls(0.05, 30.0)
    assert list(delays(strategy, random.Random(1), 10)) != list(
        delays(strategy, random.Random(2), 10)
    )


def test_seeded_full_jitter_matches_manual_computation() -> None:
    rng = random.Random(99)
    replay = random.Random(99)
    draws = [replay.random() for _ in range(6)]
    expected = [u * min(8.0, 0.5 * 2**n) for n, u in enumerate(draws)]
    assert list(delays(FullJitter(0.5, 8.0), rng, 6)) == pytest.approx(expected, rel=1e-15)


def test_module_does_not_touch_global_random_state() -> None:
    random.seed(7)
    expected = random.random()
    random.seed(7)
    list(delays(FullJitter(1.0, 10.0), random.Random(3), 20))
    DecorrelatedJitter(1.0, 10.0).delay(2, 0.4)
    assert random.random() == expected


def test_delays_is_lazy_and_zero_attempts_yield_nothing() -> None:
    source = _Scripted([])
    assert list(delays(FullJitter(1.0, 2.0), source, 0)) == []
    assert source.calls == 0


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
@pytest.mark.parametrize(
    ("kwargs", "field", "range_text"),
    [
        ({"base_seconds": -1, "cap_seconds": 10}, "base_seconds", "> 0"),
        ({"base_seconds": 0, "cap_seconds": 10}, "base_seconds", "> 0"),
        ({"base_seconds": math.nan, "cap_seconds": 10}, "base_seconds", "finite"),
        ({"base_seconds": 5, "cap_seconds": 4}, "cap_seconds", ">= base_seconds"),
        ({"base_seconds": 5, "cap_seconds": math.inf}, "cap_seconds", "finite"),
        ({"base_seconds": 1, "cap_seconds": 10, "multiplier": 1.0}, "multiplier", "> 1"),
        ({"base_seconds": 1, "cap_seconds": 10, "multiplier": 0.5}, "multiplier", "> 1"),
    ],
)
def test_constructor_validation_names_field_and_range(
    cls: type, kwargs: dict[str, float], field: str, range_text: str
) -> None:
    with pytest.raises(ValueError) as excinfo:
        cls(**kwargs)
    message = str(excinfo.value)
    assert message.startswith(field)
    assert range_text in message
    assert "(got " in message


def test_validation_message_format_example() -> None:
    with pytest.raises(ValueError, match=r"^base_seconds must be > 0 \(got -1\)$"):
        FullJitter(base_seconds=-1, cap_seconds=10)


def test_cap_equal_to_base_is_allowed() -> None:
    assert ExponentialBackoff(2.0, 2.0).delay(5, 0.0) == 2.0


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
@pytest.mark.parametrize("bad_u", [-0.1, 1.0, 1.5, math.nan])
def test_u_outside_unit_interval_rejected(cls: type[BackoffStrategy], bad_u: float) -> None:
    with pytest.raises(ValueError, match=r"^u must be in \[0, 1\)"):
        cls(1.0, 10.0).delay(0, bad_u)


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
def test_negative_attempt_rejected(cls: type[BackoffStrategy]) -> None:
    with pytest.raises(ValueError, match=r"^attempt must be >= 0 \(got -1\)"):
        cls(1.0, 10.0).delay(-1, 0.5)


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
@pytest.mark.parametrize("bad_attempt", [1.0, True, "2"])
def test_non_int_attempt_rejected(cls: type[BackoffStrategy], bad_attempt: object) -> None:
    with pytest.raises(TypeError, match=r"^attempt must be an int"):
        cls(1.0, 10.0).delay(bad_attempt, 0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad_previous", [0.5, -1.0, math.nan, math.inf])
def test_decorrelated_previous_validated(bad_previous: float) -> None:
    with pytest.raises(ValueError, match=r"^previous must be >= base_seconds"):
        DecorrelatedJitter(1.0, 10.0).delay(0, 0.5, previous=bad_previous)


def test_delays_validates_eagerly() -> None:
    with pytest.raises(ValueError, match=r"^max_attempts must be >= 0 \(got -1\)"):
        delays(FullJitter(1.0, 2.0), random.Random(0), -1)
    with pytest.raises(TypeError, match=r"^max_attempts must be an int"):
        delays(FullJitter(1.0, 2.0), random.Random(0), 2.0)  # type: ignore[arg-type]


def test_delays_rejects_out_of_range_draws() -> None:
    gen = delays(FullJitter(1.0, 2.0), _Scripted([0.5, 1.0]), 2)
    assert next(gen) == 0.5
    with pytest.raises(ValueError, match=r"^u must be in"):
        next(gen)


# --- dataclass shape and module hygiene ------------------------------------------------------


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
def test_strategies_are_frozen_slotted_and_hashable(cls: type) -> None:
    strategy = cls(1.0, 10.0)
    with pytest.raises(AttributeError):
        strategy.base_seconds = 2.0  # type: ignore[misc]
    assert not hasattr(strategy, "__dict__")
    assert strategy == cls(1.0, 10.0)
    assert hash(strategy) == hash(cls(1.0, 10.0))
    assert isinstance(strategy, BackoffStrategy)


def test_default_multipliers_follow_the_source() -> None:
    assert ExponentialBackoff(1, 2).multiplier == 2.0
    assert FullJitter(1, 2).multiplier == 2.0
    assert EqualJitter(1, 2).multiplier == 2.0
    assert DecorrelatedJitter(1, 2).multiplier == 3.0


def test_all_lists_public_names() -> None:
    assert set(backoff.__all__) == {
        "BackoffStrategy",
        "DecorrelatedJitter",
        "EqualJitter",
        "ExponentialBackoff",
        "FullJitter",
        "RandomSource",
        "delays",
    }
    for name in backoff.__all__:
        assert hasattr(backoff, name)


def test_module_imports_only_stdlib() -> None:
    import ast
    import sys
    from pathlib import Path

    from prefect_ft.core import backoff_strategies

    imported: set[str] = set()
    for module in (backoff, backoff_strategies):  # the strategies were split out of backoff
        for node in ast.walk(parse_file(Path(module.__file__))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                sibling = node.module.startswith("prefect_ft.core.")  # pure, checked itself
                imported |= set() if sibling else {node.module.split(".")[0]}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
    assert not imported & {"random", "time", "logging", "os", "datetime"}


def test_docstring_examples_pass() -> None:
    result = doctest.testmod(backoff, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
