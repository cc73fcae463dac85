"""The fault schedule `make demo` runs, and why each fault has its shape.

Windows count each component's calls (`clock: calls`), so every fault starts where its component
has traffic, whatever the machine's pace; a fault that is an outage of some duration says so
(`duration_unit: seconds`): it starts at a call and then lasts that long, however many calls the
breaker lets through. Each fault is shaped as a user would call it a fault, not to any detector's
threshold (the detectors do not know this schedule):

- doc-processing latency: each of 8 parses takes 2 s longer, five times a parse's normal ~0.4 s
  (the old +0.3 s was lost among the process pool's own queueing);
- ml-inference error burst: 5 generations in a row fail, a bad spell that outlasts two model
  reloads: 3 trip the breaker and the half-open probes after the first two reloads fail too, so
  recovery has to try three times. Counted in calls, not seconds: a 4 s spell failed 3 to 5
  generations as the reloads ran fast or slow (only the breaker's trip on a quiet machine at
  13:03 on 2026-12-02, too few for the burst chart, which then still held them when the `ipc`
  drop came: the false alarms), so the detection count moved with the machine's load. Not
  longer: recovery tries 3 times, and a spell outlasting them leaves the breaker open for its
  doubled open time (120 s; a 10 s burst stalled the pipeline past its deadline). The old 3
  calls were exactly the breaker's threshold: the "burst" was only its trip;
- quality-validation intermittent failures: every other validation fails for 20 calls, as when one
  of two validator replicas behind a round robin is broken. The breaker (4 failures in a row) trips
  on it only when concurrent validations end out of order; detection sees it either way, from the
  failures' rate, and the failed items are dead letters, replayed. Before, every validation failed
  for 8 s: the breaker stopped the calls after the 4 of its trip (no control channel, so nothing
  reached the component until its open time ended), exactly the burst chart's minimum (4 in a row
  at a baseline near 2 %), and a validation already running when the spell began, ending among
  them, hid it (fail, fail, ok, fail, fail: the chart at 12.9 of 13 in a run on 2026-12-02):
  detected on some runs, not others;
- ml-inference memory leak: inside the model server, the process with a memory budget (64 MB of
  live arrays, about 100 times the tiny model's 0.7 MB): 4 MB more on each generation for 40 s,
  up to the budget, where the server refuses work (507, "resource exhausted") until recovery
  acts or the leak is freed;
- ipc dropped connections: 8 calls in a row cut (from its 12th call), while the leak grows;
  a connection reset recovers it in seconds;
- ml-inference crash: the model server is killed at its 75th call, after the leak reached its
  budget and recovery acted, and after `ipc` is back, while the pipeline still sends work (82 to
  141 calls reached ml-inference in a run, replays included; at call 95 it never came in one
  run). Before, it fell while `ipc` was open, so no call reached it; at calls 34 and 60 it fell
  just as the leak reached the budget, while the breakers were open on its refusals, and at 75
  it still did in 1 of 3 runs (the call count at which the leak reaches the budget varies with
  the replays). Recovery escalates from a connection reset to a restart. Detection still missed
  it once on a quiet machine (2026-12-02, 16:49 UTC): it came 2.7 s after the leak's refusals,
  whose failures after their alarm (held) still sat in the burst chart, so the crash's episode
  took the refusals' type and was held too; later calls are not sure to come (see above), so
  the fix belongs in the burst detector, not here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_SCHEDULE", "MODEL_BUDGET_MB"]

MODEL_BUDGET_MB = 64.0  # the model server's memory budget (live MLX arrays), enforced by it

DEFAULT_SCHEDULE: dict[str, Any] = {
    "seed": 11,
    "clock": "calls",
    "faults": [
        {"component": "doc-processing", "kind": "latency", "start": 0, "duration": 8, "delay": 2.0},
        {"component": "ml-inference", "kind": "error_burst", "start": 3, "duration": 5,
         "rate": 1.0},
        {"component": "quality-validation", "kind": "periodic", "start": 4, "duration": 20,
         "every": 2},
        {"component": "ml-inference", "kind": "memory_leak", "start": 0, "duration": 40,
         "duration_unit": "seconds", "mb_per_call": 4, "budget_mb": MODEL_BUDGET_MB},
        {"component": "ipc", "kind": "drop_connections", "start": 12, "duration": 8, "rate": 1.0},
        {"component": "ml-inference", "kind": "crash", "start": 75, "duration": 120},
    ],
}  # fmt: skip
