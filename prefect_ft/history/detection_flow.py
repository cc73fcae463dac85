"""The body of the `detect-failures` flow: history in, `prefect-ft.fault.detected` events out.

One run: load the engine's state from the store (where the last run left it), read task runs
(each failed attempt of a retried run is a row) and the resource samples that `ft_task` records
(`prefect_ft.history.resources`) since the saved watermark (`prefect_ft.history`), run the pure
`DetectionEngine`, emit one event per new alarm, write a markdown artifact, log what was skipped,
and save the state with compare-and-set. The engine's state carries each detector's hold-off, so
a saved and restored engine never alarms twice for one episode.

`flows/detect_failures.py` is the deployable entrypoint; this module holds the logic.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import replace
from typing import Any

from prefect_ft.detection import (
    PIPELINE,
    Alarm,
    DetectionEngine,
    EngineConfig,
    ResourceBatch,
    Skipped,
)
from prefect_ft.history.reader import MAX_RETRIED_RUNS, read_history, read_resource_samples
from prefect_ft.history.replays import with_replays
from prefect_ft.history.snapshot import dump_history, load_history
from prefect_ft.stores import BreakerStore, shared_store
from prefect_ft.tasks.events import component_resource_id

__all__ = [
    "DEFAULT_STATE_KEY",
    "FAULT_EVENT",
    "detect",
    "dump_history",
    "emit_alarm",
    "engine_config",
    "load_detection_state",
    "load_history",
    "save_detection_state",
]

FAULT_EVENT = "prefect-ft.fault.detected"
DEFAULT_STATE_KEY = "prefect-ft:detection:state"
_RECORD_VERSION = 1
_log = logging.getLogger("prefect_ft.detection_flow")


def _logger() -> Any:
    try:
        from prefect.logging import get_run_logger

        return get_run_logger()
    except Exception:  # outside a flow run (CLI, tests): plain logging
        return _log


def engine_config(
    components: list[str] | tuple[str, ...] | None = None,
    edges: list[list[str]] | list[tuple[str, str]] | None = None,
) -> EngineConfig:
    """The engine config: the RAN pipeline by default; custom components have no edges unless given."""
    if not components:
        return EngineConfig()
    comps = tuple(components)
    if edges is None:
        edges = list(itertools.pairwise(PIPELINE)) if comps == PIPELINE else []
    return EngineConfig(comps, tuple((str(u), str(d)) for u, d in edges))


def load_detection_state(
    config: EngineConfig, *, key: str = DEFAULT_STATE_KEY, store: BreakerStore | str | None = None
) -> tuple[DetectionEngine, float | None, int, list[Skipped]]:
    """The engine and history watermark saved under `key`, plus the record's version.

    A missing, unreadable or foreign record (another engine version or component set) starts a
    fresh engine; the reason comes back as a `Skipped` instead of an exception.
    """
    rec = shared_store(store).read(key)
    if rec.data is None:
        return DetectionEngine(config), None, rec.version, []
    try:
        data = json.loads(rec.data)
        engine = DetectionEngine.from_state(config, data["engine"])
        return engine, data.get("read_until"), rec.version, []
    except (ValueError, KeyError, TypeError) as exc:
        why = Skipped("state_reset", 0, f"saved detection state not usable, starting fresh: {exc}")
        after = None
        try:
            after = json.loads(rec.data).get("read_until")
        except (ValueError, AttributeError):
            pass
        return DetectionEngine(config), after, rec.version, [why]


def save_detection_state(
    engine: DetectionEngine,
    read_until: float | None,
    version: int,
    *,
    key: str = DEFAULT_STATE_KEY,
    store: BreakerStore | str | None = None,
) -> bool:
    """Save the engine and watermark if the record is still at `version` (compare-and-set).

    Returns:
        False when another detection run saved in between (its state is kept; this run's
        alarms were already emitted, so the other run's hold-offs stand).
    """
    data = {"version": _RECORD_VERSION, "read_until": read_until, "engine": engine.state()}
    ok, _ = shared_store(store).cas(key, version, json.dumps(data))
    return ok


def emit_alarm(alarm: Alarm) -> None:
    """Emit one `prefect-ft.fault.detected` event for `alarm`.

    The first component is the resource; the others are related resources (role `component`),
    so an automation can match any affected component.
    """
    from prefect.events import emit_event

    first, *others = alarm.components
    emit_event(
        FAULT_EVENT,
        resource={
            "prefect.resource.id": component_resource_id(first),
            "prefect.resource.name": first,
            "prefect-ft.component": first,
            "prefect-ft.pattern": str(alarm.pattern),
            "prefect-ft.severity": str(alarm.severity),
        },
        related=[
            {
                "prefect.resource.id": component_resource_id(c),
                "prefect.resource.role": "component",
                "prefect.resource.name": c,
            }
            for c in others
        ],
        payload=alarm.to_dict(),
    )
    from prefect_ft.ops.alerts import alert_on  # deduplicated, rate-limited notification

    alert_on(FAULT_EVENT, first, alarm.to_dict())


def _markdown(summary: dict[str, Any], alarms: tuple[Alarm, ...]) -> str:
    lines = [
        "# Fault detection",
        "",
        f"Window ends {summary['read_until']}; {summary['runs_read']} task runs read, "
        f"plus {summary['failed_attempts']} failed attempts of "
        f"{summary['retried_runs']} retried runs.",
        "",
        "| component | rows | failed | alarms |",
        "|---|---|---|---|",
    ]
    for comp, stats in summary["components"].items():
        lines.append(f"| {comp} | {stats['rows']} | {stats['failed']} | {stats['alarms']} |")
    lines += ["", "## Alarms", ""]
    if not alarms:
        lines.append("No new alarms.")
    for a in alarms:
        lines.append(
            f"- **{a.pattern}** {', '.join(a.components)}: {a.severity}, {a.failure_type}, "
            f"score {a.score:.2f}. {a.explanation}"
        )
    if summary["skipped"]:
        lines += ["", "## Skipped input", ""]
        lines += [f"- {s['reason']} ({s['count']}): {s['detail']}" for s in summary["skipped"]]
    return "\n".join(lines)


def detect(
    components: list[str] | None = None,
    edges: list[list[str]] | None = None,
    *,
    state_key: str = DEFAULT_STATE_KEY,
    store: BreakerStore | str | None = None,
    lag_s: float = 5.0,
    max_age_s: float = 6 * 3600.0,
    until: float | None = None,
    page_limit: int = 200,
    artifact_key: str | None = "prefect-ft-detection",
    dashboard_key: str | None = "prefect-ft-dashboard",
    emit: bool = True,
    max_retried_runs: int = MAX_RETRIED_RUNS,
    run_baseline_min_tasks: int = 0,
    config: EngineConfig | None = None,
    history_out: str | None = None,
    replays: bool = False,
) -> dict[str, Any]:
    """One detection pass (the `detect-failures` flow calls this).

    Args:
        components: component names (default: the RAN pipeline).
        edges: dependency edges `[upstream, downstream]` for cascades.
        state_key: store key of the engine state and watermark.
        store: a store or URL; default the shared store.
        lag_s: history lags events; read only up to `now - lag_s`.
        max_age_s: how far back the first run reads.
        until: the window end (tests); default `now - lag_s`.
        page_limit: rows per API call (at most 200).
        artifact_key: key of the markdown artifact; None writes none.
        dashboard_key: key of the dashboard table artifact (`prefect_ft.ops.dashboard`);
            None writes none.
        emit: emit `prefect-ft.fault.detected` events.
        max_retried_runs: retried task runs whose failed attempts are read per pass (each costs
            one API call); the rest are reported as skipped input.
        run_baseline_min_tasks: > 0 learns burst baselines from each component's own earlier
            tasks (`EngineConfig.run_baseline_min_tasks`), for a history of a short run.
        config: the whole engine config (its components and edges win over `components` and
            `edges`), for the short-history knobs of `EngineConfig`.
        history_out: a JSON file to write the rows and samples read (`load_history` reads it
            back), so a pass can be replayed offline against the same input.

    Returns:
        A JSON-ready summary: alarms, skipped input, watermark, counts, whether the state saved.
    """
    log = _logger()
    config = config if config is not None else engine_config(components, edges)
    if run_baseline_min_tasks:
        config = replace(config, run_baseline_min_tasks=run_baseline_min_tasks)
    engine, after, version, skipped = load_detection_state(config, key=state_key, store=store)
    hist = read_history(
        config.components,
        after,
        until=until,
        lag_s=lag_s,
        max_age_s=max_age_s,
        page_limit=page_limit,
        max_retried_runs=max_retried_runs,
    )
    if hist.ignored.get("retried_runs_over_cap"):
        skipped.append(
            Skipped(
                "retried_runs_over_cap",
                hist.ignored["retried_runs_over_cap"],
                f"retried task runs whose failed attempts were not read "
                f"(max_retried_runs={max_retried_runs})",
            )
        )
    if hist.unknown_components:
        skipped.append(
            Skipped(
                "unknown_component",
                sum(hist.unknown_components.values()),
                f"task runs of components the engine does not watch: {hist.unknown_components}",
            )
        )
    if not len(hist.batch):
        skipped.append(
            Skipped(
                "no_history",
                0,
                f"no finished task runs of {list(config.components)} ended in "
                f"({after}, {hist.until}]",
            )
        )
    res: ResourceBatch = read_resource_samples(config.components, after, hist.until, store=store)
    if replays:
        hist = replace(hist, batch=with_replays(hist.batch, after, hist.until, store=store))
    if history_out:
        dump_history(history_out, hist.batch, res, hist.until)
    result = engine.update(hist.batch, res, until=hist.until, running=hist.running)
    skipped += list(result.skipped)
    for s in skipped:
        log.warning("detection skipped input: %s (%d): %s", s.reason, s.count, s.detail)
    emitted = 0
    if emit:
        for alarm in result.alarms:
            emit_alarm(alarm)
            emitted += 1
    per_comp: dict[str, dict[str, int]] = {}
    for i, comp in enumerate(config.components):
        mine = hist.batch.component == i
        per_comp[comp] = {
            "rows": int(mine.sum()),
            "failed": int((mine & hist.batch.failed).sum()),
            "alarms": sum(comp in a.components for a in result.alarms),
        }
    # saved only after the events went out: a run that dies in between re-detects next time
    # (an alarm may repeat), never loses one
    saved = save_detection_state(engine, hist.until, version, key=state_key, store=store)
    if not saved:
        log.warning("another detection run saved its state first; this run's state is dropped")
    summary: dict[str, Any] = {
        "alarms": [a.to_dict() for a in result.alarms],
        "skipped": [{"reason": s.reason, "count": s.count, "detail": s.detail} for s in skipped],
        "read_after": after,
        "read_until": hist.until,
        "engine_watermark": engine.watermark,
        "runs_read": hist.runs,
        "retried_runs": hist.retried_runs,
        "failed_attempts": hist.failed_attempts,
        "resource_samples": len(res),
        "ignored": hist.ignored,
        "unknown_components": hist.unknown_components,
        "components": per_comp,
        "events_emitted": emitted,
        "state_saved": saved,
        "artifact_id": None,
    }
    for a in result.alarms:
        log.info("alarm %s on %s: %s", a.pattern, ", ".join(a.components), a.explanation)
    from prefect_ft.ops.dashboard import publish_dashboard, record_alarms

    opened = shared_store(store)
    record_alarms(opened, result.alarms)  # health in every process sees them; Prometheus counts
    if dashboard_key:
        rates = {c: s["failed"] / s["rows"] for c, s in per_comp.items() if s["rows"]}
        summary["dashboard_id"] = publish_dashboard(opened, config.components, rates, dashboard_key)
    if artifact_key:
        from prefect.artifacts import create_markdown_artifact

        art = create_markdown_artifact(
            _markdown(summary, result.alarms),
            key=artifact_key,
            description=f"{len(result.alarms)} new alarm(s)",
        )
        summary["artifact_id"] = str(art) if art is not None else None
    return summary
