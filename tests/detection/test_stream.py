"""`MetricStream`: the incremental `detect_metric` (issue 12): the batch's alarms, sample by sample."""

from __future__ import annotations

import numpy as np
import pytest

from prefect_ft.detection import MetricStream, detect_metric
from tests.detection.test_realseries import BAD, daily


def _anomalous(seed: int) -> tuple[np.ndarray, np.ndarray]:
    ts, v = daily(seed, days=10)
    v[5 * 288 + 7] *= 2.5
    v[7 * 288 :] *= 1.4
    v[8 * 288 + 100 : 8 * 288 + 110] *= 0.2
    v[2000] = np.nan
    ts[2500] = ts[2499]  # a duplicate and an out-of-order stamp
    ts[2600] = ts[2500] - 600.0
    return ts, v


@pytest.mark.parametrize("kind", ["generic", "throughput", "latency"])
def test_the_stream_gives_the_batch_alarms_sample_by_sample(kind) -> None:
    ts, v = _anomalous(8)
    batch = detect_metric(ts, v, kind=kind)
    assert batch
    stream = MetricStream(kind)
    alarms = [a for t, x in zip(ts, v, strict=True) for a in stream.update(t, x)]
    assert alarms == batch
    reasons = {s.reason for s in stream.skipped}
    assert {"nan_values", "duplicate_timestamps", "out_of_order"} <= reasons


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_samples_never_raise(name) -> None:
    ts, v = BAD[name]
    stream = MetricStream("generic")
    with np.errstate(all="raise"):
        alarms = [a for t, x in zip(ts, v, strict=True) for a in stream.update(t, x)]
    assert alarms == detect_metric(ts, v, kind="generic")
    assert alarms or stream.skipped


def test_a_kind_the_stream_cannot_follow_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        MetricStream("resource")
