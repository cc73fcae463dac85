"""The demo's fault pass (`make demo` after its servers are up): a fault-free warm-up, the
`ran-pipeline` flow under the fault schedule with a live progress bar while breaker transitions
and recoveries (in-process and served) are recorded, then the detection pass over the history
and the report (`report.build_report`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from prefect_ft.demo.ran.detect import detect_alarms, emit_fault_events, read_observed, warm_up
from prefect_ft.demo.ran.faults import FaultInjector, FaultSchedule
from prefect_ft.demo.ran.servers import ModelServer

__all__ = ["corpus_paths_of", "run_fault_pass"]


def run_fault_pass(
    args: argparse.Namespace,
    say: Any,
    schedule: FaultSchedule,
    work: Path,
    server: ModelServer,
    timings: dict[str, float],
    serve: Any,
    have_blocks: bool,
) -> dict[str, Any]:
    """The warm-up, then the pipeline under `schedule` with breaker transitions and recoveries
    recorded, then the detection pass; the report (`timings` gets each step's seconds).
    `have_blocks`: the block presets were applied (recovery needs them)."""
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
    if have_blocks and args.recovery in ("both", "in-process"):
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
    if not recoveries and (args.recovery == "none" or not have_blocks):
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
