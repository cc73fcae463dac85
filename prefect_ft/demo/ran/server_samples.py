"""The model server's own resource samples: its active memory against the budget it enforces.

The pipeline's four components run in one process, so that process's resident memory is no one
component's; the model server is a process with its own memory budget (`ModelService`: MLX does
not enforce one on CPU, the server does). `ServerSampler` asks it every `interval_s` seconds
(its shallow `GET /health` answers `active_mb` and the budget `memory_mb`) and records the pair as an
`ml-inference` sample (`history.resources.record_resource_sample`): the limit travels with the
sample, so detection judges the server's memory against the server's budget
(`detection.exhaustion.BudgetWatch`), not against the machine's memory. A server that is down
(crashed, restarting) gives no sample.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ServerSampler"]


class ServerSampler:
    """A thread recording `read()`'s `active_mb`/`memory_mb` as samples of `component`."""

    def __init__(
        self,
        read: Callable[[], dict[str, Any]],
        record: Callable[[str, float, float], Any],
        component: str = "ml-inference",
        interval_s: float = 0.5,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s: must be seconds > 0 (got {interval_s!r})")
        self._read, self._record = read, record
        self.component, self.interval_s = component, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="server-samples", daemon=True)
        self.written = 0

    def sample(self) -> bool:
        """One sample now; False when the server gave none (down, or no budget reported)."""
        try:
            info = self._read()
        except Exception:
            return False
        active, budget = info.get("active_mb"), info.get("memory_mb")
        if not info.get("ok", True) or active is None or not budget:
            return False
        try:
            self._record(self.component, float(active), float(budget))
        except Exception:
            return False
        self.written += 1
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> ServerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
