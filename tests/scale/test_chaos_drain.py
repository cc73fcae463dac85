"""The end of a chaos run (plain or `--scale`) waits for its dead letters, and accounts for the rest.

A scaled run once lost 155 items whose dead letters were never replayed before the run ended.
The end of a run now keeps replaying until nothing is left (bounded), and every lost item is
reported with what became of its dead letter, so a loss can only be a real loss.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

import prefect_ft
from benchmarks import chaos


@dataclass
class FakeReport:
    remaining: int
    done: list[str] = field(default_factory=list)


class FakeReplay:
    """`prefect_ft.replay`: `remaining` per pass as given (then 0); raises where told to."""

    def __init__(self, remaining: list[int], raise_on: tuple[int, ...] = ()) -> None:
        self.remaining, self.raise_on, self.calls = list(remaining), raise_on, 0

    def __call__(self, name: str, **options: object) -> FakeReport:
        self.calls += 1
        if self.calls in self.raise_on:
            raise ConnectionError("store hiccup")
        return FakeReport(self.remaining.pop(0) if self.remaining else 0)


def _stopped() -> threading.Event:
    stop = threading.Event()
    stop.set()
    return stop


def test_the_end_of_a_run_replays_until_no_dead_letter_is_left(monkeypatch) -> None:
    # five passes still find dead letters (a breaker not yet admitting, a slow store): the end
    # of the run goes on past three passes until the queue is empty
    fake = FakeReplay([7, 6, 5, 4, 3])
    monkeypatch.setattr(prefect_ft, "replay", fake)
    out = chaos._replay_loop("b", _stopped(), drain_seconds=30.0, pause=0.0)
    assert fake.calls == 6
    assert out == {"passes": 6, "remaining": 0, "errors": []}


def test_a_pass_that_raises_is_retried_and_reported(monkeypatch) -> None:
    fake = FakeReplay([2], raise_on=(1, 2, 3, 4))
    monkeypatch.setattr(prefect_ft, "replay", fake)
    out = chaos._replay_loop("b", _stopped(), drain_seconds=30.0, pause=0.0)
    assert out["remaining"] == 0 and fake.calls == 6
    assert out["errors"] == ["ConnectionError: store hiccup"] * 4


def test_the_drain_is_bounded_and_says_what_is_left(monkeypatch) -> None:
    fake = FakeReplay([9] * 10_000)
    monkeypatch.setattr(prefect_ft, "replay", fake)
    out = chaos._replay_loop("b", _stopped(), drain_seconds=0.3, pause=0.01)
    assert out["remaining"] == 9 and 1 <= out["passes"] < 10_000


def test_lost_items_are_accounted_by_their_dead_letter() -> None:
    letters = [(1, "done"), (2, "pending"), (3, "failed"), (3, "superseded"), (4, "in-doubt")]
    # item 3 was dead-lettered twice (letters come in queue order): its latest letter counts
    assert chaos.lost_by_dead_letter({2, 3, 4, 5}, letters) == {
        "pending": 1,
        "superseded": 1,
        "in-doubt": 1,
        "no dead letter": 1,
    }
    assert chaos.lost_by_dead_letter(set(), letters) == {}


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_a_bad_drain_bound_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="drain_seconds"):
        chaos._replay_loop("b", _stopped(), drain_seconds=bad)
