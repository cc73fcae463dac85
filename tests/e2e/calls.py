"""The guarded call of the end-to-end workload (its own module: a dead letter names the function
by `module:qualname`, and the replay flow imports it from here)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from prefect_ft.tasks.decorator import ft_task

COMPONENT = "e2e-component"


@ft_task(breaker=COMPONENT)
def call_component(work_url: str, x: int) -> int:
    """One request to the component; a 503 raises ConnectionError (a failure for the breaker)."""
    try:
        with urllib.request.urlopen(f"{work_url}/work?x={x}", timeout=5) as response:
            return int(json.load(response)["x"])
    except urllib.error.HTTPError as exc:
        raise ConnectionError(f"component answered {exc.code}") from None
