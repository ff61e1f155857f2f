"""Bottleneck shift: a stage's typical duration moved to a new level (slowdown or speedup).

Method: River's two-sided Page-Hinkley test (``river.drift.PageHinkley``, ``mode="both"``) on
log-durations standardized by a robust reference. Page-Hinkley is Page's CUSUM of the deviations
from a running mean; what makes it robust to outliers and meaningful in business terms is what it
is fed and how its alarms are read:

* The reference (median and sigma of log-durations) is learned from the first ``min_samples``
  completed items (median, MAD), then refined slowly (Huber steps for the level, winsorized mean
  absolute deviation for the spread, memory ``ref_window`` items) with values as they leave a lag
  buffer of the last ``buffer`` items, so a change in progress does not leak into the reference
  before the test has judged it.
* Inputs are residuals ``(log d - median) / sigma`` winsorized at ``clip`` sigmas: a 10x outlier
  counts like a 3-sigma item, so sparse outliers cannot trigger a shift. The reference's sigma is
  at least ``ln(min_ratio) / clip``: a stage of near-constant durations (a system's step, dates
  without a time: most items one day) has no spread of its own, and at the former 0.05 floor its
  deviations were winsorized below the test's slack: a change from one day to three was never
  called. (A winsorizing limit of twice the meaningful factor instead called runs of two-day items
  among one-day ones slowdowns.)
* The Page-Hinkley slack ``delta`` is ``max(slack_sigmas, ln(min_ratio) / (2 sigma))`` sigmas:
  only changes of a meaningful factor (>= ~``min_ratio``) accumulate, whatever the spread; the
  decision limit ``threshold`` is ``threshold_sigmas``, raised by ``1 + min_samples / n`` while
  the reference rests on few items. Both follow the reference, so they are set before each update;
  no forgetting (``alpha = 1``).
* The test's running mean starts at residual 0 (the reference) with the weight of ``ref_window``
  items. Unprimed, the mean learns the change it should detect: measured, 2x slowdowns at sigma
  0.9 took a median 62 items (1.8x longer) with 3 of 20 missed, and a slowdown 20 items after
  arming was missed 12-16 times in 20 (sigma 0.3-0.9).
* On an alarm the new level is the median of the items after the most likely change point
  among those since the statistic last left zero; a :class:`Shift` is returned once, and the
  detector re-arms on the new level: a fresh reference (and test) from the next ``min_samples``
  items. An alarm whose new level is not a meaningful factor away restarts the test quietly.
* An alarm is confirmed by the next ``confirm`` (5) items: their median must lie on the new
  level's side, at least half the meaningful factor away. Real stages complete in bursts (the
  older items of a stage whose inflow dipped the day before all finish on one day): such a run
  raises the alarm, then ends. Not confirmed, the test simply goes on. Scenarios, seeds 1-8 (48
  runs): false shifts 5 -> 1, the slowdown found 0.3-1.0 days later (4.7-6.1 -> 5.1-6.4 days).
* The stage's flow has a say (``update(seconds, ts, inflow)``, ``inflow`` its net inflow share from
  :meth:`~detectors.throughput.FlowTracker.inflow_share`): a slowdown is not called while work
  drains from the stage, nor a speedup while it piles up. After a burst of arrivals (an
  end-of-quarter push) the completions are the burst's quick items first, then its slow ones, at
  durations unchanged: read in completion order, a speedup and then a slowdown. A real slowdown
  holds items back, so work piles up while it shows. The test goes on, and the change is called
  once the flow agrees. A reviewer's 9-month stream with 10x arrivals in each quarter's last week:
  6 false tickets -> 0; simulated seeds 1-8: the one false shift in 56 runs gone, the slowdowns
  found on the same days; public logs (the README's table): shift tickets BPI 2012 6 -> 5, BPI 2017
  offers 7 -> 4, applications 15 -> 11, BPI 2020 3 -> 1, BPI 2013 1 -> 2, BPI 2019 11 -> 12. The
  flow is read before the completing item leaves: read after, a stage holding an item at a time
  looked drained at most completions (3x slowdowns found after a median 35 completions instead of
  15).

Measured by ``bench/drift_quality.py`` (seeded streams with 2 % 10x outliers, 20 runs a cell,
the change at item 300) against the hand-written CUSUM it replaced (``--against d222dc4``), in the
same run (before the confirmation): a permanent 2x slowdown is found after a median of 11 / 22.5 /
38.5 items at sigma 0.3 / 0.6 / 0.9 (CUSUM 11 / 22 / 35), a 0.5x speedup after 12.5 / 25 / 43 (12.5 /
24.5 / 41.5), at most 84 items (CUSUM 84): 1.00-1.10x the CUSUM's delays. A slowdown 20 items after
arming: 19 / 32 / 49 items (19 / 31 / 48), 3 of 20 missed at sigma 0.9 (2). False shifts on
stationary streams: 3 in 600 000 items (sigma 0.6 and 0.9), 0.5 per 100 000, as the CUSUM. With the
confirmation (``--against`` the version before it): 16 / 27.5 / 49.5 items for the slowdown, 17.5 /
30 / 50.5 for the speedup, at most 91 items (was 86), the same 3 missed, and no false shift in
240 000 stationary items (2 before). An ``update``
costs ~1.5x the CUSUM's (River's ``Mean`` and method calls): 7-10 us against 4-7 us on a shared
2-core box.

Implementation
    Compiled (``core/src/drift.rs``, built when the package is installed): the lag buffer, the
    robust reference, residuals, the alarm's reading and the confirmation run natively, with the
    same operations in the same order as the Python class it replaced and the C library's
    ``log``/``exp`` that CPython's ``math`` calls, so every answer, snapshot and alert is bit-for-bit
    what it was. The change test is still River's ``PageHinkley`` object: each update sets its
    ``delta``/``threshold``, calls its ``update`` and reads its statistics (``score_one`` updates a
    deep copy). The snapshot format (``snapshot()``/``restore()``; snapshots without ``confirm`` still
    restore) and pickles (by the name ``detectors.drift.ShiftDetector``, every protocol, carrying the
    plain snapshot; the Python class's pickles at protocol 2 and up load) are unchanged. An
    ``update`` costs ~0.9 us against the Python class's 2.8 us, most of it River's ``update``.

>>> import random
>>> rng = random.Random(3)
>>> d = ShiftDetector()
>>> shifts = [d.update(3600 * rng.lognormvariate(0, 0.5) * (2 if i >= 500 else 1), i) for i in range(800)]
>>> found = [s for s in shifts if s]
>>> len(found), 500 < found[0].detected_at < 560, round(found[0].ratio, 1)
(1, True, 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors._core import ShiftDetector


@dataclass(frozen=True, slots=True)
class Shift:
    before_seconds: float  # typical duration before the change
    after_seconds: float  # typical duration after it
    ratio: float  # after / before: > 1 slowdown, < 1 speedup
    detected_at: float  # epoch seconds (event time of the item that confirmed it)

    @property
    def direction(self) -> str:
        return "slowdown" if self.ratio > 1 else "speedup"


def load_change_test() -> None:
    """Import River's change test now. ``river.drift`` imports scipy (~0.6 s); a detector imports it when
    it arms, after its first ``min_samples`` completions: a long-running process calls this while it
    starts, so its stream does not stall for that long in the middle (the worker measured 0.6-1.6 s
    there, its alerts held back as long)."""
    import river.drift  # noqa: F401


__all__ = ["Shift", "ShiftDetector", "load_change_test"]
