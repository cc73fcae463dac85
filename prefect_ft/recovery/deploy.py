"""prefect-ft's deployments and their triggers, written once (`prefect-ft serve` and prefect.yaml).

`DEPLOYMENTS` is the one definition: `prefect-ft serve` builds Runner deployments from it, and
`deployments/prefect.yaml` holds the same deployments for `prefect deploy --all` to a process
work pool (a test keeps the two equal through `yaml_deployments`). Triggers are written in
prefect.yaml's trigger form and validated by Prefect's own `DeploymentTriggerTypes`, so both
paths create the same automations.

Templated parameters use the explicit `{"__prefect_kind": "jinja", "template": ...}` form: since
3.6.24 the server wraps a bare `"{{ x }}"` string in `tojson` (Prefect issue #16399 and
research/prefect.md §5), which changes what arrives. Lists and nulls are rendered as JSON and
parsed (`as_json`). A label the event lacks renders as "": `recover` gets `component=""` and
fails with a one-line reason instead of never running.

Idempotency is Prefect's: a deployment is upserted by (flow, name), and applying it deletes the
automations the deployment owns before creating its triggers again, so applying twice leaves
one automation per trigger. This module does not run flows or decide recoveries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

__all__ = [
    "DEPLOYMENTS",
    "RECOVERY_POLL_SECONDS",
    "DeploymentDef",
    "as_json",
    "jinja",
    "runner_deployments",
    "triggers_of",
    "yaml_deployments",
]

# Runs reach a served deployment on the runner's next poll (10 s by default, DESIGN §10); the
# recovery path budgets 10 s from "breaker opened" to "recovery running", so poll every second.
# One poll is one API call for all served deployments together.
RECOVERY_POLL_SECONDS = 1.0


def jinja(template: str) -> dict[str, str]:
    """A parameter rendered from the triggering event (explicit form: never wrapped in tojson)."""
    return {"__prefect_kind": "jinja", "template": template}


def as_json(value: dict[str, str]) -> dict[str, Any]:
    """A parameter parsed as JSON after rendering `value` (for a list or a number)."""
    return {"__prefect_kind": "json", "value": value}


# `prefect-ft.component` is a label of every breaker event's resource (prefect_ft.tasks.events)
# and of every `prefect-ft.fault.detected` resource (prefect_ft.history.detection_flow).
_COMPONENT = jinja("{{ event.resource.get('prefect-ft.component', '') }}")
# None (JSON null) when the event names no failure type: the recovery decisions take None for
# "unknown cause" and refuse any other name they do not know, "" included.
_FAILURE_TYPE = as_json(jinja("{{ (event.payload.get('failure_type') or none) | tojson }}"))


@dataclass(frozen=True)
class DeploymentDef:
    """One prefect-ft deployment.

    Attributes:
        name: the deployment name.
        entrypoint: `path/to/file.py:flow_function`, relative to the repository root.
        description: shown in the UI.
        parameters: default parameters.
        triggers: prefect.yaml trigger mappings (`type: event`, `match`, `expect`, ...).
        interval_seconds: a schedule every this many seconds; None for none.
        concurrency_limit: at most this many runs at once; None for no limit.
    """

    name: str
    entrypoint: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    triggers: tuple[Mapping[str, Any], ...] = ()
    interval_seconds: int | None = None
    concurrency_limit: int | None = None


def _event_trigger(name: str, resource: str, event: str, parameters: dict[str, Any]) -> dict:
    return {
        "type": "event",
        "name": name,
        "enabled": True,
        "match": {"prefect.resource.id": resource},
        "expect": [event],
        "parameters": parameters,
    }


# one deployment per strategy flow of flows/recovery.py (deployment name == flow name)
_STRATEGIES = (
    "connection-reset",
    "model-reload",
    "graceful-restart",
    "resource-reallocation",
    "validation-reset",
)

DEPLOYMENTS: tuple[DeploymentDef, ...] = (
    DeploymentDef(
        name="detect-failures",
        entrypoint="flows/detect_failures.py:detect_failures",
        description="Scan task-run history for fault patterns and emit prefect-ft.fault.detected.",
        # one scan at a time: consecutive runs share the detector state (compare-and-set)
        concurrency_limit=1,
        interval_seconds=300,
    ),
    DeploymentDef(
        name="replay-dead-letters",
        entrypoint="flows/replay_dead_letters.py:replay_dead_letters",
        description="Re-run calls that a breaker rejected, once it admits calls again.",
        concurrency_limit=1,
        parameters={"wait_seconds": 60},
        triggers=(
            _event_trigger(
                "prefect-ft: breaker closed -> replay-dead-letters",
                "prefect-ft.breaker.*",
                "prefect-ft.breaker.closed",
                # a list: a template renders one string, so render JSON and parse it. (A jinja
                # mapping inside a list is "upgraded" by the server like a bare string.)
                {"breakers": as_json(jinja("[{{ event.resource.name | tojson }}]"))},
            ),
        ),
    ),
    DeploymentDef(
        name="recover",
        entrypoint="flows/recovery.py:recover",
        description="Heal a component: pick a strategy, act on its control channel, validate, "
        "and move its breaker.",
        triggers=(
            _event_trigger(
                "prefect-ft: breaker opened -> recover",
                "prefect-ft.breaker.*",
                "prefect-ft.breaker.opened",
                {
                    "component": _COMPONENT,
                    # breaker events carry no failure type unless the guard adds one
                    "failure_type": _FAILURE_TYPE,
                    "reason": jinja(
                        "breaker {{ event.resource.name }} opened: "
                        "{{ event.payload.get('reason') or 'no reason given' }}"
                    ),
                    # a run that starts after the component recovered (another recovery, a
                    # readiness push) must not act on a component that is serving again
                    "skip_if_closed": True,
                },
            ),
            _event_trigger(
                "prefect-ft: fault detected -> recover",
                "prefect-ft.component.*",
                "prefect-ft.fault.detected",
                {
                    "component": _COMPONENT,
                    "failure_type": _FAILURE_TYPE,
                    "reason": jinja(
                        "{{ event.resource.get('prefect-ft.severity', '') }} "
                        "{{ event.resource.get('prefect-ft.pattern', 'fault') }} detected: "
                        "{{ event.payload.get('explanation') or '' }}"
                    ),
                },
            ),
        ),
    ),
    *(
        DeploymentDef(
            name=strategy,
            entrypoint=f"flows/recovery.py:{strategy.replace('-', '_')}",
            description=f"Recovery by {strategy} only (one attempt, then validation); by hand "
            "or from an operator's automation.",
        )
        for strategy in _STRATEGIES
    ),
    DeploymentDef(
        name="health-sweep",
        entrypoint="flows/health_sweep.py:health_sweep",
        description="Deep-check every component with a control channel; start recovery for "
        "unhealthy ones that no event reported.",
        concurrency_limit=1,
        interval_seconds=60,
    ),
    # the users' pipeline, so a work pool runs it beside recovery (the scaled stack, issue 11)
    DeploymentDef(
        name="ran-pipeline",
        entrypoint="flows/ran_pipeline.py:ran_pipeline",
        description="The RAN pipeline: documents -> question-answer records -> checked dataset "
        "(give model_url and work_dir).",
    ),
)


def triggers_of(deployment: DeploymentDef) -> list[Any]:
    """The deployment's triggers as Prefect trigger models (validated the way `prefect deploy` does)."""
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(DeploymentTriggerTypes)
    return [adapter.validate_python(dict(t)) for t in deployment.triggers]


def yaml_deployments(
    deployments: Iterable[DeploymentDef] = DEPLOYMENTS, work_pool: str | None = "ft-pool"
) -> list[dict[str, Any]]:
    """The `deployments:` list of a prefect.yaml holding `deployments` (what a test compares)."""
    out = []
    for d in deployments:
        entry: dict[str, Any] = {
            "name": d.name,
            "description": d.description,
            "entrypoint": d.entrypoint,
        }
        if d.concurrency_limit is not None:
            entry["concurrency_limit"] = d.concurrency_limit
        if d.parameters:
            entry["parameters"] = dict(d.parameters)
        if d.interval_seconds is not None:
            entry["schedules"] = [{"interval": d.interval_seconds}]
        if d.triggers:
            entry["triggers"] = [dict(t) for t in d.triggers]
        if work_pool:
            entry["work_pool"] = {"name": work_pool}
        out.append(entry)
    return out


def runner_deployments(
    root: Path, deployments: Iterable[DeploymentDef] = DEPLOYMENTS, *, schedules: bool = True
) -> list[Any]:
    """`RunnerDeployment`s for `prefect.serve`, their flows loaded from `root` (the repo root).

    With `schedules=False` the schedules are created paused (events still trigger runs).

    Raises:
        ValueError: an entrypoint's file is missing under `root` (names the deployment).
    """
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Interval

    out = []
    for d in deployments:
        path, func = d.entrypoint.split(":")
        file = (root / path).resolve()
        if not file.is_file():
            raise ValueError(f"deployment {d.name!r}: entrypoint file {file} does not exist")
        flow = load_flow_from_entrypoint(f"{file}:{func}")
        every = timedelta(seconds=d.interval_seconds) if d.interval_seconds else None
        intervals = [Interval(every, active=schedules)] if every else None
        out.append(
            flow.to_deployment(
                name=d.name,
                description=d.description,
                parameters=dict(d.parameters) or None,
                triggers=triggers_of(d),
                schedules=intervals,
                concurrency_limit=d.concurrency_limit,
                # a previous serve paused its deployments on shutdown: serving resumes them
                paused=False,
            )
        )
    return out
