"""Faults injected *inside* the model server through `POST /faults` (the pipeline's fault schedule
drives them; the kind names are those of `prefect_ft.demo.ran.faults`, with short aliases).

| kind | params | effect on each `/generate` |
|---|---|---|
| `error_burst` (`errors`) | `rate` in [0, 1] | that fraction answers 500 (a model inference error) |
| `latency` | `delay` seconds in [0, 60] | sleeps before generating |
| `memory_leak` (`leak`) | `mb_per_call` (0, 1024], `budget_mb` (0, 65536] | keeps live MLX arrays, up to `budget_mb` |
| `drop_connections` (`drop`) | `rate` in [0, 1] | that fraction has its connection cut mid-answer |
| `crash` | - | the process exits right after answering (handled by the HTTP layer) |
| `clear` | - | ends every fault and frees the leak |

Every fault takes an optional `duration` (seconds, ends on its own) and `seed` (draws are
reproducible). Recovery actions end the faults they would really fix: `/restart` all of them,
`/reload` the error burst, `/reset-connections` the dropped connections.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

MB = 1024 * 1024
ALIASES = {"errors": "error_burst", "leak": "memory_leak", "drop": "drop_connections"}
# kind -> {param: (default, low, high)}
PARAMS: dict[str, dict[str, tuple[float, float, float]]] = {
    "error_burst": {"rate": (1.0, 0.0, 1.0)},
    "latency": {"delay": (0.5, 0.0, 60.0)},
    "memory_leak": {"mb_per_call": (4.0, 0.001, 1024.0), "budget_mb": (64.0, 0.001, 65536.0)},
    "drop_connections": {"rate": (1.0, 0.0, 1.0)},
    "crash": {},
}
KINDS = (*PARAMS, "clear")


class InjectedModelError(RuntimeError):
    """A generation failure injected by the `error_burst` fault."""


class DropConnection(Exception):
    """Tells the HTTP layer to cut this request's connection (the `drop_connections` fault)."""


@dataclass
class _Active:
    kind: str
    params: dict[str, float]
    until: float | None
    rng: random.Random
    hits: int = 0


@dataclass
class ServerFaults:
    active: dict[str, _Active] = field(default_factory=dict)
    leak: list[Any] = field(default_factory=list)
    leaked_mb: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def parse(body: dict[str, Any]) -> tuple[str, dict[str, float], float | None, int]:
        """Check a `/faults` body; a ValueError names the field and the allowed values."""
        if not isinstance(body, dict):
            raise ValueError("body: must be a JSON object with 'kind'")
        raw = body.get("kind")
        kind = ALIASES.get(str(raw), str(raw))
        if kind not in KINDS:
            allowed = ", ".join([*KINDS, *ALIASES])
            raise ValueError(f"kind: {raw!r} is not a fault kind (allowed: {allowed})")
        specs = PARAMS.get(kind, {})
        unknown = set(body) - {"kind", "duration", "seed", *specs}
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown field for kind {kind!r}")
        params: dict[str, float] = {}
        for name, (default, low, high) in specs.items():
            value = body.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name}: must be a number in [{low:g}, {high:g}]")
            if not low <= value <= high:
                raise ValueError(f"{name}: must be in [{low:g}, {high:g}] (got {value!r})")
            params[name] = float(value)
        duration = body.get("duration")
        if duration is not None and (
            isinstance(duration, bool)
            or not isinstance(duration, int | float)
            or not 0 < duration <= 3600
        ):
            raise ValueError(f"duration: must be seconds in (0, 3600] (got {duration!r})")
        seed = body.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed: must be an integer (got {seed!r})")
        return kind, params, duration, seed

    def set(self, body: dict[str, Any]) -> dict[str, Any]:
        kind, params, duration, seed = self.parse(body)
        if kind == "clear":
            self.clear()
            return {"ok": True, "active": []}
        until = time.monotonic() + duration if duration is not None else None
        with self._lock:
            self.active[kind] = _Active(kind, params, until, random.Random(seed))
        return {"ok": True, "kind": kind, "params": params, "duration": duration}

    def _current(self) -> list[_Active]:
        now = time.monotonic()
        with self._lock:
            for kind in [
                k for k, a in self.active.items() if a.until is not None and now >= a.until
            ]:
                del self.active[kind]
                if kind == "memory_leak":
                    self._free()
            return list(self.active.values())

    def active_kinds(self) -> list[str]:
        return sorted(a.kind for a in self._current())

    def before_generate(self, service: Any) -> None:
        for fault in self._current():
            fault.hits += 1
            p = fault.params
            if fault.kind == "latency":
                time.sleep(p["delay"])
            elif fault.kind == "error_burst" and fault.rng.random() < p["rate"]:
                raise InjectedModelError("injected model inference error (error_burst fault)")
            elif fault.kind == "drop_connections" and fault.rng.random() < p["rate"]:
                raise DropConnection("injected dropped connection")
            elif fault.kind == "memory_leak":
                self._grow(p["mb_per_call"], p["budget_mb"])

    def _grow(self, mb: float, cap_mb: float) -> None:
        import mlx.core as mx

        with self._lock:
            step = min(mb, cap_mb - self.leaked_mb)
            if step <= 0:
                return
            block = mx.zeros((int(step * MB),), dtype=mx.uint8)
            mx.eval(block)  # materialised: counted by mx.get_active_memory()
            self.leak.append(block)
            self.leaked_mb += step

    def _free(self) -> None:
        self.leak.clear()
        self.leaked_mb = 0.0

    def clear(self, kind: str | None = None) -> None:
        with self._lock:
            if kind is None:
                self.active.clear()
                self._free()
                return
            self.active.pop(kind, None)
            if kind == "memory_leak":
                self._free()
