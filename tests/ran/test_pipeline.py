"""The RAN pipeline flow on a real Prefect test server: every chunk ends accepted or rejected,
with faults injected, dead letters replayed, and nothing lost."""

from __future__ import annotations

import json
import os
import threading
import uuid

import pytest

from prefect_ft.demo.ran.faults import FaultInjector, FaultSchedule

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def prefect_server(tmp_path_factory, prefect_harness):
    store = tmp_path_factory.mktemp("ft-store") / "prefect-ft.db"
    old = {k: os.environ.get(k) for k in ("PREFECT_FT_STORE_URL", "PREFECT_FT_DEADLETTER_KEY")}
    os.environ["PREFECT_FT_STORE_URL"] = f"sqlite:///{store}"
    os.environ["PREFECT_FT_DEADLETTER_KEY"] = f"test-{uuid.uuid4().hex}"
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class EchoModel:
    """Stands in for the model server: answers with the prompt's text (so answers are grounded)."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = False
        self.lock = threading.Lock()

    def generate(self, prompt: str, max_tokens: int) -> str:
        with self.lock:
            self.calls += 1
        if self.down:
            raise ConnectionRefusedError("model server is down")
        return prompt.splitlines()[-1] + " and the parameters are set by the operator"

    def reset(self) -> None:
        pass


def run(tmp_path, corpus, schedule=None, model=None, **kw):
    from prefect_ft.demo.ran import pipeline

    model = model or EchoModel()
    inj = FaultInjector(FaultSchedule.from_dict(schedule)) if schedule else None
    rt = pipeline.Runtime(tmp_path / "out", model, injector=inj)
    pipeline.configure(rt)
    try:
        if inj:
            inj.start()
        state = pipeline.ran_pipeline(
            corpus_dir=str(corpus), work_dir=str(tmp_path / "out"), return_state=True, **kw
        )
        return state.result(), rt
    finally:
        rt.close()
        pipeline.configure(None)


def small_corpus(tmp_path, n=3, extra=None):
    from prefect_ft.demo.ran.documents import corpus_paths

    d = tmp_path / "corpus"
    d.mkdir()
    for p in corpus_paths()[:n]:
        (d / p.name).write_text(p.read_text())
    for name, data in (extra or {}).items():
        (d / name).write_bytes(data)
    return d


def test_clean_run_every_chunk_accepted_and_written(tmp_path) -> None:
    out, rt = run(tmp_path, small_corpus(tmp_path, 2))
    assert out["lost"] == [] and out["documents_lost"] == []
    assert out["items_in"] == out["accepted"] + out["rejected_by_quality"]
    assert out["accepted"] >= 1
    lines = (rt.work_dir / "dataset.jsonl").read_text().splitlines()
    assert len(lines) == out["accepted"]
    assert {"id", "question", "answer", "source", "grounding"} <= set(json.loads(lines[0]))


def test_bad_documents_are_refused_by_name_and_the_rest_is_processed(tmp_path) -> None:
    corpus = small_corpus(tmp_path, 2, {"empty.md": b"", "corrupt.md": b"# T\n\xff\xfe\x00"})
    out, _ = run(tmp_path, corpus)
    assert set(out["documents_refused"]) == {"empty", "corrupt"}
    assert "empty" in out["documents_refused"]["empty"]
    assert out["documents_parsed"] == 2 and out["lost"] == [] and out["items_in"] > 0


def test_empty_corpus_says_so(tmp_path) -> None:
    (tmp_path / "none").mkdir()
    out, _ = run(tmp_path, tmp_path / "none")
    assert "has no *.md documents" in out["error"] and out["items_in"] == 0


def test_faults_trip_breakers_dead_letters_are_replayed_and_nothing_is_lost(tmp_path) -> None:
    from prefect_ft import CircuitBreaker  # noqa: F401  (the breakers live in the store)

    schedule = {
        "seed": 3,
        "faults": [
            {
                "component": "ml-inference",
                "kind": "error_burst",
                "start": 0,
                "duration": 4,
                "rate": 1.0,
            },
            {
                "component": "quality-validation",
                "kind": "periodic",
                "start": 0,
                "duration": 60,
                "every": 5,
            },
        ],
    }
    out, _ = run(tmp_path, small_corpus(tmp_path, 3), schedule, deadline_seconds=150)
    assert out["lost"] == [] and out["documents_lost"] == [], out
    assert out["items_in"] == out["accepted"] + out["rejected_by_quality"]
    dl = out["dead_letters"]["ml-inference"]
    assert dl["dead_lettered"] >= 1 and dl["replayed"] + dl["superseded"] == dl["dead_lettered"], (
        out
    )


def test_deployable_entrypoint_loads_with_the_same_parameters() -> None:
    from pathlib import Path

    from prefect.flows import load_flow_from_entrypoint

    from prefect_ft.demo.ran.pipeline import ran_pipeline

    root = Path(__file__).resolve().parents[2]
    loaded = load_flow_from_entrypoint(str(root / "flows" / "ran_pipeline.py") + ":ran_pipeline")
    assert loaded.name == "ran-pipeline"
    assert set(loaded.parameters.properties) == set(ran_pipeline.parameters.properties)


def test_without_a_runtime_the_model_url_is_required(tmp_path) -> None:
    from prefect_ft.demo.ran import pipeline

    with pytest.raises(ValueError, match="model_url is required"):
        pipeline.flow_body(None, str(tmp_path), None, 1, 120, 48, 5.0)


@pytest.fixture
def fresh_store(tmp_path, monkeypatch):
    """A breaker store of this test's own: breakers start CLOSED whatever earlier tests did."""
    monkeypatch.setenv("PREFECT_FT_STORE_URL", f"sqlite:///{tmp_path / 'own-store.db'}")


def test_dropped_connections_count_against_ipc_not_ml_inference(tmp_path, fresh_store) -> None:
    """The ipc call's dropped connections trip `ipc` only: `ml-inference` answered nothing wrong."""
    from prefect_ft import add_global_listener, remove_global_listener

    opened: list[str] = []

    def listen(breaker, event) -> None:
        if event.to_state == "OPEN":
            opened.append(breaker.name)

    schedule = {  # the first 8 ipc calls are dropped: ipc trips (8), ml-inference would (3)
        "seed": 4,
        "clock": "calls",
        "faults": [
            {"component": "ipc", "kind": "drop_connections", "start": 0, "duration": 8, "rate": 1},
        ],
    }
    add_global_listener(listen)
    try:
        out, _ = run(tmp_path, small_corpus(tmp_path, 3), schedule, deadline_seconds=150)
    finally:
        remove_global_listener(listen)
    assert "ipc" in opened, opened
    assert "ml-inference" not in opened, opened
    assert out["lost"] == [] and out["items_in"] == out["accepted"] + out["rejected_by_quality"]
