"""The tiny Llama's training step in NumPy: the same network as `mlx_lm.models.llama`, by hand.

Why: on this machine MLX's CPU backend multiplies matrices ~17x slower than NumPy's OpenBLAS
(1024^3 float32: 895 vs 53 ms CPU), so in the 60 s budget MLX trained ~200 steps of 192 tokens
and the model wrote word salad. The weights start as the seeded MLX model's, are trained here, and
go back into that MLX model, which mlx-lm saves and `mlx_lm.load` reads. tests/ran/test_model.py
checks that this forward pass gives MLX's logits and that its gradients equal MLX's autograd.

Architecture (2 layers, hidden 64, tied embeddings), per layer: x += Wo·attn(rope(Wq·n1(x)),
rope(Wk·n1(x)), Wv·n1(x)); x += Wd·(silu(Wg·n2(x)) * Wu·n2(x)); RMSNorm n(x) = x/rms(x)*g;
non-traditional RoPE (the two halves of each head rotate together), causal attention.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from pathlib import Path

import numpy as np

Params = dict[str, np.ndarray]
_LAYER = "model.layers.{}."


def _rms(x: np.ndarray, g: np.ndarray, eps: float):
    r = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    xn = x * r
    return xn * g, (xn, r)


def _rms_back(dy: np.ndarray, g: np.ndarray, cache) -> tuple[np.ndarray, np.ndarray]:
    xn, r = cache
    dxn = dy * g
    dg = np.sum(dy * xn, axis=tuple(range(dy.ndim - 1)))
    dx = r * (dxn - xn * np.mean(dxn * xn, axis=-1, keepdims=True))
    return dx, dg


def _rope_tables(length: int, head_dim: int, base: float):
    half = head_dim // 2
    freqs = base ** (-np.arange(half, dtype=np.float64) * 2.0 / head_dim)
    angles = np.arange(length, dtype=np.float64)[:, None] * freqs[None, :]
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def _rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, sign: float = 1.0) -> np.ndarray:
    """Rotate (B, H, L, d) by the position angles; sign=-1 is the inverse (its own transpose)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    s = sin * sign
    return np.concatenate([x1 * cos - x2 * s, x1 * s + x2 * cos], axis=-1)


class NumpyLlama:
    """Loss and gradients of the tiny Llama for one batch of token windows."""

    def __init__(self, config: dict) -> None:
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.head_dim = self.hidden // self.heads
        self.eps = float(config["rms_norm_eps"])
        self.base = float(config["rope_theta"])
        if int(config["num_key_value_heads"]) != self.heads or not config["tie_word_embeddings"]:
            raise ValueError("NumpyLlama supports only tied embeddings and no grouped KV heads")

    def loss_and_grads(self, p: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        b, n = x.shape
        h, d = self.heads, self.head_dim
        cos, sin = _rope_tables(n, d, self.base)
        causal = np.triu(np.full((n, n), -np.inf, dtype=np.float32), 1)
        emb = p["model.embed_tokens.weight"]
        act = emb[x]  # (B, L, D)
        saved = []
        for i in range(self.layers):
            k_ = _LAYER.format(i)
            a_in, c1 = _rms(act, p[k_ + "input_layernorm.weight"], self.eps)

            def heads(t: np.ndarray) -> np.ndarray:
                return t.reshape(b, n, h, d).transpose(0, 2, 1, 3)

            q = _rope(heads(a_in @ p[k_ + "self_attn.q_proj.weight"].T), cos, sin)
            k = _rope(heads(a_in @ p[k_ + "self_attn.k_proj.weight"].T), cos, sin)
            v = heads(a_in @ p[k_ + "self_attn.v_proj.weight"].T)
            s = q @ k.transpose(0, 1, 3, 2) * (d**-0.5) + causal
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            pr = s / s.sum(axis=-1, keepdims=True)
            o = (pr @ v).transpose(0, 2, 1, 3).reshape(b, n, h * d)
            act2 = act + o @ p[k_ + "self_attn.o_proj.weight"].T
            m_in, c2 = _rms(act2, p[k_ + "post_attention_layernorm.weight"], self.eps)
            gate = m_in @ p[k_ + "mlp.gate_proj.weight"].T
            up = m_in @ p[k_ + "mlp.up_proj.weight"].T
            sig = 1.0 / (1.0 + np.exp(-gate))
            mid = gate * sig * up
            out = act2 + mid @ p[k_ + "mlp.down_proj.weight"].T
            saved.append((a_in, c1, q, k, v, pr, o, m_in, c2, gate, up, sig, mid))
            act = out
        final, cf = _rms(act, p["model.norm.weight"], self.eps)
        logits = final @ emb.T
        logits -= logits.max(axis=-1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=-1, keepdims=True)
        picked = np.take_along_axis(probs, y[..., None], axis=-1)[..., 0]
        loss = float(-np.mean(np.log(np.maximum(picked, 1e-30))))

        g: Params = {}
        dlog = probs
        np.put_along_axis(dlog, y[..., None], picked[..., None] - 1.0, axis=-1)
        dlog /= b * n
        d_emb = dlog.reshape(-1, dlog.shape[-1]).T @ final.reshape(-1, self.hidden)
        dact, g["model.norm.weight"] = _rms_back(dlog @ emb, p["model.norm.weight"], cf)
        for i in reversed(range(self.layers)):
            k_ = _LAYER.format(i)
            a_in, c1, q, k, v, pr, o, m_in, c2, gate, up, sig, mid = saved[i]
            wd = p[k_ + "mlp.down_proj.weight"]
            g[k_ + "mlp.down_proj.weight"] = _outer(dact, mid)
            dmid = dact @ wd
            dup = dmid * gate * sig
            dgate = dmid * up * sig * (1.0 + gate * (1.0 - sig))
            g[k_ + "mlp.gate_proj.weight"] = _outer(dgate, m_in)
            g[k_ + "mlp.up_proj.weight"] = _outer(dup, m_in)
            dm_in = dgate @ p[k_ + "mlp.gate_proj.weight"] + dup @ p[k_ + "mlp.up_proj.weight"]
            dx2, g[k_ + "post_attention_layernorm.weight"] = _rms_back(
                dm_in, p[k_ + "post_attention_layernorm.weight"], c2
            )
            dact = dact + dx2
            g[k_ + "self_attn.o_proj.weight"] = _outer(dact, o)
            do = (
                (dact @ p[k_ + "self_attn.o_proj.weight"]).reshape(b, n, h, d).transpose(0, 2, 1, 3)
            )
            dpr = do @ v.transpose(0, 1, 3, 2)
            dv = pr.transpose(0, 1, 3, 2) @ do
            ds = pr * (dpr - np.sum(dpr * pr, axis=-1, keepdims=True)) * (d**-0.5)
            dq = _rope(ds @ k, cos, sin, -1.0)
            dk = _rope(ds.transpose(0, 1, 3, 2) @ q, cos, sin, -1.0)
            da_in = np.zeros_like(a_in)
            for name, dt in (("q_proj", dq), ("k_proj", dk), ("v_proj", dv)):
                flat = dt.transpose(0, 2, 1, 3).reshape(b, n, h * d)
                g[k_ + f"self_attn.{name}.weight"] = _outer(flat, a_in)
                da_in += flat @ p[k_ + f"self_attn.{name}.weight"]
            dx1, g[k_ + "input_layernorm.weight"] = _rms_back(
                da_in, p[k_ + "input_layernorm.weight"], c1
            )
            dact = dact + dx1
        np.add.at(d_emb, x.reshape(-1), dact.reshape(-1, self.hidden))
        g["model.embed_tokens.weight"] = d_emb
        return loss, g


def _outer(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of a Linear weight (out, in) from its output gradient and its input."""
    return dy.reshape(-1, dy.shape[-1]).T @ x.reshape(-1, x.shape[-1])


class Adam:
    """Adam with bias correction, in place on NumPy arrays."""

    def __init__(self, params: Params, lr: float, b1: float = 0.9, b2: float = 0.99) -> None:
        self.lr, self.b1, self.b2, self.t = lr, b1, b2, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params: Params, grads: Params, lr: float) -> None:
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        for k, gk in grads.items():
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * gk
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * gk * gk
            params[k] -= lr * (self.m[k] / c1) / (np.sqrt(self.v[k] / c2) + 1e-8)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run NumPy's OpenBLAS on one thread for the block, then restore its thread count.

    Measured here under load ~15: 89 us CPU per trained token on one thread, 963 us on two (the
    threads spin waiting for each other on a busy machine). Without a known OpenBLAS it does nothing.
    """
    import numpy

    libs = Path(numpy.__file__).parent.parent / "numpy.libs"
    found = None
    for path in sorted(libs.glob("*openblas*")) if libs.is_dir() else ():
        lib = ctypes.CDLL(str(path))
        getter = getattr(lib, "scipy_openblas_get_num_threads64_", None)
        setter = getattr(lib, "scipy_openblas_set_num_threads64_", None)
        if getter is not None and setter is not None:
            found = (getter, setter)
            break
    if found is None:
        yield
        return
    getter, setter = found
    before = int(getter())
    setter(ctypes.c_int(1))
    try:
        yield
    finally:
        setter(ctypes.c_int(before))
