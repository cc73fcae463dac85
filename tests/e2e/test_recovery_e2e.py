"""End to end on a real `prefect server start`: a failing component is healed by an event-triggered
`recover` deployment served by `prefect-ft serve`, and its dead-lettered calls replay.

Prints the three times the issue asks for (targets <= 10 s, <= 10 s, <= 30 s); the benchmark
`benchmarks/recovery.py` repeats the scenario for medians. Takes about a minute.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.scenario import run_scenario


def test_component_failure_is_detected_recovered_and_replayed(tmp_path: Path) -> None:
    t = run_scenario(tmp_path)
    print(
        f"\nonset -> breaker open: {t.open_s:.2f} s; open -> recovery running: {t.running_s:.2f} s; "
        f"onset -> healthy and serving: {t.healthy_s:.2f} s (breaker closed at {t.closed_s:.2f} s, "
        f"{t.replayed} dead letters replayed)"
    )
    assert t.open_s <= 10, t
    assert t.running_s <= 10, t
    assert t.healthy_s <= 30, t
