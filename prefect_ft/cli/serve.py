"""`prefect-ft serve`: every prefect-ft deployment from one process, with its automations.

It builds the deployments of `prefect_ft.recovery.deploy.DEPLOYMENTS` from the flows in
`<root>/flows/` and serves them with `prefect.serve` (one `Runner`, one API poll for all of them
every `--poll-seconds`: 1 s by default instead of Prefect's 10 s, so an automation's recovery
run starts within about a second of being created). Applying a deployment upserts it and
replaces the automations it owns, so running `serve` twice, or after `prefect deploy --all` of
`deployments/prefect.yaml`, leaves one deployment per name and one automation per trigger.

Flow-run processes inherit `PREFECT_LOGGING_EXTRA_LOGGERS=prefect_ft`, so prefect-ft's log lines
inside a run reach the run's logs in the UI. When `prefect_ft.ops.server` is installed, the ops
server (`/health`, `/metrics`) starts beside the runner on `--ops-port` (default
`PREFECT_FT_METRICS_PORT`, else 9464; `--no-ops` for none).

This module does not define the deployments (`prefect_ft.recovery.deploy`) or run recoveries.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["serve"]

_POLL_RANGE = (0.2, 60.0)
_OPS_DEFAULT_PORT = 9464  # `prefect-ft ops-server`'s default (prometheus-client's custom)


def _fail(message: str) -> int:
    print(f"prefect-ft: error: {message}", file=sys.stderr)
    return 1


def _child_environment(poll_seconds: float) -> None:
    """Settings the flow-run processes inherit (they read them at start-up)."""
    extra = [n for n in os.environ.get("PREFECT_LOGGING_EXTRA_LOGGERS", "").split(",") if n]
    if "prefect_ft" not in extra:
        os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"] = ",".join([*extra, "prefect_ft"])
    os.environ["PREFECT_RUNNER_POLL_FREQUENCY"] = str(max(1, round(poll_seconds)))


@contextmanager
def _ops_server(port: int | None) -> Iterator[Any]:
    """The ops server when `prefect_ft.ops` is installed; a failure to start it is a warning
    (recovery matters more than metrics)."""
    if port is None or importlib.util.find_spec("prefect_ft.ops") is None:
        yield None
        return
    if importlib.util.find_spec("prefect_ft.ops.server") is None:
        yield None
        return
    try:
        from prefect_ft.ops.server import start_ops_server  # type: ignore[import-not-found]

        handle = start_ops_server(port)
    except Exception as exc:  # the port is in use, or a mismatched prefect_ft.ops
        print(f"prefect-ft: warning: ops server not started: {type(exc).__name__}: {exc}")
        yield None
        return
    print(f"ops server on {handle.url}")
    try:
        yield handle
    finally:
        handle.stop()


def _ops_port(ops_port: int | None, no_ops: bool) -> int | None:
    if no_ops:
        return None
    if ops_port is not None:
        return ops_port
    from prefect_ft.settings import metrics_port

    return metrics_port() or _OPS_DEFAULT_PORT


def serve(
    *,
    root: Path = Path("."),
    poll_seconds: float = 1.0,
    limit: int | None = None,
    ops_port: int | None = None,
    register_only: bool = False,
    no_schedules: bool = False,
    no_ops: bool = False,
) -> int:
    """Serve every prefect-ft deployment (detection, replay, recovery, health sweep) and create their automations.

    Args:
        root: the repository root holding `flows/` (runs start there).
        poll_seconds: how often the runner asks for runs to start (0.2-60 s).
        limit: at most this many flow runs at once; empty for no limit.
        ops_port: port of the ops endpoints (`/health`, `/metrics`; 0 for any free port),
            served when `prefect_ft.ops` is installed; default `PREFECT_FT_METRICS_PORT`,
            else 9464.
        register_only: create or update the deployments and automations, then exit.
        no_schedules: create the schedules (detection, health sweep) paused; events still
            start recovery and replay.
        no_ops: do not serve the ops endpoints.
    """
    low, high = _POLL_RANGE
    if not low <= poll_seconds <= high:
        return _fail(f"--poll-seconds must be between {low} and {high}, got {poll_seconds}")
    if limit is not None and limit < 1:
        return _fail(f"--limit must be at least 1, got {limit}")
    root = root.resolve()
    if not (root / "flows").is_dir():
        return _fail(f"--root {root} has no flows/ directory (run from the repository root)")
    _child_environment(poll_seconds)
    # runs start in the served flows' directory, and entrypoints are relative to it
    os.chdir(root)
    sys.path.insert(0, str(root))

    from prefect_ft.recovery.deploy import runner_deployments

    try:
        deployments = runner_deployments(root, schedules=not no_schedules)
    except Exception as exc:  # a missing entrypoint or a flow that fails to import
        return _fail(f"cannot load the flows: {type(exc).__name__}: {exc}")
    names = ", ".join(d.name for d in deployments)
    if register_only:
        for d in deployments:
            d.apply()
        triggers = sum(len(d.triggers) for d in deployments)
        print(f"registered {len(deployments)} deployments ({names}) and {triggers} automations")
        return 0

    import prefect

    print(f"serving {len(deployments)} deployments ({names}), polling every {poll_seconds} s")
    with _ops_server(_ops_port(ops_port, no_ops)):
        prefect.serve(*deployments, limit=limit, query_seconds=poll_seconds)
    return 0
