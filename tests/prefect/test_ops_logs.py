"""Issue 10 Must show: inside a flow on the test harness, our log lines carry the correlation ids
and appear in the run's logs read back from the API (PREFECT_LOGGING_EXTRA_LOGGERS=prefect_ft)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.settings import PREFECT_API_URL

from tests.waiting import DEADLINE_S

SCRIPT = textwrap.dedent(
    """
    import json
    from prefect import flow, task
    from prefect_ft.ops.logs import bind_ids, get_logger

    log = get_logger("pipeline")

    @task
    def call_model(doc: str) -> str:
        with bind_ids(breaker="ml-inference", component="ml-inference"):
            log.info("model call refused", doc=doc, marker=MARKER)
            with bind_ids(recovery_id="rec-42"):
                log.info("recovery step", marker=MARKER)
        return doc

    @flow
    def pipeline() -> str:
        from prefect.runtime import flow_run
        call_model("doc-1")
        return flow_run.id

    print(json.dumps({"flow_run_id": pipeline()}))
    """
)


def test_our_lines_reach_the_runs_logs_with_correlation_ids() -> None:
    marker = uuid.uuid4().hex
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_LOGGING_EXTRA_LOGGERS": "prefect_ft",
        "PREFECT_FT_LOG_FORMAT": "json",
        "PYTHONPATH": os.getcwd(),
    }
    code = f"MARKER = {marker!r}\n" + SCRIPT
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr[-3000:]
    flow_run_id = json.loads(out.stdout.strip().splitlines()[-1])["flow_run_id"]
    # the process's own JSON lines carry every id
    lines = out.stderr.splitlines()  # Prefect debug lines quote ours too: take our JSON lines
    ours = [json.loads(ln) for ln in lines if ln.startswith("{") and marker in ln]
    assert [o["event"] for o in ours] == ["model call refused", "recovery step"]
    for o in ours:
        assert o["flow_run_id"] == flow_run_id
        assert o["task_run_id"] and o["breaker"] == "ml-inference"
        assert o["component"] == "ml-inference"
    assert "recovery_id" not in ours[0] and ours[1]["recovery_id"] == "rec-42"
    # and the run's logs in the API hold them, ids in the message
    deadline = time.monotonic() + 2 * DEADLINE_S  # the API writes logs in batches
    found: list = []
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[uuid.UUID(flow_run_id)]))
            )
        found = [lg for lg in logs if marker in lg.message]
        if len(found) == 2:
            break
        time.sleep(0.5)
    assert len(found) == 2, [lg.message for lg in logs]
    first = next(lg for lg in found if "model call refused" in lg.message)
    assert first.name == "prefect_ft.pipeline"
    assert str(first.flow_run_id) == flow_run_id and first.task_run_id is not None
    assert "breaker=ml-inference" in first.message and "component=ml-inference" in first.message
    assert f"task_run_id={first.task_run_id}" in first.message
    assert "recovery_id=rec-42" in next(lg.message for lg in found if lg is not first)
