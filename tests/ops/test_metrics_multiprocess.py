"""Process pools: with PROMETHEUS_MULTIPROC_DIR set, every process's series reach one scrape."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

CHILD = """
import sys
from prefect_ft import CircuitBreaker
from prefect_ft.ops import metrics
b = CircuitBreaker("mp-dep", store="memory://", refresh_seconds=None)
metrics.install(sync_seconds=60)  # the exit sync must carry the counts, not the timer
for _ in range(int(sys.argv[1])):
    b.call(lambda: 1)
try:
    b.call(lambda: 1 / 0)
except ZeroDivisionError:
    pass
metrics.record_recovery("mp-dep", "restart", "succeeded")
"""

SCRAPE = "import sys; from prefect_ft.ops import metrics; sys.stdout.write(metrics.exposition().decode())"


def test_children_series_are_summed_in_one_scrape(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for n in (3, 5):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(n)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
    assert any(tmp_path.iterdir()), "no metric files written"
    out = subprocess.run(
        [sys.executable, "-c", SCRAPE], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(out.stdout)
        for s in fam.samples
    }
    calls = "prefect_ft_calls_total"
    assert found[(calls, (("breaker", "mp-dep"), ("kind", "successful")))] == 8
    assert found[(calls, (("breaker", "mp-dep"), ("kind", "failed")))] == 2
    state = ("prefect_ft_breaker_state", (("breaker", "mp-dep"), ("state", "CLOSED")))
    assert found[state] == 1
    rec = (("component", "mp-dep"), ("outcome", "succeeded"), ("strategy", "restart"))
    assert found[("prefect_ft_recovery_total", rec)] == 2
