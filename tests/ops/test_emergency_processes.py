"""An emergency stop issued from one process is seen by calls in another within 1 s (SQLite)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("emergency_worker.py")
STOP = (
    "import sys, time; from prefect_ft.ops import emergency; t = time.time(); "
    "emergency.stop('drill', store=sys.argv[1]); print(f'{t:.6f}')"
)


@pytest.mark.parametrize("run", range(20))
def test_a_stop_from_another_process_rejects_calls_within_one_second(
    tmp_path: Path, run: int
) -> None:
    url = f"sqlite:///{tmp_path / 'ft.db'}"
    root = str(Path(__file__).parents[2])
    env = {"PYTHONPATH": root, "PATH": "/usr/bin:/bin"}
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), url], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        stopper = subprocess.run(
            [sys.executable, "-c", STOP, url], capture_output=True, text=True, timeout=60, env=env
        )
        assert stopper.returncode == 0, stopper.stderr
        issued = float(stopper.stdout.split()[-1])
        out, _ = worker.communicate(timeout=30)
        seen = {line.split()[1]: float(line.split()[2]) for line in out.splitlines()}
        assert set(seen) == {"ipc", "model"}, out
        delays = [t - issued for t in seen.values()]
        assert max(delays) <= 1.0, delays
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
