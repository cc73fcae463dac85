"""History conversion, resource sample rings and detection-state persistence, without a server."""

from __future__ import annotations

import json
import math

import numpy as np

from prefect_ft.detection import DetectionEngine, FailureType, TaskRunBatch
from prefect_ft.history.components import component_tag, component_task_key, run_component
from prefect_ft.history.detection_flow import (
    engine_config,
    load_detection_state,
    save_detection_state,
)
from prefect_ft.history.reader import (
    HistoryRow,
    read_resource_samples,
    record_resource_sample,
    resource_key,
    rows_to_batch,
)
from prefect_ft.stores import InMemoryBreakerStore

MSG = "Task run encountered an exception {}: boom"


def row(i: int, comp: str | None, stype: str = "COMPLETED", name: str = "Completed", msg=None):
    return HistoryRow(f"id{i}", comp, stype, name, msg, 100.0 + i, 100.5 + i, None)


def test_rows_become_a_batch_in_end_order_with_classified_failures() -> None:
    rows = [
        row(3, "a", "FAILED", "Failed", MSG.format("TimeoutError")),
        row(1, "a"),
        row(2, "b", "CRASHED", "Crashed", MSG.format("ConnectionResetError")),
        row(4, "a", "FAILED", "CircuitOpen", "Circuit 'a' is OPEN"),  # a refusal, not a call
        row(5, None),  # not a guarded task
        row(6, "zzz"),  # a component the engine does not watch
        row(7, "zzz", "FAILED", "Failed", MSG.format("ValueError")),
    ]
    batch, ignored, unknown = rows_to_batch(rows, ("a", "b"))
    assert len(batch) == 3
    assert batch.end.tolist() == [101.5, 102.5, 103.5]
    assert batch.component.tolist() == [0, 1, 0]
    assert batch.failed.tolist() == [False, True, True]
    assert batch.failure_type.tolist() == [
        -1,
        FailureType.CONNECTION_ERROR.code,
        FailureType.TIMEOUT.code,
    ]
    assert batch.duration.tolist() == [0.5, 0.5, 0.5]  # end - start when no run time is known
    assert ignored == {"not_a_call": 1, "unguarded": 1}
    assert unknown == {"zzz": 2}


def test_a_run_names_its_component_in_its_task_key_or_its_opt_in_tag() -> None:
    key = component_task_key("fetch-1a2b3c4d", "ml.inference")
    assert key == "fetch-1a2b3c4d|ft:component:ml.inference"
    assert run_component(key, []) == "ml.inference"
    assert component_task_key(key, "ipc") == "fetch-1a2b3c4d|ft:component:ipc"  # never stacked
    assert run_component(key, [component_tag("other")]) == "ml.inference"  # the key wins
    assert run_component("fetch-1a2b3c4d", ["x", component_tag("ipc")]) == "ipc"  # opt-in or older
    assert run_component("fetch-1a2b3c4d", ["x", "ft:component:"]) is None
    assert run_component("fetch-1a2b3c4d|ft:component:", None) is None
    assert run_component(None) is None


def test_empty_rows_give_an_empty_batch_the_engine_accepts() -> None:
    batch, ignored, unknown = rows_to_batch([], ("a",))
    assert len(batch) == 0 and not ignored and not unknown
    result = DetectionEngine(engine_config(["a"])).update(batch)
    assert not result.alarms and result.skipped[0].reason == "empty"


def test_resource_samples_are_a_bounded_ring_read_by_window() -> None:
    store = InMemoryBreakerStore()
    for t in range(10):
        record_resource_sample(
            "a", 100.0 + t, 1000.0, 20.0, at=float(t), store=store, max_samples=5
        )
    assert record_resource_sample("b", 1.0, 10.0, at=50.0, store=store) == 50.0  # no CPU
    assert len(json.loads(store.read(resource_key("a")).data)) == 5
    res = read_resource_samples(("a", "b"), 6.0, 60.0, store=store)
    assert res.ts.tolist() == [7.0, 8.0, 9.0, 50.0]
    assert res.component.tolist() == [0, 0, 0, 1]
    assert res.memory_mb.tolist() == [107.0, 108.0, 109.0, 1.0]
    assert math.isnan(res.cpu_pct[-1])
    assert len(read_resource_samples(("c",), None, 60.0, store=store)) == 0


def test_saved_state_keeps_the_hold_off_and_refuses_lost_races() -> None:
    store = InMemoryBreakerStore()
    config = engine_config(["a"])
    rng = np.random.default_rng(1)
    n = 3 * 3600
    ends = np.arange(n, dtype=float)
    failed = rng.random(n) < 0.01
    failed[-20:] = True  # a burst at the end
    code = FailureType.PROCESSING_ERROR.code
    dur = np.exp(rng.normal(-2.0, 0.3, n))  # log-normal: constant durations look degenerate
    batch = TaskRunBatch(("a",), ends - dur, ends, failed, np.where(failed, code, -1), np.zeros(n))
    engine = DetectionEngine(config)
    assert [a.pattern for a in engine.update(batch).alarms] == ["burst"]
    assert save_detection_state(engine, float(n), 0, key="k", store=store)
    assert not save_detection_state(engine, float(n), 0, key="k", store=store)  # stale version

    restored, after, version, why = load_detection_state(config, key="k", store=store)
    assert (after, version, why) == (float(n), 1, [])
    more = ends[-20:] + 25.0
    again = TaskRunBatch(
        ("a",), more - 0.1, more, np.ones(20, bool), np.full(20, code), np.zeros(20)
    )
    assert "burst" not in [a.pattern for a in restored.update(again).alarms]  # held off
    # control: the restored baseline still alarms once the 1800 s hold-off is over
    later, *_ = load_detection_state(config, key="k", store=store)
    late = ends[-20:] + 1900.0
    burst = TaskRunBatch(
        ("a",), late - 0.1, late, np.ones(20, bool), np.full(20, code), np.zeros(20)
    )
    assert "burst" in [a.pattern for a in later.update(burst).alarms]

    fresh, after, _, why = load_detection_state(engine_config(["a", "b"]), key="k", store=store)
    assert after == float(n) and [w.reason for w in why] == ["state_reset"]
    assert fresh.watermark is None


def test_runs_in_flight_start_at_their_current_attempt_and_by_the_window_end() -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from prefect_ft.history.running import attempt_start, running_batch

    def at(s: float) -> datetime:
        return datetime.fromtimestamp(s, tz=UTC)

    retried = SimpleNamespace(state=SimpleNamespace(timestamp=at(500.0)), start_time=at(100.0))
    assert attempt_start(retried) == 500.0  # the retry's start, not the first attempt's
    assert attempt_start(SimpleNamespace(state=None, start_time=at(100.0))) == 100.0
    found = [("a", 500.0), ("b", 90.0), ("a", 700.0), (None, 10.0), ("zzz", 10.0), ("a", None)]
    batch = running_batch(found, ("a", "b"), until=600.0)
    assert batch.start.tolist() == [500.0, 90.0] and batch.component.tolist() == [0, 1]
    assert batch.oldest({"a": 0, "b": 1}) == {0: 500.0, 1: 90.0}
