"""`make demo`: the RAN pipeline on an embedded Prefect server, under a scripted fault schedule.

Steps: a Prefect server with its UI on a free loopback port (SQLite under a temporary
PREFECT_HOME), the block presets applied from `blocks/`, the tiny MLX model built (or reused) and
served, `prefect-ft serve` started against that server (`served`: its automations start
`recover` on `prefect-ft.breaker.opened` and `replay-dead-letters` on `prefect-ft.breaker.closed`),
then the `ran-pipeline` flow over the corpus with a live progress bar while the faults fire. At
the end: the report (`prefect_ft.demo.ran.report`), also saved as `report.json` next to the
dataset. Every process started here is stopped here, also on an error or Ctrl-C.

Recovery (`--recovery`): `both` (the default) runs the served `recover` deployment and the
in-process listener (`recoveries.DemoRecovery`) on each opening; they share the component's
recovery lease in the breaker store (`recovery_limits`: one per component), so one acts and the
other is refused, and the report names which acted (a served run by its flow-run name and id).
The listener stays because a served run starts seconds after the event on 2 busy cores, and the
event carries no failure type (the listener classifies the component's last error, so a failed
generation gets a model reload, not a restart). `served` and `in-process` run one path alone (to
measure each); `none` runs neither. The control channel of the model server's supervisor is an
HTTP endpoint on loopback (`recovery.serve_control`), so both processes reach the same one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prefect_ft.demo.ran.arguments import demo_parser
from prefect_ft.demo.ran.fault_pass import run_fault_pass
from prefect_ft.demo.ran.faults import FaultSchedule
from prefect_ft.demo.ran.schedule import DEFAULT_SCHEDULE, MODEL_BUDGET_MB
from prefect_ft.demo.ran.servers import ModelServer, free_port, prefect_server, serve_model

__all__ = ["DEFAULT_SCHEDULE", "main"]

# a fault-free pass first (`detect.warm_up`): 8 documents give each chunk step about 24 calls,
# above the 20 earlier tasks the detection pass needs to judge a component's failure rate
WARMUP_DOCS = 8
REPO = Path(__file__).resolve().parents[3]
REPO_BLOCKS = REPO / "blocks"


def _build_model(args: argparse.Namespace, texts: list[str]) -> Path:
    """The model (trained the first time, else reused): in the main thread, since MLX work done
    in a worker thread aborted the interpreter at exit ("terminate called without an active
    exception")."""
    from prefect_ft.demo.ran.model import ensure_model
    from prefect_ft.demo.ran.train import TrainBudget

    budget = TrainBudget(max_seconds=args.train_seconds) if args.train_seconds else None
    return ensure_model(args.model_home, texts, budget)


def _start_model(args: argparse.Namespace, model_dir: Path) -> tuple[Path, ModelServer]:
    return model_dir, serve_model(model_dir, args.model_start_timeout, MODEL_BUDGET_MB)


def _import_pipeline() -> None:
    """Import what the pipeline's steps need (about 20 s of a loaded machine's time)."""
    import importlib

    # the classifier too: imported when a breaker first opened, it delayed that recovery 17 s
    for name in (
        "prefect_ft.cli.app",
        "prefect_ft.demo.ran.pipeline",
        "prefect_ft.recovery.executor",
        "prefect_ft.detection.classify",
        "prefect_ft.demo.ran.recoveries",
    ):
        importlib.import_module(name)


def _server_template(args: argparse.Namespace) -> Path:
    """Where a migrated, empty Prefect database is kept between runs (per Prefect version)."""
    from importlib.metadata import version

    cache = Path(args.model_home) / "prefect-ft" / "demo-server"
    return cache / f"prefect-{version('prefect')}.db"


def run(args: argparse.Namespace, say: Any) -> dict[str, Any]:
    from prefect_ft.demo.ran.documents import corpus_paths, read_document

    schedule = (
        FaultSchedule.load(args.faults)
        if args.faults
        else FaultSchedule.from_dict(DEFAULT_SCHEDULE)
    )
    schedule = schedule.scaled(args.compress) if args.compress != 1.0 else schedule
    home = Path(args.home)
    work = home / "ran-output"
    texts = []
    for p in corpus_paths(args.corpus):
        with contextlib.suppress(ValueError):
            texts.append(read_document(p))
    timings: dict[str, float] = {}
    t = time.monotonic()
    # the model server starts while the Prefect server starts: both take tens of seconds on 2
    # busy cores, and neither needs the other
    # the API's address is known before the server starts, so Prefect (which reads its settings
    # when first imported) and the pipeline's modules are imported while it starts, too
    port = free_port()
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    with ThreadPoolExecutor(1, thread_name_prefix="demo-start") as starter:
        model_future = starter.submit(_start_model, args, _build_model(args, texts))
        # after the model, in the same thread: two threads importing at once can deadlock
        starter.submit(_import_pipeline)
        try:
            with prefect_server(home, args.server_timeout, _server_template(args), port) as ui:
                timings["prefect_server"] = time.monotonic() - t
                say(
                    f"Prefect UI: {ui}  (flow 'ran-pipeline'; task runs in state CircuitOpen were refused)"
                )
                model_dir, server = model_future.result()
                timings["model_ready"] = time.monotonic() - t
                say(f"model {model_dir}; model server {server.url}")
                with contextlib.ExitStack() as procs:  # serve stops before the Prefect server
                    serve = _start_serve(args, say, procs, home, work, server)
                    rep = _run_pipeline(args, say, schedule, work, server, timings, serve)
        finally:
            with contextlib.suppress(Exception):
                model_future.result()[1].stop()  # also when the Prefect server never started
    rep["timings"] = {k: round(v, 1) for k, v in timings.items()}
    (work / "report.json").write_text(json.dumps(rep, indent=2, default=str))
    say("timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in rep["timings"].items()))
    say(f"dataset: {work / 'dataset.jsonl'}; report: {work / 'report.json'}")
    return rep


def _start_serve(
    args: argparse.Namespace,
    say: Any,
    procs: contextlib.ExitStack,
    home: Path,
    work: Path,
    server: ModelServer,
) -> Any:
    """`prefect-ft serve` when the served path is on and the flows are here (else None)."""
    if args.recovery not in ("both", "served") or not (REPO / "flows").is_dir():
        return None
    if not REPO_BLOCKS.is_dir():
        return None
    from prefect_ft.demo.ran.runtime import RUNTIME_ENV
    from prefect_ft.demo.ran.served import served

    runtime = json.dumps({"work_dir": str(work), "model_url": server.url})
    serve = procs.enter_context(served(home, REPO, {RUNTIME_ENV: runtime}))
    say(f"prefect-ft serve started (pid {serve.proc.pid}; log {serve.log_path})")
    return serve


def _run_pipeline(
    args: argparse.Namespace,
    say: Any,
    schedule: FaultSchedule,
    work: Path,
    server: ModelServer,
    timings: dict[str, float],
    serve: Any = None,
) -> dict[str, Any]:
    # Prefect reads its settings when first imported: only now, with PREFECT_API_URL set
    from prefect_ft.demo.ran.apply import apply_demo_blocks
    from prefect_ft.recovery.control import serve_control

    t = time.monotonic()
    # the supervisor's control channel on loopback: served recovery runs (another process)
    # reach the same supervisor, which can respawn a crashed model server
    control = serve_control(server)
    try:
        if REPO_BLOCKS.is_dir():
            apply_demo_blocks(REPO_BLOCKS, control.url, say)
            timings["blocks"] = time.monotonic() - t
        else:
            say("no blocks/ directory next to the package: built-in presets, and no recovery")
        from prefect_ft.demo.ran.server_samples import ServerSampler
        from prefect_ft.history.resources import record_resource_sample

        # the model server's memory against its budget, from the warm-up on (detection's
        # resource history; a crashed server gives no sample)
        with ServerSampler(server.health, record_resource_sample):
            return run_fault_pass(
                args, say, schedule, work, server, timings, serve, REPO_BLOCKS.is_dir()
            )
    finally:
        control.stop()


def main(argv: list[str] | None = None) -> int:
    args = demo_parser(__doc__, WARMUP_DOCS).parse_args(argv)
    if args.no_recovery:
        args.recovery = "none"
    if args.loopback:
        from prefect_ft.demo.loopback import main as loopback

        loopback()
        return 0
    t0 = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {msg}", flush=True)

    if args.warmup_docs < 0:
        print(f"error: --warmup-docs must be >= 0 (got {args.warmup_docs})", file=sys.stderr)
        return 2
    try:  # a bad schedule is refused before anything starts
        if args.faults:
            FaultSchedule.load(args.faults)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")  # the demo prints its own lines
    # the four components share this process, so its memory is no one component's: the model
    # server's own samples (`server_samples`) are the resource history detection reads
    os.environ.setdefault("PREFECT_FT_RESOURCE_SAMPLE_SECONDS", "0")
    os.environ.setdefault("PREFECT_FT_DEADLETTER_KEY", f"demo-{os.getpid()}-{time.time_ns()}")
    with contextlib.ExitStack() as stack:
        if args.home is None:
            args.home = stack.enter_context(tempfile.TemporaryDirectory(prefix="prefect-ft-demo-"))
        home = Path(args.home)
        home.mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = str(home)
        os.environ["PREFECT_FT_STORE_URL"] = f"sqlite:///{home}/prefect-ft.db"
        try:
            rep = run(args, say)
        except (OSError, RuntimeError, ValueError) as exc:
            # a server that never starts, a model that cannot be built, an unreadable corpus:
            # one clear line (everything started was stopped on the way out)
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
    say(f"done in {time.monotonic() - t0:.0f}s")
    return 0 if rep["in_equals_out"] else 1
