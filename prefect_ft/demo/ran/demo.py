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
from prefect_ft.demo.ran.detect import detect_alarms, emit_fault_events, read_observed, warm_up
from prefect_ft.demo.ran.faults import FaultInjector, FaultSchedule
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
            return _run_with_control(args, say, schedule, work, server, timings, serve)
    finally:
        control.stop()


def _run_with_control(
    args: argparse.Namespace,
    say: Any,
    schedule: FaultSchedule,
    work: Path,
    server: ModelServer,
    timings: dict[str, float],
    serve: Any,
) -> dict[str, Any]:
    from rich.progress import Progress

    from prefect_ft import add_global_listener, remove_global_listener
    from prefect_ft.demo.ran import pipeline, report
    from prefect_ft.demo.ran.apply import SERVED
    from prefect_ft.demo.ran.ipc import ModelClient
    from prefect_ft.demo.ran.recoveries import DemoRecovery, served_lines, with_served

    recovery: DemoRecovery | None = None
    transitions: list[dict[str, Any]] = []

    def on_transition(b: Any, e: Any) -> None:
        now = time.time()
        reason = e.reason
        if e.remote:
            # made by another breaker object: the in-process recovery's (already recorded by
            # that object) or a served recovery run's, in the serve process (recorded here)
            if any(
                t["breaker"] == b.name and (t["from"], t["to"]) == (e.from_state, e.to_state)
                and now - t["at"] < 60 for t in transitions[-20:]
            ):  # fmt: skip
                return
            reason = f"{reason}: a served recovery run" if e.to_state == "HALF_OPEN" else reason
        transitions.append(
            {"breaker": b.name, "from": e.from_state, "to": e.to_state, "reason": reason,
             "at": now, "remote": e.remote}
        )  # fmt: skip

    t_history = time.time()  # the detection pass reads task runs from here on
    if args.warmup_docs:
        t = time.monotonic()
        done = warm_up(args.corpus, work / "warm-up", server.url, args.warmup_docs, args.deadline)
        say(
            f"warm-up without faults: {done.get('documents_in', 0)} documents, "
            f"{done.get('items_in', 0)} items (the history detection learns normal rates from)"
        )
        timings["warm_up"] = time.monotonic() - t
    if serve is not None:
        if serve.wait_ready(args.serve_timeout):
            say(
                f"prefect-ft serve ready after {serve.ready_after:.0f}s (recover, replay on events)"
            )
        else:
            say(
                f"prefect-ft serve not ready within {args.serve_timeout:.0f}s: see {serve.log_path}"
            )
    timings["serve_ready"] = serve.ready_after if serve and serve.ready_after else 0.0
    rt_box: list[Any] = []
    if REPO_BLOCKS.is_dir() and args.recovery in ("both", "in-process"):
        recovery = DemoRecovery(SERVED, lambda c: rt_box[0].last_error(c) if rt_box else None)
    listeners = [on_transition, *([recovery] if recovery else [])]
    for listener in listeners:
        add_global_listener(listener)
    t = time.monotonic()
    try:
        say(f"faults: {', '.join(f.label() for f in schedule.faults)}")
        injector = FaultInjector(
            schedule,
            on_crash=server.crash,
            on_restore=server.restore,
            is_up=lambda: not server.down,
            on_server_fault=server.set_fault,
        )
        with Progress(transient=False) as bar:
            steps = ("doc-processing", "ml-inference", "quality-validation")
            ids = {s: bar.add_task(s, total=None) for s in steps}
            paths = corpus_paths_of(args)
            bar.update(ids["doc-processing"], total=len(paths))
            chunks = [0]

            def progress(step: str, _item: str, outcome: str) -> None:
                if outcome.startswith("chunks="):  # now the later steps know their totals
                    chunks[0] += int(outcome[7:])
                    bar.update(ids["ml-inference"], total=chunks[0])
                    bar.update(ids["quality-validation"], total=chunks[0])
                bar.advance(ids[step])

            rt = pipeline.Runtime(
                work, ModelClient(server.url), injector=injector, progress=progress
            )
            rt_box.append(rt)
            pipeline.configure(rt)
            t_start = time.time()
            try:
                injector.start()
                with injector.ticking():
                    summary = pipeline.ran_pipeline(
                        corpus_dir=args.corpus,
                        work_dir=str(work),
                        max_docs=args.docs,
                        deadline_seconds=args.deadline,
                    )
            finally:
                say(f"calls that reached the fault injector: {injector.calls()}")
                records = [r.to_dict() for r in injector.close()]
                rt.close()
                pipeline.configure(None)
        recoveries: Any = recovery.close() if recovery is not None else []
    finally:
        for listener in listeners:
            remove_global_listener(listener)
        if recovery is not None:
            recovery.close(timeout=0)
    timings["pipeline"] = time.monotonic() - t
    served_runs: list[dict[str, Any]] = []
    failed: list[str] = []
    if serve is not None:
        from prefect_ft.demo.ran.served import failed_actions, served_recoveries

        served_runs = served_recoveries(t_start)
        failed = failed_actions(t_start)
    recoveries = with_served(recoveries, served_runs, transitions)
    if not recoveries and (args.recovery == "none" or not REPO_BLOCKS.is_dir()):
        recoveries = f"not run (--recovery {args.recovery}, or no blocks/)"
    t = time.monotonic()
    emit_fault_events(records)
    hist_out = str(work / "detection-history.json")  # the pass's input, to replay it offline
    alarms = detect_alarms(t_history, hist_out) if not args.no_detect else None
    timings["detection"] = time.monotonic() - t
    rep = report.build_report(
        summary, records, transitions, alarms, recoveries, read_observed(hist_out)
    )
    rep["served_recover_runs"] = served_runs
    print(report.render(rep, t0=t_start), flush=True)
    # each local opening emitted prefect-ft.breaker.opened, which asks for a served run
    openings = sum(t["to"] == "OPEN" and not t["remote"] for t in transitions)
    for line in served_lines(served_runs, args.recovery, serve is not None, openings, failed):
        print(line, flush=True)
    return rep


def corpus_paths_of(args: argparse.Namespace) -> list[Path]:
    from prefect_ft.demo.ran.documents import corpus_paths

    paths = corpus_paths(args.corpus)
    return paths[: args.docs] if args.docs else paths


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
