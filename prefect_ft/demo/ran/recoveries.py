"""Recovery inside the demo: a breaker listener that runs `recover` when a breaker opens.

When the breaker of a component with a control endpoint (the model server: `ml-inference` and
`ipc`) opens, `DemoRecovery` runs recovery (`prefect_ft.recovery.executor.arecover`, the body of
the `recover` flow) in this process, in a thread of its own: the failure type of the component's last error picks the strategy (connection
reset, model reload, graceful restart), the control calls go to the real model server, three deep
health checks validate, and `mark_recovered` moves the breaker to HALF_OPEN, so the pipeline
resumes well before the open time ends. At most one recovery per component runs at a time; a
breaker that reopens after a failed recovery starts the next one. Each run's `RecoveryReport` is
kept (`records()`) for the demo's report.

Beside `prefect-ft serve` (the demo's default, `--recovery both`): the served `recover` run and
this listener both answer an opening and share the component's recovery lease in the store, so
one acts and the other is refused; `with_served` merges the served runs into the records and
`served_lines` says which acted. The listener stays because on 2 busy cores a served run waits
for the automation, the runner's poll and a new flow process, and the event carries no failure
type. The executor rather than the `recover` flow (`use_flow=True`) by default:
measured at load ~20, the flow's run began its first attempt 34 s after the breaker opened (flow
run creation and state writes through a busy API), by which time a later fault had struck; the
executor's first control call goes out at once. Its events (`prefect-ft.recovery.*`) are the same.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["DemoRecovery", "failure_type_of", "served_lines", "with_served"]

log = logging.getLogger("prefect_ft.demo.recovery")
FLOWS = Path(__file__).resolve().parents[3] / "flows" / "recovery.py"


def failure_type_of(exc: BaseException | None, component: str) -> str | None:
    """The failure type (DESIGN §7) of a component's error, None when there was none."""
    if exc is None:
        return None
    from prefect_ft.detection.classify import classify_exception

    if type(exc).__name__ == "InjectedFault" and component == "ml-inference":
        return "ModelInferenceError"  # the schedule's error burst stands for a failed generation
    return str(classify_exception(exc, component=component).failure_type)


def _load_flow() -> Any:
    """The deployable `recover` flow when the repository is here, else None (run the executor)."""
    if not FLOWS.exists():
        return None
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(f"{FLOWS}:recover")


class DemoRecovery:
    """A breaker listener (`add_global_listener(rec)`) that recovers the components it watches."""

    def __init__(
        self,
        components: Iterable[str],
        last_error: Callable[[str], BaseException | None],
        *,
        check_interval_seconds: float = 0.5,
        max_run_seconds: float = 120.0,
        action_timeout_seconds: float = 90.0,
        validation_timeout_seconds: float = 20.0,
        use_flow: bool = False,
    ) -> None:
        self.components = frozenset(components)
        self._last_error = last_error
        self._interval, self._max_run = check_interval_seconds, max_run_seconds
        # a restart respawns a crashed model server: about 30 s of imports on a loaded machine
        self._action_timeout = action_timeout_seconds
        # shorter than the policy's 120 s: an action that did not help (a connection reset of a
        # dead process) gives way to the next phase (a restart) within the open time
        self._validation_timeout = validation_timeout_seconds
        self._flow = _load_flow() if use_flow else None
        self._lock = threading.Lock()
        self._running: dict[str, threading.Thread] = {}
        self._threads: list[threading.Thread] = []
        self._records: list[dict[str, Any]] = []
        self._closed = False

    def __call__(self, breaker: Any, event: Any) -> None:
        # a remote event is the same opening seen by another breaker object (the executor's)
        if event.to_state != "OPEN" or breaker.name not in self.components or event.remote:
            return
        comp = breaker.name
        with self._lock:
            running = self._running.get(comp)
            if self._closed or (running is not None and running.is_alive()):
                return  # one at a time: the running one answers this opening too
            t = threading.Thread(
                target=self._run,
                args=(comp, self._last_error(comp), f"breaker opened: {event.reason}", time.time()),
                name=f"recover-{comp}",
                daemon=True,
            )
            self._running[comp] = t
            self._threads.append(t)
        t.start()  # not in the listener's thread: the breaker's transition must not wait

    def _run(self, comp: str, error: Any, reason: str, opened_at: float) -> None:
        ftype = None
        try:  # classified here, not in the listener: the breaker's transition must not wait
            ftype = failure_type_of(error, comp)
            rec = asyncio.run(self._recover(comp, ftype, reason))
        except Exception as exc:  # a recovery that cannot run is reported, never fatal
            rec = {
                "component": comp,
                "outcome": "failed",
                "message": f"{type(exc).__name__}: {exc}",
            }
        rec.update(opened_at=opened_at, ended_at=time.time(), by="in-process listener")
        log.warning("recovery of %s: %s (%s)", comp, rec.get("outcome"), rec.get("message"))
        with self._lock:
            self._records.append(rec)

    async def _recover(self, comp: str, ftype: str | None, reason: str) -> dict[str, Any]:
        if self._flow is not None:
            state = await self._flow(
                component=comp,
                failure_type=ftype,
                reason=reason,
                check_interval_seconds=self._interval,
                max_run_seconds=self._max_run,
                action_timeout_seconds=self._action_timeout,
                return_state=True,
            )
            if state.is_completed():
                return dict(await state.result())
            # a failed run's message is the report's one line; its report is the artifact
            return {
                "component": comp,
                "failure_type": ftype,
                "outcome": "failed",
                "message": state.message,
            }
        from prefect_ft.recovery.executor import RecoveryOptions, arecover

        options = RecoveryOptions(
            check_interval_seconds=self._interval,
            max_run_seconds=self._max_run,
            action_timeout_seconds=self._action_timeout,
            validation_timeout_seconds=self._validation_timeout,
        )
        return (await arecover(comp, None, ftype, reason, options=options)).to_dict()

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return sorted(self._records, key=lambda r: r["opened_at"])

    def close(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Start no more; wait (up to `timeout` s in all) for those running; their records."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return self.records()


def with_served(
    records: list[dict[str, Any]],
    served: list[dict[str, Any]],
    transitions: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The in-process records plus the served runs that acted (not those refused the lease),
    each served one timed from its breaker's last opening before the run started."""
    out = list(records)
    for run in served:
        if run["outcome"] == "refused":
            continue
        opens = [
            t["at"] for t in transitions
            if t["breaker"] == run["component"] and t["to"] == "OPEN"
            and run["started_at"] is not None and t["at"] <= run["started_at"]
        ]  # fmt: skip
        out.append({**run, "opened_at": max(opens) if opens else run["started_at"]})
    return sorted(out, key=lambda r: r.get("opened_at") or 0.0)


def served_lines(
    served: list[dict[str, Any]],
    mode: str,
    started: bool,
    openings: int = 0,
    failed_actions: list[str] | None = None,
) -> list[str]:
    """The report's lines about the served `recover` runs: how many of the `openings` (each
    one's event asks for a run) got a run before the end, and which acted."""
    if not started:
        return [f"prefect-ft serve: not started (--recovery {mode})"]
    acted = [r for r in served if r["outcome"] in ("succeeded", "failed")]
    refused = [r for r in served if r["outcome"] == "refused"]
    lines = [
        f"served recover runs (prefect-ft serve, on prefect-ft.breaker.opened): {len(served)} "
        f"for {openings} openings, {len(acted)} acted, {len(refused)} did nothing (the lease "
        "was held, the breaker had moved on, or the component has no control channel)"
    ]
    if len(served) < openings:
        lines.append(
            f"  {openings - len(served)} opening(s) got no run before the end: the automation "
            "creates it through the busy API (a minute or more on 2 loaded cores, SQLite)"
        )
    for reason in failed_actions or ():
        lines.append(f"  automation action failed: {reason}")
    for r in served:
        took = (
            f", ran {r['ended_at'] - r['started_at']:.1f}s"
            if r["started_at"] and r["ended_at"]
            else ""
        )
        lines.append(
            f"  {r['flow_run_name']} ({r['flow_run_id']}): {r['component']} {r['outcome']}"
            f"{took}: {r['message']}"
        )
    return lines
