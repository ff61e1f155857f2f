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
  counts like a 3-sigma item, so sparse outliers cannot trigger a shift.
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

>>> import random
>>> rng = random.Random(3)
>>> d = ShiftDetector()
>>> shifts = [d.update(3600 * rng.lognormvariate(0, 0.5) * (2 if i >= 500 else 1), i) for i in range(800)]
>>> found = [s for s in shifts if s]
>>> len(found), 500 < found[0].detected_at < 560, round(found[0].ratio, 1)
(1, True, 2.0)
"""

from __future__ import annotations

import copy
import math
from array import array
from dataclasses import dataclass
from typing import Any, Self

from river.drift import PageHinkley

_MIN_SECONDS = 1e-3
_MAX_SECONDS = 1e10
_MIN_SIGMA = 0.05
_MAD_TO_SIGMA = 1.4826
_MEAN_ABS_TO_SIGMA = 1.2533
_HUBER_SCALE = 0.6827  # P(|Z| < 1): E[psi'] of the Huber function with c = 1 at the normal


@dataclass(frozen=True, slots=True)
class Shift:
    before_seconds: float  # typical duration before the change
    after_seconds: float  # typical duration after it
    ratio: float  # after / before: > 1 slowdown, < 1 speedup
    detected_at: float  # epoch seconds (event time of the item that confirmed it)

    @property
    def direction(self) -> str:
        return "slowdown" if self.ratio > 1 else "speedup"


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])


# -- River PageHinkley: the only place that knows its fields (river 0.26: a Mean of the inputs, the
# cumulative sums and their running min / max). A rename in River fails the round-trip tests.


def _ph_new(prior_weight: float) -> PageHinkley:
    """Two-sided Page-Hinkley without forgetting; its running mean starts at residual 0 (the
    reference) with the weight of ``prior_weight`` items. ``delta``/``threshold`` are set per update."""
    ph = _ph_blank()
    ph._x_mean.update(0.0, w=prior_weight)
    return ph


def _ph_clear_alarm(ph: PageHinkley) -> None:
    """Keep the test's statistics past an alarm (River resets them on the next update otherwise)."""
    ph._drift_detected = False


def _ph_blank() -> PageHinkley:
    return PageHinkley(min_instances=1, delta=0.0, threshold=1.0, alpha=1.0, mode="both")


def _ph_stats(ph: PageHinkley) -> tuple[float, float]:
    """The upward and downward Page-Hinkley statistics (0 until an update moved them)."""
    up = ph._sum_increase - ph._min_increase  # -inf before the first update
    dn = ph._max_decrease - ph._sum_decrease
    return max(up, 0.0), max(dn, 0.0)


def _ph_state(ph: PageHinkley) -> list[float | None]:
    m = ph._x_mean
    vals = [m.n, m._mean, ph._sum_increase, ph._min_increase, ph._sum_decrease, ph._max_decrease]
    return [v if math.isfinite(v) else None for v in vals]  # strict JSON: inf (never updated) -> None


def _ph_load(state: list[float | None]) -> PageHinkley:
    ph = _ph_blank()
    n, mean, s_inc, min_inc, s_dec, max_dec = state
    ph._x_mean.n, ph._x_mean._mean = float(n or 0.0), float(mean or 0.0)
    ph._sum_increase, ph._sum_decrease = float(s_inc or 0.0), float(s_dec or 0.0)
    ph._min_increase = math.inf if min_inc is None else float(min_inc)
    ph._max_decrease = -1.0 if max_dec is None else float(max_dec)
    return ph


class ShiftDetector:
    """Two-sided River Page-Hinkley on robust standardized log-durations of one (workflow, stage)."""

    def __init__(
        self,
        min_samples: int = 30,
        min_ratio: float = 1.5,
        threshold_sigmas: float = 15.0,
        slack_sigmas: float = 0.4,
        clip: float = 3.0,
        buffer: int = 64,
        ref_window: int = 1000,
        confirm: int = 5,
    ) -> None:
        if min_samples < 5 or buffer < min_samples or min_ratio <= 1.0:
            raise ValueError("ShiftDetector: need min_samples >= 5, buffer >= min_samples, min_ratio > 1")
        self.min_samples = int(min_samples)
        self.min_ratio = float(min_ratio)
        self.threshold_sigmas = float(threshold_sigmas)
        self.slack_sigmas = float(slack_sigmas)
        self.clip = float(clip)
        self.buffer = int(buffer)
        self.ref_window = int(ref_window)
        self.confirm = int(confirm)
        self._buf = array("d", bytes(8 * self.buffer))  # ring of raw log-durations
        self.n = 0  # items seen
        self.shifts = 0  # shifts reported
        self._learn_from = 0  # index of the first item of the current regime
        self._armed_at: int | None = None  # index from which items are absorbed into the reference
        self._m = 0.0
        self._s = 1.0
        self._mad = 0.0
        self._ref_n = 0
        self._ph: PageHinkley | None = None  # the change test, while armed
        self._n_up = self._n_dn = 0  # items since the upward / downward statistic was last 0
        self._pending: int | None = None  # item index of an alarm whose new level awaits `confirm` items
        self._pending_len = 0  # items after the change point at that alarm

    # -- helpers ----------------------------------------------------------------------------------

    def _last(self, k: int) -> list[float]:
        """The last ``k`` raw log-durations, oldest first."""
        k = min(k, self.n, self.buffer)
        b, R, n = self._buf, self.buffer, self.n
        return [b[(n - k + j) % R] for j in range(k)]

    def _arm(self) -> None:
        xs = self._last(self.n - self._learn_from)
        m = _median(xs)
        s = max(_MAD_TO_SIGMA * _median([abs(x - m) for x in xs]), _MIN_SIGMA)
        self._m, self._s, self._mad = m, s, s / _MEAN_ABS_TO_SIGMA
        self._ref_n = len(xs)
        self._armed_at = self.n
        self._restart()

    def _restart(self) -> None:
        self._ph = _ph_new(self.ref_window)
        self._n_up = self._n_dn = 0

    def _after_change(self, since: int) -> list[float]:
        """The items after the most likely change point among the last ``since``: the CUSUM may
        have left zero a while before the change (noise), so split where the winsorized mean
        shift is most significant (max of suffix_sum^2 / length)."""
        xs = self._last(since)
        c = self.clip * self._s
        best_len, best, acc = len(xs), -1.0, 0.0
        for length in range(1, len(xs) + 1):
            acc += min(max(xs[-length] - self._m, -c), c)
            score = acc * acc / length
            if length >= min(3, len(xs)) and score > best:
                best, best_len = score, length
        return xs[-best_len:]

    def _absorb(self, x: float) -> None:
        self._ref_n += 1
        a = 1.0 / min(self._ref_n, self.ref_window)
        s = self._s
        # level: a Huber step (psi clipped at 1 sigma, scaled for consistency at the normal), so
        # sparse outliers barely bias it; spread: mean absolute deviation, winsorized at `clip`
        self._m += a * min(max(x - self._m, -s), s) / _HUBER_SCALE
        c = self.clip * s
        self._mad += a * (min(abs(x - self._m), c) - self._mad)
        self._s = max(_MEAN_ABS_TO_SIGMA * self._mad, _MIN_SIGMA)

    def _residual(self, x: float) -> float:
        """The log-duration's deviation from the reference in sigmas, winsorized at ``clip``."""
        return min(max((x - self._m) / self._s, -self.clip), self.clip)

    def _configure(self, ph: PageHinkley) -> None:
        """Slack and decision limit in sigmas; both follow the reference as it is refined."""
        ph.delta = max(self.slack_sigmas, 0.5 * math.log(self.min_ratio) / self._s)
        # a reference learned from few items is uncertain: demand more evidence until it settles
        ph.threshold = self.threshold_sigmas * (1.0 + self.min_samples / self._ref_n)

    # -- API --------------------------------------------------------------------------------------

    def update(self, seconds: float, ts: float) -> Shift | None:
        """Feed one completed (unclipped) duration; a :class:`Shift` once per detected change."""
        if not math.isfinite(seconds):
            raise ValueError(f"duration must be finite, got {seconds!r}")
        x = math.log(min(max(seconds, _MIN_SECONDS), _MAX_SECONDS))
        slot = self.n % self.buffer
        old_index = self.n - self.buffer
        old = self._buf[slot]
        self._buf[slot] = x
        self.n += 1
        if self._armed_at is None:
            if self.n - self._learn_from >= self.min_samples:
                self._arm()
            return None
        if old_index >= self._armed_at:
            self._absorb(old)
        ph = self._ph
        assert ph is not None  # armed
        self._configure(ph)
        ph.update(self._residual(x))
        up, dn = _ph_stats(ph)
        self._n_up = self._n_up + 1 if up > 0 else 0
        self._n_dn = self._n_dn + 1 if dn > 0 else 0
        if self._pending is not None:  # an alarm's new level awaits confirmation; the test goes on
            _ph_clear_alarm(ph)
            return self._confirmed(ts) if self.n - self._pending >= self.confirm else None
        if not ph.drift_detected:
            return None
        since = self._n_up if up > ph.threshold else self._n_dn
        changed = self._after_change(since)
        after = _median(changed)
        before = self._m
        if abs(after - before) < math.log(self.min_ratio) * 0.9:
            # accumulated, but the new level is not a meaningful factor away: start over quietly
            self._restart()
            return None
        if self.confirm > 0:
            _ph_clear_alarm(ph)
            self._pending, self._pending_len = self.n, len(changed)
            return None
        return self._declare(after, ts)

    def _confirmed(self, ts: float) -> Shift | None:
        """``confirm`` items after an alarm: the new level holds if they too lie on its side of the
        old one, at least half the meaningful factor away. A run of slow completions on one day (the
        older items of a stage whose inflow dipped the day before) raises the alarm, then ends. Not
        confirmed, the test simply goes on: a statistic still past its limit alarms again at once."""
        self._pending = None
        before = self._m
        check = _median(self._last(self.confirm)) - before
        after = _median(self._last(min(self._pending_len + self.confirm, self.buffer)))
        if abs(check) < 0.5 * math.log(self.min_ratio) or check * (after - before) <= 0:
            return None
        return self._declare(after, ts)

    def _declare(self, after: float, ts: float) -> Shift:
        before = self._m
        self.shifts += 1
        self._learn_from = self.n  # re-arm on the new level: a fresh reference from the next items
        self._armed_at = None
        self._ph = None
        self._n_up = self._n_dn = 0
        return Shift(math.exp(before), math.exp(after), math.exp(after - before), ts)

    def recent(self, k: int) -> list[float]:
        """The last ``k`` durations in seconds (oldest first), to seed ``DurationBaseline.reset``."""
        return [math.exp(x) for x in self._last(k)]

    def level(self) -> float | None:
        """The current reference typical duration in seconds (None while learning)."""
        return math.exp(self._m) if self._armed_at is not None else None

    def score_one(self, seconds: float) -> float:
        """0..1: how far the upward or downward Page-Hinkley statistic would be towards a shift
        alarm if ``seconds`` were fed next (pure: a copy of the test is updated)."""
        if self._ph is None or not seconds > 0:
            return 0.0
        x = math.log(min(max(seconds, _MIN_SECONDS), _MAX_SECONDS))
        ph = copy.deepcopy(self._ph)
        self._configure(ph)
        ph.update(self._residual(x))
        return min(1.0, max(_ph_stats(ph)) / ph.threshold)

    # -- persistence ------------------------------------------------------------------------------

    _PARAMS = ("min_samples", "min_ratio", "threshold_sigmas", "slack_sigmas", "clip", "buffer", "ref_window",
               "confirm")
    _STATE = ("n", "shifts", "_learn_from", "_armed_at", "_m", "_s", "_mad", "_ref_n", "_n_up", "_n_dn",
              "_pending", "_pending_len")

    def snapshot(self) -> dict[str, Any]:
        """Plain data (JSON-safe): parameters, reference, lag buffer and the Page-Hinkley state."""
        data: dict[str, Any] = {p: getattr(self, p) for p in self._PARAMS}
        data.update({a: getattr(self, a) for a in self._STATE})
        data["buf"] = list(self._buf)
        data["ph"] = None if self._ph is None else _ph_state(self._ph)
        return data

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self:
        d = cls(**{p: data[p] for p in cls._PARAMS if p in data})  # "confirm": newer than some snapshots
        for a in cls._STATE:
            if a in data:
                setattr(d, a, data[a])
        d._buf = array("d", data["buf"])
        d._ph = None if data["ph"] is None else _ph_load(data["ph"])
        return d

    # pickles (the engine's snapshots) carry the plain snapshot, not River objects
    def __getstate__(self) -> dict[str, Any]:
        return self.snapshot()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(type(self).restore(state).__dict__)
