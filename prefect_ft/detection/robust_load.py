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
"""

from __future__ import annotations

__all__ = ["Rearm", "relative_spike"]


class Rearm:
    """Counts calm samples inside a hold-off; says when the episode is over.

    Args:
        n: consecutive calm samples that end the hold-off (0: never, the v7 behaviour).
        band: a sample is calm when its baseline |z| is below this.
    """

    def __init__(self, n: int, band: float) -> None:
        self.n, self.band = n, band
        self.calm = 0

    def reset(self) -> None:
        """A new alarm: its hold-off starts with no calm sample."""
        self.calm = 0

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
