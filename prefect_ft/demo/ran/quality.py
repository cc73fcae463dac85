"""Quality checks on one question-answer record (pure: the caller keeps the set of seen keys).

Checks, in order: schema (the fields and their types), length (of question and answer, in
words), characters (no control characters, no U+FFFD, mostly letters and digits), duplicates (the
normalised answer was already accepted for another chunk), grounding (the share of the
answer's content words that appear in the source chunk) and order (the share of the answer's
adjacent word pairs that are adjacent in the chunk too: the chunk's words shuffled into salad
have every word grounded but few pairs in order). A record passes when no check fails;
every failed check is named in the verdict, so a rejected record says why.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

__all__ = ["QualityConfig", "Verdict", "dedup_key", "grounding", "order", "validate_record"]

_TOKEN = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "that",
        "the",
        "their",
        "then",
        "this",
        "to",
        "when",
        "which",
        "while",
        "with",
    ]
)
REQUIRED = {"id": str, "doc_id": str, "question": str, "answer": str, "source": str}


@dataclass(frozen=True, slots=True)
class QualityConfig:
    """Thresholds; each is checked when the config is made."""

    min_answer_words: int = 5
    max_answer_words: int = 120
    max_question_words: int = 40
    min_alnum_ratio: float = 0.6
    min_grounding: float = 0.5
    # Evidence in benchmarks/RESULTS.md "The RAN model": the model's accepted answers score ~1.0,
    # shuffled chunks at most ~0.3.
    min_order: float = 0.5

    def __post_init__(self) -> None:
        for name in ("min_answer_words", "max_answer_words", "max_question_words"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1 (got {v!r})")
        if self.min_answer_words > self.max_answer_words:
            raise ValueError(
                f"min_answer_words ({self.min_answer_words}) must be <= max_answer_words "
                f"({self.max_answer_words})"
            )
        for name in ("min_alnum_ratio", "min_grounding", "min_order"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1 (got {v!r})")


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)
    grounding: float | None = None


def _tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOP]


def dedup_key(record: dict[str, Any]) -> str:
    """The key under which a record counts as a duplicate: its answer, normalised."""
    norm = " ".join(_TOKEN.findall(str(record.get("answer", "")).lower()))
    return hashlib.sha256(norm.encode()).hexdigest()[:24]


def grounding(answer: str, source: str) -> float:
    """Share of the answer's content words that occur in the source (0 for an empty answer)."""
    words = _tokens(answer)
    if not words:
        return 0.0
    have = set(_tokens(source))
    return sum(w in have for w in words) / len(words)


def order(answer: str, source: str) -> float:
    """Share of the answer's adjacent word pairs that are also adjacent in the source.

    All words count here, stop words too: "the cell" vs "cell the" is exactly what it catches.
    An answer of fewer than two words scores 0 (the length check names that one).
    """
    words = _TOKEN.findall(answer.lower())
    if len(words) < 2:
        return 0.0
    src = _TOKEN.findall(source.lower())
    pairs = set(itertools.pairwise(src))
    return sum(p in pairs for p in itertools.pairwise(words)) / (len(words) - 1)


def _character_problem(text: str, min_ratio: float) -> str | None:
    if "\ufffd" in text:
        return "contains U+FFFD (text was decoded from bad bytes)"
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        return "contains control characters"
    visible = [c for c in text if not c.isspace()]
    if visible and sum(c.isalnum() for c in visible) / len(visible) < min_ratio:
        return f"fewer than {min_ratio:.0%} letters or digits"
    return None


def validate_record(
    record: object,
    seen: dict[str, str] | None = None,
    config: QualityConfig | None = None,
) -> Verdict:
    """Check one record; `seen` maps dedup keys to the id of the record accepted under them."""
    cfg = config or QualityConfig()
    if not isinstance(record, dict):
        return Verdict(
            False, (f"schema: a record must be an object (got {type(record).__name__})",)
        )
    schema = [
        f"schema: field {k!r} must be a non-empty {t.__name__}"
        for k, t in REQUIRED.items()
        if not isinstance(record.get(k), t) or not record[k].strip()
    ]
    if schema:
        return Verdict(False, tuple(schema))
    reasons: list[str] = []
    n_answer = len(record["answer"].split())
    if not cfg.min_answer_words <= n_answer <= cfg.max_answer_words:
        reasons.append(
            f"length: answer has {n_answer} words, allowed "
            f"{cfg.min_answer_words}-{cfg.max_answer_words}"
        )
    n_question = len(record["question"].split())
    if n_question > cfg.max_question_words:
        reasons.append(f"length: question has {n_question} words, at most {cfg.max_question_words}")
    for name in ("question", "answer"):
        problem = _character_problem(record[name], cfg.min_alnum_ratio)
        if problem:
            reasons.append(f"characters: {name} {problem}")
    if seen is not None:
        other = seen.get(dedup_key(record))
        if other is not None and other != record["id"]:
            reasons.append(f"duplicate: same answer as record {other}")
    score = grounding(record["answer"], record["source"])
    if score < cfg.min_grounding:
        reasons.append(
            f"grounding: {score:.0%} of the answer's words are in the chunk, need {cfg.min_grounding:.0%}"
        )
    in_order = order(record["answer"], record["source"])
    if in_order < cfg.min_order:
        reasons.append(
            f"order: {in_order:.0%} of the answer's word pairs are in the chunk in that order, "
            f"need {cfg.min_order:.0%}"
        )
    return Verdict(not reasons, tuple(reasons), round(score, 3))
