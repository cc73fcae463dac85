"""Resource samples of components: taken in the task process, stored in the breaker store.

`ft_task` calls `maybe_sample(component)` after every attempt. At most one sample per component
per process is taken every `PREFECT_FT_RESOURCE_SAMPLE_SECONDS` (default 10 s), so the cost on
the hot path is one monotonic clock read and a compare; a due sample reads `/proc` and writes one
record to the store (a few ms, every 10 s). Recording never fails the task: the first failure in a
process is logged with its traceback, later ones at debug level.

A sample is this process's view, attributed to the component whose task just ran:

- memory: resident set size (`/proc/self/statm`; elsewhere the peak RSS from `getrusage`).
- memory limit: `PREFECT_FT_MEMORY_LIMIT_MB` (per component or for all) when set; otherwise the
  smallest of the cgroup memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`), `RLIMIT_AS`
  and physical memory. The component setting comes first because only the operator knows what a
  component may use (a model server's share of a machine); the detected limit is what the kernel
  enforces. `RLIMIT_AS` bounds virtual memory, which is at least the RSS, so it is a ceiling, not
  an estimate.
- CPU: this process's CPU time over wall time since its previous sample (of any component), in
  percent of the CPUs it may use (`sched_getaffinity`), so 100 means every usable CPU was busy.

Samples are stored as `prefect-ft:resources:<component>`, a bounded ring written with
compare-and-set, which `prefect_ft.history.read_resource_samples` reads for the detection flow.
This module imports neither Prefect nor numpy (it runs inside every wrapped task).

Not done here: per-process series. Processes of one component write to the same ring, so with
several processes the memory series interleaves their RSS values.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path

from prefect_ft.stores import BreakerStore, shared_store
from prefect_ft.stores.ring import append_to_ring

__all__ = [
    "MAX_SAMPLES",
    "ResourceSampler",
    "cpu_count",
    "detected_memory_limit_mb",
    "maybe_sample",
    "memory_limit_mb",
    "record_resource_sample",
    "resource_key",
    "rss_mb",
    "sampler",
]

MAX_SAMPLES = 2000  # per component: ~5.5 h at one sample every 10 s
_MB = 1024.0 * 1024.0
_UNLIMITED_BYTES = 1 << 60  # cgroup v1 reports "no limit" as a huge page-rounded number
log = logging.getLogger("prefect_ft.resources")


def resource_key(component: str) -> str:
    """The store key of a component's resource samples."""
    return f"prefect-ft:resources:{component}"


def record_resource_sample(
    component: str,
    memory_mb: float,
    memory_limit_mb: float,
    cpu_pct: float = math.nan,
    *,
    at: float | None = None,
    store: BreakerStore | str | None = None,
    max_samples: int = MAX_SAMPLES,
) -> float:
    """Append one resource sample to the component's bounded ring in the store.

    Args:
        component: the component name.
        memory_mb: resident memory.
        memory_limit_mb: the memory limit.
        cpu_pct: CPU utilisation in percent; NaN when not sampled.
        at: sample time (epoch seconds, like task-run end times); defaults to now.
        store: a store or URL; default the shared store.
        max_samples: ring size; the oldest samples drop out.

    Returns:
        The sample's time.
    """
    st = shared_store(store)
    ts = float(at) if at is not None else time.time()
    cpu = None if cpu_pct is None or math.isnan(cpu_pct) else float(cpu_pct)
    row = [ts, float(memory_mb), float(memory_limit_mb), cpu]
    if append_to_ring(st, resource_key(component), row, order=0, max_len=max_samples):
        return ts
    raise RuntimeError(f"could not record a resource sample for {component!r}: store contention")


# -- reading this process -----------------------------------------------------------------------
def rss_mb() -> float:
    """This process's resident memory in MB (peak RSS where `/proc` is missing)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / _MB
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return peak / _MB if os.uname().sysname == "Darwin" else peak / 1024.0


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cgroup_limit_bytes() -> float:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and 0 < int(raw) < _UNLIMITED_BYTES:
            return float(raw)
    return math.inf


def detected_memory_limit_mb() -> float:
    """The smallest of the cgroup memory limit, `RLIMIT_AS` and physical memory, in MB."""
    limits = [_cgroup_limit_bytes()]
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft not in (resource.RLIM_INFINITY, -1) and soft > 0:
            limits.append(float(soft))
    except (OSError, ValueError):
        pass
    try:
        limits.append(float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")))
    except (OSError, ValueError):
        pass
    return min(limits) / _MB


def memory_limit_mb(component: str) -> float:
    """`PREFECT_FT_MEMORY_LIMIT_MB` for `component` (or `*`), else the detected limit."""
    from prefect_ft.settings import memory_limits_mb

    configured = memory_limits_mb()
    found = configured.get(component, configured.get("*"))
    return found if found is not None else detected_memory_limit_mb()


# -- the sampler --------------------------------------------------------------------------------
class ResourceSampler:
    """Takes at most one sample per component every `interval_s` seconds in this process.

    Args:
        interval_s: seconds between samples of one component; None reads
            `PREFECT_FT_RESOURCE_SAMPLE_SECONDS` at the first call; 0 turns sampling off.
        store: where samples go; default the shared store (`PREFECT_FT_STORE_URL`), which the
            detection flow reads by default.
        clock: monotonic clock (tests).
    """

    def __init__(
        self,
        interval_s: float | None = None,
        *,
        store: BreakerStore | str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s, self.store, self._clock = interval_s, store, clock
        self._due: dict[str, float] = {}
        self._limits: dict[str, float] = {}
        self._lock = threading.Lock()
        self._cpu_mark = (time.monotonic(), time.process_time())
        self._warned = False
        self.written = 0
        self.failed = 0

    def maybe_sample(self, component: str) -> bool:
        """Record a sample of `component` if none was taken in the last interval; never raises.

        Returns:
            True when a sample was written.
        """
        now = self._clock()
        if now < self._due.get(component, -math.inf):
            return False
        return self._sample(component, now)

    def _sample(self, component: str, now: float) -> bool:
        try:
            with self._lock:  # one thread per due sample; the others go back to work
                if now < self._due.get(component, -math.inf):
                    return False
                if self.interval_s is None:
                    from prefect_ft.settings import resource_sample_seconds

                    self.interval_s = resource_sample_seconds()
                if self.interval_s <= 0:
                    self._due[component] = math.inf
                    return False
                self._due[component] = now + self.interval_s
                cpu = self._cpu_pct()
            limit = self._limits.get(component)
            if limit is None:
                limit = self._limits[component] = memory_limit_mb(component)
            record_resource_sample(component, rss_mb(), limit, cpu, store=self.store)
        except Exception:
            self.failed += 1
            if not self._warned:
                self._warned = True
                log.warning(
                    "could not record a resource sample of %r (the task is not affected; "
                    "later failures are logged at debug level)",
                    component,
                    exc_info=True,
                )
            else:
                log.debug("could not record a resource sample of %r", component, exc_info=True)
            return False
        self.written += 1
        return True

    def _cpu_pct(self) -> float:
        wall, cpu = time.monotonic(), time.process_time()
        wall0, cpu0 = self._cpu_mark
        self._cpu_mark = (wall, cpu)
        if wall - wall0 < 0.05:  # too short to say anything
            return math.nan
        return min(100.0, max(0.0, 100.0 * (cpu - cpu0) / (wall - wall0) / cpu_count()))


sampler = ResourceSampler()


def maybe_sample(component: str) -> bool:
    """`sampler.maybe_sample`: the hook `ft_task` calls after each attempt."""
    return sampler.maybe_sample(component)
