"""Spike and level-shift decisions on real metric series (kinds latency, throughput, generic).

The residual of `baselines.RealSeriesModel` (transformed value minus the learnt flat or seasonal
prediction, over its robust scale) is a robust z. Two rules read it, as in the v1 detector but
on a baseline that knows seasons, skew and counts:

- a **spike**: |z| above `rm_spike_z` on one sample (two-sided where the kind calls for it: a load
  can spike or drop; a latency only matters going up);
- a **level shift**: a two-sided CUSUM on z clipped at `deg_z_clip` (Page 1954), crossing
  `rm_h`.

After either the flat level is relearnt, so a lasting shift raises one alarm.

Both also have to set a **record** (`robust_records`): the statistic must beat its own largest
value over the last `rm_record_n` ordinary samples by `rm_record_margin`.

After any alarm the detector stays silent for `rm_holdoff` samples (the episode is already
reported) while it keeps learning. Everything is causal: a prefix gives the same alarms.

Thresholds v3 add three rules (each off in v2's numbers):

- `rm_record_alarms`, `rm_record_k`: the record rules of `robust_records`.
- `rm_learn_min`, `rm_learn_factor`: an alarm may fire before the records cover a day, from
  `rm_learn_min` samples on, if it beats its shorter record by a larger margin (a maximum of few
  samples is a weaker bound). v2 spent the first day silent and missed early anomalies.
- `rm_mean_n`, `rm_mean_z`: the mean of the last n clipped z against its own record, a bounded
  memory alternative to the CUSUM for shifts in autocorrelated residuals (the short-window average
  of HTM's anomaly likelihood, Ahmad et al. 2017, read with the same record rule).

Thresholds v4 change numbers only: the hold-off is 72 samples instead of a day, since one alarm
per episode is the discipline NAB rewards, but a day of silence also swallowed the next episode
hours later; the spike record becomes the 2nd largest z (k/(M+1) halved) and the first-day margin
factor 1.3, which keeps the false alarms below v3's with the shorter hold-off.

Thresholds v5 add a second detector family, `robust_local`'s local deviation (a Hampel identifier
on the neighbourhood of the last `rm_local_n` samples, scaled by the first-difference noise), for
the spikes and sharp drops that a lagging baseline hides in its own residuals. It has its own
record (`rm_local_k`, `rm_local_margin`) and the two combine by OR: an alarm when either family's
statistic sets a clear record, so the false-alarm bound is at most the sum of the two. An
escalation rule (`rm_escalate`, off in v5) may alarm inside a hold-off when the episode grows far
beyond the alarm that started it (`robust_escalation`).

The warm-up's one-off decisions (transform, models, record and hold-off spans) are in
`robust_start`, the alarms' wording in `robust_alarm`.

Thresholds v6 change two rules and no number. A local alarm no longer relearns the flat level
(`rm_local_relearn` off): the Hampel identifier flags a point against its neighbourhood; the level
it was read against still holds, while a baseline-family spike or shift may be the first sample of
a new level. Kind "throughput" reads positive data on the log scale (`rm_throughput_log`), as
"latency" always did: the time of day scales a load, and an outage is a fraction of it, so on the
raw scale a drop at the night trough was small next to the peak hours' noise.

Thresholds v7 add one rule, self-calibrated rarity (`robust_rarity`, Numenta's anomaly likelihood,
Ahmad et al. 2017): the level-shift rules (the CUSUMs and the window mean) must also be rare
against the running distribution of the same statistic on this series. The record rule asks for a
new maximum of the last M values, which a series whose CUSUM keeps running high beats every few
days; its mean and spread say how high it usually runs, so a busy series needs a larger excursion
while a quiet one keeps its sensitivity.

Thresholds v8 add a rule for loads (`rm_load_kinds`, `robust_load`): a spike below `rm_spike_z`
may alarm by beating its record `rm_rel_margin` x (re-arming a hold-off early stays off).
Thresholds v9 turn on `rm_flat_fallback`: a sample whose chosen seasonal predictor has no
forecast (an empty bin of an irregularly sampled series) is read against the flat level; v2-v8
skipped it. Thresholds v11 extend a load's hold-off while its episode lasts and keep a load's
baseline-family alarms out of its local record (`robust_load`).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from prefect_ft.detection.alarms import Alarm, Skipped
from prefect_ft.detection.baselines import (
    RealSeriesModel,
    apply_transform,
)
from prefect_ft.detection.robust_alarm import constant_series, make_alarm, z_severity
from prefect_ft.detection.robust_escalation import escalation
from prefect_ft.detection.robust_load import joins, load_rules, relative_spike
from prefect_ft.detection.robust_local import LocalDeviation
from prefect_ft.detection.robust_rarity import Rarity
from prefect_ft.detection.robust_records import Records
from prefect_ft.detection.robust_start import start_stream
from prefect_ft.detection.thresholds import Thresholds

__all__ = ["RobustStream", "constant_series", "robust_shifts", "z_severity"]


class RobustStream:
    """The v2 detector on one cleaned stream, one sample at a time (the batch calls it too).

    `update(t, x)` takes a finite sample later than the previous one and returns its alarm, if
    any; the batch `robust_shifts` is a loop over it, so both give the same alarms.
    """

    def __init__(self, kind: str, th: Thresholds) -> None:
        self.kind, self.th = kind, th
        self.up_ok = kind in ("latency", "generic", "throughput")
        self.down_ok = kind in ("generic", "throughput")
        self.warmup = max(th.metric_warmup, th.rm_warmup)
        self.warm_t: list[float] = []
        self.warm_x: list[float] = []
        self.model: RealSeriesModel | None = None
        self.tf, self.c = "identity", 0.0
        self.up = self.down = 0.0
        self.zero_up = self.zero_down = 0.0
        self.hold = 0
        self.rec = Records(th.rm_record_n, th.rm_record_k, th.rm_mean_n > 0)
        self.win: deque[float] = deque(maxlen=max(1, th.rm_mean_n))
        self.win_sum = 0.0
        self.need, self.holdoff = th.rm_record_min, th.rm_holdoff
        self.count = 0
        self.local: LocalDeviation | None = None
        self.alarm_z = 0.0  # z of the last alarm, which an escalation must exceed
        self.alarm_ref = (0.0, 0.0)  # the prediction and scale the last alarm was measured by
        # v7: each statistic also judged against its own running distribution (`robust_rarity`)
        self.rare = Rarity(4, th.rm_rare_n, th.rm_rare_z, th.rm_rare_unbias)
        self.rare_local = Rarity(1, th.rm_rare_n, th.rm_rare_z, th.rm_rare_unbias)
        self.rare_rules = frozenset(th.rm_rare_rules.split(",")) if th.rm_rare_z > 0 else ()
        # v8, v11 (`robust_load`): a load's relative spike bar, hold-off and local limits
        self.rearm, self.rel, self.local_lim = load_rules(kind, th)

    def _start(self, t: float) -> None:
        st = start_stream(self.kind, self.th, self.warm_t, self.warm_x)
        self.tf, self.c, self.model, self.local = st.tf, st.c, st.model, st.local
        self.warm_t, self.warm_x = [], []
        self.zero_up = self.zero_down = t
        self.need, self.holdoff, self.dt = st.need, st.holdoff, st.dt
        self.rec = Records(st.rec_n, self.th.rm_record_k, self.th.rm_mean_n > 0)

    @property
    def learning(self) -> bool:
        """True while the stream cannot alarm yet (warm-up, or records shorter than a day)."""
        return self.model is None or self.rec.count < self.need

    @property
    def degenerate(self) -> bool:
        """True when the learnt baseline has no spread."""
        return self.model is not None and self.model.degenerate

    def update(self, t: float, x: float) -> Alarm | None:
        """Feed one sample; return the alarm it raises, if any."""
        th, rec = self.th, self.rec
        self.count += 1
        if self.model is None:
            self.warm_t.append(t)
            self.warm_x.append(x)
            if len(self.warm_t) >= self.warmup:
                self._start(t)
            return None
        model = self.model
        y = apply_transform(self.tf, self.c, x)
        preds = model.predictions(t)
        p, scale, name = preds[model.choice], model.scale, model.model_name
        if p is None and th.rm_flat_fallback and preds[0] is not None and model.scales[0] > 0.0:
            # v9: the chosen seasonal predictor has an empty bin (irregular sampling left
            # that time of day unseen); read the sample against the flat level, not skip it
            p, scale, name = preds[0], model.scales[0], "flat"
        local = self.local
        zl = local.z(y) if local is not None else None
        if local is not None:
            local.learn(y)
        if self.hold > 0:
            zr = (y - p) / scale if p is not None and scale > 0.0 else None
            self.hold = self.rearm.hold(self.hold, zr)  # re-armed early, or extended (v11)
        if p is None or scale <= 0.0 or self.hold > 0:
            escalated = self._escalation(t, x, y, p) if self.hold > 0 else None
            if escalated is not None:
                model.learn(t, y, preds, th.rm_clip)
                return escalated
            self.hold = max(0, self.hold - 1)
            self.zero_up = self.zero_down = t
            model.learn(t, y, preds, th.rm_clip)
            if p is not None and scale > 0.0 and self.hold == 0:
                z = (y - p) / scale
                self.rec.push(z, 0.0, 0.0, 0.0)  # the new normal after an episode sets the records
                self.rare.push((z, 0.0, 0.0, 0.0))
            return None
        z = (y - p) / scale
        self._z = z
        zc = max(-th.deg_z_clip, min(th.deg_z_clip, z))
        self.up = up = max(0.0, self.up + zc - th.metric_k)
        self.down = down = max(0.0, self.down - zc - th.metric_k)
        self.zero_up = t if up == 0.0 else self.zero_up
        self.zero_down = t if down == 0.0 else self.zero_down
        win = self.win
        if len(win) == win.maxlen:
            self.win_sum -= win[0]
        win.append(zc)
        self.win_sum += zc
        mean = self.win_sum / len(win) if len(win) == win.maxlen else 0.0
        margin = th.rm_record_margin
        learning = rec.count < self.need
        if learning:
            # short history: a record of few samples is weak evidence, so ask for more
            margin *= th.rm_learn_factor
        mean_z = th.rm_mean_z if th.rm_mean_n > 0 else math.inf
        rz_up, rz_dn = rec.spike()
        rc_up, rc_dn = rec.cusum()
        rm_up, rm_dn = rec.mean()
        # v7: True where a rule is not gated or its statistic is rare on this series
        r_zu, r_zd, r_cu, r_cd, r_mu, r_md = self.rare.gate(self.rare_rules, z, up, down, mean)
        fired: tuple[str, float, float] | None = None
        if z > th.rm_spike_z and self.up_ok and z > margin * rz_up and r_zu:
            fired = ("spike", t, z)
        elif -z > th.rm_spike_z and self.down_ok and -z > margin * rz_dn and r_zd:
            fired = ("spike", t, -z)
        elif rel := relative_spike(z, (rz_up, rz_dn), self.rel, (self.up_ok, self.down_ok)):
            fired = (rel[0], t, rel[1])
        elif up > th.rm_h and self.up_ok and up > margin * rc_up and r_cu:
            fired = ("rise", self.zero_up, up)
        elif down > th.rm_h and self.down_ok and down > margin * rc_dn and r_cd:
            fired = ("drop", self.zero_down, down)
        elif mean > mean_z and self.up_ok and mean > margin * rm_up and r_mu:
            fired = ("rise", t - (len(win) - 1) * self.dt, mean)
        elif -mean > mean_z and self.down_ok and -mean > margin * rm_dn and r_md:
            fired = ("drop", t - (len(win) - 1) * self.dt, -mean)
        elif zl is not None and local is not None:
            fired = self._local(t, zl, z, margin)
            if fired is not None and "local" in self.rare_rules:
                fired = fired if self.rare_local.rare(0, zl, zl > 0) else None
        if fired is not None and learning and rec.count < th.rm_learn_min:
            fired = None
        alarm = None
        if fired is None or th.rm_record_alarms:
            rec.push(z, up, down, mean)
            self.rare.push((z, up, down, mean))
        if zl is not None and local is not None and joins(self.local_lim[1], fired):
            local.push(zl)
            self.rare_local.push((zl,))
        if fired is not None:
            how, onset, score = fired
            alarm = make_alarm(how, onset, t, score, self.kind, x, p, z, self.tf, self.c, name)
            self.hold = self.holdoff
            self.rearm.reset()
            self.alarm_z, self.alarm_ref = z, (p, scale)
            self.up = self.down = 0.0
            self.win.clear()
            self.win_sum = 0.0
            # the first sample of a step looks like a spike: relearn the level after either
            # baseline-family alarm. A local alarm (v6: `rm_local_relearn` off) is a point
            # against its own neighbourhood, no evidence of a new level: relearning there threw
            # away a level that was still right, and the samples after it were read against a
            # median and scale of a handful of samples
            if th.rm_local_relearn or not how.startswith("local"):
                model.relearn_level()
        model.learn(t, y, preds, th.rm_clip)
        return alarm

    def _escalation(self, t: float, x: float, y: float, p: float | None) -> Alarm | None:
        """An alarm inside a hold-off (`robust_escalation`); it restarts the hold-off."""
        got = escalation(
            self.th,
            self.model,
            (self.alarm_z, self.alarm_ref),
            (self.up_ok, self.down_ok),
            (t, x, y, p),
            (self.kind, self.tf, self.c),
        )
        if got is None:
            return None
        alarm, self.alarm_z, self.alarm_ref = got
        self.hold = self.holdoff
        self.rearm.reset()
        return alarm

    def _local(
        self, t: float, zl: float, z: float, margin: float
    ) -> tuple[str, float, float] | None:
        """The second family's decision (`robust_local`): a local z beating its own record."""
        th, local = self.th, self.local
        if local is None:
            return None
        limits = (self.local_lim[0], margin * th.rm_local_margin, th.rm_local_confirm)
        got = local.decide(zl, z, limits, (self.up_ok, self.down_ok))
        return None if got is None else (got[0], t, got[1])


def robust_shifts(
    ts: np.ndarray, vs: np.ndarray, kind: str, th: Thresholds, skipped: list[Skipped]
) -> list[Alarm]:
    """Alarms on a cleaned series (finite, strictly increasing timestamps)."""
    stream = RobustStream(kind, th)
    alarms = [
        a
        for t, x in zip(ts.tolist(), vs.tolist(), strict=True)
        if (a := stream.update(t, x)) is not None
    ]
    if stream.learning:
        skipped.append(
            Skipped(
                "learning",
                int(ts.size),
                "too few samples to know what is normal yet (a day, or "
                f"{max(th.rm_warmup, th.rm_record_min)} samples)",
            )
        )
    if stream.degenerate:
        skipped.append(constant_series(int(ts.size)))
    return alarms
