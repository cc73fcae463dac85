"""The Prefect UI during the RAN demo shows the task runs a breaker refused (`CircuitOpen`).

A short RAN pipeline (3 documents, a compressed fault schedule whose error burst opens the
`ml-inference` breaker) runs in a subprocess against the UI server, as a user's process would,
with the real tiny model served on loopback. While it runs, headless Chromium opens the flow
run's page, waits until task runs in state `CircuitOpen` are shown there, and the screenshot is
kept in `tmp_path` (and copied to `$PREFECT_FT_ARTIFACTS` when set). The README's screenshot,
`docs/screenshots/ran-circuit-open.png`, is this test's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.ran.model_support import PARAGRAPHS, TEST_BUDGET
from tests.ui.conftest import CHROMIUM_ARGS, UIServer, client_env, keep_artifact, stop_process

pytestmark = pytest.mark.slow
TIMEOUT_MS = 90_000

# The fault clock starts at the pipeline's first component call (the flow's own start takes
# seconds on a busy machine): every model call fails for 10 s, so the `ml-inference` breaker
# opens after 3 consecutive failures and the chunks still waiting are refused (`CircuitOpen`).
SCHEDULE = {
    "seed": 3,
    "faults": [
        {"component": "ml-inference", "kind": "error_burst", "start": 0, "duration": 10, "rate": 1},
    ],
}
FLOW_RUN_NAME = "ran-demo-ui"

# The user's process: a shorter open time for ml-inference (a block document, as a user would
# set it in the UI) so the run recovers within the test, then the demo's composition of the
# model server, the fault injector and the `ran-pipeline` flow (prefect_ft/demo/ran/demo.py).
_RUNNER = """
import json, sys
from pathlib import Path
from prefect_ft.blocks import CircuitBreakerPolicy
from prefect_ft.demo.ran import pipeline
from prefect_ft.demo.ran.faults import FaultInjector, FaultSchedule
from prefect_ft.demo.ran.ipc import ModelClient
from prefect_ft.demo.ran.servers import ModelServer

model_dir, work, schedule, name = sys.argv[1:5]
CircuitBreakerPolicy(failure_threshold=3, open_seconds=10, recovery_seconds=2).save(
    "ml-inference", overwrite=True
)
server = ModelServer(Path(model_dir))
try:
    injector = FaultInjector(
        FaultSchedule.from_dict(json.loads(schedule)),
        on_crash=server.crash, on_restore=server.restore,
    )
    rt = pipeline.Runtime(work, ModelClient(server.url), injector=injector)
    pipeline.configure(rt)
    try:  # not started here: its clock starts at the first call (no crash fault to tick)
        summary = pipeline.ran_pipeline.with_options(flow_run_name=name)(
            work_dir=work, max_docs=3, deadline_seconds=90
        )
    finally:
        injector.close()
        rt.close()
        pipeline.configure(None)
finally:
    server.stop()
print("SUMMARY " + json.dumps(summary, default=str))
"""


def _circuit_open_runs(api_url: str, name: str) -> tuple[str | None, int]:
    """The flow run named `name` and how many of its task runs are in state CircuitOpen (REST,
    so this process keeps no Prefect client bound to the UI server)."""
    body = {"flow_runs": {"name": {"any_": [name]}}, "limit": 1}
    runs = httpx.post(f"{api_url}/flow_runs/filter", json=body, timeout=10).json()
    if not runs:
        return None, 0
    body = {
        "flow_runs": {"id": {"any_": [runs[0]["id"]]}},
        "task_runs": {"state": {"name": {"any_": ["CircuitOpen"]}}},
    }
    n = httpx.post(f"{api_url}/task_runs/count", json=body, timeout=10).json()
    return runs[0]["id"], int(n)


def _wait_for_refusals(
    api_url: str, name: str, runner: subprocess.Popen[bytes], log: Path, timeout: float = 150
) -> str:
    """The flow run's id, once the API has a CircuitOpen task run of it: the page is opened
    when there is something to see."""
    deadline = time.monotonic() + timeout
    while True:
        ended = runner.poll() is not None  # before the query, so a last refusal is counted
        flow_run_id, refused = _circuit_open_runs(api_url, name)
        if flow_run_id and refused:
            return flow_run_id
        assert not ended, f"the run ended without a CircuitOpen task run:\n{_tail(log)}"
        assert time.monotonic() < deadline, f"no CircuitOpen task run within {timeout:.0f} s"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with the RAN tests' small training budget (no Prefect involved)."""
    from prefect_ft.demo.ran.model import ensure_model

    return ensure_model(tmp_path_factory.mktemp("ran-ui-model"), PARAGRAPHS, TEST_BUDGET)


def test_flow_run_page_shows_circuit_open_task_runs(
    ui_server: UIServer, chromium_path: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    work, name = tmp_path / "work", f"{FLOW_RUN_NAME}-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "runner.out"
    out = log.open("w")
    cmd = [sys.executable, "-c", _RUNNER, str(tiny_model_dir), str(work), json.dumps(SCHEDULE)]
    runner = subprocess.Popen(
        [*cmd, name], env=client_env(ui_server, tmp_path), cwd=tmp_path,
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    shot = tmp_path / "ran-circuit-open.png"
    try:
        with sync_playwright() as p:
            # Chromium starts while the runner does (both take tens of seconds on a busy machine)
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            page = None
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1500})
                page.set_default_timeout(TIMEOUT_MS)
                expect.set_options(timeout=TIMEOUT_MS)
                page.goto(f"{ui_server.url}/runs")  # loads the UI's code while the run starts
                flow_run_id = _wait_for_refusals(ui_server.api_url, name, runner, log)
                page.goto(f"{ui_server.url}/runs/flow-run/{flow_run_id}")
                expect(page.get_by_text(name, exact=True).first).to_be_visible()
                # the run's task runs, narrowed to the model step (the page refreshes itself)
                page.locator("li.p-tab", has_text=re.compile(r"^Task Runs$")).click()
                search = page.get_by_placeholder("Search by run name")
                search.fill("infer-")
                search.blur()
                badge = page.locator(".state-badge", has_text=re.compile(r"^\s*CircuitOpen\s*$"))
                refused_rows = page.locator(".state-list-item", has=badge)
                expect(refused_rows.first).to_contain_text(re.compile(r"infer-[a-z-]+#\d+"))
                # The list re-renders itself every few seconds and is empty while it reloads
                # (a CI run counted 0 rows one second after seeing one): the shot is kept once
                # the rows are still there right after it was taken.
                shown = 0
                for _ in range(5):
                    expect(refused_rows.first).to_be_visible()
                    page.wait_for_timeout(1000)  # the list and the run graph fade in
                    page.screenshot(path=str(shot))
                    shown = refused_rows.count()
                    if shown:
                        break
                keep_artifact(shot)
            except Exception:  # what the page showed instead, for the failure report
                if page is not None:
                    page.screenshot(path=str(tmp_path / "ran-circuit-open-failed.png"))
                    keep_artifact(tmp_path / "ran-circuit-open-failed.png")
                raise
            finally:
                browser.close()
        runner.wait(timeout=240)
    finally:
        stop_process(runner)
        out.close()
    assert runner.returncode == 0, _tail(log)
    summary = json.loads(log.read_text().split("SUMMARY ", 1)[1].splitlines()[0])
    assert summary["lost"] == [] and summary["documents_lost"] == [], summary
    assert summary["dead_letters"]["ml-inference"]["dead_lettered"] >= 1, summary
    assert shown >= 1


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:]
