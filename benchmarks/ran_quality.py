"""How many corpus chunks get a record that passes quality: build the RAN model once, generate for
every chunk of the bundled corpus as the pipeline does (build_prompt, 48 tokens), check each record.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/ran_quality.py

Prints the build (steps, loss, wall and CPU seconds), the order score of shuffled chunks (what word
salad scores), each rejected record with its reasons, and the accepted share.
"""

import collections
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from prefect_ft.demo.ran.documents import (
    build_prompt,
    corpus_paths,
    load_chunks,
    read_document,
    record_from_generation,
)
from prefect_ft.demo.ran.model import build_version, generate, load_model, read_meta
from prefect_ft.demo.ran.quality import dedup_key, order, validate_record


def main() -> None:
    texts = [read_document(p) for p in corpus_paths()]
    chunks = [c for p in corpus_paths() for c in load_chunks(p)]
    shuffled = []  # what word salad made of the chunk's own words scores on the order check
    for c in chunks:
        words = c["text"].split()
        for seed in range(20):
            random.Random(seed).shuffle(words)
            shuffled.append(order(" ".join(words[:40]), c["text"]))
    shuffled.sort()
    print(
        f"shuffled chunks ({len(chunks)} x 20): order max {shuffled[-1]:.2f}, "
        f"p99 {shuffled[int(len(shuffled) * 0.99)]:.2f}, median {statistics.median(shuffled):.2f}"
    )
    wall, cpu = time.monotonic(), time.process_time()
    path = build_version(Path(tempfile.mkdtemp()), texts)
    print(
        f"build: {time.monotonic() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU,",
        read_meta(path),
    )
    model, tokenizer = load_model(path)
    seen: dict[str, str] = {}
    reasons: collections.Counter[str] = collections.Counter()
    accepted = 0
    for c in chunks:
        record = record_from_generation(c, generate(model, tokenizer, build_prompt(c), 48).text)
        verdict = validate_record(record, seen)
        if verdict.accepted:
            accepted += 1
            seen[dedup_key(record)] = record["id"]
        else:
            print("rejected", json.dumps({"record": record, "why": verdict.reasons}))
        reasons.update(r.split(":")[0] for r in verdict.reasons)
    print(f"example: {json.dumps(record)}")
    print(f"accepted {accepted}/{len(chunks)} = {accepted / len(chunks):.0%}", dict(reasons))


if __name__ == "__main__":
    main()
