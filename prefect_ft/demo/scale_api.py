"""Reading and driving a Prefect server over its REST API, for the scaled stack's test and benchmark.

Plain HTTP (httpx), not Prefect's client: the caller may itself run under another Prefect
server (a test harness), and these calls must reach the stack's server whatever the caller's
settings say. `StackAPI(api_url)` starts deployment runs and reads back flow runs, task runs,
events and run logs.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import httpx

__all__ = ["FINAL", "StackAPI"]

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
_SUBMITTED = re.compile(r"Worker '([^']+)' submitting flow run")


class StackAPI:
    """The REST API of one Prefect server (`.../api`)."""

    def __init__(self, api_url: str, timeout: float = 30) -> None:
        self.http = httpx.Client(base_url=api_url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def run_deployment(self, name: str, parameters: dict[str, Any], **extra: Any) -> str:
        """Create a run of deployment `flow/deployment`; its id (a worker picks it up)."""
        response = self.http.get(f"/deployments/name/{name}")
        response.raise_for_status()
        run = self._post(
            f"/deployments/{response.json()['id']}/create_flow_run",
            {"parameters": parameters, **extra},
        )
        return str(run["id"])

    def flow_run(self, run_id: str) -> dict[str, Any]:
        response = self.http.get(f"/flow_runs/{run_id}")
        response.raise_for_status()
        return dict(response.json())

    def state(self, run_id: str) -> str:
        return str((self.flow_run(run_id).get("state") or {}).get("type") or "SCHEDULED")

    def wait_final(self, run_ids: list[str], timeout: float) -> dict[str, str]:
        """Wait until every run is in a final state; run id -> state type (the last seen)."""
        deadline = time.monotonic() + timeout
        while True:
            states = {r: self.state(r) for r in run_ids}
            if set(states.values()) <= FINAL or time.monotonic() > deadline:
                return states
            time.sleep(1)

    def flow_runs_of(self, deployment: str) -> list[dict[str, Any]]:
        body = {"deployments": {"name": {"any_": [deployment]}}, "limit": 200}
        return list(self._post("/flow_runs/filter", body))

    def task_runs(self, run_id: str, state_name: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            body: dict[str, Any] = {
                "flow_runs": {"id": {"any_": [run_id]}},
                "limit": 200,
                "offset": len(out),
            }
            if state_name:
                body["task_runs"] = {"state": {"name": {"any_": [state_name]}}}
            page = self._post("/task_runs/filter", body)
            out.extend(page)
            if len(page) < 200:
                return out

    def logs(self, run_id: str) -> list[str]:
        body = {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}
        return [r["message"] for r in self._post("/logs/filter", body)]

    def submitted_by(self, run_id: str) -> str | None:
        """The worker that submitted the run (from the run's own log line)."""
        for message in self.logs(run_id):
            found = _SUBMITTED.search(message)
            if found:
                return found.group(1)
        return None

    def events(self, prefix: str, since: float) -> list[dict[str, Any]]:
        """Events whose name starts with `prefix`, since epoch `since`, oldest first (all pages)."""
        body = {
            "filter": {
                "occurred": {"since": datetime.fromtimestamp(since, UTC).isoformat()},
                "event": {"prefix": [prefix]},
                "order": "ASC",
            },
            "limit": 50,  # the server's maximum (research/prefect.md §0.8)
        }
        page = self._post("/events/filter", body)
        out = list(page["events"])
        while page.get("next_page"):
            response = self.http.get(page["next_page"])
            response.raise_for_status()
            page = response.json()
            out.extend(page["events"])
        return out


def related_flow_run(event: dict[str, Any]) -> str | None:
    """The id of the flow run an event was emitted in (its related `prefect.flow-run.<id>`)."""
    for r in event.get("related", []):
        rid = r.get("prefect.resource.id", "")
        if rid.startswith("prefect.flow-run."):
            return str(rid.removeprefix("prefect.flow-run."))
    return None
