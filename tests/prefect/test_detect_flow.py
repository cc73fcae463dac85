"""The `detect-failures` flow on the shared test server: real task runs in, event and artifact out.

The engine's burst detector needs a learnt baseline (at least 1800 tasks, 6 h of calibration
at 1 task/s); a test cannot make hours of real runs. So a fault-free baseline of 3 hours of
synthetic task runs (1 task/s, 1 % failures, ending before the test starts) is fed to an engine
and saved as the detection state, exactly as a previous detection run would have left it. Every
later row comes from real `ft_task` runs read back through the Prefect API: a healthy stretch,
then a burst of `ConnectionError` failures, then (after the first detection run) more failures
inside the same episode.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from prefect import flow
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.detect_failures import detect_failures
from prefect_ft import ft_task
from prefect_ft.detection import DetectionEngine, FailureType, TaskRunBatch
from prefect_ft.history.detection_flow import (
    FAULT_EVENT,
    engine_config,
    load_detection_state,
    save_detection_state,
)
from prefect_ft.history.reader import read_history
from prefect_ft.tasks.events import component_resource_id
from tests.prefect.helpers import events, fast_policy, task_runs, unique, wait_for

N_OK, N_BURST, N_MORE = 20, 12, 8


def _baseline(component: str, end: float, hours: float = 3.0, seed: int = 7) -> TaskRunBatch:
    """Fault-free history: 1 task/s with a 1 % background failure rate, ending at `end`."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3600)
    ends = np.sort(end - hours * 3600 + np.arange(n) + rng.uniform(0.0, 1.0, n))
    dur = np.exp(rng.normal(np.log(0.02), 0.3, n))
    failed = rng.random(n) < 0.01
    codes = np.where(failed, FailureType.CONNECTION_ERROR.code, -1)
    return TaskRunBatch((component,), ends - dur, ends, failed, codes, np.zeros(n, int), dur)


def _make_traffic(name: str):
    policy = fast_policy(name, failures=10**6)  # the breaker never trips in the way

    @ft_task(breaker=policy)
    def call(fail: bool) -> int:
        if fail:
            raise ConnectionError("model server connection refused")
        return 1

    @flow
    def traffic(pattern: list[bool]) -> list[str]:
        return [call(f, return_state=True).name for f in pattern]

    return traffic


def _wait_runs(name: str, n: int) -> None:
    runs = wait_for(lambda: task_runs(component=name), lambda r: len(r) >= n)
    assert len(runs) == n


def _artifact(key: str) -> str:
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert arts, f"no artifact {key}"
    return str(arts[0].data)


def test_detect_flow_finds_burst_once() -> None:
    name = unique("detect")
    state_key = f"prefect-ft:detection:{name}"
    start = time.time()
    engine = DetectionEngine(engine_config([name]))
    engine.update(_baseline(name, start - 30.0), until=start - 1.0)
    assert save_detection_state(engine, start - 1.0, 0, key=state_key)

    traffic = _make_traffic(name)
    states = traffic([False] * N_OK + [True] * N_BURST)
    assert states.count("Failed") == N_BURST and states.count("Completed") == N_OK
    _wait_runs(name, N_OK + N_BURST)  # history lags the runs

    first = detect_failures(
        components=[name], state_key=state_key, lag_seconds=0.0, artifact_key=name
    )
    bursts = [a for a in first["alarms"] if a["pattern"] == "burst"]
    assert len(bursts) == 1, first
    alarm = bursts[0]
    assert alarm["components"] == [name]
    assert alarm["failure_type"] == "ConnectionError"
    assert first["runs_read"] == N_OK + N_BURST
    assert first["components"][name] == {
        "rows": N_OK + N_BURST,
        "failed": N_BURST,
        "alarms": len(first["alarms"]),
    }
    assert first["events_emitted"] == len(first["alarms"]) and first["state_saved"]

    found = wait_for(
        lambda: events(FAULT_EVENT, component_resource_id(name)),
        lambda e: len(e) >= len(first["alarms"]),
    )
    assert len(found) == len(first["alarms"])
    burst_event = next(e for e in found if e.payload["pattern"] == "burst")
    assert burst_event.payload["components"] == [name]
    assert burst_event.payload["failure_type"] == "ConnectionError"
    assert burst_event.payload["explanation"] == alarm["explanation"]
    for k in ("severity", "onset", "at", "score"):
        assert burst_event.payload[k] == alarm[k]

    report = _artifact(name)
    assert name in report and "**burst**" in report and alarm["explanation"] in report

    # the same episode goes on: the restored engine's hold-off must keep it quiet
    states = traffic([True] * N_MORE)
    assert states.count("Failed") == N_MORE
    _wait_runs(name, N_OK + N_BURST + N_MORE)
    second = detect_failures(
        components=[name], state_key=state_key, lag_seconds=0.0, artifact_key=name
    )
    assert second["read_after"] == first["read_until"]
    assert second["runs_read"] == N_MORE
    assert second["components"][name]["failed"] == N_MORE
    assert not [a for a in second["alarms"] if a["pattern"] == "burst"], second
    assert second["events_emitted"] == len(second["alarms"])
    time.sleep(1.0)  # give a wrongly emitted event time to arrive
    assert len(events(FAULT_EVENT, component_resource_id(name))) == len(first["alarms"]) + len(
        second["alarms"]
    )

    # control: the quiet second run was the hold-off, not a forgotten baseline. The saved state
    # still alarms on a new burst once the hold-off (1800 s) is over, and not before.
    def burst_at(t: float) -> list[str]:
        restored, _, _, why = load_detection_state(engine_config([name]), key=state_key)
        assert not why
        ends = t + np.arange(10.0)
        batch = TaskRunBatch(
            (name,),
            ends - 0.01,
            ends,
            np.ones(10, bool),
            np.full(10, FailureType.CONNECTION_ERROR.code),
            np.zeros(10, int),
        )
        return [str(a.pattern) for a in restored.update(batch, until=t + 10.0).alarms]

    assert "burst" not in burst_at(second["read_until"] + 60.0)
    assert "burst" in burst_at(alarm["at"] + 1900.0)


def test_read_history_pages_and_reports_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    name, other = unique("page"), unique("page-other")
    start = time.time()
    _make_traffic(name)([False] * 5 + [True] * 2)
    _make_traffic(other)([False] * 3)
    _wait_runs(name, 7)
    _wait_runs(other, 3)
    until = time.time()

    calls: list[tuple[int | None, int]] = []
    original = PrefectClient.read_task_runs

    async def spy(self, **kwargs):  # count the pages of the window's query asked for
        end_time = kwargs["task_run_filter"].end_time
        if end_time is not None and end_time.before_ is not None:  # not the in-flight retry reads
            calls.append((kwargs.get("limit"), kwargs.get("offset", 0)))
        return await original(self, **kwargs)

    monkeypatch.setattr(PrefectClient, "read_task_runs", spy)
    small = read_history((name,), start, until=until, page_limit=2)
    monkeypatch.undo()
    whole = read_history((name,), start, until=until)

    assert len(small.batch) == len(whole.batch) == 7
    # the window starts at `start`, so it holds this test's 10 runs (plus any stray late ones)
    assert small.runs >= 10 and whole.runs >= 10
    # pages of 2 until a short one: 10 runs -> offsets 0, 2, ..., 10 (the last page is empty)
    assert [o for _, o in calls] == list(range(0, 2 * (small.runs // 2) + 1, 2))
    assert {lim for lim, _ in calls} == {2}
    assert small.unknown_components == {other: 3}
    assert int(small.batch.failed.sum()) == 2
    assert np.all(np.diff(small.batch.end) >= 0)
    assert np.array_equal(small.batch.end, whole.batch.end)
    codes = small.batch.failure_type[small.batch.failed]
    assert set(codes.tolist()) == {FailureType.CONNECTION_ERROR.code}
    assert small.until == until


def test_empty_history_raises_no_alarm_and_says_why() -> None:
    name = unique("empty")
    summary = detect_failures(
        components=[name],
        state_key=f"prefect-ft:detection:{name}",
        until=time.time() - 3600.0,  # an hour nobody ran anything of this component in
        max_age_seconds=600.0,
        artifact_key=name,
    )
    assert summary["alarms"] == [] and summary["events_emitted"] == 0
    assert summary["runs_read"] == 0 or summary["components"][name]["rows"] == 0
    assert "no_history" in {s["reason"] for s in summary["skipped"]}
    assert "No new alarms." in _artifact(name)
