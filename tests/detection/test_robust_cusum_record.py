"""The CUSUM's own record, a documented limitation of thresholds v6 (issue 12, MSFT misses).

Every sample's CUSUM joins the record the next sample is judged by, so a CUSUM alarms only when
it grows by more than the record margin (1.15) in one step: a slow episode raises its own bar
(MSFT purchase-05 row 309: CUSUM 65.1 against a record of 65.1). The test pins the behaviour so
that a fix shows here.

Tried on 2026-12-02 and not frozen as v7 (NAB dev standard / low FP / low FN, halves even / odd,
MSFT recall at false alarms per normal hour; v6: 72.0 / 60.9 / 77.9, 76.6 / 67.2, 0.562 at 0.0094):
- an excursion judged against the record that stood when it began: 63.2 / 37.1 / 74.2,
  62.5 / 64.0, 0.516 at 0.0325 (CUSUM false alarms on NAB 86 -> 299);
- the same, with an alarm's reset not ending the excursion: 65.6 / 42.2 / 75.8, 66.9 / 64.3,
  0.609 at 0.0221;
- the same, with the excursion's own value 12 samples back in its record: 66.4 / 43.5 / 76.3,
  68.0 / 64.8, 0.625 at 0.0210.
MSFT recall rises, but false alarms double on both sets and both NAB halves fall: on real
residuals CUSUM excursions beat earlier excursions often, and the one-step growth the per-sample
record demands is what kept them quiet.
"""

from __future__ import annotations

import numpy as np

from prefect_ft.detection.robust_metric import RobustStream
from prefect_ft.detection.thresholds import load_thresholds


def test_v6_a_slow_rise_is_judged_against_its_own_cusum() -> None:
    th = load_thresholds("6")
    rng = np.random.default_rng(0)
    x = 100.0 + rng.normal(0.0, 1.0, 1500)
    x[1200:1400] += 2.0  # z ~ 1.5 a step: the CUSUM grows ~1 a step, < 15 % once above ~7
    stream = RobustStream("generic", th)
    rises, peak = [], 0.0
    for i, v in enumerate(x.tolist()):
        a = stream.update(i * 60.0, v)
        if 1200 <= i < 1260:
            peak = max(peak, stream.up)
        if a is not None and "rise" in a.explanation:
            rises.append(i)
    # the CUSUM passes its decision interval (rm_h 10) twice over, yet never alarms: each step
    # is compared with its own previous value
    assert peak > 2 * th.rm_h
    assert rises == []
