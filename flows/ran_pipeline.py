"""Deployable entrypoint: the RAN pipeline (documents -> question-answer records -> checked dataset).

Each component runs behind `ft_task` with its policy; refused calls are dead-lettered and replayed
before the flow ends. Point `model_url` at a running model server
(`python -m prefect_ft.demo.ran.model_server`). The work is
`prefect_ft.demo.ran.pipeline.flow_body`; `make demo` runs the same flow under injected faults.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from prefect_ft.demo.ran.pipeline import flow_body

__all__ = ["ran_pipeline"]


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
    """Turn the RAN corpus into a checked question-answer dataset.

    Args:
        corpus_dir: directory of `*.md` documents (default: the bundled corpus).
        work_dir: where the per-item outputs, `dataset.jsonl` and `rejected.jsonl` go.
        model_url: the model server's URL.
        max_docs: use only the first N documents.
        max_words: the longest chunk, in words.
        max_tokens: tokens generated per record.
        deadline_seconds: how long to keep replaying dead letters before reporting what is left.

    Returns:
        The accounting: documents and items in, accepted, rejected by quality, lost, dead letters.
    """
    return flow_body(
        corpus_dir, work_dir, model_url, max_docs, max_words, max_tokens, deadline_seconds
    )
