"""Replay attempts as history (`prefect_ft.history.replays`): a replay is a call of its component
that leaves no task run; recorded, it becomes a row detection reads like a task run's."""

from __future__ import annotations

from prefect_ft.detection import DetectionEngine, EngineConfig, FailureType
from prefect_ft.history.reader import rows_to_batch
from prefect_ft.history.replays import read_replay_rows, record_replay_attempt
from prefect_ft.stores import InMemoryBreakerStore

COMPS = ("doc-processing", "ml-inference", "ipc", "quality-validation")
T0 = 1_800_000_000.0


class ValidationError(Exception):
    pass


def test_recorded_attempts_read_back_as_rows_of_their_window() -> None:
    st = InMemoryBreakerStore()
    record_replay_attempt("quality-validation", T0, T0 + 0.2, store=st)
    record_replay_attempt("quality-validation", T0 + 1, T0 + 1.1, ValidationError("bad"), store=st)
    record_replay_attempt("ipc", T0 + 2, T0 + 2.5, ConnectionResetError("cut"), store=st)
    rows = read_replay_rows(COMPS, T0 + 0.5, T0 + 10, store=st)
    assert [(r.component, r.state_type, r.exception_type) for r in rows] == [
        ("ipc", "FAILED", "ConnectionResetError"),
        ("quality-validation", "FAILED", "ValidationError"),
    ]
    batch, _, _ = rows_to_batch(rows, COMPS)  # end-time order
    assert batch.failure_type.tolist() == [
        FailureType.VALIDATION_ERROR.code,
        FailureType.CONNECTION_ERROR.code,
    ]
    assert batch.failed.all() and abs(batch.duration[1] - 0.5) < 1e-6


def test_a_burst_seen_only_in_replays_alarms_once_its_attempts_are_rows() -> None:
    # the demo under load: quality-validation's task runs were refused (upstream ipc open) and
    # dead-lettered, so its burst's 4 failing calls were replays, which left no task run
    st = InMemoryBreakerStore()
    t = T0
    for _ in range(34):  # earlier good calls (the warm-up's task runs would be these)
        record_replay_attempt("quality-validation", t, t + 0.1, store=st)
        t += 0.5
    for _ in range(4):
        record_replay_attempt("quality-validation", t, t + 0.1, ValidationError("x"), store=st)
        t += 0.5
    batch, _, _ = rows_to_batch(read_replay_rows(COMPS, None, t + 1, store=st), COMPS)
    alarms = DetectionEngine(EngineConfig(run_baseline_min_tasks=20)).update(batch, until=t + 1)
    assert [(a.components, str(a.failure_type)) for a in alarms.alarms] == [
        (("quality-validation",), "ValidationError")
    ]


def test_recording_never_raises() -> None:
    class Broken(InMemoryBreakerStore):
        def read(self, key):  # type: ignore[override]
            raise OSError("store down")

    assert record_replay_attempt("ipc", T0, T0 + 1, store=Broken()) is False


def test_the_detection_flow_merges_replays_into_the_task_rows_of_its_window() -> None:
    from prefect_ft.history.reader import HistoryRow
    from prefect_ft.history.replays import with_replays

    st = InMemoryBreakerStore()
    task = HistoryRow("a", "ipc", "COMPLETED", "Completed", None, T0, T0 + 1.0, 1.0)
    batch, _, _ = rows_to_batch([task], COMPS)
    record_replay_attempt("ipc", T0 + 2, T0 + 3, ConnectionResetError("cut"), store=st)
    record_replay_attempt("ipc", T0 + 50, T0 + 60, store=st)  # after the window
    merged = with_replays(batch, None, T0 + 10, store=st)
    assert merged.end.tolist() == [T0 + 1.0, T0 + 3.0]
    assert merged.failed.tolist() == [False, True]
    assert with_replays(batch, None, T0 + 1.5, store=st) is batch  # nothing in the window


def test_a_nested_guards_refusal_is_not_recorded() -> None:
    from prefect_ft.exceptions import CircuitOpenError

    st = InMemoryBreakerStore()
    refused = CircuitOpenError("ipc", 5.0)
    assert record_replay_attempt("ml-inference", T0, T0 + 1, refused, store=st) is False
    assert read_replay_rows(COMPS, None, T0 + 10, store=st) == []
