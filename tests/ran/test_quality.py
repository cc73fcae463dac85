"""Quality checks: each failing check is named; a good record passes."""

from __future__ import annotations

import pytest

from prefect_ft.demo.ran.quality import QualityConfig, dedup_key, grounding, validate_record

SOURCE = "The scheduler activates a configured secondary cell when the buffer holds more data."


def record(**over):
    rec = {
        "id": "ca#0",
        "doc_id": "ca",
        "question": "What does carrier aggregation say about activation?",
        "answer": "The scheduler activates a configured secondary cell when the buffer holds data.",
        "source": SOURCE,
    }
    rec.update(over)
    return rec


def test_good_record_passes() -> None:
    v = validate_record(record(), {})
    assert v.accepted and v.reasons == () and v.grounding == 1.0


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"answer": ""}, "schema: field 'answer'"),
        ({"id": 3}, "schema: field 'id'"),
        ({"answer": "too short"}, "length: answer has 2 words"),
        ({"answer": "cell " * 200}, "length: answer has 200 words"),
        (
            {"answer": "secondary cell buffer \x07 scheduler data"},
            "characters: answer contains control",
        ),
        ({"answer": "secondary cell \ufffd buffer scheduler data"}, "U+FFFD"),
        ({"answer": "cell !!! ??? ### $$$ %%% &&& ***"}, "fewer than 60% letters"),
        ({"answer": "bananas grow on tall green tropical plants"}, "grounding: 0%"),
        # every word is in the chunk, in an order the chunk never has: word salad, not an answer
        (
            {
                "answer": "buffer cell the when data scheduler a holds secondary configured activates"
            },
            "order: 0% of the answer's word pairs",
        ),
    ],
)
def test_each_failed_check_is_named(over, reason) -> None:
    v = validate_record(record(**over), {})
    assert not v.accepted
    assert any(reason in r for r in v.reasons), v.reasons


def test_not_a_dict_is_a_schema_failure() -> None:
    v = validate_record(["x"])
    assert not v.accepted and "must be an object" in v.reasons[0]


def test_duplicate_of_another_record_is_rejected_but_not_of_itself() -> None:
    seen = {dedup_key(record()): "other#1"}
    assert "duplicate: same answer as record other#1" in validate_record(record(), seen).reasons
    assert validate_record(record(), {dedup_key(record()): "ca#0"}).accepted  # a replay re-checks


def test_a_shuffled_chunk_is_rejected_whatever_the_shuffle() -> None:
    import random

    words = SOURCE.rstrip(".").split()
    for seed in range(20):
        shuffled = words[:]
        random.Random(seed).shuffle(shuffled)
        v = validate_record(record(answer=" ".join(shuffled)), {})
        assert not v.accepted and any(r.startswith("order:") for r in v.reasons), (shuffled, v)


def test_grounding_ignores_stop_words_and_case() -> None:
    assert grounding("THE Scheduler and the BUFFER", SOURCE) == 1.0
    assert grounding("", SOURCE) == 0.0


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"min_grounding": 1.5}, "min_grounding must be between 0 and 1"),
        ({"min_order": -0.1}, "min_order must be between 0 and 1"),
        ({"min_answer_words": 0}, "min_answer_words must be an integer >= 1"),
        ({"min_answer_words": 50, "max_answer_words": 10}, "must be <= max_answer_words"),
    ],
)
def test_bad_config_names_the_field(kw, msg) -> None:
    with pytest.raises(ValueError, match=msg):
        QualityConfig(**kw)
