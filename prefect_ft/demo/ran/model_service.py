"""What the model server does, apart from HTTP: generate, and obey the control channel.

`ModelService` is the `ComponentControl` handler of issue 9 for the model server:

- `health(deep)`: deep generates one real token (and checks the memory budget);
- `reload(body)`: atomic with rollback: the new version is loaded *and* generates a token before it
  replaces the old one; on any failure the old model keeps serving and the answer says why;
- `restart(body)`: stop admitting, drain in-flight requests, then load the current version afresh
  (dropping leaked memory and injected faults, as a real restart would);
- `set_resources(body)`: a memory budget enforced here (MLX does not enforce `set_memory_limit` on
  CPU: the active memory is checked before each request, the cache cleared, and the request refused
  when still over) and a concurrency limit (admission slots with a bounded wait).

Generation runs one request at a time under a lock: MLX evaluation is not meant to be driven from
several threads at once, and on 2 cores parallel generation would not be faster anyway.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect_ft.demo.ran.model import generate, load_model, versions
from prefect_ft.demo.ran.server_faults import ServerFaults

MB = 1024 * 1024


class Refused(Exception):
    """A request the server will not run now; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Loaded:
    path: Path
    model: Any
    tokenizer: Any


def _probe(loaded: _Loaded) -> None:
    """One real token, or an exception: the check behind deep health and reload."""
    out = generate(loaded.model, loaded.tokenizer, "The", max_tokens=1)
    if out.tokens < 1:
        raise RuntimeError(f"{loaded.path.name} generated no token")


class ModelService:
    def __init__(
        self,
        model_dir: str | Path,
        *,
        memory_mb: float | None = None,
        concurrency: int = 4,
        admission_wait_s: float = 5.0,
    ) -> None:
        self._loaded = self._load(Path(model_dir))
        self.previous: Path | None = None
        self.memory_mb = memory_mb
        self.concurrency = concurrency
        self.admission_wait_s = admission_wait_s
        self.faults = ServerFaults()
        self._gen_lock = threading.Lock()  # one generation at a time (see module doc)
        self._state = threading.Condition()  # guards in_flight, admitted, draining
        self.in_flight = 0
        self.draining = False
        self.served = 0

    # -- model versions ------------------------------------------------------------------------

    @property
    def version(self) -> str:
        return self._loaded.path.name

    @property
    def model_dir(self) -> Path:
        return self._loaded.path

    @staticmethod
    def _load(path: Path) -> _Loaded:
        model, tokenizer = load_model(path)
        loaded = _Loaded(path, model, tokenizer)
        _probe(loaded)
        return loaded

    def _resolve(self, body: dict[str, Any]) -> Path:
        root = self._loaded.path.parent
        if body.get("rollback"):
            if self.previous is None:
                raise ValueError("rollback: there is no previous version to roll back to")
            return self.previous
        if "model_dir" in body:
            return Path(str(body["model_dir"]))
        if "version" in body:
            return root / str(body["version"])
        found = versions(root)
        return found[-1] if found else self._loaded.path

    # -- generation ----------------------------------------------------------------------------

    def generate(self, prompt: str, max_tokens: int) -> str:
        self._admit()
        try:
            self.faults.before_generate(self)  # may sleep, raise, or grow the leak
            self._check_memory()
            with self._gen_lock:
                loaded = self._loaded  # the version this request started on, whatever swaps
                out = generate(loaded.model, loaded.tokenizer, prompt, max_tokens)
            self.served += 1
            return out.text
        finally:
            self._release()

    def _admit(self) -> None:
        deadline = time.monotonic() + self.admission_wait_s
        with self._state:
            while True:
                if self.draining:
                    raise Refused(503, "model server is restarting: retry shortly")
                if self.in_flight < self.concurrency:
                    self.in_flight += 1
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Refused(
                        429, f"concurrency limit {self.concurrency} reached: request refused"
                    )
                self._state.wait(left)

    def _release(self) -> None:
        with self._state:
            self.in_flight -= 1
            self._state.notify_all()

    def active_mb(self) -> float:
        import mlx.core as mx

        return mx.get_active_memory() / MB

    def _check_memory(self) -> None:
        if self.memory_mb is None:
            return
        import mlx.core as mx

        if self.active_mb() <= self.memory_mb:
            return
        mx.clear_cache()  # cached buffers are reclaimable; only live arrays count against us
        active = self.active_mb()
        if active > self.memory_mb:
            raise Refused(
                507, f"memory budget exceeded: active {active:.1f} MB > budget {self.memory_mb} MB"
            )

    # -- the control channel (ComponentControl) ------------------------------------------------

    def health(self, deep: bool) -> dict[str, Any]:
        info: dict[str, Any] = {
            "version": self.version,
            "in_flight": self.in_flight,
            "served": self.served,
            "active_mb": round(self.active_mb(), 3),
            "memory_mb": self.memory_mb,  # the budget, so a sample carries its own limit
            "faults": self.faults.active_kinds(),
        }
        if self.draining:
            return {"healthy": False, "reason": "restarting", **info}
        if not deep:
            return {"healthy": True, **info}
        try:
            self._check_memory()
            with self._gen_lock:
                _probe(self._loaded)
        except Refused as exc:
            return {"healthy": False, "reason": exc.reason, **info}
        except Exception as exc:
            return {"healthy": False, "reason": f"generation failed: {exc}", **info}
        return {"healthy": True, "checked": "generated 1 token", **info}

    def reload(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            target = self._resolve(body)
        except ValueError as exc:
            return {"ok": False, "reason": str(exc), "version": self.version}
        try:
            fresh = self._load(target)  # fully loaded and probed before anything changes
        except Exception as exc:  # ModelFileError, or a model that loads but cannot generate
            return {
                "ok": False,
                "reason": f"{target.name} failed to load or generate ({exc}); "
                f"rolled back: still serving {self.version}",
                "version": self.version,
                "rolled_back": True,
            }
        with self._gen_lock:  # the swap waits for the generation in progress, never cuts it
            old = self._loaded
            self._loaded = fresh
            self.previous = old.path if old.path != fresh.path else self.previous
        self.faults.clear("error_burst")  # a fresh model no longer has the injected errors
        # `previous_version` is what the recovery executor rolls back to (recovery/actions.py)
        return {"ok": True, "version": self.version, "previous_version": old.path.name}

    def restart(self, body: dict[str, Any]) -> dict[str, Any]:
        timeout = float(body.get("drain_timeout", 30.0))
        started = time.monotonic()
        with self._state:
            self.draining = True
            drained = self._state.wait_for(lambda: self.in_flight == 0, timeout)
        try:
            if not drained:
                return {
                    "ok": False,
                    "reason": f"drain timed out after {timeout:g}s with {self.in_flight} in flight",
                }
            try:
                fresh = self._load(self._loaded.path)
            except Exception as exc:  # the files changed under us: keep serving what we have
                return {
                    "ok": False,
                    "reason": f"restart could not reload {self.version} ({exc}); "
                    "still serving the model loaded before",
                }
            with self._gen_lock:
                self._loaded = fresh
            self.faults.clear()  # a restarted process has no leak and no injected state
            import mlx.core as mx

            mx.clear_cache()
            return {
                "ok": True,
                "version": self.version,
                "drained_in_s": round(time.monotonic() - started, 3),
            }
        finally:
            with self._state:
                self.draining = False
                self._state.notify_all()

    def reset_connections(self, body: dict[str, Any]) -> dict[str, Any]:
        # The server holds no outbound pools; what a reset fixes here is the dropped-connection fault.
        self.faults.clear("drop_connections")
        return {"ok": True, "reset": "dropped-connection state cleared"}

    def set_resources(self, body: dict[str, Any]) -> dict[str, Any]:
        if "memory_mb" in body:
            self.memory_mb = float(body["memory_mb"])
        if "concurrency" in body:
            with self._state:
                self.concurrency = int(body["concurrency"])
                self._state.notify_all()
        over = False
        try:
            self._check_memory()
        except Refused:
            over = True
        return {
            "ok": True,
            "memory_mb": self.memory_mb,
            "concurrency": self.concurrency,
            "active_mb": round(self.active_mb(), 3),
            "over_budget": over,
        }
