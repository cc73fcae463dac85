"""End to end on a real `prefect server start`: a failing component is healed by an event-triggered
`recover` deployment served by `prefect-ft serve`, and its dead-lettered calls replay.

The scenario (`tests/e2e/scenario.py`) asserts the sequence, read back from the API: breaker
opened -> `recover` run -> component restarted and validated -> breaker closed -> replay run
completed -> every call not failed by the component served exactly once. It prints the three
times the issue asks for. Their targets (<= 10 s, <= 10 s, <= 30 s) are what
`benchmarks/recovery.py` measures over 10 runs; here a missed target is a warning, not a
failure, because on a loaded 2-core machine starting the recovery's flow-run process alone
(a fresh Python importing Prefect) can take 20 s. Each step fails the test after 120 s.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from tests.e2e.scenario import run_scenario

TARGETS = {"open_s": 10.0, "running_s": 10.0, "healthy_s": 30.0}


def test_component_failure_is_detected_recovered_and_replayed(tmp_path: Path) -> None:
    t = run_scenario(tmp_path)
    print(
        f"\nonset -> breaker open: {t.open_s:.2f} s; open -> recovery running: {t.running_s:.2f} s; "
        f"onset -> healthy and serving: {t.healthy_s:.2f} s (breaker closed at {t.closed_s:.2f} s, "
        f"{t.replayed} dead letters replayed)"
    )
    assert t.open_s > 0 and t.running_s > 0 and t.open_s < t.healthy_s <= t.closed_s + 1, t
    missed = {k: round(getattr(t, k), 2) for k, limit in TARGETS.items() if getattr(t, k) > limit}
    if missed:
        warnings.warn(f"recovery time targets missed: {missed} (limits {TARGETS})", stacklevel=1)
