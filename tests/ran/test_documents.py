"""Parsing and chunking RAN documents, and the clear refusal of bad ones."""

from __future__ import annotations

import pytest

from prefect_ft.demo.ran.documents import (
    DocumentError,
    build_prompt,
    chunk_document,
    corpus_paths,
    load_chunks,
    read_document,
    record_from_generation,
)


def test_bundled_corpus_has_about_twenty_documents_that_all_chunk() -> None:
    paths = corpus_paths()
    assert 18 <= len(paths) <= 25
    ids = []
    for p in paths:
        chunks = load_chunks(p)
        words = len(read_document(p).split())
        assert 120 <= words <= 600, (p.name, words)
        assert chunks and all(c["text"] for c in chunks)
        ids += [c["chunk_id"] for c in chunks]
    assert len(ids) == len(set(ids))


def test_chunks_respect_max_words_and_keep_sentences_whole() -> None:
    text = "# T\n## S\n" + " ".join(f"Sentence number {i} has six words." for i in range(30))
    chunks = chunk_document("d", text, max_words=20)
    assert len(chunks) > 5
    assert all(len(c.text.split()) <= 20 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)
    assert [c.chunk_id for c in chunks][:2] == ["d#0", "d#1"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"no title here\n", "no '# Title' line"),
        (b"# Only a title\n", "a title but no text"),
        (b"# T\n\xff\xfe broken", "not UTF-8 text (bad byte at offset 4)"),
        (b"# T\n\x00\x01\x02", "binary data"),
    ],
)
def test_bad_documents_get_a_clear_message_naming_the_file(tmp_path, data, message) -> None:
    p = tmp_path / "bad-doc.md"
    p.write_bytes(data)
    with pytest.raises(DocumentError, match="bad-doc") as info:
        load_chunks(p)
    assert message in str(info.value)


def test_missing_corpus_directory_is_named(tmp_path) -> None:
    with pytest.raises(DocumentError, match="does not exist"):
        corpus_paths(tmp_path / "nope")


def test_record_from_generation_builds_a_question_and_cleans_the_answer() -> None:
    chunk = load_chunks(corpus_paths()[0])[0]
    assert chunk["title"] in build_prompt(chunk)
    rec = record_from_generation(chunk, "  ## the   primary cell\ncarries " + "x " * 200)
    assert rec["id"] == chunk["chunk_id"] and rec["source"] == chunk["text"]
    assert rec["answer"].startswith("the primary cell carries")
    assert len(rec["answer"].split()) == 80
    assert chunk["section"].lower() in rec["question"]


def test_the_answer_ends_at_its_last_whole_sentence_and_before_a_new_heading() -> None:
    chunk = load_chunks(corpus_paths()[0])[0]
    generated = "the primary cell carries control. Secondary cells add capacity. Intra-band cont"
    assert record_from_generation(chunk, generated)["answer"] == (
        "the primary cell carries control. Secondary cells add capacity."
    )
    # a new section's heading and text are not part of this chunk's answer
    rec = record_from_generation(chunk, "the primary cell carries control.\n## Timers\nThe timer")
    assert rec["answer"] == "the primary cell carries control."
    # no sentence end after enough words: the words are kept as they are
    assert record_from_generation(chunk, "ok. the primary cell carries")["answer"] == (
        "ok. the primary cell carries"
    )
