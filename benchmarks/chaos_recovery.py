"""What runs beside chaos.py's prefect-ft flow: the breaker's transition log (it wakes the
replayer), the dependency's supervisor announcing its return, and the replayer (what the
`replay-dead-letters` deployment does, as a thread of the run, then the drain at its end)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.chaos_dependency import Dependency

__all__ = ["record_transitions", "replay_loop", "supervisor"]


def record_transitions(
    name: str, dep: Dependency, moved: threading.Event
) -> tuple[list[tuple[float, str]], Any]:
    """Record the prefect-ft breaker's transitions, in seconds on the dependency's clock, and
    set `moved` on each (it wakes the replay loop)."""
    from prefect_ft.breaker import add_global_listener

    seen: list[tuple[float, str]] = []

    def listener(breaker: Any, event: Any) -> None:
        if breaker.name == name and not event.remote:
            seen.append((round(dep.now(), 2), f"{event.kind}: {event.reason}"))
            moved.set()

    add_global_listener(listener)
    return seen, listener


def supervisor(name: str, dep: Dependency, stop: threading.Event) -> None:
    """(c)'s dependency announces its return (what a supervisor that restarted it does once its
    deep health check passes: `prefect_ft.announce_ready`); (a) and (b) have no such hook."""
    from prefect_ft import announce_ready

    while not dep.t0 and not stop.wait(0.05):  # the schedule's clock starts at the first call
        pass
    while not stop.is_set():
        left = dep.schedule.down[1] - dep.now()
        if left <= 0:
            dep.announced_at = dep.now()
            announce_ready(name)
            return
        stop.wait(left)


def replay_loop(
    name: str,
    stop: threading.Event,
    fns: dict[str, Callable[..., Any]],
    moved: threading.Event | None = None,
    drain_seconds: float = 120.0,
    pause: float = 0.25,
) -> dict[str, Any]:
    """Replay while the flow runs (woken early by `moved`, set on each breaker transition);
    after `stop`, drain: pass after pass until no dead letter is left to replay, at most
    `drain_seconds`. Returns {"passes", "remaining", "errors"}: what was still left (-1:
    unknown, the last pass raised) and every pass's exception. `fns`: the replayed functions
    by recorded path (`replay(functions=)`)."""
    from prefect_ft import replay

    if not drain_seconds >= 0:  # also NaN
        raise ValueError(f"drain_seconds must be >= 0 (got {drain_seconds})")
    errors: list[str] = []
    # what the replay-dead-letters deployment does on `prefect-ft.breaker.closed`: drain the
    # queue as soon as the breaker admits calls again (woken by its transitions), while the
    # flow still runs
    while not stop.is_set():
        if moved is not None:
            moved.clear()
        # a pass waits for the breaker (woken by its transitions, not a poll) and goes on with
        # the letters refused meanwhile: a replayer that re-read the whole queue every 0.5 s
        # was reading it, not waiting, when the breaker half-opened
        _replay_once(replay, name, 5.0, fns, errors)
        (moved or stop).wait(pause)
    # the run's end waits for its dead letters (a fixed number of passes once ended a scaled
    # run with 155 unreplayed): a loss counted after this is a real one, and reported
    deadline, passes = time.monotonic() + drain_seconds, 0
    while True:
        wait = min(30.0, max(0.0, deadline - time.monotonic()))
        report = _replay_once(replay, name, wait, fns, errors)
        passes += 1
        left = -1 if report is None else report.remaining
        if left == 0 or time.monotonic() >= deadline:
            return {"passes": passes, "remaining": left, "errors": errors}
        time.sleep(pause)


def _replay_once(
    replay: Any, name: str, wait: float, fns: dict[str, Any], errors: list[str]
) -> Any:
    """One pass; an exception is printed, kept and the loop goes on (a thread that died silently
    would leave every later dead letter unreplayed, counted as lost)."""
    try:
        return replay(name, wait_seconds=wait, functions=fns)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        print(f"chaos: replay of {name} raised {errors[-1]}", flush=True)
        return None
