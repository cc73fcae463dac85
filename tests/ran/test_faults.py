"""Fault schedules: parsed and checked, applied per component on a fake clock, recorded truly."""

from __future__ import annotations

import pytest

from prefect_ft.demo.ran.faults import FaultInjector, FaultSchedule, InjectedFault


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept += s
        self.t += s


def injector(faults, seed=7, **kw):
    clock = Clock()
    inj = FaultInjector(
        FaultSchedule.from_dict({"seed": seed, "faults": faults}),
        clock=clock,
        sleep=clock.sleep,
        **kw,
    )
    inj.start()
    return inj, clock


def outcomes(inj, component, n):
    out = []
    for _ in range(n):
        try:
            inj.inject(component)
            out.append("ok")
        except InjectedFault:
            out.append("err")
        except ConnectionResetError:
            out.append("drop")
    return out


def test_error_burst_only_inside_its_window_and_recorded_with_its_true_times() -> None:
    inj, clock = injector(
        [{"component": "ml-inference", "kind": "error_burst", "start": 5, "duration": 10}]
    )
    assert outcomes(inj, "ml-inference", 3) == ["ok"] * 3
    clock.t += 5
    assert outcomes(inj, "ml-inference", 3) == ["err"] * 3
    assert outcomes(inj, "ipc", 3) == ["ok"] * 3  # another component is untouched
    clock.t += 10
    assert outcomes(inj, "ml-inference", 2) == ["ok"] * 2
    rec = inj.records[0]
    assert (rec.start, rec.end, rec.calls_hit) == (1005.0, 1015.0, 3)


def test_periodic_fails_every_nth_call() -> None:
    inj, _ = injector(
        [
            {
                "component": "doc-processing",
                "kind": "periodic",
                "start": 0,
                "duration": 99,
                "every": 3,
            }
        ]
    )
    assert outcomes(inj, "doc-processing", 6) == ["ok", "ok", "err", "ok", "ok", "err"]


def test_same_seed_same_failures_other_seed_other_failures() -> None:
    f = [{"component": "ipc", "kind": "drop_connections", "start": 0, "duration": 99, "rate": 0.5}]
    a = outcomes(injector(f, seed=1)[0], "ipc", 40)
    assert a == outcomes(injector(f, seed=1)[0], "ipc", 40)
    assert a != outcomes(injector(f, seed=2)[0], "ipc", 40)
    assert 8 < a.count("drop") < 32


def test_latency_sleeps_the_delay() -> None:
    inj, clock = injector(
        [{"component": "ml-inference", "kind": "latency", "start": 0, "duration": 9, "delay": 0.25}]
    )
    outcomes(inj, "ml-inference", 4)
    assert clock.slept == pytest.approx(1.0)


def test_memory_leak_grows_to_the_budget_and_is_freed_at_the_end() -> None:
    inj, clock = injector(
        [
            {
                "component": "quality-validation",
                "kind": "memory_leak",
                "start": 0,
                "duration": 10,
                "mb_per_call": 1,
                "budget_mb": 3,
            }
        ]
    )
    outcomes(inj, "quality-validation", 10)
    assert inj.leaked_bytes() == 3 * 2**20
    clock.t += 10
    inj.tick()
    assert inj.leaked_bytes() == 0


def test_crash_calls_the_hooks_at_the_real_times() -> None:
    calls = []
    inj, clock = injector(
        [{"component": "ml-inference", "kind": "crash", "start": 2, "duration": 3}],
        on_crash=lambda: calls.append(("crash", clock.t)),
        on_restore=lambda: calls.append(("restore", clock.t)),
    )
    inj.tick()
    clock.t += 2.5
    inj.tick()
    clock.t += 3
    inj.tick()
    assert calls == [("crash", 1002.5), ("restore", 1005.5)]
    assert (inj.records[0].start, inj.records[0].end) == (1002.5, 1005.5)


def test_close_ends_running_faults_now_not_at_their_scheduled_end() -> None:
    inj, clock = injector(
        [{"component": "ipc", "kind": "error_burst", "start": 0, "duration": 100}]
    )
    clock.t += 4
    inj.tick()
    (rec,) = inj.close()
    assert (rec.start, rec.end) == (1000.0, 1004.0)


def test_scaled_compresses_every_window() -> None:
    s = FaultSchedule.from_dict(
        {"faults": [{"component": "ipc", "kind": "latency", "start": 10, "duration": 20}]}
    )
    (f,) = s.scaled(0.1).faults
    assert (f.start, f.duration, s.scaled(0.1).length) == (1.0, 2.0, 3.0)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            {"component": "gpu", "kind": "error_burst", "duration": 1},
            "fault 1: unknown component 'gpu'; allowed: doc-processing, ml-inference, ipc, quality-validation",
        ),
        ({"component": "ipc", "kind": "meteor", "duration": 1}, "unknown kind 'meteor'"),
        ({"component": "ipc", "kind": "crash", "duration": 1}, "component must be 'ml-inference'"),
        (
            {"component": "ipc", "kind": "error_burst", "duration": 1, "rate": 2},
            "rate must be a number between 0 and 1 (got 2)",
        ),
        ({"component": "ipc", "kind": "error_burst"}, "duration must be a number >= 0 (got None)"),
        (
            {"component": "ipc", "kind": "latency", "duration": 1, "every": 3},
            "unknown fields ['every']",
        ),
    ],
)
def test_bad_schedules_get_a_message_naming_the_fault_and_field(fault, message) -> None:
    with pytest.raises(ValueError) as info:
        FaultSchedule.from_dict({"faults": [fault]})
    assert message in str(info.value)


def test_load_from_yaml_names_the_file(tmp_path) -> None:
    p = tmp_path / "sched.yaml"
    p.write_text(
        "seed: 3\nfaults:\n  - {component: ipc, kind: latency, start: 1, duration: 2, delay: 0.1}\n"
    )
    s = FaultSchedule.load(p)
    assert s.seed == 3 and s.faults[0].params == {"delay": 0.1}
    p.write_text("faults:\n  - {component: modem, kind: latency, duration: 2}\n")
    with pytest.raises(
        ValueError, match=r"fault schedule 'sched\.yaml': fault 1: unknown component 'modem'"
    ):
        FaultSchedule.load(p)
    with pytest.raises(ValueError, match="cannot be read"):
        FaultSchedule.load(tmp_path / "missing.yaml")


def test_calls_clock_counts_each_fault_in_its_components_calls() -> None:
    """A step that starts late or runs in bursts (the pipeline's waves) still gets its faults."""
    clock = Clock()
    crashed: list[float] = []
    up = [True]
    sched = FaultSchedule.from_dict(
        {
            "seed": 1,
            "clock": "calls",
            "faults": [
                {
                    "component": "quality-validation",
                    "kind": "error_burst",
                    "start": 2,
                    "duration": 3,
                },
                {"component": "ml-inference", "kind": "crash", "start": 1, "duration": 30},
            ],
        }
    )

    def crash() -> None:
        crashed.append(clock.t)
        up[0] = False

    inj = FaultInjector(sched, clock=clock, sleep=clock.sleep, on_crash=crash, is_up=lambda: up[0])
    inj.start()
    clock.t += 100  # windows in seconds from the run's start would have ended long ago
    assert outcomes(inj, "quality-validation", 2) == ["ok", "ok"]  # calls 0, 1
    clock.t += 50  # a pause between waves: the window waits for calls
    assert outcomes(inj, "quality-validation", 4) == ["err", "err", "err", "ok"]  # calls 2-4
    rec = inj.records[0]
    assert (rec.start, rec.end, rec.calls_hit) == (1150.0, 1150.0, 3)
    assert "[calls 2-4]" in sched.faults[0].label()
    outcomes(inj, "ml-inference", 1)
    assert crashed == []
    outcomes(inj, "ml-inference", 1)  # call 1 goes out to a killed server
    assert crashed == [1150.0] and inj.records[1].end is None
    clock.t += 5
    up[0] = True  # restarted by recovery, before the 30 s the schedule allows
    inj.tick()
    assert inj.records[1].end == 1155.0


def test_unknown_clock_is_refused_naming_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="clock must be one of run, calls"):
        FaultSchedule.from_dict({"clock": "wall", "faults": []})


def test_a_fault_starting_at_a_call_can_last_seconds() -> None:
    # `duration_unit: seconds`: starts as call 2 goes out, then lasts 5 s whatever the calls
    clock = Clock()
    sched = FaultSchedule.from_dict(
        {
            "clock": "calls",
            "faults": [
                {"component": "quality-validation", "kind": "error_burst", "start": 2,
                 "duration": 5, "duration_unit": "seconds"},
            ],
        }
    )  # fmt: skip
    inj = FaultInjector(sched, clock=clock, sleep=clock.sleep)
    inj.start()
    assert outcomes(inj, "quality-validation", 2) == ["ok", "ok"]
    clock.t += 10
    assert outcomes(inj, "quality-validation", 6) == ["err"] * 6  # one call or many: 5 s
    clock.t += 4
    assert outcomes(inj, "quality-validation", 1) == ["err"]
    clock.t += 1
    assert outcomes(inj, "quality-validation", 2) == ["ok", "ok"]
    rec = inj.records[0]
    assert (rec.start, rec.end, rec.calls_hit) == (1010.0, 1015.0, 7)
    assert "from call 2 for 5s" in sched.faults[0].label()
    # the ticker ends it on time when no call comes
    inj2 = FaultInjector(sched, clock=clock, sleep=clock.sleep)
    inj2.start()
    outcomes(inj2, "quality-validation", 3)
    clock.t += 60
    inj2.tick()
    assert inj2.records[0].end == inj2.records[0].start + 5


def test_duration_unit_is_checked() -> None:
    with pytest.raises(ValueError, match="duration_unit must be one of calls, seconds"):
        FaultSchedule.from_dict(
            {"clock": "calls", "faults": [{"component": "ipc", "kind": "error_burst",
             "start": 0, "duration": 1, "duration_unit": "hours"}]}
        )  # fmt: skip


def test_a_leak_on_ml_inference_grows_inside_the_model_server() -> None:
    # the model server is the process with a memory budget: the leak is set there (and ended
    # there), not allocated in the pipeline's process
    sent: list[dict] = []
    inj, _ = injector(
        [{"component": "ml-inference", "kind": "memory_leak", "start": 0, "duration": 10,
          "mb_per_call": 3, "budget_mb": 64}],
        on_server_fault=sent.append,
    )  # fmt: skip
    outcomes(inj, "ml-inference", 3)
    assert sent == [{"kind": "memory_leak", "mb_per_call": 3.0, "budget_mb": 64.0}]
    assert inj.leaked_bytes() == 0 and inj.records[0].calls_hit == 3
    inj.close()
    assert sent[-1] == {"kind": "clear"}


def test_a_dropped_connection_reads_as_a_connection_error_in_the_history() -> None:
    # the ml-inference run whose ipc call was dropped fails with `IpcFailed("ipc: ...")`; read
    # back from its state message it was a ModelInferenceError (the component's default)
    from prefect_ft.demo.ran.pipeline import IpcFailed
    from prefect_ft.detection.classify import classify_state

    inj, _ = injector([{"component": "ipc", "kind": "drop_connections", "start": 0,
                        "duration": 5, "rate": 1.0}])  # fmt: skip
    with pytest.raises(ConnectionResetError) as dropped:
        inj.inject("ipc")
    for component, exc in (
        ("ipc", dropped.value),
        ("ml-inference", IpcFailed(f"ipc: {dropped.value}")),
    ):
        message = f"Task run encountered an exception {type(exc).__name__}: {exc}"
        cls = classify_state("FAILED", "Failed", message, type(exc).__name__, component=component)
        assert cls is not None and cls.failure_type.value == "ConnectionError", component


def _model_burst_failures(pace_s: float) -> int:
    """Failed generations of the default schedule's model burst when the calls that reach
    ml-inference come `pace_s` apart (a half-open probe waits for a model reload: about 1.2 s
    on a quiet machine, several seconds on a loaded one)."""
    from prefect_ft.demo.ran.schedule import DEFAULT_SCHEDULE

    burst = [
        f
        for f in DEFAULT_SCHEDULE["faults"]
        if f["component"] == "ml-inference" and f["kind"] == "error_burst"
    ]
    clock = Clock()
    sched = FaultSchedule.from_dict({**DEFAULT_SCHEDULE, "faults": burst})
    inj = FaultInjector(sched, clock=clock, sleep=clock.sleep)
    inj.start()
    failed = 0
    for _ in range(40):
        failed += outcomes(inj, "ml-inference", 1) == ["err"]
        clock.t += pace_s
    return failed


def test_the_model_burst_fails_the_same_calls_at_any_pace_more_than_the_breaker_trips_on() -> None:
    # a 4 s burst failed 3 to 5 generations as recovery's reloads ran fast or slow: the 3 that
    # trip the breaker (too few for the burst chart) on some runs, 5 on others, so `make demo`'s
    # detection count moved with the machine's load
    from pathlib import Path

    import yaml

    policy = Path(__file__).parents[2] / "blocks/ft-circuit-breaker-policy/ml-inference.yaml"
    trips_at = yaml.safe_load(policy.read_text())["failure_threshold"]
    counts = {pace: _model_burst_failures(pace) for pace in (0.05, 1.2, 3.0)}
    assert len(set(counts.values())) == 1, counts
    assert counts[3.0] > trips_at, counts


def _calls_reaching(component: str, in_flight_at: int) -> list[bool]:
    """Failure flags, in end order, of the calls that reach `component` under the default
    schedule's fault there while its breaker admits them (it stops them after `failure_threshold`
    failures in a row, as the block preset says), with one call that was already in flight
    before the fault ending after the `in_flight_at`-th of them (a success)."""
    from pathlib import Path

    import yaml

    from prefect_ft.demo.ran.schedule import DEFAULT_SCHEDULE

    policy = Path(__file__).parents[2] / f"blocks/ft-circuit-breaker-policy/{component}.yaml"
    trips_at = yaml.safe_load(policy.read_text())["failure_threshold"]
    mine = [f for f in DEFAULT_SCHEDULE["faults"] if f["component"] == component]
    clock = Clock()
    inj = FaultInjector(
        FaultSchedule.from_dict({**DEFAULT_SCHEDULE, "faults": mine}),
        clock=clock,
        sleep=clock.sleep,
    )
    inj.start()
    flags: list[bool] = []
    in_row = 0
    for _ in range(60):
        failed = outcomes(inj, component, 1) != ["ok"]
        clock.t += 0.05
        flags.append(failed)
        in_row = in_row + 1 if failed else 0
        if in_row >= trips_at:
            break  # the breaker opens: no more calls until its open time ends
    first = flags.index(True)
    at = min(first + in_flight_at, len(flags))
    return [*flags[:at], False, *flags[at:]]


@pytest.mark.parametrize("in_flight_at", [0, 1, 2, 3])
def test_the_validation_fault_shows_to_the_burst_chart_however_a_running_call_ends(
    in_flight_at: int,
) -> None:
    # the 8 s validation burst failed exactly the 4 calls the breaker trips on, the burst
    # chart's minimum (4 in a row at a baseline near 2 %): a validation already running when it
    # began and ending among them (fail, fail, ok, fail, fail in a demo run at 16:54 UTC) left
    # the chart at 12.9 of 13, so the fault went undetected on some runs and not on others
    from prefect_ft.demo.ran.detect import RUN_BASELINE_MIN_TASKS
    from prefect_ft.detection.burst import BurstTracker
    from prefect_ft.detection.thresholds import load_thresholds

    tracker = BurstTracker("quality-validation", load_thresholds(), RUN_BASELINE_MIN_TASKS, True)
    normal = [False] * 24  # the warm-up pass: 8 documents, 24 validations, none failed
    flags = normal + _calls_reaching("quality-validation", in_flight_at)
    ends = [float(i) for i in range(len(flags))]
    codes = [4 if y else -1 for y in flags]
    assert tracker.observe(ends, flags, codes), flags[len(normal) :]
