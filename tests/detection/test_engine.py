"""The engine: resumable state, bad input, the generator's determinism, the pure-layer rule."""

from __future__ import annotations

import ast
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import prefect_ft.detection as detection
from prefect_ft.detection import (
    DetectionEngine,
    EngineConfig,
    Pattern,
    ResourceBatch,
    TaskRunBatch,
    load_thresholds,
)
from prefect_ft.detection.synthetic import EpisodeSpec, Scenario, generate, to_bytes
from tests.astutil import parse_file
from tests.detection.series import T0, batch, task_rows

EPISODES = (
    EpisodeSpec(
        "burst", 1, 3 * 3600.0, (("m", 30.0), ("D_s", 300.0), ("ramp_s", 0.0), ("type", 5.0))
    ),
    EpisodeSpec("degradation", 3, 5 * 3600.0, (("g", 2.0), ("R_s", 0.0), ("hold_s", 1800.0))),
)


@pytest.fixture(scope="module")
def history():
    return generate(7, Scenario(hours=7, episodes=EPISODES))


def test_generated_episodes_are_found(history) -> None:
    alarms = DetectionEngine().update(history.tasks, history.resources).alarms
    found = {(a.pattern, a.components) for a in alarms}
    assert (Pattern.BURST, ("ml-inference",)) in found
    assert (Pattern.DEGRADATION, ("quality-validation",)) in found


def test_state_round_trip_gives_the_same_alarms_as_one_run(history) -> None:
    config = EngineConfig()
    whole = DetectionEngine(config).update(history.tasks, history.resources).alarms
    assert whole
    engine = DetectionEngine(config)
    pieces = []
    edges = np.arange(history.start_ts, history.end_ts + 1, 1234.5)  # cuts mid-minute
    for lo, hi in itertools.pairwise(edges):
        engine = DetectionEngine.from_state(config, json.loads(json.dumps(engine.state())))
        t, r = history.tasks.between(lo, hi), history.resources.between(lo, hi)
        pieces += engine.update(t, r, until=hi).alarms
    t, r = (
        history.tasks.between(edges[-1], history.end_ts + 1),
        history.resources.between(edges[-1], history.end_ts + 1),
    )
    pieces += engine.update(t, r).alarms
    assert [a.to_dict() for a in pieces] == [a.to_dict() for a in whole]


def test_state_of_another_component_set_is_refused() -> None:
    state = DetectionEngine().state()
    with pytest.raises(ValueError, match="component"):
        DetectionEngine.from_state(EngineConfig(("x",), ()), state)


def reasons(result) -> set[str]:
    assert result.alarms == ()
    return {s.reason for s in result.skipped}


def test_bad_input_never_crashes_or_alarms_and_says_why() -> None:
    one = ("a",)
    engine = DetectionEngine(EngineConfig(one, (), load_thresholds()))
    assert "empty" in reasons(engine.update())
    assert "empty" in reasons(engine.update(TaskRunBatch.empty(one)))
    single = TaskRunBatch(one, [T0], [T0 + 1], [True], [0], [0])
    assert reasons(engine.update(single)) == set()
    unknown = TaskRunBatch(("zzz",), [T0], [T0 + 2], [True], [0], [0])
    assert "unknown_component" in reasons(engine.update(unknown))
    bad_index = TaskRunBatch(one, [T0], [T0 + 2], [True], [0], [7])
    assert "unknown_component" in reasons(engine.update(bad_index))
    nan = TaskRunBatch(one, [T0, T0], [np.nan, T0 + 3], [False, False], [-1, -1], [0, 0])
    assert "nan_values" in reasons(engine.update(nan))
    assert "late_rows" in reasons(engine.update(single))  # ends before the watermark now
    dup = TaskRunBatch(one, [T0 + 5] * 2, [T0 + 6] * 2, [False] * 2, [-1] * 2, [0] * 2)
    assert "duplicate_rows" in reasons(engine.update(dup))
    mismatch = TaskRunBatch(one, [T0], [T0 + 9, T0 + 10], [False], [-1], [0])
    assert "shape_mismatch" in reasons(engine.update(mismatch))
    flat = ResourceBatch(
        one,
        T0 + 10.0 * np.arange(2000),
        np.zeros(2000),
        np.full(2000, 500.0),
        np.full(2000, 1000.0),
        np.full(2000, 20.0),
    )
    assert reasons(engine.update(resources=flat)) == set()


def test_out_of_order_rows_in_a_batch_are_sorted_not_lost() -> None:
    rng = np.random.default_rng(3)
    onset = 4 * 3600.0
    rows = task_rows(rng, 6, lambda t: np.where((t >= onset) & (t < onset + 600), 0.2, 0.01))
    order = rng.permutation(rows["end"].size)
    shuffled = {k: v[order] for k, v in rows.items()}
    one = ("a",)
    config = EngineConfig(one, (), load_thresholds())
    sorted_alarms = DetectionEngine(config).update(batch(one, rows)).alarms
    shuffled_alarms = DetectionEngine(config).update(batch(one, shuffled)).alarms
    assert sorted_alarms and sorted_alarms == shuffled_alarms


def test_generator_is_byte_identical_per_seed() -> None:
    a = to_bytes(generate(11, Scenario(hours=3)))
    b = to_bytes(generate(11, Scenario(hours=3)))
    c = to_bytes(generate(12, Scenario(hours=3)))
    assert a == b
    assert a != c


def test_generator_labels_follow_the_spec() -> None:
    hist = generate(5, Scenario(hours=48))
    scored = [e for e in hist.episodes if e.pattern not in ("none", "maintenance")]
    assert 1 <= len(scored) <= 8
    assert all(e.onset_ts >= hist.start_ts + 2 * 3600 for e in scored)
    spans = sorted((e.onset_ts, e.end_ts) for e in scored)
    assert all(b[0] - a[1] >= 2 * 3600 for a, b in itertools.pairwise(spans))
    assert sum(e - s for s, e in spans) <= 24 * 3600
    assert {e.pattern for e in hist.episodes} >= {"none", "maintenance"}
    t = hist.tasks
    assert np.all(np.diff(t.end) >= 0)
    assert set(np.unique(t.failure_type[t.failed])) <= set(range(8))
    assert np.all(t.failure_type[~t.failed] == -1)


ALLOWED = {"numpy", "scipy", "prefect_ft", "__future__"}


def test_the_detection_package_is_pure() -> None:
    import sys

    root = Path(detection.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(parse_file(path)):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in ALLOWED or top in sys.stdlib_module_names, (path, name)
                assert top not in {"logging", "time", "datetime"} or path.name == "__init__.py", (
                    path,
                    name,
                )
                if top == "prefect_ft":
                    assert name.startswith("prefect_ft.detection"), (path, name)


def test_public_names_are_exported() -> None:
    public = {n for n in vars(detection) if not n.startswith("_")} - {
        m for m in vars(detection) if type(getattr(detection, m)).__name__ == "module"
    }
    assert set(detection.__all__) == public
