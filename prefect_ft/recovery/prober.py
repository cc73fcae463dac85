"""The active health check's driver: one thread per breaker, alive only while it has work.

What to do with an answer is decided in `prefect_ft.core.probe`; this module only runs the
breaker's `health_check` (a sync callable, or an async one run on this thread's own loop, so
both share one body), times it with the breaker's clock and writes the decision through the
breaker's compare-and-set path.

The thread starts when the breaker opens (in this process or, seen through the store, in another
one) or when a failure asks for a confirming check, and ends when no check is due (the breaker
left OPEN); it holds the breaker weakly. The checks of an open period are run by one process
at a time, the holder of the prober lease (`core.probe.take_lease`, a compare-and-set key next
to the breaker's record): the others wait an interval and look again. A store that cannot be
reached does not stop the checks: then every process checks on its own.

`DeepHealth(url)` is the check for a component with a control channel: its deep `/health`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import socket
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from prefect_ft.core import probe, readiness
from prefect_ft.core.events import BreakerEvent
from prefect_ft.core.states import OPEN

__all__ = ["DeepHealth", "HealthProber", "run_check"]

log = logging.getLogger("prefect_ft.prober")


@dataclass(frozen=True, slots=True)
class DeepHealth:
    """A health check that asks a control channel's deep `/health` (equal by URL and timeout).

    `url` is a `ComponentSpec.control_endpoint`: `http(s)://HOST:PORT[/PREFIX]` or
    `python:module:attr` (`prefect_ft.recovery.client.connect`).
    """

    url: str
    timeout: float = 2.0

    def __call__(self) -> object:
        from prefect_ft.recovery.client import connect

        return connect(self.url, timeout=self.timeout).health(deep=True)


def run_check(check: Any) -> bool:
    """Call `check` (sync or async) once: True when it answers healthy (`probe.healthy_answer`)."""
    try:
        answer = check()
        if inspect.isawaitable(answer):
            answer = asyncio.run(_awaited(answer))
    except Exception as exc:  # a check that cannot run is a failed check (as the control server)
        log.debug("health check %r failed: %s", check, exc)
        return False
    return probe.healthy_answer(answer)


async def _awaited(answer: Any) -> Any:
    return await answer


class HealthProber:
    """Runs one breaker's health check when `core.probe` says one is due.

    It is the breaker's listener (an `opened` event starts it); `poke(confirm=True)` after a
    failure asks for a confirming check. `step()` is the whole loop body; with
    `threaded=False` nothing runs it but the caller (tests, with a fake clock).
    """

    def __init__(self, breaker: Any, *, threaded: bool = True) -> None:
        self._breaker = weakref.ref(breaker)
        self._threaded = threaded
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._confirm = False
        self.last_at: float | None = None  # when the last check started (store clock)
        self.checks = 0
        # the lease is per process (host and pid), not per prober: a breaker rebuilt in the same
        # process takes its predecessor's lease over at once instead of waiting it out
        self._me = f"{socket.gethostname()}:{os.getpid()}"
        self._period: float | None = None  # opened_at of the open period being checked
        self.period_checks = 0  # checks run in that period: the backoff's exponent

    def __call__(self, breaker: Any, event: BreakerEvent) -> None:
        if event.kind == "opened":
            self.poke()

    def poke(self, *, confirm: bool = False) -> None:
        """Wake the thread (start it if it is not running); `confirm`: a failure just landed."""
        if confirm:
            breaker = self._breaker()
            if breaker is None or breaker.config.probe_confirm_failures is None:
                return  # no confirming checks configured: no thread for a failure
        with self._guard:
            if confirm:
                self._confirm = True
            self._wake.set()
            if self._thread is None and self._threaded:
                self._thread = threading.Thread(target=self._run, name="prefect-ft-prober", daemon=True)  # fmt: skip
                self._thread.start()

    def step(self) -> float | None:
        """Run a check if one is due; seconds until the next one, or None when none is due."""
        breaker = self._breaker()
        if breaker is None:
            return None
        with self._guard:  # take the request first: the record read after it shows its failure
            asked, self._confirm = self._confirm, False
        cfg, rec, now = breaker.config, breaker.record, breaker.now()
        if rec.opened_at != self._period:  # a new open period: the backoff starts over
            self._period, self.period_checks = rec.opened_at, 0
        confirm = asked and probe.confirm_wanted(rec, cfg)
        delay = probe.probe_delay(rec, cfg, now, self.last_at, self.period_checks)
        if not confirm and delay is None:
            return None
        if not confirm and delay:
            return delay
        if confirm and delay is None and self.last_at is not None:
            # confirming checks while CLOSED: at most one per interval (1 s without one), so a
            # partial error burst does not turn into a stream of checks
            spacing = cfg.probe_interval_seconds or 1.0
            if now < self.last_at + spacing:
                with self._guard:
                    self._confirm = True
                return self.last_at + spacing - now
        if not confirm and not readiness.pending(rec) and not self._leased(breaker, now):
            return probe.probe_interval(cfg, self.period_checks) or 1.0  # another process checks
        self.last_at = now
        self.checks += 1
        if rec.state == OPEN:
            self.period_checks += 1
        k = self.period_checks
        healthy = run_check(cfg.health_check)
        u = breaker._rng()
        t = breaker._apply(
            lambda r, n: probe.on_health(r, cfg, n, healthy, u=u, checks=k, started=now)
        )
        if t.record.state == OPEN and t.events:  # this (confirming) check opened the breaker:
            # it is the open period's first check, not a reason to run another at once
            self._period, self.period_checks = t.record.opened_at, 1
            k = 1
            self.last_at = t.record.opened_at
        return probe.probe_delay(breaker.record, cfg, breaker.now(), self.last_at, k)

    def _leased(self, breaker: Any, now: float) -> bool:
        """Take or renew the prober lease (compare-and-set); True when this prober holds it."""
        store, key = breaker.store, f"prefect-ft:prober:{breaker.name}"
        ttl = probe.lease_ttl(breaker.config, self.period_checks + 1)
        try:
            for _ in range(4):
                v = store.read(key)
                lease = tuple(json.loads(v.data)) if v.data else None
                mine, new = probe.take_lease(lease, self._me, v.store_time, ttl)  # type: ignore[arg-type]
                if not mine:
                    return False
                ok, _ = store.cas(key, v.version, json.dumps(new))
                if ok:
                    return True
            return False  # lost four races in a row: someone else is checking
        except Exception as exc:  # no store: check anyway (the component must not stay shut out)
            log.debug("prober lease for %s unavailable: %s", breaker.name, exc)
            return True

    def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                delay = self.step()
            except Exception:  # never let the thread die with work left: retry a little later
                log.exception("health prober failed; retrying in 1 s")
                delay = 1.0
            with self._guard:
                if delay is None and not self._wake.is_set():
                    self._thread = None
                    return
            if delay:
                self._wake.wait(delay)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (tests); it ends once the breaker leaves OPEN."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
