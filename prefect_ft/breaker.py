"""`CircuitBreaker`: the driver around the pure core, for sync and async code.

Admission is decided from the local view of the breaker's record: while CLOSED or OPEN a call
costs no store round trip and takes no lock. Failures and transitions go to the shared store
as compare-and-set writes (exactly one process wins a transition); successes are flushed in
batches by the refresher. The lock guards only state updates, never the protected call.

This module builds a breaker and holds its local state; its parts live in `prefect_ft.circuit`
(admission and outcomes, the call surfaces, operator and recovery moves) and
`stores.shared_record` (keeping the record in step with the store).
"""

from __future__ import annotations

import contextvars
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from prefect_ft.circuit.admission import AdmissionMixin
from prefect_ft.circuit.calling import CallingMixin
from prefect_ft.circuit.moves import MovesMixin, RecoveryMove
from prefect_ft.core import machine, readiness
from prefect_ft.core.config import BreakerConfig
from prefect_ft.core.states import CLOSED, OPEN, BreakerRecord
from prefect_ft.core.windows import WindowCounts
from prefect_ft.exceptions import ConfigurationError
from prefect_ft.stores import BreakerStore, shared_store
from prefect_ft.stores.emergency_record import join_active_stop
from prefect_ft.stores.forking import relock_after_fork
from prefect_ft.stores.index import register_breaker
from prefect_ft.stores.refresher import Refresher
from prefect_ft.stores.shared_record import (
    BreakerListener,
    SharedRecordMixin,
    add_global_listener,
    remove_global_listener,
)

__all__ = [
    "BreakerListener",
    "CircuitBreaker",
    "RecoveryMove",
    "add_global_listener",
    "live_breakers",
    "remove_global_listener",
]

# every breaker alive in this process: metrics and health read them when scraped, so a call
# pays nothing for being observed (prefect_ft.ops)
_live: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()


def live_breakers() -> list[CircuitBreaker]:
    """The breakers alive in this process."""
    return list(_live)


class CircuitBreaker(CallingMixin, MovesMixin, AdmissionMixin, SharedRecordMixin):
    """A circuit breaker shared by every thread, task and (through its store) process.

    Args:
        config: the policy, or a name to build a default `BreakerConfig` with `**fields`.
        store: a `BreakerStore`, or its URL; default `PREFECT_FT_STORE_URL`, else SQLite under
            `PREFECT_HOME` (shared by every process on the machine).
        clock: seconds, monotonic; tests pass a fake one (with `store="memory://"` the store
            then shares it).
        listeners: `listener(breaker, event)` callables for transitions.
        refresh_seconds: how often to re-read shared state and flush successes; None = never
            (tests drive `refresh()` by hand, and the health checks with
            `health_prober.step()`: no thread). Default: `PREFECT_FT_REFRESH_SECONDS` or 0.2.
        rng: a `random.Random`-like source for open-time jitter.
        **fields: `BreakerConfig` fields when `config` is a name.

    Examples:
        ```python
        from prefect_ft import CircuitBreaker

        breaker = CircuitBreaker("ipc", open_seconds=5, store="memory://")

        @breaker
        def fetch(doc_id: str) -> bytes: ...

        with breaker:
            ...
        result = breaker.call(fetch, "doc-1")
        ```
    """

    def __init__(
        self,
        config: BreakerConfig | str,
        *,
        store: BreakerStore | str | None = None,
        clock: Callable[[], float] | None = None,
        listeners: Iterable[BreakerListener] = (),
        refresh_seconds: float | str | None = "default",
        rng: random.Random | None = None,
        **fields: Any,
    ) -> None:
        if isinstance(config, str):
            if "failure_threshold" in fields:
                from prefect_ft.core.conditions import ConsecutiveFailures

                if "trip" in fields:
                    raise ConfigurationError("give either failure_threshold or trip, not both")
                fields["trip"] = ConsecutiveFailures(fields.pop("failure_threshold"))
            config = BreakerConfig(name=config, **fields)
        elif fields:
            raise TypeError("pass either a BreakerConfig or a name with fields, not both")
        self.config = config
        self.name = config.name
        self.key = f"prefect-ft:breaker:{config.name}"
        self._clock = clock or time.monotonic
        self.store: BreakerStore = shared_store(store, clock=clock)
        self._listeners = list(listeners)
        self._rng = (rng or random.Random()).random
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        relock_after_fork(self)  # a thread of the parent may hold them at fork time
        self._window = config.new_window() if config.trip.uses_window else None
        self._slow_s = config.slow_call_seconds
        self._inflight: dict[int, float] = {}
        self._window_since = float("-inf")  # when the current window began (store clock)
        self._ramp = [0, 0]  # offered, admitted in the current RECOVERY episode
        self._offset = 0.0
        self._record = BreakerRecord()
        self._version = 0
        self._prober: Any = None
        self._set(self._record, 0)  # computes the fast-path flag
        self._pending_success = False
        self._dirty = False
        self.store_available = True
        self.counts = {"successful": 0, "failed": 0, "ignored": 0, "not_permitted": 0, "slow": 0}
        self._cm_tokens: contextvars.ContextVar[tuple[Any, ...]] = contextvars.ContextVar(
            f"prefect_ft_cm_{config.name}", default=()
        )
        # active health checks (core.probe) and readiness (core.readiness): a thread only
        # while a check is due
        if config.health_check is not None:
            from prefect_ft.recovery.prober import HealthProber

            self._prober = HealthProber(self, threaded=refresh_seconds is not None)
            self._listeners.append(self._prober)
        self.refresh()
        if self._prober is not None and self._record.state == OPEN:
            self._prober.poke()  # opened before this process built the breaker
        if self.store_available and register_breaker(self.store, self.name):
            join_active_stop(self)  # a stop's index read missed a breaker built after it
        _live.add(self)
        interval = refresh_seconds
        if interval == "default":
            from prefect_ft.settings import refresh_seconds as default_interval

            interval = default_interval()
        if interval is not None:
            Refresher.attach(self, self.store, float(interval))

    @classmethod
    def from_preset(
        cls, name: str, *, store: BreakerStore | str | None = None, **kwargs: Any
    ) -> CircuitBreaker:
        """A breaker configured by a built-in preset (`ipc`, `ml-inference`, ...)."""
        from prefect_ft.presets import preset_config

        overrides = {
            k: kwargs.pop(k) for k in list(kwargs) if k in BreakerConfig.__dataclass_fields__
        }
        return cls(preset_config(name, **overrides), store=store, **kwargs)

    # -- views -------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """The effective state: an overlay when set, else CLOSED/OPEN/HALF_OPEN/RECOVERY."""
        return self._record.effective_state

    @property
    def record(self) -> BreakerRecord:
        return self._record

    def now(self) -> float:
        """The store clock, estimated locally (no round trip)."""
        return self._clock() + self._offset

    def seconds_until_admission(self) -> float | None:
        """From the local view: 0 when a call would be let through now, else how long until it
        could be (None: forced open until an operator clears it)."""
        return machine.seconds_until_admission(self._record, self.config, self.now())

    @property
    def health_prober(self) -> Any:
        """The `HealthProber` running this breaker's active health checks, or None."""
        return self._prober

    def window_counts(self) -> WindowCounts:
        with self._lock:
            return self._counts(self.now())

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state}, store={self.store.url!r})"

    # -- state updates -----------------------------------------------------------------------
    def _set(self, record: BreakerRecord, version: int) -> None:
        old = self._record
        if record.state != old.state or record.closed_at != old.closed_at:
            # every transition this process sees, made here or adopted from the store (a reset
            # elsewhere shows as a new closed_at), starts a fresh rate/slow-call window (issue 8)
            if record.state == "RECOVERY":
                self._ramp = [0, 0]
            if self._window is not None:
                self._window.clear()
            self._inflight.clear()
            self._window_since = self.now()
        if self._prober is not None and record.ready_at != old.ready_at and readiness.pending(record):  # fmt: skip
            self._prober.poke()  # an announcement, made here or seen in the store: verify it now
        self._record = record
        self._version = version
        self._fast = (
            record.state == CLOSED
            and record.overlay is None
            and self._window is None
            and self._slow_s is None
        )
