"""The end-to-end workload: `setup` saves the component's blocks, `run` calls it until told to stop.

    python -m tests.e2e.workload setup CONTROL_URL
    python -m tests.e2e.workload run WORK_URL OUT_FILE STOP_FILE [EVERY_SECONDS]

`run` is a Prefect flow that calls `tests.e2e.calls.call_component` every EVERY_SECONDS (the
component's live traffic, which also probes the breaker once recovery half-opens it) and
appends one JSON line per call to OUT_FILE: `{"x", "t", "outcome"}` with outcome `ok`,
`failed` (the component failed it) or `rejected` (the breaker refused it: dead-lettered).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from prefect import flow

from tests.e2e.calls import COMPONENT, call_component

# The breaker trips after 3 failures and would stay open for 2 minutes on its own: within the
# test's budget only a recovery can half-open it. The ramp after the probe lasts 2 s.
BREAKER = {
    "failure_threshold": 3,
    "open_seconds": 120.0,
    "max_open_seconds": 600.0,
    "recovery_seconds": 2.0,
}
RECOVERY = {"action": "graceful-restart", "max_attempts": 3, "base_seconds": 1.0}


def setup(control_url: str) -> None:
    from prefect_ft.blocks import CircuitBreakerPolicy, ComponentSpec, RecoveryPolicy

    ComponentSpec(
        component=COMPONENT,
        breaker=CircuitBreakerPolicy(**BREAKER),
        recovery=RecoveryPolicy(**RECOVERY),
        control_endpoint=control_url,
    ).save(COMPONENT, overwrite=True)


@flow(name="e2e-workload")
def workload(work_url: str, out_file: str, stop_file: str, every: float = 0.3) -> int:
    """Call the component until `stop_file` exists (at most 5 minutes); returns the calls made."""
    deadline = time.monotonic() + 300
    x = 0
    with open(out_file, "a") as out:
        while not Path(stop_file).exists() and time.monotonic() < deadline:
            started = time.monotonic()
            state = call_component(work_url, x, return_state=True)
            if state.is_completed():
                outcome = "ok"
            elif state.name in {"CircuitOpen", "BulkheadFull"}:
                outcome = "rejected"
            else:
                outcome = "failed"
            out.write(json.dumps({"x": x, "t": time.time(), "outcome": outcome}) + "\n")
            out.flush()
            x += 1
            time.sleep(max(0.0, every - (time.monotonic() - started)))
    return x


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(sys.argv[2])
    else:
        every = float(sys.argv[5]) if len(sys.argv) > 5 else 0.3
        workload(sys.argv[2], sys.argv[3], sys.argv[4], every)
