"""Seeded fault injection for the RAN pipeline, from a YAML schedule.

A schedule names faults per component, each active in a window of seconds after the run starts:

```yaml
seed: 7
clock: run        # or `calls`: start and duration count the component's calls
faults:
  - {component: ml-inference, kind: error_burst, start: 5, duration: 8, rate: 1.0}
  - {component: ipc, kind: drop_connections, start: 20, duration: 5, rate: 0.5}
  - {component: ml-inference, kind: latency, start: 30, duration: 10, delay: 0.3}
  - {component: doc-processing, kind: periodic, start: 0, duration: 60, every: 4}
  - {component: quality-validation, kind: memory_leak, start: 0, duration: 30, mb_per_call: 4, budget_mb: 64}
  - {component: ml-inference, kind: crash, start: 40, duration: 6}
```

With `clock: calls`, `start` and `duration` count the component's calls (the 0-based index of the
call that reaches the injector), except a crash's `duration`, which stays seconds: the server is
killed as call `start` goes out and restored that long after, unless recovery restarted it first.
A fault with `duration_unit: seconds` also starts at call `start` and then lasts `duration`
seconds, however many calls come (an outage lasts a time; a breaker that refuses calls does not
shorten it). A `memory_leak` on `ml-inference` grows inside the model server when the demo gives
the injector `on_server_fault` (`POST /faults`): that process has the memory budget.
The pipeline's steps run in waves (every document is parsed before any chunk is inferred) and
their pace follows the machine's load, so windows in seconds fall where a component has no calls;
windows in calls always hit, on any machine. `FaultSchedule` is the parsed, checked schedule (a bad field gets a message naming the fault, the
field and the allowed values). `FaultInjector.inject(component)` is called at the top of each
component's call: it raises, sleeps, leaks memory, or crashes the model server (through the
`on_crash`/`on_restore` hooks the demo gives it) as the schedule says (`fault_effects`: what
each kind does to a call). Every fault is logged when
it starts and ends and kept as a `FaultRecord` with its true start and end (wall-clock epoch
seconds; for a crash, when the server was really killed and restored), so detection and recovery
can be scored against it. The random draws come from one `random.Random(seed)` per fault, so a
schedule and seed give the same failures for the same sequence of calls.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from prefect_ft.demo.ran.fault_effects import InjectedFault, fault_effect
from prefect_ft.demo.ran.fault_schedule import COMPONENTS, KINDS, Fault, FaultSchedule

__all__ = [
    "COMPONENTS",
    "KINDS",
    "Fault",
    "FaultInjector",
    "FaultRecord",
    "FaultSchedule",
    "InjectedFault",
]

log = logging.getLogger("prefect_ft.demo.faults")


@dataclass
class FaultRecord:
    """What really happened for one fault (epoch seconds; None if the run ended first)."""

    component: str
    kind: str
    start: float | None = None
    end: float | None = None
    calls_hit: int = 0
    params: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    """Applies a schedule to the calls of the running pipeline (thread-safe)."""

    def __init__(
        self,
        schedule: FaultSchedule,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_crash: Callable[[], None] | None = None,
        on_restore: Callable[[], None] | None = None,
        is_up: Callable[[], bool] | None = None,
        on_server_fault: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.schedule = schedule
        self._clock, self._sleep = clock, sleep
        self._on_crash, self._on_restore = on_crash, on_restore
        # a leak on ml-inference grows inside the model server (`POST /faults`), the process
        # with the memory budget, rather than in the pipeline's process
        self._on_server_fault = on_server_fault
        self._is_up = is_up  # whether the crashed server is serving again
        self._lock = threading.Lock()
        self._rngs = [random.Random(schedule.seed * 1000 + i) for i in range(len(schedule.faults))]
        self._calls = [0] * len(schedule.faults)
        self.records = [
            FaultRecord(f.component, f.kind, params=dict(f.params)) for f in schedule.faults
        ]
        self._leaked: list[list[bytearray]] = [[] for _ in schedule.faults]
        self.t0: float | None = None
        self._count: dict[str, int] = {}  # component -> calls so far (clock: calls)

    def start(self) -> None:
        self.t0 = self._clock()

    def elapsed(self) -> float:
        if self.t0 is None:
            self.start()
        return self._clock() - self.t0  # type: ignore[operator]

    def inject(self, component: str) -> None:
        """Apply the faults active now on `component`; may raise `InjectedFault` or an OSError."""
        if component not in COMPONENTS:
            raise ValueError(
                f"component must be one of {', '.join(COMPONENTS)} (got {component!r})"
            )
        delay, error = 0.0, None
        with self._lock:
            self._tick()
            n = self._count.get(component, 0)
            self._count[component] = n + 1
            for i, f in enumerate(self.schedule.faults):
                if f.component != component or not self._active(i, f, n):
                    continue
                self._calls[i] += 1
                hit = self._apply(i, f)
                if hit is None:
                    continue
                self.records[i].calls_hit += 1
                if isinstance(hit, float):
                    delay += hit
                elif error is None:
                    error = hit
        if delay:
            self._sleep(delay)
        if error is not None:
            raise error

    def _active(self, i: int, f: Fault, n: int) -> bool:
        """Whether `f` applies to the component's call number `n` (starting or ending it)."""
        if f.clock != "calls":
            return f.start <= self.elapsed() < f.end
        rec = self.records[i]
        if f.kind == "crash":  # killed as call `start` goes out; `_tick` restores it
            if rec.start is None and n >= f.start:
                if self._on_crash is not None:
                    self._on_crash()
                rec.start = self._clock()
                log.warning("fault start: %s", f.label())
            return False
        if f.timed:  # from call `start`, for `duration` seconds
            if rec.start is None and n >= f.start:
                self._started(i, f, self._clock())
            if rec.start is not None and rec.end is None:
                if self._clock() - rec.start < f.duration:
                    return True
                self._finish(i, f)
            return False
        if f.start <= n < f.end:
            if rec.start is None:
                self._started(i, f, self._clock())
            return True
        if n >= f.end and rec.start is not None and rec.end is None:
            self._finish(i, f)
        return False

    def _apply(self, i: int, f: Fault) -> BaseException | float | None:
        return fault_effect(f, self._rngs[i], self._calls[i], self._leaked[i], self._in_server(f))

    def tick(self) -> None:
        """Start and end faults whose time has come (also done by every `inject`)."""
        with self._lock:
            self._tick()

    def _tick(self) -> None:
        t = self.elapsed()
        for i, f in enumerate(self.schedule.faults):
            rec = self.records[i]
            if f.clock == "calls":  # windows move with calls; a crash's and timed ends are timed
                if f.timed and rec.start is not None and rec.end is None:
                    if self._clock() - rec.start >= f.duration:
                        self._finish(i, f)
                    continue
                crashed = f.kind == "crash" and rec.start is not None and rec.end is None
                # restored by its time, or earlier by someone else (recovery's restart)
                back = self._is_up is not None and self._is_up()
                if crashed and (back or self._clock() - rec.start >= f.duration):  # type: ignore[operator]
                    self._finish(i, f)
                continue
            if rec.start is None and t >= f.start:
                if f.kind != "crash":
                    self._started(i, f, self.t0 + f.start)  # type: ignore[operator]
                elif t < f.end:  # a crash is recorded when the server was really killed
                    if self._on_crash is not None:
                        self._on_crash()
                    rec.start = self._clock()
                    log.warning("fault start: %s", f.label())
                else:
                    continue  # nobody looked during the window: the server never crashed
            if rec.start is not None and rec.end is None and t >= f.end:
                self._finish(i, f)

    def _in_server(self, f: Fault) -> bool:
        return (
            f.kind == "memory_leak"
            and f.component == "ml-inference"
            and self._on_server_fault is not None
        )

    def _server_fault(self, body: dict[str, Any]) -> None:
        try:
            self._on_server_fault(body)  # type: ignore[misc]
        except Exception as exc:  # a server that is down has no leak to set or end
            log.warning("model server fault %s not applied: %s", body.get("kind"), exc)

    def _started(self, i: int, f: Fault, at: float) -> None:
        self.records[i].start = at
        log.warning("fault start: %s", f.label())
        if self._in_server(f):
            p = f.params
            self._server_fault(
                {
                    "kind": "memory_leak",
                    "mb_per_call": p["mb_per_call"],
                    "budget_mb": p["budget_mb"],
                }
            )

    def _finish(self, i: int, f: Fault) -> None:
        rec = self.records[i]
        if self._in_server(f):
            self._server_fault({"kind": "clear"})
        if f.kind == "crash":
            if self._on_restore is not None:
                self._on_restore()
            rec.end = self._clock()
        elif f.timed:
            rec.end = min(self._clock(), rec.start + f.duration)  # type: ignore[operator]
        elif f.clock == "calls":
            rec.end = self._clock()
        else:  # ended by `close` before its time: it ended then
            rec.end = min(self._clock(), self.t0 + f.end)  # type: ignore[operator]
        self._leaked[i].clear()
        log.warning("fault end: %s (%d calls hit)", f.label(), rec.calls_hit)

    def ticking(self, interval: float = 0.2) -> _Ticker:
        """A context manager running `tick` every `interval` seconds in a thread (crashes on time)."""
        return _Ticker(self, interval)

    def close(self) -> list[FaultRecord]:
        """End every started fault (restore a crashed server, free leaked memory); the records."""
        with self._lock:
            for i, f in enumerate(self.schedule.faults):
                if self.records[i].start is not None and self.records[i].end is None:
                    self._finish(i, f)
        return self.records

    def calls(self) -> dict[str, int]:
        """Calls that reached the injector so far, per component (what `clock: calls` counts)."""
        with self._lock:
            return dict(self._count)

    def leaked_bytes(self) -> int:
        return sum(len(b) for bufs in self._leaked for b in bufs)


class _Ticker:
    def __init__(self, injector: FaultInjector, interval: float) -> None:
        self._injector, self._interval = injector, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-ticker", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._injector.tick()
            except Exception:  # a failing hook must not kill the ticker silently
                log.exception("fault ticker")

    def __enter__(self) -> FaultInjector:
        self._thread.start()
        return self._injector

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
