"""Two recoveries of one component started at once in different processes: exactly one runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHILD = """
import sys, time
from prefect_ft.recovery.records import acquire_slot
from prefect_ft.stores import open_store
store = open_store(sys.argv[1])
store.time()  # open the database before the start line, so the race is on the cas alone
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
grant = acquire_slot(store, "shared-comp", 60.0, 10)
print("granted" if grant.granted else "refused: " + grant.reason)
"""

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_one_slot_per_component_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ft.db'}"
    start = time.time() + 3.0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    outs = []
    try:
        for child in children:
            out, err = child.communicate(timeout=60)
            assert child.returncode == 0, err
            outs.append(out.strip())
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    assert sorted(o.split(":")[0] for o in outs) == ["granted", "refused", "refused", "refused"]
    assert all("a recovery of shared-comp is already running" in o for o in outs if o != "granted")
