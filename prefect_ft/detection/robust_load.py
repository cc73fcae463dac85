"""Two rules for loads (kind "throughput") in the real-series detector (`robust_metric`), v8.

MSFT's load series (issue 12) missed events for two reasons that one frozen number set for every
kind could not fix without paying on NAB, so both act only on the kinds in `rm_load_kinds`. v8
turns on the second; the first stays off (`rm_rearm_n` 0): on MSFT it bought one event for nine
false alarms, and on NAB's files read as loads it lost a window (RESULTS.md, 2026-12-03).

- **Re-arming after an episode.** After an alarm the detector is silent for `rm_holdoff` samples
  (a day of hourly samples) so that one episode raises one alarm. On a load that is a day of
  blindness: api-01 had surges hours after a precursor alarm, inside that silence. Statistical
  process control restarts a chart once the process is back in control after a signal (Page
  1954; the restarted CUSUM of Lucas and Crosier 1982, "Fast initial response for CUSUM
  quality-control schemes", Technometrics 24:199-205); here the hold-off ends once the baseline
  z has stayed within +-`rm_rearm_z` for `rm_rearm_n` consecutive samples: the episode is over,
  and the next excursion is a new one.
- **A relative spike bar.** A spike must exceed `rm_spike_z` (8 scales, set on NAB) and beat
  its record (the k-th largest z of the memory) by `rm_record_margin`. A load's residuals are
  quiet between events, so its real spikes often stood at 4-7 scales while beating their record
  several times over (api-01: 4.8 and 6.0 scales at 3.2 and 3.4 times the record). The record
  alone bounds the false-alarm rate: under exchangeable data a new maximum of M samples has
  probability 1/(M+1) whatever the distribution (the order-statistics argument behind SPOT,
  Siffer et al. 2017), and beating it by a factor c is rarer still (by about c^-a on a Pareto
  tail of index a). So for loads a larger margin, `rm_rel_margin` times the record, may stand in
  for the absolute bar above a lower floor `rm_rel_z`.

v11 adds three, for loads only (benchmarks/RESULTS.md, 2026-12-03):

- **A hold-off that lasts as long as its episode** (`rm_extend_z`, `rm_extend_n`). On MSFT a
  third of the spike false alarms fired on the first sample after a hold-off, in the middle of
  the outage or surge that started it (the z of the samples before already as large): the
  episode was reported once and was not over. The chart stays silent while the process is still
  out of control and restarts once back in it (the restart rule of Lucas and Crosier 1982, as in
  re-arming, read the other way): at its last sample the hold-off goes on while the baseline |z|
  is still beyond `rm_extend_z`, for at most `rm_extend_n` samples more.
- **A cleaner local record** (`rm_load_local_clean` "baseline"): a sample the baseline family
  alarmed on keeps its local z out of the local record. SPOT keeps flagged values out of the
  tail it fits (Siffer et al. 2017, "an abnormal value is not used to update the threshold");
  otherwise one reported spike, or a labelled one that recurs daily (MSFT's machine-01), raises
  the local bar for every smaller spike after it. The local family's own alarms still join it
  (v3's rule: what recurs becomes normal); keeping them out too ("all") reached 45 MSFT
  events instead of 41 but cost NAB's files read as loads 59.1 -> 48.3 (low FP profile).
- **A lower local bar** (`rm_load_local_z`): with the record clean, the record bounds the rate
  as it does for the relative spike bar, so the local family's absolute bar (set on NAB) can
  drop for loads.
"""

from __future__ import annotations

from prefect_ft.detection.thresholds import Thresholds

__all__ = ["Rearm", "joins", "load_rules", "relative_spike"]


def load_rules(kind: str, th: Thresholds) -> tuple[Rearm, tuple[float, float], tuple[float, str]]:
    """For one kind: its hold-off rule, its relative spike limits (floor 0: off) and its local
    limits (the local bar, and which alarms' local z join the local record: `joins`)."""
    joined = "all" if th.rm_local_record_alarms else "none"
    if kind not in th.rm_load_kinds.split(","):
        return Rearm(0, th.rm_rearm_z), (0.0, th.rm_rel_margin), (th.rm_local_z, joined)
    rearm = Rearm(th.rm_rearm_n, th.rm_rearm_z, (th.rm_extend_z, th.rm_extend_n))
    local_z = th.rm_load_local_z if th.rm_load_local_z > 0.0 else th.rm_local_z
    if th.rm_load_local_clean and joined == "all":
        joined = "none" if th.rm_load_local_clean == "all" else "local"
    return rearm, (th.rm_rel_z, th.rm_rel_margin), (local_z, joined)


def joins(joined: str, fired: tuple[str, float, float] | None) -> bool:
    """Whether a sample's local z joins the local record: always without an alarm (`fired`:
    rule, onset, score); with one, "all" alarms (v10), "local" the local family's own (v11 for
    loads), "none" none."""
    if fired is None or joined == "all":
        return True
    return joined == "local" and fired[0].startswith("local")


class Rearm:
    """Counts calm samples inside a hold-off; says when the episode is over.

    Args:
        n: consecutive calm samples that end the hold-off (0: never, the v7 behaviour).
        band: a sample is calm when its baseline |z| is below this.
        extend: (band, most samples) for v11's extension: at its last sample the hold-off goes
            on while the baseline |z| is still beyond the band, for at most that many samples
            more ((0, 0): never, v10).
    """

    def __init__(self, n: int, band: float, extend: tuple[float, int] = (0.0, 0)) -> None:
        self.n, self.band = n, band
        self.calm = 0
        self.extend, self.extended = extend, 0

    def reset(self) -> None:
        """A new alarm: its hold-off starts with no calm sample."""
        self.calm = 0
        self.extended = 0

    def hold(self, hold: int, z: float | None) -> int:
        """The hold-off left after one held sample with baseline z (None when unknown)."""
        if self.over(z):
            return 1  # this sample ends it
        band, most = self.extend
        going_on = hold == 1 and band > 0.0 and z is not None and abs(z) >= band
        if going_on and self.extended < most:
            self.extended += 1
            return 2  # the episode goes on: so does its silence
        return hold

    def over(self, z: float | None) -> bool:
        """Feed one held sample's baseline z (None when unknown); True once the episode is over."""
        if self.n <= 0 or z is None or abs(z) >= self.band:
            self.calm = 0
            return False
        self.calm += 1
        return self.calm >= self.n


def relative_spike(
    z: float, records: tuple[float, float], limits: tuple[float, float], sides: tuple[bool, bool]
) -> tuple[str, float] | None:
    """A spike below the absolute bar that beats its record by the larger relative margin.

    `records` are the spike records up and down (`Records.spike`), `limits` the floor
    `rm_rel_z` and the margin `rm_rel_margin`, `sides` whether rises and drops may alarm.
    """
    floor, margin = limits
    up_ok, down_ok = sides
    if floor <= 0.0:
        return None
    if z > floor and up_ok and z > margin * records[0]:
        return ("relative spike", z)
    if -z > floor and down_ok and -z > margin * records[1]:
        return ("relative spike", -z)
    return None
