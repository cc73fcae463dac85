"""RAN feature documents: read, parse and chunk (pure except `read_document`, which opens a file).

A document is markdown: one `# Title` line, then `## Section` headings with paragraphs. Each
section becomes one or more chunks of at most `max_words` words (split on sentence ends), and each
chunk gets a stable id `<doc>#<n>`, so a record, a dead letter and a replay all name the same item.

Bad input is refused with a `DocumentError` that names the file and what is wrong (not UTF-8,
binary, empty, no title, no text); the pipeline reports it and goes on with the other documents.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Chunk",
    "DocumentError",
    "build_prompt",
    "chunk_document",
    "corpus_paths",
    "load_chunks",
    "parse_document",
    "question_for",
    "read_document",
    "record_from_generation",
    "render_chunk",
    "training_texts",
]

CORPUS_DIR = Path(__file__).with_name("corpus")
MAX_BYTES = 1_000_000
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WS = re.compile(r"\s+")


class DocumentError(ValueError):
    """A document that cannot be used; the message names the document and the reason."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One unit of work for the model: a piece of one section of one document."""

    chunk_id: str
    doc_id: str
    title: str
    section: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def corpus_paths(directory: str | Path | None = None) -> list[Path]:
    """The `*.md` documents of a corpus directory (the bundled corpus by default), sorted."""
    root = Path(directory) if directory is not None else CORPUS_DIR
    if not root.is_dir():
        raise DocumentError(f"corpus directory {str(root)!r} does not exist")
    return sorted(root.glob("*.md"))


def read_document(path: str | Path) -> str:
    """The text of one document, or a `DocumentError` saying why it cannot be read."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DocumentError(f"document {p.name!r}: cannot be read ({exc.strerror})") from None
    if len(data) > MAX_BYTES:
        raise DocumentError(f"document {p.name!r}: {len(data)} bytes, more than {MAX_BYTES}")
    if b"\x00" in data:
        raise DocumentError(f"document {p.name!r}: binary data (NUL bytes), not markdown text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"document {p.name!r}: not UTF-8 text (bad byte at offset {exc.start})"
        ) from None


def parse_document(doc_id: str, text: str) -> tuple[str, list[tuple[str, str]]]:
    """(title, [(section, paragraph text), ...]) of a markdown document."""
    if not text.strip():
        raise DocumentError(f"document {doc_id!r}: empty")
    title = ""
    sections: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("# ") and not title:
            title = line[2:].strip()
        elif line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif line and not line.startswith("#"):
            if not sections:  # text before the first section heading
                sections.append(("Overview", []))
            sections[-1][1].append(line)
    if not title:
        raise DocumentError(f"document {doc_id!r}: no '# Title' line")
    out = [(name, _WS.sub(" ", " ".join(lines)).strip()) for name, lines in sections]
    out = [(name, body) for name, body in out if body]
    if not out:
        raise DocumentError(f"document {doc_id!r}: a title but no text")
    return title, out


def chunk_document(doc_id: str, text: str, max_words: int = 120) -> list[Chunk]:
    """Chunks of at most `max_words` words, cut at sentence ends (a longer sentence stays whole)."""
    if not isinstance(max_words, int) or max_words < 10:
        raise ValueError(f"max_words must be an integer >= 10 (got {max_words!r})")
    title, sections = parse_document(doc_id, text)
    chunks: list[Chunk] = []
    for section, body in sections:
        piece: list[str] = []
        words = 0
        for sentence in _SENTENCE_END.split(body):
            n = len(sentence.split())
            if piece and words + n > max_words:
                chunks.append(_chunk(doc_id, len(chunks), title, section, piece))
                piece, words = [], 0
            piece.append(sentence)
            words += n
        if piece:
            chunks.append(_chunk(doc_id, len(chunks), title, section, piece))
    return chunks


def _chunk(doc_id: str, n: int, title: str, section: str, sentences: list[str]) -> Chunk:
    return Chunk(f"{doc_id}#{n}", doc_id, title, section, " ".join(sentences))


def load_chunks(path: str | Path, max_words: int = 120) -> list[dict[str, Any]]:
    """Read and chunk one document file (run in a process-pool worker: plain dicts come back)."""
    p = Path(path)
    return [c.to_dict() for c in chunk_document(p.stem, read_document(p), max_words)]


# -- the question-answer record -------------------------------------------------------------------
def question_for(chunk: dict[str, Any]) -> str:
    return f"What does the {chunk['title']} feature say about {chunk['section'].lower()}?"


def render_chunk(chunk: dict[str, Any], words: int | None = None) -> str:
    """A chunk as the model sees it: its headings, then its text (the first `words` words only).

    The model is trained on exactly this form (`training_texts`) and prompted with its beginning
    (`build_prompt`), so a prompt is a prefix of a text the model learned.
    """
    text = chunk["text"] if words is None else " ".join(chunk["text"].split()[:words])
    return f"# {chunk['title']}\n## {chunk['section']}\n{text}"


def training_texts(documents: list[str], max_words: int = 120) -> list[str]:
    """The model's training texts: every chunk of every document, rendered as it is prompted.

    A document that does not parse (no title, say) is still learned from, as it is.
    """
    out: list[str] = []
    for n, text in enumerate(documents):
        try:
            chunks = chunk_document(f"doc{n}", text, max_words)
        except DocumentError:
            out.append(text)
            continue
        out.extend(render_chunk(c.to_dict()) for c in chunks)
    return out


def build_prompt(chunk: dict[str, Any], opening_words: int = 8) -> str:
    """The prompt sent to the model: the chunk's headings and its opening words to continue."""
    return render_chunk(chunk, opening_words)


def record_from_generation(
    chunk: dict[str, Any], generated: str, max_words: int = 80, min_words: int = 5
) -> dict[str, Any]:
    """The question-answer record for a chunk, from the model's generated text.

    The answer ends where the model starts a new heading (a line beginning with `#`): what follows
    belongs to another section. Generation stops at a token count, mid-sentence, so the answer
    ends at its last sentence end when that leaves at least `min_words` words.
    """
    generated = re.split(r"\n\s*#", generated, maxsplit=1)[0]
    answer = _WS.sub(" ", generated.replace("#", " ")).strip()
    answer = " ".join(answer.split()[:max_words])
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", answer)]
    if ends and len(answer[: ends[-1]].split()) >= min_words:
        answer = answer[: ends[-1]]
    return {
        "id": chunk["chunk_id"],
        "doc_id": chunk["doc_id"],
        "question": question_for(chunk),
        "answer": answer,
        "source": chunk["text"],
    }
