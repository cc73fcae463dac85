"""Shared fixtures for the model, model-server and IPC tests: one tiny model trained per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from prefect_ft.demo.ran.train import TrainBudget

PARAGRAPHS = [
    "Carrier aggregation combines several component carriers so one user gets a wider channel. "
    "The primary cell carries the control signalling and secondary cells add downlink capacity.",
    "Discontinuous reception lets the user equipment sleep between paging occasions. The DRX cycle "
    "trades battery life against the latency of the first packet after a quiet period.",
    "Handover parameters such as the hysteresis and the time to trigger decide when the serving "
    "cell hands a user to a neighbour. Too small a hysteresis causes ping-pong handovers.",
    "Beam management sweeps synchronisation signal blocks across beams. The user reports the best "
    "beam and the base station refines it with channel state information reference signals.",
]

# Small enough for a test on a busy 2-core machine, long enough that loss visibly drops.
TEST_BUDGET = TrainBudget(max_steps=40, max_seconds=30.0, vocab_size=300, seq_len=32, batch_size=4)

# The quality test's model: the demo's recipe on a quarter of the corpus (5 documents), with the
# step count scaled down with it, so it trains in a few CPU seconds.
CORPUS_DOCS = 5
CORPUS_BUDGET = TrainBudget(max_steps=300, max_seconds=60.0, vocab_size=512)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained model version directory (built once per test session)."""
    from prefect_ft.demo.ran.model import ensure_model

    home = tmp_path_factory.mktemp("ran-home")
    return ensure_model(home, PARAGRAPHS, TEST_BUDGET)


@pytest.fixture(scope="session")
def corpus_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """(a model trained on the first CORPUS_DOCS bundled documents, those documents' chunks)."""
    from prefect_ft.demo.ran.documents import corpus_paths, load_chunks, read_document
    from prefect_ft.demo.ran.model import ensure_model

    paths = corpus_paths()[:CORPUS_DOCS]
    home = tmp_path_factory.mktemp("ran-corpus-home")
    model = ensure_model(home, [read_document(p) for p in paths], CORPUS_BUDGET)
    return model, [c for p in paths for c in load_chunks(p)]


def copy_version(src: Path, root: Path, name: str) -> Path:
    """A second version for reload tests, without training again."""
    dest = root / name
    shutil.copytree(src, dest)
    return dest


@pytest.fixture(scope="session")
def model_root(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private models root holding a copy of v1, so tests can add versions without side effects."""
    root = tmp_path_factory.mktemp("served") / "ran-tiny"
    root.mkdir()
    copy_version(tiny_model, root, "v1")
    return root


@pytest.fixture(scope="session")
def served(model_root: Path):
    """One model server process for the tests that leave it as they found it."""
    from prefect_ft.demo.ran.model_server import start_model_server

    with start_model_server(model_root / "v1") as server:
        yield server
    assert pid_gone(server.pid), f"model server {server.pid} still running"


def pid_gone(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
