"""Frozen detector thresholds, versioned, loaded from package data.

The synthetic detectors' numbers live in `thresholds_v1.json`, written by
`benchmarks/detection.py --calibrate` from fault-free segments of generator seeds 0-99
(research/detection.md section 2.6: thresholds come from the false-alarm budget, never from
evaluation data). `thresholds_v2.json` extends v1 with the real-series metric detector
(`metric_model` "robust", the `rm_*` numbers), chosen once on the NAB and MSFT dev sets and frozen
for every series (no per-file settings); `thresholds_v3.json` adds v3's record rules (alarms
join the records, an earlier start, the window-mean rule); `thresholds_v4.json` shortens the
hold-off after an alarm and tightens the spike record to pay for it; `thresholds_v5.json` turns on
a second detector family (`robust_local`, the local deviation) and an escalation rule inside the
hold-off (off unless `rm_escalate` > 0); `thresholds_v6.json` keeps the learnt level after a
local (point) alarm and reads loads (kind "throughput") on the log scale; `thresholds_v7.json`
asks the level-shift rules for rarity against the statistic's own history (`robust_rarity`);
`thresholds_v8.json` lets a load (kind "throughput") spike on a relative bar (`robust_load`).
`thresholds_v9.json` reads a sample whose seasonal bin is empty against the flat level;
`thresholds_v10.json` takes the start-up bias out of that rarity's moments;
`thresholds_v11.json` extends a load's hold-off while its episode lasts and keeps a load's
baseline-family alarms out of its local record, with a lower local bar for loads.
Change a number only by
recalibrating and bumping `VERSION`; `load_thresholds("1")` still gives the v1 behaviour.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from importlib import resources
from typing import Any

__all__ = ["VERSION", "Thresholds", "load_thresholds"]

VERSION = "11"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every tunable number of the detectors (times in seconds).

    Attributes:
        burst_h: Bernoulli CUSUM decision interval (nats).
        burst_m: the rise worth paging for: p1 = min(0.9, m * p0).
        burst_min_tasks: tasks in the baseline before burst alarms may fire.
        burst_baseline_s: trailing window of the failure-rate baseline.
        burst_m_fast: rise of the bank's second Bernoulli CUSUM (p1 = min(0.9, m * p0)), tuned
            to large bursts; 0 turns the bank off (one chart at `burst_m`).
        burst_h_fast: decision interval of that second chart (nats).
        deg_h: CUSUM decision interval on robust z of per-minute median log latency.
        deg_k: CUSUM reference value (sigma units).
        deg_z_clip: cap on one minute's z, so one odd minute cannot alarm on its own.
        mk_window_min: Mann-Kendall window, minutes.
        mk_z: Mann-Kendall z a ramp must exceed.
        ts_min_ratio_per_hour: practical effect: Theil-Sen slope at least this latency ratio per hour.
        deg_min_n: tasks a minute needs to yield a median.
        deg_warmup_min: baseline minutes before degradation alarms may fire.
        exh_horizon_s: alarm when the pessimistic time to the limit falls below this.
        exh_window_s: trailing window for the Theil-Sen slope.
        exh_alpha: confidence of the Theil-Sen slope interval.
        exh_min_ratio: the fitted rise over the window must exceed this many noise scales.
        exh_cpu_min_rise: a CPU trend must rise at least this many percent points over the window.
        exh_long_window_s: longest of the long exhaustion windows (5-minute block means), halved
            down to 2 x `exh_window_s` (8 h, 4 h, 2 h, 1 h), for slow leaks; 0 disables them.
        exh_lin_tol: a window counts as linear unless the slope of one of its halves departs
            from the window's by more than this fraction of it (and significantly).
        cyc_z: folded-count z (capped per cycle) a period must reach.
        cyc_power: Z^2_2 power the periodogram peak must reach.
        cyc_min_cycles: distinct on-phase cycles required.
        cyc_short_window_s: window of the short-period scan (60 s to 1200 s).
        cyc_fast_window_s: window of the fast scan (60 s to window / min_cycles, every 2 min);
            0 disables it.
        cyc_long_window_s: window of the long-period scan (1200 s to 4000 s).
        cascade_window_s: burst episodes this close in time may form a cascade.
        cascade_settle_s: wait after the second episode before reporting the cascade.
        cascade_max_lag_s: largest cross-correlation lag considered per edge.
        cascade_cond_alpha: p-value a graph descendant without its own burst alarm must reach
            (exact conditional Poisson-ratio test of its failures since the root's onset against
            its baseline) to join a cascade; tested only while an upstream burst alarm is open.
        cascade_cond_min_failures: failures such a descendant needs since the root's onset.
        cascade_baseline_s: trailing baseline window of that test (ends `cascade_window_s`
            before the root's onset).
        cascade_lead_s: the test window starts this long before the root's onset estimate.
        cascade_hop_tolerance_s: a hop runs backwards (no cascade) only when the child's burst
            onset precedes its parent's by more than this.
        cascade_min_wait_s: a cascade is reported no earlier than this after the first burst
            alarm of its group (stages far downstream are reached late when the root fails
            most tasks).
        holdoff_s: after an alarm, the same (pattern, component) stays silent this long.
        metric_h: CUSUM decision interval for `detect_metric`.
        metric_k: CUSUM reference value for `detect_metric`.
        metric_spike_z: robust z of a single-sample spike (kind "generic").
        metric_warmup: samples learnt before `detect_metric` may alarm.
        metric_model: "v1" (flat median baseline, the v1 detector) or "robust" (transform,
            learnt seasonality, robust scale: `baselines.py`, `robust_metric.py`) for the kinds
            latency, throughput and generic.
        rm_warmup: samples the robust model sees before it chooses its transform and may alarm.
        rm_flat_n: values the flat predictor takes the median of.
        rm_k_periods: periods the seasonal predictors look back.
        rm_scale_n: residuals the robust scale is computed on.
        rm_season_gain: a seasonal predictor is used only when its median error is below this
            fraction of the flat one's.
        rm_clip: samples join the baselines winsorised to the prediction +- this many scales.
        rm_spike_z: robust z of a single-sample spike.
        rm_h: CUSUM decision interval for level shifts (reference value `metric_k`).
        rm_holdoff: samples of silence after an alarm (at most a day of them): the episode is
            reported once, yet the next one, hours later, is not swallowed (v4: 72).
        rm_record_n: ordinary samples whose largest statistic an alarm must beat.
        rm_record_margin: ... by this factor.
        rm_record_max_s: ... but at most the samples of this long a span.
        rm_record_min: ordinary samples (or a day of them, if fewer) the records need first.
        rm_learn_min: ... but from this many on an alarm may fire (v3), if it beats its record
            by `rm_learn_factor` times the margin: a short record is weaker evidence.
        rm_learn_factor: see `rm_learn_min`.
        rm_mean_n: samples of the window-mean rule (v3; 0 turns it off): the mean of the last n
            clipped z must exceed `rm_mean_z` and its own record.
        rm_mean_z: see `rm_mean_n`.
        rm_record_k: the spike rules' record is the k-th largest z of the memory, not the largest
            (v3: 3; v4: 2, the false-alarm rate of k/(M+1) halved to pay for a shorter hold-off).
        rm_record_alarms: alarms' own statistics join the records (v3), so an event that keeps
            coming back becomes normal behaviour instead of alarming every time.
        rm_local_n: samples of the local median of the second family (v5, `robust_local`;
            0 turns it off): a sample's distance from it over the first-difference noise scale.
        rm_local_z: local z a local alarm must exceed.
        rm_local_scale_n: first differences the local noise scale is taken over.
        rm_local_k: the local record is the k-th largest local z of the memory.
        rm_local_margin: a local alarm must beat that record by this factor (times the
            first-day factor while learning).
        rm_local_record_alarms: local alarms' own z join the local record.
        rm_local_confirm: a local alarm also needs the baseline family's z beyond this, in the
            same direction (-inf: no confirmation).
        rm_local_relearn: a local alarm also relearns the flat level, as a baseline-family
            alarm does (v5); v6 turns it off: a point outlier is not a new level.
        rm_throughput_log: kind "throughput" reads positive data that no other transform
            claims (not small counts, not skewed) on the log scale, as kind "latency" does
            (v6; v2-v5 kept them as they are).
        rm_rare_z: self-calibrated rarity (v7, `robust_rarity`; 0 turns it off): a gated
            rule's statistic must also lie more than this many standard deviations beyond the
            exponentially weighted mean of the same statistic on this series.
        rm_rare_n: span (samples) of those exponential weights; judged from a tenth of it on.
        rm_rare_rules: the rules gated, comma-separated from spike, cusum, mean and local
            (v7: "cusum,mean", the level-shift rules).
        rm_load_kinds: the kinds (comma-separated) that the load rules of `robust_load` act
            on; other kinds keep v7's behaviour.
        rm_rearm_n: a hold-off ends after this many consecutive samples with baseline |z| below
            `rm_rearm_z` (0 turns it off, as in v8): the episode is over, the next may alarm.
        rm_rearm_z: see `rm_rearm_n`.
        rm_rel_z: a spike below `rm_spike_z` but above this alarms if it beats its record by
            `rm_rel_margin` (v8; 0 turns it off).
        rm_rel_margin: see `rm_rel_z`.
        rm_extend_z: on a load, a hold-off whose last sample still has baseline |z| at or
            above this goes on (v11; 0 turns it off): the episode it silences is not over.
        rm_extend_n: the most samples such an extension adds after one alarm.
        rm_load_local_z: on a load, the local z a local alarm must exceed in place of
            `rm_local_z` (v11; 0: `rm_local_z`).
        rm_load_local_clean: on a load, which alarmed samples keep their local z out of the
            local record: "baseline" those the baseline family alarmed on (v11), "all" every
            one; "" (v10) as `rm_local_record_alarms` says for every kind.
        rm_flat_fallback: when the chosen seasonal predictor has no forecast for a sample (an
            empty bin: irregular sampling left that time of day unseen), read the sample against
            the flat predictor instead of skipping it (off in v2-v8, on from v9: NAB 72.9
            against 73.0, benchmarks/RESULTS.md 2026-12-03).
        rm_rare_unbias: the rarity's mean and variance are those of the exponentially weighted
            sample normalised by its total weight (v10); v7's recursion started at the first
            value and at 0 and held that start for the first span.
        rm_escalate: inside a hold-off, a baseline |z| this many times the last alarm's (and
            above `rm_spike_z`) alarms again and restarts it (0 turns it off).
    """

    burst_h: float = 11.0
    burst_m: float = 8.0
    burst_min_tasks: int = 1800
    burst_baseline_s: float = 6 * 3600.0
    burst_m_fast: float = 30.0
    burst_h_fast: float = 13.0
    deg_h: float = 8.0
    deg_k: float = 0.5
    deg_z_clip: float = 8.0
    mk_window_min: int = 30
    mk_z: float = 4.5
    ts_min_ratio_per_hour: float = 1.1
    deg_min_n: int = 5
    deg_warmup_min: int = 60
    exh_horizon_s: float = 3600.0
    exh_window_s: float = 1800.0
    exh_alpha: float = 0.90
    exh_min_ratio: float = 3.0
    exh_cpu_min_rise: float = 12.0
    exh_long_window_s: float = 8 * 3600.0
    exh_lin_tol: float = 0.25
    cyc_z: float = 5.0
    cyc_power: float = 20.0
    cyc_min_cycles: int = 8
    cyc_short_window_s: float = 3 * 3600.0
    cyc_fast_window_s: float = 3600.0
    cyc_long_window_s: float = 12 * 3600.0
    cascade_window_s: float = 600.0
    cascade_settle_s: float = 180.0
    cascade_max_lag_s: float = 60.0
    cascade_cond_alpha: float = 1e-6
    cascade_cond_min_failures: int = 5
    cascade_baseline_s: float = 3 * 3600.0
    cascade_lead_s: float = 60.0
    cascade_hop_tolerance_s: float = 300.0
    cascade_min_wait_s: float = 420.0
    holdoff_s: float = 1800.0
    metric_h: float = 10.0
    metric_k: float = 0.5
    metric_spike_z: float = 8.0
    metric_warmup: int = 30
    metric_model: str = "v1"
    rm_warmup: int = 100
    rm_flat_n: int = 100
    rm_k_periods: int = 4
    rm_scale_n: int = 1000
    rm_season_gain: float = 0.8
    rm_clip: float = 3.0
    rm_spike_z: float = 8.0
    rm_h: float = 10.0
    rm_holdoff: int = 100
    rm_record_n: int = 2000
    rm_record_margin: float = 1.0
    rm_record_min: int = 300
    rm_record_max_s: float = 7 * 86400.0
    rm_learn_min: int = 10**9
    rm_learn_factor: float = 1.0
    rm_mean_n: int = 0
    rm_mean_z: float = 3.0
    rm_record_k: int = 1
    rm_record_alarms: bool = False
    rm_local_n: int = 0
    rm_local_z: float = 8.0
    rm_local_scale_n: int = 500
    rm_local_k: int = 2
    rm_local_margin: float = 1.0
    rm_escalate: float = 0.0
    rm_local_record_alarms: bool = True
    rm_local_confirm: float = -math.inf
    rm_local_relearn: bool = True
    rm_throughput_log: bool = False
    rm_rare_z: float = 0.0
    rm_rare_n: int = 2000
    rm_rare_rules: str = "spike,cusum,mean,local"
    rm_load_kinds: str = "throughput"
    rm_rearm_n: int = 0
    rm_rearm_z: float = 2.0
    rm_rel_z: float = 0.0
    rm_rel_margin: float = 3.0
    rm_extend_z: float = 0.0
    rm_extend_n: int = 0
    rm_load_local_z: float = 0.0
    rm_load_local_clean: str = ""
    rm_flat_fallback: bool = False
    rm_rare_unbias: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers, for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        """Build from a dict, ignoring unknown keys (e.g. `version`, `calibrated_on`)."""
        known = {f.name for f in fields(cls)}
        return replace(cls(), **{k: v for k, v in data.items() if k in known})


def load_thresholds(version: str = VERSION) -> Thresholds:
    """The frozen thresholds of `version`, from package data (defaults if a file is absent).

    Each version's file holds what it changes; later versions extend earlier ones.

    Raises:
        ValueError: `version` is not one of "1" .. `VERSION`.
    """
    if not version.isdigit() or not 1 <= int(version) <= int(VERSION):
        raise ValueError(f"version must be one of 1..{VERSION}, not {version!r}")
    data: dict[str, Any] = {}
    for v in range(1, int(version) + 1):
        try:
            text = resources.files("prefect_ft.detection").joinpath(f"thresholds_v{v}.json")
            data |= json.loads(text.read_text())
        except FileNotFoundError:
            continue
    return Thresholds.from_dict(data)
