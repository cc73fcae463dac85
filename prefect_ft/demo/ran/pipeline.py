"""The RAN pipeline flow: documents -> chunks -> question-answer records -> checked dataset.

Each component runs behind `ft_task` with its policy (a block document if applied, else the
preset): `doc-processing` parses and chunks a document in a process pool; `ml-inference` asks
the model for a record per chunk, through `ipc`, the client pool's call to the model server (a
nested task, so each has its own breaker, runs and dead letters); `quality-validation` checks the
record. Every step writes its output under `work_dir`, keyed by the item's id, so a step re-run
by `prefect_ft.replay` (which re-runs the recorded call as a plain function, in this process)
leaves the same trace a live run does, and the next step picks it up.

After the live pass the flow drains: it replays the dead letters of breakers that are CLOSED
again, runs the steps whose inputs now exist, and re-drives items whose run failed outright, until
every item is accounted for or `deadline_seconds` pass. The summary counts documents and chunks in
and out; `lost` is what has no outcome at the end (it must be 0).

What cannot be a flow parameter (the model client, the fault injector, a progress callback) is
set with `configure(Runtime(...))` before the flow runs; without it the flow builds a client for
`model_url` (the model package's `ModelClient`) and injects no faults.
"""

from __future__ import annotations

import json
import time
from typing import Any

from prefect import flow

from prefect_ft import ft_task
from prefect_ft.demo.ran.documents import (
    DocumentError,
    build_prompt,
    corpus_paths,
    load_chunks,
    record_from_generation,
)
from prefect_ft.demo.ran.faults import COMPONENTS
from prefect_ft.demo.ran.quality import dedup_key, validate_record
from prefect_ft.demo.ran.runtime import Runtime, configure, configured, runtime

__all__ = ["IpcFailed", "Runtime", "configure", "flow_body", "ran_pipeline", "run_pipeline"]


class IpcFailed(ConnectionError):
    """The ipc call to the model server lost its connection; `ipc`'s breaker counted it.

    Marked like a nested guard's rejection so the enclosing `ml-inference` breaker ignores it:
    a dropped connection says nothing about the model, and counting it twice tripped both
    breakers for one fault. A refused connection (nobody listening: the model server is down)
    stays the original error, which `ml-inference` does count.
    """

    _prefect_ft_rejection = True


def _dropped(exc: BaseException) -> bool:
    """A connection that was cut (reset, aborted, closed mid-answer), not one that was refused."""
    import httpx

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError | httpx.ConnectError):
            return False
        seen = seen.__cause__
    return isinstance(exc, ConnectionError)


# -- the four components --------------------------------------------------------------------------
@ft_task(breaker="doc-processing", name="doc-processing", task_run_name="parse-{doc_id}")
def process_document(doc_id: str, path: str, max_words: int = 120) -> dict[str, Any]:
    """Parse and chunk one document in the process pool; a bad document is bad input, not a fault."""
    rt = runtime()
    rt.inject("doc-processing")
    try:
        out = {"doc_id": doc_id, "chunks": rt.pool().submit(load_chunks, path, max_words).result()}
    except DocumentError as exc:
        out = {"doc_id": doc_id, "chunks": [], "error": str(exc)}
    rt.write("docs", doc_id, out)
    rt.tell(
        "doc-processing", doc_id, "refused" if "error" in out else f"chunks={len(out['chunks'])}"
    )
    return {"doc_id": doc_id, "chunks": len(out["chunks"]), "error": out.get("error")}


@ft_task(breaker="ipc", name="ipc", task_run_name="ipc-{chunk_id}")
def transmit(chunk_id: str, prompt: str, max_tokens: int) -> str:
    """One request to the model server over the client pool; the answer is kept for the chunk."""
    rt = runtime()
    try:
        rt.inject("ipc")
        text = rt.client.generate(prompt, max_tokens)
    except Exception as exc:
        rt.note("ipc", exc)
        if isinstance(
            exc, OSError
        ):  # a dropped or refused connection: the next call gets a fresh one
            reset = getattr(rt.client, "reset", None)
            if reset is not None:
                reset()
        raise
    rt.write("responses", chunk_id, {"text": text})
    return text


@ft_task(breaker="ml-inference", name="ml-inference", task_run_name="infer-{chunk_id}")
def infer(chunk_id: str, max_tokens: int = 48) -> dict[str, Any]:
    """The question-answer record of one chunk (asks the model unless it already answered)."""
    rt = runtime()
    chunk = _chunk(rt, chunk_id)
    answered = rt.read("responses", chunk_id)
    if answered is None:
        try:
            rt.inject("ml-inference")
            text = transmit(chunk_id, build_prompt(chunk), max_tokens)
        except ConnectionError as exc:
            if _dropped(exc):
                raise IpcFailed(f"ipc: {exc}") from exc
            rt.note("ml-inference", exc)
            raise
        except Exception as exc:
            if not getattr(exc, "_prefect_ft_rejection", False):
                rt.note("ml-inference", exc)
            raise
    else:  # the ipc call was replayed after this step was refused: its answer is here
        text = answered["text"]
    record = record_from_generation(chunk, text)
    rt.write("records", chunk_id, record)
    rt.tell("ml-inference", chunk_id, "ok")
    return {"chunk_id": chunk_id, "answer_words": len(record["answer"].split())}


@ft_task(
    breaker="quality-validation", name="quality-validation", task_run_name="quality-{chunk_id}"
)
def validate(chunk_id: str) -> dict[str, Any]:
    """Check one record; the verdict (accepted, or the failed checks) is the chunk's outcome."""
    rt = runtime()
    rt.inject("quality-validation")
    record = rt.read("records", chunk_id)
    verdict = validate_record(record, {})
    reasons = list(verdict.reasons)
    if verdict.accepted:
        owner = rt.claim_answer(dedup_key(record), chunk_id)
        if owner != chunk_id:
            reasons.append(f"duplicate: same answer as record {owner}")
    out = {
        "id": chunk_id,
        "accepted": not reasons,
        "reasons": reasons,
        "grounding": verdict.grounding,
    }
    rt.write("verdicts", chunk_id, out)
    rt.tell("quality-validation", chunk_id, "accepted" if not reasons else "rejected")
    return out


def _chunk(rt: Runtime, chunk_id: str) -> dict[str, Any]:
    doc = rt.read("docs", chunk_id.rsplit("#", 1)[0])
    for c in doc["chunks"] if doc else ():
        if c["chunk_id"] == chunk_id:
            return c
    raise KeyError(f"chunk {chunk_id!r} is not in any processed document")


# -- the flow -------------------------------------------------------------------------------------
def _wait(futures: list[Any]) -> None:
    for f in futures:
        f.wait()


def _pass(rt: Runtime, docs: dict[str, str], max_words: int, max_tokens: int) -> None:
    """Run every step whose input exists and whose output does not (one wave each)."""
    _wait(
        [
            process_document.submit(d, p, max_words)
            for d, p in docs.items()
            if rt.read("docs", d) is None
        ]
    )
    chunks = [c["chunk_id"] for d in docs for c in (rt.read("docs", d) or {}).get("chunks", [])]
    _wait([infer.submit(c, max_tokens) for c in chunks if rt.read("records", c) is None])
    _wait(
        [
            validate.submit(c)
            for c in chunks
            if rt.read("records", c) is not None and rt.read("verdicts", c) is None
        ]
    )


def _account(rt: Runtime, docs: dict[str, str]) -> dict[str, Any]:
    doc_out = {d: rt.read("docs", d) for d in docs}
    chunks = [c["chunk_id"] for v in doc_out.values() if v for c in v["chunks"]]
    verdicts = {c: rt.read("verdicts", c) for c in chunks}
    return {
        "documents_in": len(docs),
        "documents_parsed": sum(1 for v in doc_out.values() if v and "error" not in v),
        "documents_refused": {d: v["error"] for d, v in doc_out.items() if v and "error" in v},
        "documents_lost": sorted(d for d, v in doc_out.items() if v is None),
        "items_in": len(chunks),
        "accepted": sum(1 for v in verdicts.values() if v and v["accepted"]),
        "rejected_by_quality": sum(1 for v in verdicts.values() if v and not v["accepted"]),
        "lost": sorted(c for c, v in verdicts.items() if v is None),
    }


def _write_dataset(rt: Runtime, docs: dict[str, str]) -> None:
    """`dataset.jsonl`: the accepted records; `rejected.jsonl`: the others, with the reasons."""
    with (
        open(rt.work_dir / "dataset.jsonl", "w") as good,
        open(rt.work_dir / "rejected.jsonl", "w") as bad,
    ):
        for d in docs:
            for c in (rt.read("docs", d) or {}).get("chunks", []):
                verdict = rt.read("verdicts", c["chunk_id"])
                if verdict is None:
                    continue
                record = rt.read("records", c["chunk_id"])
                if verdict["accepted"]:
                    good.write(json.dumps({**record, "grounding": verdict["grounding"]}) + "\n")
                else:
                    bad.write(json.dumps({**(record or {}), "reasons": verdict["reasons"]}) + "\n")


def _dead_letters(flow_run_id: str | None) -> dict[str, dict[str, int]]:
    from prefect_ft import DeadLetterQueue

    out: dict[str, dict[str, int]] = {}
    for comp in COMPONENTS:
        mine = [i for i in DeadLetterQueue(comp).all_items() if i.flow_run_id == flow_run_id]
        out[comp] = {
            "dead_lettered": len(mine),
            "replayed": sum(i.status == "done" for i in mine),
            "superseded": sum(i.status == "superseded" for i in mine),
        }
    return out


def run_pipeline(
    corpus_dir: str | None,
    work_dir: str,
    *,
    max_docs: int | None = None,
    max_words: int = 120,
    max_tokens: int = 48,
    deadline_seconds: float = 240.0,
    flow_run_id: str | None = None,
) -> dict[str, Any]:
    """The flow's body (the runtime must be configured); returns the accounting summary."""
    from prefect_ft import replay

    rt = runtime()
    t0 = time.monotonic()
    try:
        paths = corpus_paths(corpus_dir)
    except DocumentError as exc:
        return {"error": str(exc), **_account(rt, {})}
    paths = paths[:max_docs] if max_docs else paths
    docs = {p.stem: str(p) for p in paths}
    if not docs:
        return {
            "error": f"the corpus {corpus_dir or 'bundled'!r} has no *.md documents",
            **_account(rt, {}),
        }
    _pass(rt, docs, max_words, max_tokens)
    rounds, replays = 0, []
    while True:
        acc = _account(rt, docs)
        if not acc["lost"] and not acc["documents_lost"]:
            break
        left = deadline_seconds - (time.monotonic() - t0)
        if left <= 0:
            break
        rounds += 1
        # dead letters first (their breakers must be CLOSED again), then whatever became runnable
        report = replay(list(COMPONENTS), wait_seconds=min(5.0, left))
        replays.append(report.to_dict())
        _pass(rt, docs, max_words, max_tokens)
    acc = _account(rt, docs)
    _write_dataset(rt, docs)
    acc.update(
        drain_rounds=rounds,
        dead_letters=_dead_letters(flow_run_id),
        replay_failed=sum(len(r["failed"]) for r in replays),
        seconds=round(time.monotonic() - t0, 2),
    )
    return acc


def flow_body(
    corpus_dir: str | None,
    work_dir: str,
    model_url: str | None,
    max_docs: int | None,
    max_words: int,
    max_tokens: int,
    deadline_seconds: float,
) -> dict[str, Any]:
    """What the `ran-pipeline` flow does (here and in `flows/ran_pipeline.py`)."""
    from prefect.runtime import flow_run

    own = not configured()
    if own:
        if not model_url:
            raise ValueError(
                "model_url is required when no runtime is configured (the model server's URL)"
            )
        from prefect_ft.demo.ran.ipc import ModelClient

        configure(Runtime(work_dir, ModelClient(model_url)))
    try:
        return run_pipeline(
            corpus_dir,
            work_dir,
            max_docs=max_docs,
            max_words=max_words,
            max_tokens=max_tokens,
            deadline_seconds=deadline_seconds,
            flow_run_id=flow_run.get_id(),
        )
    finally:
        if own:
            runtime().close()
            configure(None)


@flow(name="ran-pipeline", log_prints=True)
def ran_pipeline(
    corpus_dir: str | None = None,
    work_dir: str = "ran-output",
    model_url: str | None = None,
    max_docs: int | None = None,
    max_words: int = 120,
    max_tokens: int = 48,
    deadline_seconds: float = 240.0,
) -> dict[str, Any]:
    """Turn the RAN corpus into a checked question-answer dataset; see the module docstring."""
    return flow_body(
        corpus_dir, work_dir, model_url, max_docs, max_words, max_tokens, deadline_seconds
    )
