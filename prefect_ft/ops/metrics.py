"""Prometheus metrics with the names of DESIGN §6, through prometheus-client.

| metric | type | labels |
|---|---|---|
| `prefect_ft_breaker_state` | gauge, 1 for the current state | breaker, state (7 values) |
| `prefect_ft_calls_total` | counter | breaker, kind=successful,failed,ignored,not_permitted,slow |
| `prefect_ft_failure_rate` / `prefect_ft_slow_call_rate` | gauge, 0-1, current window | breaker |
| `prefect_ft_bulkhead_available` / `_max_concurrent` / `_waiting` | gauge | bulkhead |
| `prefect_ft_bulkhead_queue_wait_seconds_total` / `prefect_ft_bulkhead_queue_waits_total` | counter | bulkhead |
| `prefect_ft_recovery_total` | counter | component, strategy, outcome |
| `prefect_ft_faults_detected_total` | counter | pattern, severity |
| `prefect_ft_dead_letters_pending` | gauge, counted from the store at each scrape of the ops server | breaker |
| `prefect_ft_health_level` | gauge, 0 Healthy .. 3 Critical | component (`system` for the system) |

A call pays nothing for being measured: breakers already count outcomes (`CircuitBreaker.counts`)
and bulkheads their waits, and this module reads them when scraped. `install()` registers one
collector on the default registry, which Prefect's client metrics server (port 4201 inside runs,
`PREFECT_CLIENT_METRICS_ENABLED`) also exposes, so a breaker's series exist from the moment it
is built, before its first transition.

With `PROMETHEUS_MULTIPROC_DIR` set (process pools), values must live in prometheus-client's
per-process files instead: `install()` then copies the same readings into real metric objects
every `sync_seconds` (and at exit) on a daemon thread, and `exposition()` reads every process's
files (`MultiProcessCollector`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from prefect_ft.core.health import Level
from prefect_ft.exceptions import StoreUnavailableError
from prefect_ft.ops.view import breaker_views, bulkhead_views
from prefect_ft.stores import BreakerStore

__all__ = [
    "BREAKER_STATES",
    "CALL_KINDS",
    "CONTENT_TYPE",
    "exposition",
    "install",
    "multiprocess_dir",
    "record_detection",
    "record_recovery",
    "set_dead_letters_pending",
    "set_health_level",
    "set_store_view",
    "sync",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BREAKER_STATES = (
    "CLOSED",
    "OPEN",
    "HALF_OPEN",
    "RECOVERY",
    "FORCED_OPEN",
    "DISABLED",
    "METRICS_ONLY",
)
CALL_KINDS = ("successful", "failed", "ignored", "not_permitted", "slow")

# (name, type, help, labels, multiprocess mode of a gauge)
_LIVE: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "prefect_ft_breaker_state": ("gauge", "1 for the breaker's current state, else 0", ("breaker", "state"), "mostrecent"),
    "prefect_ft_calls_total": ("counter", "Calls through a breaker by outcome", ("breaker", "kind"), ""),
    "prefect_ft_failure_rate": ("gauge", "Failed fraction of the current window (0-1)", ("breaker",), "max"),
    "prefect_ft_slow_call_rate": ("gauge", "Slow fraction of the current window (0-1)", ("breaker",), "max"),
    "prefect_ft_bulkhead_available": ("gauge", "Free bulkhead permits", ("bulkhead",), "livesum"),
    "prefect_ft_bulkhead_max_concurrent": ("gauge", "Bulkhead permits", ("bulkhead",), "livesum"),
    "prefect_ft_bulkhead_waiting": ("gauge", "Callers waiting for a permit", ("bulkhead",), "livesum"),
    "prefect_ft_bulkhead_queue_wait_seconds_total": ("counter", "Seconds callers waited for a permit", ("bulkhead",), ""),
    "prefect_ft_bulkhead_queue_waits_total": ("counter", "Callers that had to wait for a permit", ("bulkhead",), ""),
}  # fmt: skip

_lock = threading.Lock()
_installed = False
_store: BreakerStore | None = None
_objects: dict[str, Any] = {}
_last: dict[tuple[str, tuple[str, ...]], float] = {}


def multiprocess_dir() -> str | None:
    """`PROMETHEUS_MULTIPROC_DIR`, when set (prometheus-client reads it too)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _explicit(cls: type, name: str, doc: str, labels: tuple[str, ...], mode: str = "") -> Any:
    kwargs: dict[str, Any] = {"registry": REGISTRY}
    if mode:
        kwargs["multiprocess_mode"] = mode
    return cls(name, doc, labels, **kwargs)


# Counted where they happen (a recovery, a detection run): real metric objects in both modes.
_RECOVERIES = _explicit(
    Counter, "prefect_ft_recovery", "Recoveries by outcome", ("component", "strategy", "outcome")
)
_FAULTS = _explicit(
    Counter, "prefect_ft_faults_detected", "Alarms raised by detection", ("pattern", "severity")
)
_DEAD_LETTERS = _explicit(
    Gauge, "prefect_ft_dead_letters_pending", "Dead letters waiting", ("breaker",), "mostrecent"
)
_HEALTH = _explicit(
    Gauge, "prefect_ft_health_level", "0 Healthy, 1 Warning, 2 Degraded, 3 Critical",
    ("component",), "mostrecent",
)  # fmt: skip


def record_recovery(component: str, strategy: str, outcome: str) -> None:
    """Count one finished recovery (`outcome`: succeeded, failed, escalated ...)."""
    _RECOVERIES.labels(component, strategy, outcome).inc()


def record_detection(pattern: str, severity: str) -> None:
    """Count one alarm raised by detection."""
    _FAULTS.labels(str(pattern), str(severity)).inc()


def set_dead_letters_pending(breaker: str, count: int) -> None:
    _DEAD_LETTERS.labels(breaker).set(count)


def set_health_level(component: str, level: Level) -> None:
    _HEALTH.labels(component).set(int(level))


def set_store_view(store: BreakerStore | None) -> None:
    """Also report the breakers `store` knows that no object in this process uses (the ops
    server's fleet view)."""
    global _store
    _store = store


def _samples() -> Iterator[tuple[str, tuple[str, ...], float]]:
    """Every live reading as `(metric, label values, value)`."""
    for b in breaker_views(_store):
        for state in BREAKER_STATES:
            yield "prefect_ft_breaker_state", (b.name, state), 1.0 if b.state == state else 0.0
        if b.live:
            for kind in CALL_KINDS:
                yield "prefect_ft_calls_total", (b.name, kind), float(b.counts.get(kind, 0))
            yield "prefect_ft_failure_rate", (b.name,), b.failure_rate
            yield "prefect_ft_slow_call_rate", (b.name,), b.slow_call_rate
    for h in bulkhead_views():
        yield "prefect_ft_bulkhead_available", (h.name,), float(h.available)
        yield "prefect_ft_bulkhead_max_concurrent", (h.name,), float(h.limit)
        yield "prefect_ft_bulkhead_waiting", (h.name,), float(h.waiting)
        yield "prefect_ft_bulkhead_queue_wait_seconds_total", (h.name,), h.waited_seconds
        yield "prefect_ft_bulkhead_queue_waits_total", (h.name,), float(h.waits)


class _LiveCollector:
    """Builds the live families at scrape time (single-process mode)."""

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Any] = {}
        for name, (kind, doc, labels, _) in _LIVE.items():
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            # a counter family is named without `_total`; the sample keeps it
            fam_name = name.removesuffix("_total") if kind == "counter" else name
            families[name] = cls(fam_name, doc, labels=list(labels))
        for name, labels, value in _samples():
            families[name].add_metric(list(labels), value)
        yield from families.values()

    def describe(self) -> list[Metric]:
        return []  # no fixed description: the registry calls collect() for each scrape only


def sync() -> None:
    """Copy the live readings into this process's metric files (multiprocess mode)."""
    with _lock:
        for name, labels, value in _samples():
            obj = _objects.get(name)
            if obj is None:
                kind, doc, names, mode = _LIVE[name]
                if kind == "counter":
                    obj = Counter(name.removesuffix("_total"), doc, names, registry=None)
                else:
                    obj = Gauge(name, doc, names, registry=None, multiprocess_mode=mode)
                _objects[name] = obj
            child = obj.labels(*labels)
            if _LIVE[name][0] == "counter":
                before = _last.get((name, labels), 0.0)
                child.inc(value - before if value >= before else value)  # a rebuilt breaker
                _last[(name, labels)] = value
            else:
                child.set(value)


def _sync_loop(interval: float) -> None:
    ev = threading.Event()
    while not ev.wait(interval):
        try:
            sync()
        except Exception:  # metrics never break the process; the next round tries again
            pass


def install(sync_seconds: float = 1.0) -> None:
    """Export the live metrics from this process (idempotent; cheap after the first call)."""
    global _installed
    if _installed:
        return
    with _lock:
        if _installed:
            return
        _installed = True
    if multiprocess_dir():
        sync()
        atexit.register(sync)
        t = threading.Thread(
            target=_sync_loop, args=(sync_seconds,), name="prefect-ft-metrics", daemon=True
        )
        t.start()
    else:
        REGISTRY.register(_LiveCollector())  # type: ignore[arg-type]


def _count_dead_letters(store: BreakerStore) -> None:
    """Set the pending gauge of every breaker with dead letters (the fleet view reads the
    queues in the store, so the count includes what other processes wrote)."""
    from prefect_ft.deadletter.queue import DeadLetterQueue, dead_letter_breakers

    for name in dead_letter_breakers(store):
        pending = sum(1 for _ in DeadLetterQueue(name, store=store).items("pending"))
        set_dead_letters_pending(name, pending)


def exposition() -> bytes:
    """The text a scrape gets: the default registry, or every process's files in multiprocess
    mode."""
    install()
    if _store is not None:
        with contextlib.suppress(StoreUnavailableError):  # the rest of the scrape still answers
            _count_dead_letters(_store)
    if multiprocess_dir():
        from prometheus_client import multiprocess

        sync()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
