"""`python -m prefect_ft.demo`, short: a few documents, a compressed fault schedule, a quickly
trained model; it ends with `in == out` and `lost 0`, and leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

# the default story, shorter: windows count each component's calls
SCHEDULE = """\
seed: 5
clock: calls
faults:
  - {component: ml-inference, kind: error_burst, start: 0, duration: 3, rate: 1.0}
  - {component: ipc, kind: drop_connections, start: 0, duration: 8, rate: 1.0}
  - {component: quality-validation, kind: error_burst, start: 0, duration: 4, rate: 1.0}
  - {component: ml-inference, kind: crash, start: 14, duration: 90}
"""


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes whose command line or environment mention `text`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (proc / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmd or text in env:
            found.append(f"{proc.name}: {cmd[:200]}")
    return found


def test_short_demo_ends_in_equals_out_and_leaves_no_process(tmp_path) -> None:
    (tmp_path / "faults.yaml").write_text(SCHEDULE)
    home, models = tmp_path / "home", tmp_path / "models"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path / "user-home")}
    env.pop("PREFECT_API_URL", None)
    cmd = [
        sys.executable,
        "-m",
        "prefect_ft.demo",
        "--docs",
        "4",
        "--faults",
        str(tmp_path / "faults.yaml"),
        "--home",
        str(home),
        "--model-home",
        str(models),
        "--train-seconds",
        "5",
        "--deadline",
        "400",
        "--server-timeout",  # a fresh database migrates at start: minutes at load ~30
        "900",
        "--serve-timeout",  # prefect-ft serve imports and registers 10 deployments first
        "900",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    out = proc.stdout
    assert proc.returncode == 0, (out[-3000:], proc.stderr[-3000:])
    assert "=== RAN pipeline report ===" in out
    assert "lost 0" in out and "in == out" in out
    assert "Prefect UI: http://127.0.0.1:" in out
    # prefect-ft serve ran beside the pipeline (its recover runs answer the openings, sharing
    # the lease with the in-process listener), and was stopped with everything else
    assert "prefect-ft serve started (pid " in out and "prefect-ft serve ready after" in out
    assert "served recover runs (prefect-ft serve, on prefect-ft.breaker.opened): " in out
    assert "crash on ml-inference" in out
    report = json.loads((home / "ran-output" / "report.json").read_text())
    # every fault of the story hit calls (none fell where its component had no traffic)
    assert [f["calls_hit"] > 0 or f["kind"] == "crash" for f in report["faults"]] == [True] * 4
    assert report["faults"][3]["start"] is not None  # the server really was killed
    # recovery ran for real and moved a breaker on; the report's line comes from its records
    assert report["recoveries_succeeded"] >= 1, report["recoveries"]
    assert "recoveries run: " in out
    assert any(r["breaker_after"] == "HALF_OPEN" for r in report["recoveries"])
    assert report["dead_lettered"] >= 1 and report["lost"] == 0
    # detection, run as a flow after a fault-free warm-up, finds an injected fault on its own
    # component, and says so in the report
    found = [d for d in report["detection"] if d["detected"]]
    assert any(d["alarm_component"] == d["component"] for d in found), report["detection"]
    # the dropped connections (8 failed ipc task runs in a row) are found on ipc itself, and
    # no alarm matches no fault (breaker and bulkhead refusals are not failures)
    assert report["detection"][1]["detected"], report["detection"]
    assert report["detection"][1]["alarm_component"] == "ipc"
    assert report["false_alarms"] == [], report["false_alarms"]
    # the pass's input is saved, and the report says what each fault's window held
    assert (home / "ran-output" / "detection-history.json").is_file()
    # its resource samples are the model server's own: its memory against its 64 MB budget
    # (the limit travels with each sample), not the pipeline process's against the machine
    hist = json.loads((home / "ran-output" / "detection-history.json").read_text())
    res, names = hist["resources"], hist["components"]
    ml = [i for i, c in enumerate(res["component"]) if names[c] == "ml-inference"]
    assert len(ml) >= 10 and {res["memory_limit_mb"][i] for i in ml} == {64.0}
    assert all(names[c] == "ml-inference" for c in res["component"])
    assert len(report["observed"]) == 4 and report["observed"][1]["failed"] >= 4
    assert "warm-up without faults: 8 documents" in out
    assert "injected faults detected" in out
    assert "Artifact creation outside of a flow" not in proc.stderr + out
    assert all(r["by"] for r in report["recoveries"]), report["recoveries"]
    assert _processes_mentioning(str(tmp_path)) == []


def _wait_for(done, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_ctrl_c_while_serve_runs_leaves_no_process(tmp_path) -> None:
    """Ctrl-C once `prefect-ft serve` serves (the faults start next): the demo stops the serve
    process group, the model server and the Prefect server on its way out."""
    home, models = tmp_path / "home", tmp_path / "models"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path / "user-home")}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "prefect_ft.demo", "--docs", "2", "--home", str(home)]
    cmd += ["--model-home", str(models), "--train-seconds", "5", "--warmup-docs", "0"]
    cmd += ["--server-timeout", "900", "--serve-timeout", "900"]
    out_path = tmp_path / "demo.out"
    with out_path.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        _wait_for(
            lambda: "prefect-ft serve ready" in out_path.read_text() or proc.poll() is not None,
            1200, "the demo's serve did not get ready",
        )  # fmt: skip
        assert proc.poll() is None, out_path.read_text()[-3000:]
        assert _processes_mentioning(str(tmp_path / "home")), "serve and the servers run"
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends the foreground process
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _wait_for(
        lambda: _processes_mentioning(str(tmp_path)) == [], 60,
        f"processes left: {_processes_mentioning(str(tmp_path))}",
    )  # fmt: skip


def test_a_model_server_that_never_starts_is_one_clear_line_and_leaves_no_process(
    tmp_path,
) -> None:
    home, models = tmp_path / "home", tmp_path / "models"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path / "user-home")}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "prefect_ft.demo", "--docs", "1", "--home", str(home)]
    cmd += ["--model-home", str(models), "--train-seconds", "2", "--model-start-timeout", "0.5"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert "error: ModelServerStartError: model server for" in proc.stderr
    assert "was not ready within 0.5s and was killed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _processes_mentioning(str(tmp_path)) == []


def test_unknown_component_in_the_schedule_is_refused_before_anything_starts(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("faults:\n  - {component: baseband, kind: crash, duration: 3}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "prefect_ft.demo", "--faults", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "fault 1: unknown component 'baseband'; allowed: doc-processing" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_negative_warm_up_is_refused_before_anything_starts() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "prefect_ft.demo", "--warmup-docs", "-1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "error: --warmup-docs must be >= 0 (got -1)" in proc.stderr
    assert "Traceback" not in proc.stderr
