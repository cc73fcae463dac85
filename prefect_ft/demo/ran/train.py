"""Train the tiny RAN model: a byte-level BPE tokenizer and a short next-token training run.

The MLX model is built (seeded) here, trained by numpy_train.py (NumPy is ~7x faster than MLX's
CPU backend on this machine) and handed back to mlx-lm to save.

Everything here is seeded: the same corpus and the same step count give the same weights. The wall
budget only stops training early on a slow machine; the step cap is what normally ends it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

EOS = "<|endoftext|>"

# A 2-layer Llama with hidden size 64 (issue 11): about 100 k parameters, a few hundred KB on disk.
BASE_CONFIG: dict[str, object] = {
    "model_type": "llama",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "intermediate_size": 192,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": 512,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
}


@dataclass(frozen=True)
class TrainBudget:
    """How long to train: whichever of `max_steps` and `max_seconds` comes first."""

    # Measured under load ~30 on 2 cores, same CPU time (~8.5 s) each, loss over the whole
    # 20-document corpus (5,683 tokens): batch 16 x 100 steps 1.82, 8 x 200 1.03, 4 x 400 0.78;
    # 4 x 800 (16.7 CPU-s) 0.24. Small batches, more updates: ~21 ms CPU per step of 4 x 64.
    # 1,000 steps fit in the 60 s wall budget when the process gets a third of a core.
    max_steps: int = 1000
    max_seconds: float = 60.0
    # ~word-level on this corpus (1,024 tokens): fewer, whole-word tokens are easier to learn.
    vocab_size: int = 1024
    seq_len: int = 64
    batch_size: int = 4
    learning_rate: float = 1e-2
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "max_steps": (self.max_steps, 1, 100_000),
            "max_seconds": (self.max_seconds, 0.1, 3600.0),
            "vocab_size": (self.vocab_size, 260, 32_000),
            "seq_len": (self.seq_len, 4, 512),
            "batch_size": (self.batch_size, 1, 256),
            "learning_rate": (self.learning_rate, 1e-6, 1.0),
        }
        for field, (value, low, high) in checks.items():
            if not low <= value <= high:
                raise ValueError(f"TrainBudget.{field}={value!r}: must be in [{low}, {high}]")


@dataclass(frozen=True)
class TrainResult:
    steps: int
    seconds: float
    first_loss: float
    final_loss: float
    tokens: int


def train_tokenizer(texts: Sequence[str], vocab_size: int):
    """A byte-level BPE trained on `texts`, wrapped so `save_pretrained` writes what mlx_lm.load reads."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        # the whole byte alphabet, so any input text still encodes (no unknown tokens)
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS)


def build_model(vocab_size: int, seed: int):
    """The tiny Llama, initialised from `seed`. Returns (model, config dict)."""
    import mlx.core as mx
    from mlx_lm.models import llama

    config = {**BASE_CONFIG, "vocab_size": int(vocab_size)}
    mx.random.seed(seed)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    mx.eval(model.parameters())
    return model, config


def train_model(model, token_ids: Sequence[int], budget: TrainBudget) -> TrainResult:
    """Next-token training on random windows of the corpus (seeded), in NumPy (numpy_train.py).

    The learning rate warms up over the first 5 % of the planned steps and decays linearly to 5 %
    of its peak at the last one. The plan is `max_steps`, or fewer while the average pace so far says
    they will not fit in `max_seconds`: on a busy machine the rate still decays before the
    wall budget ends training (under load ~22, 92 of 300 steps fit and, undecayed, left the loss
    at 1.2). While the budget fits, the plan is the step count, so the same seed and budget give
    the same weights.
    """
    import mlx.core as mx
    import numpy as np
    from mlx.utils import tree_flatten, tree_unflatten

    from prefect_ft.demo.ran.numpy_train import Adam, NumpyLlama, one_blas_thread

    data = np.asarray(token_ids, dtype=np.int64)
    if len(data) < budget.seq_len + 2:
        raise ValueError(
            f"corpus too small to train on: {len(data)} tokens, need at least {budget.seq_len + 2}"
        )
    rng = np.random.default_rng(budget.seed)
    net = NumpyLlama(vars(model.args))
    params = {k: np.array(v, dtype=np.float32) for k, v in tree_flatten(model.parameters())}
    optimizer = Adam(params, budget.learning_rate)
    warmup = max(1, budget.max_steps // 20)
    started = time.monotonic()
    first = last = float("nan")
    steps = 0
    planned = budget.max_steps
    with one_blas_thread():
        while steps < planned and time.monotonic() - started < budget.max_seconds:
            starts = rng.integers(0, len(data) - budget.seq_len - 1, budget.batch_size)
            batch = np.stack([data[s : s + budget.seq_len + 1] for s in starts])
            last, grads = net.loss_and_grads(params, batch[:, :-1], batch[:, 1:])
            scale = min(1.0, (steps + 1) / warmup) * max(0.05, 1.0 - steps / planned)
            optimizer.step(params, grads, budget.learning_rate * scale)
            if steps == 0:
                first = last
            steps += 1
            if steps >= 5:  # the pace of the first steps includes imports and warm-up
                elapsed = time.monotonic() - started
                fits = int(budget.max_seconds * steps / elapsed)
                planned = min(budget.max_steps, max(steps + 1, fits))
    model.update(tree_unflatten([(k, mx.array(v)) for k, v in params.items()]))
    mx.eval(model.parameters())
    model.eval()
    return TrainResult(steps, time.monotonic() - started, first, last, len(data))
