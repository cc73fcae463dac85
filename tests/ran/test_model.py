"""The tiny RAN model: trained, saved, loaded by mlx_lm.load, versioned, rebuilt when corrupt."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from prefect_ft.demo.ran.model import (
    META_FILE,
    ModelFileError,
    build_version,
    ensure_model,
    generate,
    load_model,
    models_root,
    versions,
)
from prefect_ft.demo.ran.train import TrainBudget
from tests.ran.model_support import (  # noqa: F401
    PARAGRAPHS,
    TEST_BUDGET,
    corpus_model,
    tiny_model,
)

pytestmark = pytest.mark.slow


def test_round_trip_train_save_load_generate(tiny_model: Path) -> None:  # noqa: F811
    assert tiny_model.name == "v1"
    assert tiny_model.parent.parent.name == "models"
    meta = json.loads((tiny_model / META_FILE).read_text())
    assert meta["steps"] >= 1 and meta["final_loss"] < meta["first_loss"], meta
    model, tokenizer = load_model(tiny_model)
    out = generate(model, tokenizer, "Carrier aggregation", max_tokens=12)
    assert out.tokens >= 1
    assert isinstance(out.text, str) and out.text.strip(), out


def test_ensure_model_reuses_the_existing_version(tiny_model: Path) -> None:  # noqa: F811
    home = tiny_model.parents[3]
    started = time.monotonic()
    again = ensure_model(home, PARAGRAPHS, TEST_BUDGET)
    assert again == tiny_model
    assert time.monotonic() - started < 10  # a load, not a training run
    assert [p.name for p in versions(models_root(home))] == ["v1"]


def test_corrupt_model_file_gives_a_clear_message_and_ensure_rebuilds(tmp_path: Path) -> None:
    budget = TrainBudget(max_steps=2, max_seconds=10, vocab_size=280, seq_len=16, batch_size=2)
    first = ensure_model(tmp_path, PARAGRAPHS, budget)
    (first / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFileError, match=r"model at .*v1 cannot be loaded"):
        load_model(first)
    rebuilt = ensure_model(tmp_path, PARAGRAPHS, budget)
    load_model(rebuilt)  # usable again
    assert (models_root(tmp_path) / "broken-v1").is_dir()


def test_a_version_of_an_older_training_recipe_is_retrained_not_reused(tmp_path: Path) -> None:
    """A model trained the old way (word salad) must not be served because its corpus matches."""
    budget = TrainBudget(max_steps=2, max_seconds=10, vocab_size=280, seq_len=16, batch_size=2)
    first = ensure_model(tmp_path, PARAGRAPHS, budget)
    meta = json.loads((first / META_FILE).read_text())
    meta.pop("recipe", None)  # as written before the recipe was recorded
    (first / META_FILE).write_text(json.dumps(meta))
    again = ensure_model(tmp_path, PARAGRAPHS, budget)
    assert again.name == "v2"
    assert first.is_dir()  # old, not broken: left in place


def test_missing_model_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"does not exist"):
        load_model(tmp_path / "nope")
    tmp_path.joinpath("config.json").write_text("{}")
    with pytest.raises(ModelFileError, match=r"model\.safetensors is missing or empty"):
        load_model(tmp_path)


def test_empty_corpus_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="corpus_texts is empty"):
        build_version(tmp_path, ["", "   "])
    assert not any(p.name.startswith(".tmp") for p in models_root(tmp_path).glob("*"))


def test_bad_budget_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"TrainBudget\.max_seconds=0: must be in"):
        TrainBudget(max_seconds=0)
    with pytest.raises(ValueError, match=r"TrainBudget\.learning_rate=5: must be in"):
        TrainBudget(learning_rate=5)


def test_same_seed_same_weights(tmp_path: Path) -> None:
    import mlx.core as mx

    budget = TrainBudget(max_steps=3, max_seconds=30, vocab_size=280, seq_len=16, batch_size=2)
    a = build_version(tmp_path / "a", PARAGRAPHS, budget)
    b = build_version(tmp_path / "b", PARAGRAPHS, budget)
    wa = mx.load(str(a / "model.safetensors"))
    wb = mx.load(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(mx.array_equal(wa[k], wb[k]).item() for k in wa)


def test_most_corpus_chunks_get_a_record_that_passes_quality(corpus_model) -> None:  # noqa: F811
    """The issue's bar: recognisable text, a grounded answer per chunk, not word salad."""
    from prefect_ft.demo.ran.documents import build_prompt, record_from_generation
    from prefect_ft.demo.ran.quality import dedup_key, validate_record

    path, chunks = corpus_model
    model, tokenizer = load_model(path)
    seen: dict[str, str] = {}
    rejected = []
    for chunk in chunks:
        record = record_from_generation(
            chunk, generate(model, tokenizer, build_prompt(chunk), 48).text
        )
        verdict = validate_record(record, seen)
        if verdict.accepted:
            seen[dedup_key(record)] = record["id"]
        else:
            rejected.append((record["id"], record["answer"][:80], verdict.reasons))
    accepted = len(chunks) - len(rejected)
    assert accepted >= 0.7 * len(chunks), (f"{accepted}/{len(chunks)} accepted", rejected)


def test_numpy_training_step_matches_mlx_autograd() -> None:
    """numpy_train.py is the same network as mlx-lm's llama: same loss, same gradients."""
    import mlx.core as mx
    import mlx.nn as nn
    import numpy as np
    from mlx.utils import tree_flatten

    from prefect_ft.demo.ran.numpy_train import NumpyLlama
    from prefect_ft.demo.ran.train import build_model

    model, config = build_model(300, seed=1)
    params = {k: np.array(v) for k, v in tree_flatten(model.parameters())}
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 300, (2, 2, 12))

    def loss_fn(m, a, b):
        return nn.losses.cross_entropy(m(a), b).mean()

    loss, grads = nn.value_and_grad(model, loss_fn)(model, mx.array(x), mx.array(y))
    ours_loss, ours = NumpyLlama(config).loss_and_grads(params, x, y)
    assert abs(loss.item() - ours_loss) < 1e-5
    theirs = dict(tree_flatten(grads))
    assert theirs.keys() == ours.keys()
    for name, g in theirs.items():
        g = np.array(g)
        assert np.abs(g - ours[name]).max() <= 1e-4 * np.abs(g).max(), name
