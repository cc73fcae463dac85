"""The tiny RAN model on disk: versioned under PREFECT_HOME, built once, loaded by `mlx_lm.load`.

Layout: `$PREFECT_HOME/prefect-ft/models/ran-tiny/v<N>/` holds what mlx-lm's `save_model` /
`save_config` and `PreTrainedTokenizerFast.save_pretrained` write, plus `prefect-ft-model.json` (the
corpus fingerprint and training stats). A version directory appears whole or not at all: it is
written to a temporary directory and renamed, under a file lock so two processes never train twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from prefect_ft.demo.ran.documents import training_texts
from prefect_ft.demo.ran.train import EOS, TrainBudget, build_model, train_model, train_tokenizer

MODEL_NAME = "ran-tiny"
META_FILE = "prefect-ft-model.json"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
# Bumped when the training recipe changes, so a version trained the old way is not reused.
# 2: trained in NumPy on the chunks as prompted (the 1st recipe's model wrote word salad).
RECIPE = 2
_VERSION = re.compile(r"^v(\d+)$")


class ModelFileError(RuntimeError):
    """A model version directory that is missing, incomplete or unreadable."""


@dataclass(frozen=True)
class Generation:
    text: str
    tokens: int


def models_root(home: str | os.PathLike[str]) -> Path:
    return Path(home) / "prefect-ft" / "models" / MODEL_NAME


def versions(root: Path) -> list[Path]:
    """Version directories under `root`, oldest first (v2 before v10)."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _VERSION.match(p.name))]
    return [p for _, p in sorted(found)]


def corpus_fingerprint(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "replace"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def check_files(path: Path) -> None:
    """Raise ModelFileError naming the first missing or empty file (cheap: no load)."""
    if not path.is_dir():
        raise ModelFileError(f"model directory {path} does not exist")
    for name in REQUIRED_FILES:
        file = path / name
        if not file.is_file() or file.stat().st_size == 0:
            raise ModelFileError(f"model file {file} is missing or empty")


def load_model(path: str | os.PathLike[str]):
    """(model, tokenizer) through mlx-lm's own loader; any failure is one ModelFileError line."""
    path = Path(path)
    check_files(path)
    import mlx_lm

    try:
        return mlx_lm.load(str(path))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelFileError(
            f"model at {path} cannot be loaded: {type(exc).__name__}: {first}"
        ) from exc


def generate(model, tokenizer, prompt: str, max_tokens: int) -> Generation:
    """Greedy generation (deterministic); counts the tokens actually produced.

    It stops early once the model begins a new heading (a new section's text is not the answer).
    No repetition penalty: the model recites text it learned, and that text repeats words ("the
    base station ... the base station"); a penalty pushed it off the text into word salad.
    """
    import mlx_lm

    parts: list[str] = []
    tokens = 0
    for response in mlx_lm.stream_generate(model, tokenizer, prompt, max_tokens=max_tokens):
        parts.append(response.text)
        tokens = response.generation_tokens
        if "\n#" in "".join(parts[-3:]):
            break
    return Generation("".join(parts), tokens)


def read_meta(path: Path) -> dict:
    try:
        return json.loads((path / META_FILE).read_text())
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _usable(path: Path, fingerprint: str) -> bool:
    meta = read_meta(path)
    if meta.get("corpus") != fingerprint or meta.get("recipe") != RECIPE:
        return False
    try:
        load_model(path)
    except ModelFileError:
        return False
    return True


def build_version(
    home: str | os.PathLike[str], corpus_texts: Sequence[str], budget: TrainBudget | None = None
) -> Path:
    """Train a new version v<N+1> from the corpus and publish it atomically."""
    texts = [t for t in corpus_texts if t and t.strip()]
    if not texts:
        raise ValueError("corpus_texts is empty: the model needs at least one non-empty document")
    budget = budget or TrainBudget()
    root = models_root(home)
    root.mkdir(parents=True, exist_ok=True)
    existing = versions(root)
    number = int(existing[-1].name[1:]) + 1 if existing else 1
    tmp = root / f".tmp-v{number}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        from mlx_lm.utils import save_config, save_model

        rendered = training_texts(texts)
        tokenizer = train_tokenizer(rendered, budget.vocab_size)
        ids: list[int] = []
        for text in rendered:  # documents separated by EOS so the model learns where one ends
            ids.extend(tokenizer(text + EOS)["input_ids"])
        model, config = build_model(len(tokenizer), budget.seed)
        result = train_model(model, ids, budget)
        save_model(tmp, model)
        save_config(dict(config), tmp / "config.json")
        tokenizer.save_pretrained(str(tmp))
        meta = {
            "corpus": corpus_fingerprint(corpus_texts),
            "documents": len(texts),
            "chunks": len(rendered),
            "tokens": result.tokens,
            "steps": result.steps,
            "train_seconds": round(result.seconds, 3),
            "first_loss": round(result.first_loss, 4),
            "final_loss": round(result.final_loss, 4),
            "seed": budget.seed,
            "recipe": RECIPE,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        final = root / f"v{number}"
        os.rename(tmp, final)  # atomic: a reader sees the whole version or none
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_model(
    home: str | os.PathLike[str], corpus_texts: Sequence[str], budget: TrainBudget | None = None
) -> Path:
    """The newest usable version for this corpus; trains one when there is none.

    A version that is corrupt (a missing, empty or unreadable file) is moved aside as
    `broken-v<N>` and a fresh one is built, so a damaged model never blocks the demo.
    """
    root = models_root(home)
    fingerprint = corpus_fingerprint(corpus_texts)
    with _locked(root):
        for path in reversed(versions(root)):
            if _usable(path, fingerprint):
                return path
            meta = read_meta(path)
            if meta.get("corpus") == fingerprint and meta.get("recipe") == RECIPE:  # damaged
                aside = root / f"broken-{path.name}"
                shutil.rmtree(aside, ignore_errors=True)
                os.rename(path, aside)
        return build_version(home, corpus_texts, budget)
