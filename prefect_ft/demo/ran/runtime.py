"""What the RAN pipeline's steps share in one process: outputs on disk, the model client, the
fault injector, the process pool and a progress callback (set with `configure` before the flow).

Each step writes its output as one JSON file per item under `work_dir/<kind>/`, atomically, so a
step replayed from a dead letter leaves the same trace as a live one.

Another process that replays the pipeline's dead letters (a `replay-dead-letters` run of
`prefect-ft serve`, started by a breaker's `closed` event) has no configured runtime: when
`RUNTIME_ENV` holds `{"work_dir": ..., "model_url": ...}` (the demo sets it for the serve
process it starts), `runtime()` builds one from it, without faults or progress, so the replayed
call writes its output where the pipeline looks for it.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from prefect_ft.demo.ran.faults import FaultInjector

__all__ = ["RUNTIME_ENV", "Runtime", "configure", "configured", "runtime"]

RUNTIME_ENV = "PREFECT_FT_DEMO_RUNTIME"


class Runtime:
    """What the steps share in this process: outputs on disk, the model client, faults, progress."""

    def __init__(
        self,
        work_dir: str | Path,
        client: Any = None,
        *,
        injector: FaultInjector | None = None,
        workers: int = 2,
        progress: Any = None,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.client = client
        self.injector = injector
        self.progress = progress  # called with (step, item id, outcome)
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._errors: dict[str, BaseException] = {}
        for sub in ("docs", "responses", "records", "verdicts", "accepted"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)

    def inject(self, component: str) -> None:
        if self.injector is not None:
            self.injector.inject(component)

    def note(self, component: str, exc: BaseException) -> None:
        """Keep `component`'s latest error: its type picks the recovery when the breaker opens."""
        self._errors[component] = exc

    def last_error(self, component: str) -> BaseException | None:
        return self._errors.get(component)

    def pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers)
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def path(self, kind: str, item_id: str) -> Path:
        return self.work_dir / kind / f"{item_id.replace('/', '_')}.json"

    def read(self, kind: str, item_id: str) -> Any:
        p = self.path(kind, item_id)
        return json.loads(p.read_text()) if p.exists() else None

    def write(self, kind: str, item_id: str, value: Any) -> None:
        p = self.path(kind, item_id)
        tmp = p.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(value))
        tmp.replace(p)  # atomic: a reader never sees half a record

    def claim_answer(self, key: str, chunk_id: str) -> str:
        """The chunk that owns answer `key` (this one if nobody had it): the duplicate check."""
        p = self.work_dir / "accepted" / key
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return p.read_text() or chunk_id
        with os.fdopen(fd, "w") as f:
            f.write(chunk_id)
        return chunk_id

    def tell(self, step: str, item_id: str, outcome: str) -> None:
        if self.progress is not None:
            self.progress(step, item_id, outcome)


_runtime: Runtime | None = None


def configure(runtime: Runtime | None) -> None:
    """Set (or with None, clear) the runtime the steps use in this process."""
    global _runtime
    _runtime = runtime


def configured() -> bool:
    return _runtime is not None


def runtime() -> Runtime:
    if _runtime is None:
        _from_environment()
    if _runtime is None:
        raise RuntimeError("the RAN pipeline's runtime is not configured (call configure())")
    return _runtime


_env_lock = threading.Lock()


def _from_environment() -> None:
    """Configure the runtime `RUNTIME_ENV` describes, once per process (see the docstring)."""
    raw = os.environ.get(RUNTIME_ENV)
    if not raw:
        return
    try:
        spec = json.loads(raw)
        work_dir, model_url = spec["work_dir"], spec["model_url"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(
            f"{RUNTIME_ENV}: must be JSON with work_dir and model_url (got {raw!r}: {exc})"
        ) from None
    from prefect_ft.demo.ran.ipc import ModelClient

    with _env_lock:
        if _runtime is None:
            configure(Runtime(work_dir, ModelClient(model_url)))
