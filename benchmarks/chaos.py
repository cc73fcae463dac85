"""One fault schedule against three setups: plain Prefect retries, pybreaker in tasks, prefect-ft.

Run:  nice -n 10 .venv/bin/python benchmarks/chaos.py [--seeds 1 2 3] [--down-for 25]

The load: a flow submits items to a Prefect task on `ThreadPoolTaskRunner(max_workers=4)` at
`--rate` items per second (open loop, as documents arrive at a pipeline), `--items` in all. The
task calls one dependency (the RAN pipeline's `ipc` hop to the model server): 10 ms a call,
jittered by the seed. The dependency also has a deep health check (2 ms), which only prefect-ft
uses. The fault schedule, in seconds after the first call (each start jittered by +-0.5 s with
the seed; RAN-like: a transient error burst, a slow spell, then a model-server crash):

- error burst  4-6 s: 30 % of calls fail (HTTP 503-like); the health check still passes;
- latency      8-11 s: every call (and check) takes 150 ms more;
- outage       13 s for `--down-for` s (default 25): every call and check is refused after 5 ms.

Setups, alternated (each seed starts with another one), the same retries in all three:

- (a) `retries`: `@task(retries=3, retry_delay_seconds=exponential_backoff(0.5))` (0.5, 1, 2 s;
  Prefect's `retry_jitter_factor` is ignored by its 3.9 task engine, Prefect PR #22203);
- (b) `pybreaker`: the same task, the call through `pybreaker.CircuitBreaker(fail_max=8,
  reset_timeout=5)` (the `ipc` preset's numbers);
- (c) `prefect-ft`: `ft_task` with the same retries and the `ipc` preset as the issue gives it
  (8 failures, open 5 s, recovery ramp 2 s), plus active health checking (`core.probe`): the
  dependency's health check while OPEN, 1 s after the open and then backed off (doubling, at
  most every 16 s: `probe_backoff`, `probe_max_interval_seconds`; a pass half-opens at once),
  and a confirming check after 2 consecutive failures (a failure opens at once). **(c)'s
  dependency announces its return**: when the outage ends, a supervisor thread calls
  `prefect_ft.announce_ready(name)` (what the supervisor that restarts a model server does once
  its deep health check passes, `core.readiness`); the breaker verifies it with one check and
  half-opens, and after that verified readiness the policy's `ready_recovery_seconds` (0 here)
  replaces the 2 s ramp: the one half-open work call still has to succeed before the breaker
  closes. (a) and (b) have no such hook: they notice the return by calling. Refused items are
  dead-lettered; a thread runs `replay()` while the flow runs, woken by each breaker transition
  (what the `replay-dead-letters` deployment does on `prefect-ft.breaker.closed`; a deployment
  triggered by an automation starts later than this thread); after the flow it keeps
  replaying until no dead letter is left (at most 120 s; the row's `drain`), and a lost item is
  reported with its dead letter's status (`lost_dead_letters`).

What holds (c)'s "back to full" after the outage (the first 1 s window after its end with 80 %
of the pre-fault rate of successful calls, replays included): noticing the return (a poll every
k seconds costs k/2 on average, hence the announcement: its path is a store write, one check
and a store write), the half-open work probe (one call must succeed first; the replay thread,
woken by the half-open, usually makes it), and the ramp (the preset's 2 s ramp admits 10 % of
calls at first). After a verified readiness the policy's `ready_recovery_seconds=0` drops the
ramp: the supervisor's deep check, the breaker's own check and a successful work call stand in
for it. The replayed backlog of dead letters then fills the first window: `replay()` runs the
policy's `replay_concurrency` (4) at once once the breaker is CLOSED (one at a time while
HALF_OPEN: the first replayed call is usually the half-open probe), and a pass waiting for the
breaker is woken by its transition. `--trace` prints each run's timeline after the outage's end
(`benchmarks/chaos_trace.py`).

Printed per run: goodput (items completed per minute of wall time; an item is completed when a
call for it succeeded, by its task or by a replay), work calls that reached the dependency while
it was down (wasted work), health checks that reached it while down (probes, their own column),
both together (requests while down: what the ">= 90 % fewer calls" target counts),
items lost (not completed at the end), seconds from the outage's end until the successful calls
in a 1 s window reach 80 % of the pre-fault rate (measured 1 s to the burst), and wall time.
Then medians over the seeds, the ratios of (c) to (a) and (b), and whether each target is met.

`chaos_flow(setup, seed, ...)` is one run as a module-level flow (a deployment can run it);
`run_seeds(...)` runs the alternated series and returns the rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from benchmarks.chaos_dependency import (
    Dependency,
    Schedule,
    back_to_full,
    metrics,
    pre_fault_rate,
)
from benchmarks.chaos_recovery import record_transitions, replay_loop
from benchmarks.chaos_recovery import supervisor as _supervisor
from benchmarks.chaos_report import dead_letters, lost_by_dead_letter, report

# re-exported: tests, chaos_scale.py and chaos_trace.py reach them as `chaos.<name>`
__all__ = [
    "Dependency",
    "Schedule",
    "back_to_full",
    "chaos_flow",
    "lost_by_dead_letter",
    "main",
    "metrics",
    "pre_fault_rate",
    "report",
    "run_seeds",
]

SETUPS = ("retries", "pybreaker", "prefect-ft")
# (c)'s active health checks: 1 s after the open, doubling while the check fails, at most every
# 16 s (a fallback: the dependency's announcement, not polling, tells the breaker it is back);
# a verified readiness announcement then ramps over `ready_ramp` seconds (0: closes after the
# half-open work probe)
PROBE = {"interval": 1.0, "backoff": 2.0, "cap": 16.0, "ready_ramp": 0.0}


DEP: Dependency | None = None


def call_dependency(item: int) -> int:
    assert DEP is not None
    return DEP(item)


def dependency_health() -> dict[str, Any]:
    """The deep health check prefect-ft's policy names (module level: dead letters pickle it)."""
    assert DEP is not None
    return DEP.health()


def _work_task(setup: str, name: str) -> Any:
    from prefect import task
    from prefect.tasks import exponential_backoff

    retry = {"retries": 3, "retry_delay_seconds": exponential_backoff(backoff_factor=0.5)}
    if setup == "retries":
        return task(call_dependency, name=name, **retry)
    if setup == "pybreaker":
        import pybreaker

        breaker = pybreaker.CircuitBreaker(fail_max=8, reset_timeout=5.0)

        def through_pybreaker(item: int) -> int:
            return breaker.call(call_dependency, item)

        return task(through_pybreaker, name=name, **retry)
    from prefect_ft import ft_task
    from prefect_ft.presets import preset_config
    from prefect_ft.tasks.policies import FTPolicy

    config = replace(
        preset_config(
            "ipc",
            health_check=dependency_health,
            probe_interval_seconds=PROBE["interval"],
            probe_backoff=PROBE["backoff"],
            probe_max_interval_seconds=PROBE["cap"],
            probe_confirm_failures=2,
            ready_recovery_seconds=PROBE["ready_ramp"],
        ),
        name=name,
    )
    return ft_task(call_dependency, breaker=FTPolicy(name, config), name=name, **retry)


def _replay_loop(
    name: str,
    stop: threading.Event,
    moved: threading.Event | None = None,
    drain_seconds: float = 120.0,
    pause: float = 0.25,
) -> dict[str, Any]:
    """`chaos_replay.replay_loop` with this module's work function (dead letters record it by
    this module's path)."""
    fns = {f"{__name__}:call_dependency": call_dependency}
    return replay_loop(name, stop, fns, moved, drain_seconds, pause)


@flow(name="chaos", task_runner=ThreadPoolTaskRunner(max_workers=4))
def chaos_flow(
    setup: str,
    seed: int,
    items: int = 300,
    rate: float = 6.0,
    down_for: float = 25.0,
    trace: bool = False,
) -> dict[str, Any]:
    """One run of one setup under the seeded schedule; returns its metrics row (`trace`: with
    the recovery's timeline, `benchmarks.chaos_trace`)."""
    global DEP
    if setup not in SETUPS:
        raise ValueError(f"setup must be one of {', '.join(SETUPS)} (got {setup!r})")
    DEP = dep = Dependency(seed, Schedule.drawn(seed, down_for))
    name = f"chaos-{setup}-{seed}-{uuid.uuid4().hex[:6]}"
    work = _work_task(setup, name)
    stop, moved = threading.Event(), threading.Event()
    helpers: list[threading.Thread] = []
    drained: dict[str, Any] = {}
    transitions: list[tuple[float, str]] = []
    listener = None
    if setup == "prefect-ft":
        transitions, listener = record_transitions(name, dep, moved)
        helpers = [
            threading.Thread(
                target=lambda: drained.update(_replay_loop(name, stop, moved)),
                name="replay-loop",
                daemon=True,
            ),
            threading.Thread(
                target=_supervisor, args=(name, dep, stop), name="supervisor", daemon=True
            ),
        ]
        for helper in helpers:
            helper.start()
    try:
        futures = []
        t0 = time.monotonic()
        for i in range(items):  # open loop: item i arrives at i / rate seconds
            time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            futures.append(work.submit(i))
        for f in futures:
            f.wait()
    finally:
        stop.set()
        for helper in helpers:
            helper.join()
        if listener is not None:
            from prefect_ft.breaker import remove_global_listener

            remove_global_listener(listener)
    row = {"setup": setup, "seed": seed, **metrics(dep, items)}
    if setup == "prefect-ft":  # the end of the run's drain, and what became of each lost item
        row["drain"] = {**drained, "errors": drained.get("errors", [])[:3]}
        if row["lost"]:
            lost = set(range(items)) - {i for _, good, i in dep.calls if good}
            row["lost_dead_letters"] = lost_by_dead_letter(lost, dead_letters(name))
    if transitions:  # when the breaker moved, against the outage window
        row["outage"] = tuple(round(t, 2) for t in dep.schedule.down)
        row["transitions"] = transitions
    if trace:
        from benchmarks.chaos_trace import timeline

        upto = max(1.0, (row["back_to_full_s"] or 0.0) + 0.3)
        row["trace"] = timeline(dep, transitions, pre_fault_rate(dep), upto)
    return row


def run_seeds(seeds: list[int], setups: list[str], **options: Any) -> list[dict[str, Any]]:
    """Every setup once per seed, the order rotated per seed; prints each row as it lands."""
    rows = []
    for seed in seeds:
        k = seed % len(setups)
        for setup in setups[k:] + setups[:k]:
            for attempt in range(3):
                try:
                    row = chaos_flow(setup, seed, **options)
                    break
                except Exception as exc:  # the embedded server refused to start the run
                    # (SQLite "database is locked" under load: a 503 before the flow began)
                    print(f"{setup} seed {seed}: attempt {attempt + 1} failed: {exc!r}"[:300], flush=True)  # fmt: skip
                    time.sleep(5)
            else:
                continue  # reported above; the medians use the runs that ran
            trace = row.pop("trace", None)
            print(row, flush=True)
            if trace is not None:
                from benchmarks.chaos_trace import print_trace

                print_trace({**row, "trace": trace})
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--rate", type=float, default=6.0, help="items submitted per second")
    parser.add_argument("--down-for", type=float, default=25.0, help="outage length (s)")
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=SETUPS)
    parser.add_argument("--trace", action="store_true", help="print each run's timeline after the outage's end (benchmarks/chaos_trace.py)")  # fmt: skip
    parser.add_argument("--scale", action="store_true", help="as deployments on PostgreSQL, 2 process workers and Redis (benchmarks/chaos_scale.py)")  # fmt: skip
    args, rest = parser.parse_known_args()
    if args.scale:  # its own options too (--pairs, --run-timeout)
        from benchmarks import chaos_scale

        argv = [a for a in sys.argv[1:] if a != "--scale"]
        sys.exit(chaos_scale.main(chaos_scale.parser().parse_args(argv)))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    home = tempfile.mkdtemp(prefix="chaos-")
    os.environ["PREFECT_FT_STORE_URL"] = f"sqlite:///{home}/prefect-ft.db"
    os.environ.setdefault("PREFECT_FT_DEADLETTER_KEY", f"chaos-{uuid.uuid4().hex}")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=600):
        options = {"items": args.items, "rate": args.rate, "down_for": args.down_for, "trace": args.trace}  # fmt: skip
        rows = run_seeds(args.seeds, args.setups, **options)
    print(f"\n{args.items} items at {args.rate:g}/s; outage {args.down_for:g} s from ~13 s, error burst ~4-6 s, latency ~8-11 s; seeds {args.seeds}; medians")  # fmt: skip
    report(rows, args.setups)


if __name__ == "__main__":
    # run the importable module, not __main__: its functions then pickle by reference (a dead
    # letter keeps the policy, whose health check is `benchmarks.chaos.dependency_health`)
    from benchmarks import chaos

    chaos.main()
