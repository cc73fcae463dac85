"""chaos.py's dependency under fire: its seeded fault schedule, the component itself (every
work call and health check logged), and what a run measures from that log."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Dependency", "Schedule", "back_to_full", "metrics", "pre_fault_rate"]


@dataclass(frozen=True)
class Schedule:
    """The fault windows, in seconds after the first call."""

    burst: tuple[float, float]
    latency: tuple[float, float]
    down: tuple[float, float]
    burst_rate: float = 0.3
    extra_latency: float = 0.15

    @classmethod
    def drawn(cls, seed: int, down_for: float) -> Schedule:
        rng = random.Random(seed)
        b, lat, d = (rng.uniform(-0.5, 0.5) for _ in range(3))
        return cls((4 + b, 6 + b), (8 + lat, 11 + lat), (13 + d, 13 + d + down_for))


@dataclass
class Dependency:
    """The component under fire: every request (work call or health check) is logged."""

    seed: int
    schedule: Schedule
    t0: float = 0.0
    calls: list[tuple[float, bool, int]] = field(default_factory=list)  # (t, ok, item)
    probes: list[tuple[float, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # for `--trace`: the thread that made each call / check (index-aligned with calls / probes)
    callers: list[str] = field(default_factory=list)
    probers: list[str] = field(default_factory=list)
    announced_at: float | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _fault(self) -> tuple[float, bool, bool, float]:
        with self.lock:  # the schedule's clock starts at the first call, not at flow start-up
            if not self.t0:
                self.t0 = time.monotonic()
            u, jitter = self.rng.random(), self.rng.uniform(0.0, 0.004)
        t, s = self.now(), self.schedule
        down = s.down[0] <= t < s.down[1]
        erring = s.burst[0] <= t < s.burst[1] and u < s.burst_rate
        slow = s.extra_latency if s.latency[0] <= t < s.latency[1] else 0.0
        return t, down, erring, slow + jitter

    def __call__(self, item: int) -> int:
        t, down, erring, extra = self._fault()
        time.sleep(0.005 if down else 0.010 + extra)
        with self.lock:
            self.calls.append((t, not (down or erring), item))
            self.callers.append(threading.current_thread().name)
        if down:
            raise ConnectionRefusedError("dependency down")
        if erring:
            raise RuntimeError("503: transient error")
        return item

    def health(self) -> dict[str, Any]:
        t, down, _, extra = self._fault()
        time.sleep(0.005 if down else 0.002 + extra)
        with self.lock:
            self.probes.append((t, not down))
            self.probers.append(threading.current_thread().name)
        if down:
            raise ConnectionRefusedError("dependency down")
        return {"healthy": True}


def back_to_full(ok: list[float], end: float, rate: float) -> float | None:
    """Seconds from `end` to the first 1 s window of successes (times `ok`, sorted) with at
    least 80 % of the pre-fault `rate`; None when throughput never came back."""
    i = 0
    for t in ok:
        if t < end:
            continue
        while ok[i] < t - 1.0:
            i += 1
        if sum(1 for u in ok[i:] if u <= t) >= 0.8 * rate:
            return round(t - end, 2)
    return None


def pre_fault_rate(dep: Dependency) -> float:
    """Successful calls per second from 1 s to the burst (the level "full" is measured against)."""
    first_fault = dep.schedule.burst[0]
    ok = sum(1 for t, good, _ in dep.calls if good and 1.0 <= t < first_fault)
    return ok / max(first_fault - 1.0, 1e-9)


def metrics(dep: Dependency, n: int) -> dict[str, Any]:
    start, end = dep.schedule.down
    ok = sorted(t for t, good, _ in dep.calls if good)
    rate = pre_fault_rate(dep)
    back = back_to_full(ok, end, rate)
    done = {item for _, good, item in dep.calls if good}
    wall = dep.now()
    work = sum(1 for t, _, _ in dep.calls if start <= t < end)
    probes = sum(1 for t, _ in dep.probes if start <= t < end)
    return {
        "goodput_per_min": round(len(done) / wall * 60, 1),
        "work_calls_while_down": work,
        "probes_while_down": probes,
        "requests_while_down": work + probes,
        "lost": n - len(done),
        "back_to_full_s": back,
        "wall_s": round(wall, 2),
    }
