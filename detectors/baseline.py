"""Stage-duration baseline: what a normal duration of one (workflow, stage, segment) looks like.

Representation
    A decayed histogram over log-duration. Bins are 0.1 wide in log space (≈10 % relative width)
    and grow on demand, so a baseline holds only the bins its data touch (≈40..150 bins, 1..2.5 KB).
    Each bin keeps its weight and the weighted sum of its log-durations (its centroid), so quantiles
    interpolate between centroids: exact for repeated values, about 1 % off for smooth data.

Forgetting (the choice asked for in the design)
    Exponential forgetting with an effective memory of ``window`` observations (default 1000):
    every new observation weighs ``e^(1/window)`` times the previous one (the growing-weight trick,
    O(1) per update; all weights are rescaled when they get large). Slow seasonal change of the
    normal is followed within about ``window`` completions; a sudden shift is for
    :class:`detectors.drift.ShiftDetector` to find and :meth:`DurationBaseline.reset` to absorb.

Threshold (when an open item is "stalled")
    In log space: centre = median, spread = the larger of (p50 - p10) / 1.2816 and
    (p75 - p50) / 0.6745: robust sigmas for lognormal data from the lower half (which stalls in the
    upper tail cannot widen and censoring of the top cannot narrow) and from the upper quartile
    (real durations are right-skewed even in log space — approvals that wait a night, a weekend —
    and a few per cent of stalls move p75 only a little). On the receipt-phase log of a Dutch
    municipality (8,577 events) the upper quartile cut slow-stage alerts from 1,699 to 653.
    The limit is ``exp(p50 + clamp(k * spread, ln 4, cap) / sensitivity)``: never before 4x typical,
    and ``k`` = 2.75 spreads when nothing stalls, lowered towards 2.0 as the share of stalled
    (censored) items grows (``k = 2.75 - 8 * censored_fraction``): when stalls are common, a long
    duration is more likely a stall than a slow normal item, so paging sooner gives a better F1.
    ``cap`` = ln 8: while the spread is at most 0.9 (a single kind of normal, p95 within 4.4x
    typical) the limit stops growing with it at 8x typical (11.5x at the default sensitivity 0.85),
    so a variable 6-day stage pages after 69 days, not 80. Wider stages (two kinds of normal: seconds
    for most items, hours for some) leave the cap quickly: it rises 6.7 per unit of spread and no
    longer binds from a spread of 1.0 on. The cap reads the spread of the upper side (p50..p75) only:
    exponential-like waits (most tickets picked up at once, some after a while) are wide in log space
    below the median, not above it, and a wide lower half lifted their limits to 40-60x typical where
    their p99.9 is 7x (simulated ``shapes`` scenario: 0.70-0.79 -> 0.86-0.92 of the oracle's F1). Unless
    a tenth of the items pass in under 1/25 of typical (lower-half spread above 2.5): two kinds of
    normal, instant and worked, where the wide spread stands (BPI 2012: an application cancelled is
    usually followed within seconds, and for a fifth of them nothing follows; capped, 548 of them paged).
    ``stagewatch evaluate``, six scenarios of 6000 items: runs
    at >= 0.97 of the oracle's F1 21 -> 24 of 24 (seeds 1-4), 19 -> 23 of 24 on seeds 5-8 (never
    looked at before), false pages per 1000 items unchanged at worst (5.8, slowdown seed 5). On
    three public logs: two unchanged, the receipt log 172 -> 206 stalled pages (all in its bimodal
    first step, through two more bottleneck shifts there that re-learned its baseline).
    Measured (seeded lognormal streams of 3000 items, paging online with the engine's clipping,
    6 seeds each; ``tests/unit/test_detectors_baseline.py``), F1 as a share of that of the best
    fixed multiple of the true median chosen in hindsight: >= 0.95 on average for sigma <= 0.7 with
    2..5 % stalls of 4x..20x typical, 0.87..0.91 at sigma 0.9 (0.85 before the cap). With 10 %
    stalls the alert budget below holds pages back (0.60..0.86 on average): there it trades recall
    for staying quiet on stages that are slow by nature. Explainable as "typical 3.5 days, p95 8.1
    days, pages after 14 days".

Alert budget
    Real stages often have two kinds of normal: most items done in half a minute, one in six
    waiting hours for a clerk. The lower half is then narrow, the limit low, and every waiting
    item would page. So censored durations are also kept by bin (weights only), and when more than
    5 % of completions lie past the limit, the limit is raised to where only 5 % do. A stage whose
    stalls stay within the budget (the usual case) never sees the floor. On the permit-office log
    above it cut stalled pages from 684 to 194 and slow-stage tickets from 216 to 19.

Censoring
    A duration at or above 98 % of the current threshold (or passed with ``censored=True``: the
    engine clips paged items at the threshold) only tells us "at least this long": it is counted in
    :meth:`censored_fraction` but does not enter the histogram. So a stage whose items stall cannot
    learn that stalling is normal, and clipped values cannot ratchet the threshold upward; the
    quantiles describe the normal (non-stalled) items. Stalls learned during warm-up (before there
    was a threshold) are moved out of the histogram the same way once a threshold exists. Fed 30 %
    durations clipped at its own threshold for 20 000 items, the threshold rose at most 1.04x
    (it falls instead: ``k`` drops as the censored share grows). Summaries used by the threshold
    are refreshed on every update during the first ``2 * warmup`` updates, then every 16 updates,
    so ``learn_one`` costs ~3 us and ``threshold`` ~2 us.

Why not a River statistic
    River (0.26) has no quantile sketch that both forgets and censors: ``stats.Quantile`` (P²) and
    ``sketch.Histogram`` never forget, ``stats.RollingQuantile`` forgets by a hard window of raw
    values (8 KB for 1000 items, and a sudden cliff when a batch leaves it), ``stats.EWMean`` /
    ``EWVar`` decay but are moments, which stalls in the upper tail inflate. None can move values
    past a later-learned limit out of the estimate (the warm-up pruning above). On an uncensored
    stationary stream the quantiles agree with ``river.stats.Quantile``: within 0.02 log-seconds
    (2 %) with negligible forgetting, within the sampling noise of the ~2000-item effective window
    at the default one (tests/unit/test_detectors_baseline.py derives the tolerance).

>>> import random
>>> rng = random.Random(7)
>>> b = DurationBaseline(warmup=30)
>>> for _ in range(2000):
...     b.learn_one(3600 * rng.lognormvariate(0.0, 0.5))
>>> round(b.typical() / 3600, 1), round(b.quantile(0.95) / 3600, 1), round(b.threshold() / 3600, 1)
(1.0, 2.2, 3.9)
>>> b.score_one(3600) < 0.6 < 0.99 < b.score_one(6 * 3600)
True
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Any, Self

_BIN = 0.1  # bin width in log-seconds
_MIN_SECONDS = 1e-3
_MAX_SECONDS = 1e10
_LOG_MIN = math.log(_MIN_SECONDS)
_RESCALE_AT = 1e12  # rescale all weights when the next weight exceeds this
_Z75 = 0.6744897501960817  # standard normal 0.75 quantile
_Z90 = 1.2815515655446004  # standard normal 0.9 quantile
_K_MAX = 2.75  # spreads above the median at sensitivity 1 when nothing stalls
_K_MIN = 2.0
_K_SLOPE = 8.0  # K falls by this times the censored (stalled) fraction
_MIN_FACTOR = 4.0  # never below this multiple of typical at sensitivity 1
_LOG_MIN_FACTOR = math.log(_MIN_FACTOR)
# never above this multiple of typical at sensitivity 1 (11.5x at the default 0.85) while the spread
# is at most _CAP_SPREAD; wider stages leave the cap quickly (it grows by _CAP_SLOPE per unit of spread,
# so from a spread of 1.0 on it no longer binds: 2.75 spreads is below it)
_MAX_FACTOR = 8.0
_LOG_MAX_FACTOR = math.log(_MAX_FACTOR)
_CAP_SPREAD = 0.9
_CAP_SLOPE = 6.7
_INSTANT_SPREAD = 2.5  # lower-half spread of a stage where a tenth pass in under 1/25 of typical
_MIN_SPREAD = 0.05  # log units: constant data still gets a sane spread
_CENSOR_AT = 0.98  # fraction of the threshold from which a duration counts as censored
_REFRESH_EVERY = 16
_SUMMARY_QS = (0.1, 0.5, 0.75)  # the log-quantiles refresh keeps for the threshold and the score
_BUDGET = 0.05  # at most this share of completions may lie past the threshold (the alert budget)


def _place(arrays: tuple[array[float], ...], lo: int, i: int) -> tuple[int, int]:
    """Make bin ``i`` exist in ``arrays`` (which start at bin ``lo``); returns (new lo, its index)."""
    first = arrays[0]
    j = i - lo
    if not first:
        for a in arrays:
            a.append(0.0)
        return i, 0
    if j < 0:
        pad = array("d", bytes(8 * -j))
        for a in arrays:
            a[0:0] = pad
        return i, 0
    if j >= len(first):
        pad = array("d", bytes(8 * (j - len(first) + 1)))
        for a in arrays:
            a.extend(pad)
    return lo, j


def _centre_spread(sm: tuple[float, ...]) -> tuple[float, float]:
    """Median and robust sigma of log-durations: the larger of the lower-half (p10..p50) and the
    upper-quartile (p50..p75) estimates. The lower half alone: stalls mixed into
    the upper tail cannot widen it, and censoring the top (truncation) cannot narrow it."""
    lower, upper = _half_spreads(sm)
    return sm[1], max(lower, upper, _MIN_SPREAD)


def _half_spreads(sm: tuple[float, ...]) -> tuple[float, float]:
    """Robust sigmas of log-durations from the lower half (p10..p50) and the upper quartile (p50..p75)."""
    return (sm[1] - sm[0]) / _Z90, (sm[2] - sm[1]) / _Z75


class DurationBaseline:
    """Online, outlier- and censoring-robust baseline of one key's stage durations (seconds)."""

    __slots__ = (
        "warmup", "window", "n", "_growth", "_w", "_lo", "_wt", "_ls", "_total", "_censored",
        "_since", "_summary", "_limit", "_memo", "_clo", "_cwt", "_floor",
    )

    def __init__(self, warmup: int = 30, window: int = 1000) -> None:
        if warmup < 3 or window < 10:
            raise ValueError("DurationBaseline: warmup >= 3 and window >= 10")
        self.warmup = int(warmup)
        self.window = int(window)
        self._growth = math.exp(1.0 / self.window)
        self._clear()

    def _clear(self) -> None:
        self.n = 0  # durations learned (censored ones included)
        self._w = 1.0  # weight of the next observation
        self._lo = 0  # bin index of _wt[0]
        self._wt = array("d")  # bin weights
        self._ls = array("d")  # bin weighted sums of log-durations
        self._total = 0.0  # histogram weight
        self._censored = 0.0  # weight of censored durations
        self._clo = 0  # bin index of _cwt[0]
        self._cwt = array("d")  # censored weights by bin (no centroids: used only for the budget floor)
        self._floor: float | None = None  # log-duration past which only _BUDGET of completions lie
        self._since = 0  # updates since the last summary refresh
        self._summary: tuple[float, ...] | None = None  # log-quantiles at _SUMMARY_QS
        self._limit: float | None = None  # log-duration from which values count as censored
        # answers of threshold() and quantile() by (kind, argument); emptied by every mutation
        # (learn_one, reset, restore), so a cached answer is always the one a recomputation gives
        self._memo: dict[tuple[str, float], float | None] = {}

    # -- learning ---------------------------------------------------------------------------------

    def learn_one(self, seconds: float, censored: bool = False) -> None:
        """Learn one completed duration. ``censored``: the true duration is at least ``seconds``."""
        if not math.isfinite(seconds):
            raise ValueError(f"duration must be finite, got {seconds!r}")
        # min(max(seconds, _MIN_SECONDS), _MAX_SECONDS), without the builtin calls
        x = math.log(_MIN_SECONDS if seconds < _MIN_SECONDS else _MAX_SECONDS if seconds > _MAX_SECONDS else seconds)
        if self._memo:
            self._memo = {}
        w = self._w
        self.n += 1
        i = int((x - _LOG_MIN) / _BIN)
        if censored or (self._limit is not None and x >= self._limit):
            self._censored += w
            self._clo, j = _place((self._cwt,), self._clo, i)
            self._cwt[j] += w
        else:
            self._lo, j = _place((self._wt, self._ls), self._lo, i)
            self._wt[j] += w
            self._ls[j] += w * x
            self._total += w
        w *= self._growth
        self._w = w
        if w > _RESCALE_AT:
            self._rescale()
        self._since += 1
        if self.n <= 2 * self.warmup or self._since >= _REFRESH_EVERY:
            self._refresh()

    def reset(self, keep_recent: Sequence[float] = ()) -> None:
        """Forget everything (after a detected shift) and relearn from ``keep_recent`` durations."""
        self._clear()
        for seconds in keep_recent:
            self.learn_one(seconds)
        self._refresh()

    def _rescale(self) -> None:
        f = 1.0 / self._w
        wt, ls = self._wt, self._ls
        for j in range(len(wt)):
            wt[j] *= f
            ls[j] *= f
        self._total *= f
        self._censored *= f
        cwt = self._cwt
        for j in range(len(cwt)):
            cwt[j] *= f
        self._w = 1.0
        # drop edge bins whose weight has decayed to nothing, so memory stays bounded
        floor = 1e-9 * self._total
        lo, hi = 0, len(wt)
        while lo < hi and wt[lo] <= floor:
            lo += 1
        while hi > lo and wt[hi - 1] <= floor:
            hi -= 1
        if lo or hi < len(wt):
            dropped = sum(wt[:lo]) + sum(wt[hi:])
            self._total -= dropped
            self._wt, self._ls = wt[lo:hi], ls[lo:hi]
            self._lo += lo

    def _refresh(self) -> None:
        self._since = 0
        qs = self._log_quantiles(_SUMMARY_QS)
        if qs is None:
            self._summary = None
            self._limit = None
            return
        self._summary = tuple(qs)
        self._floor = self._budget_floor()
        t = self._log_threshold(1.0) if self.n >= self.warmup else None
        self._limit = None if t is None else t + math.log(_CENSOR_AT)
        if self._limit is not None and self._prune(self._limit):
            qs = self._log_quantiles(_SUMMARY_QS)
            if qs is not None:
                self._summary = tuple(qs)

    def _prune(self, limit: float) -> bool:
        """Move histogram bins whose centroid is past ``limit`` to the censored mass (stalls learned
        during warm-up, before there was a threshold to censor them)."""
        wt, ls = self._wt, self._ls
        j = len(wt) - 1
        moved = 0.0
        while j > 0:
            w = wt[j]
            if w > 0.0:
                if ls[j] / w < limit:
                    break
                moved += w
            j -= 1
        if moved <= 0.0 or j <= 0:
            return False
        for k in range(j + 1, len(wt)):
            if wt[k] > 0.0:
                self._clo, c = _place((self._cwt,), self._clo, self._lo + k)
                self._cwt[c] += wt[k]
        del wt[j + 1:]
        del ls[j + 1:]
        self._total -= moved
        self._censored += moved
        return True

    def _budget_floor(self) -> float | None:
        """The log-duration past which only ``_BUDGET`` of all completions (censored ones at their
        own durations) lie; None while the censored share is within the budget anyway.

        A stage with two kinds of normal — most done in a minute, one in six waits hours for a
        clerk — has a narrow lower half and so a low limit; without this floor every waiting item
        pages. With it at most one completion in twenty lies past the limit, whatever the shape."""
        total = self._total + self._censored
        if self._censored <= _BUDGET * total:
            return None
        target = (1.0 - _BUDGET) * total
        wt, cwt, lo, clo = self._wt, self._cwt, self._lo, self._clo
        start = min(lo, clo) if cwt else lo
        stop = max(lo + len(wt), clo + len(cwt))
        cum = 0.0
        for i in range(start, stop):
            j, c = i - lo, i - clo
            cum += (wt[j] if 0 <= j < len(wt) else 0.0) + (cwt[c] if 0 <= c < len(cwt) else 0.0)
            if cum >= target:
                return _LOG_MIN + (i + 1) * _BIN
        return None

    # -- queries (pure) ---------------------------------------------------------------------------

    def _log_quantiles(self, qs: Sequence[float]) -> list[float] | None:
        """Quantiles (ascending ``qs``) of the log-duration histogram, interpolating centroids."""
        total = self._total
        if total <= 0.0:
            return None
        targets = [q * total for q in qs]
        nt = len(targets)
        out: list[float] = []
        k = 0
        cum = 0.0
        prev_pos = prev_c = 0.0
        first = True
        for w, lsum in zip(self._wt, self._ls, strict=True):
            if w <= 0.0:
                continue
            c = lsum / w
            pos = cum + 0.5 * w
            while k < nt and targets[k] <= pos:
                if first:
                    out.append(c)
                else:
                    out.append(prev_c + (c - prev_c) * (targets[k] - prev_pos) / (pos - prev_pos))
                k += 1
            if k == nt:
                break  # the bins above the last target change nothing
            prev_pos, prev_c, first = pos, c, False
            cum += w
        while k < nt:
            out.append(prev_c)
            k += 1
        return out

    def _log_threshold(self, sensitivity: float) -> float | None:
        if self._summary is None:
            return None
        centre, spread = _centre_spread(self._summary)
        k = min(max(_K_MAX - _K_SLOPE * self.censored_fraction(), _K_MIN), _K_MAX)
        lower, upper = _half_spreads(self._summary)
        wide = spread if lower > _INSTANT_SPREAD else upper
        cap = _LOG_MAX_FACTOR if wide <= _CAP_SPREAD else _LOG_MAX_FACTOR + _CAP_SLOPE * (wide - _CAP_SPREAD)
        excess = k * spread
        if excess > cap:
            excess = cap
        if excess < _LOG_MIN_FACTOR:
            excess = _LOG_MIN_FACTOR
        if self._floor is not None and self._floor - centre > excess:
            excess = self._floor - centre
        return centre + excess / sensitivity

    def typical(self) -> float | None:
        """The median duration (seconds) of normal items; None until 3 durations are known."""
        return self.quantile(0.5) if self.n >= 3 else None

    def recent_typical(self) -> float | None:
        """The median as of the last summary refresh (at most 16 updates old): O(1), for callers that
        need a reference level on every update (the drift detector's normalization), not the exact one."""
        return math.exp(self._summary[1]) if self._summary is not None and self.n >= 3 else None

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of normal durations in seconds; None before any is learned.

        Censored durations are not part of it, so high quantiles (p99) read a little lower than
        those of every completed duration: the normal tail past the threshold is cut off."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be within [0, 1]")
        key = ("q", q)
        memo = self._memo
        if key in memo:
            return memo[key]
        qs = self._log_quantiles((q,))
        value = memo[key] = None if qs is None else math.exp(qs[0])
        return value

    def threshold(self, sensitivity: float = 1.0) -> float | None:
        """Seconds past which an open item is stalled; None until ``warmup`` durations are known.

        Higher ``sensitivity`` pages sooner: the log-excess over typical is divided by it.
        """
        key = ("t", sensitivity)
        memo = self._memo
        if key in memo:  # only valid sensitivities past warm-up are memoized
            return memo[key]
        if sensitivity <= 0:
            raise ValueError("sensitivity must be > 0")
        if self.n < self.warmup:
            return None
        t = self._log_threshold(sensitivity)
        value = memo[key] = None if t is None else math.exp(t)
        return value

    def spread(self) -> float | None:
        """Robust sigma of log-durations (from p50..p90), None before any duration is learned."""
        if self._summary is None:
            return None
        return _centre_spread(self._summary)[1]

    def score_one(self, seconds: float) -> float:
        """How abnormal (slow) ``seconds`` is, 0..1: the share of normal durations shorter than it
        under the learned lognormal shape. 0.0 while fewer than 3 durations are known."""
        if self.n < 3 or self._summary is None or not seconds > 0:
            return 0.0
        x = math.log(min(max(seconds, _MIN_SECONDS), _MAX_SECONDS))
        centre, spread = _centre_spread(self._summary)
        z = (x - centre) / spread
        return 0.5 * math.erfc(-z / math.sqrt(2.0))

    def censored_fraction(self) -> float:
        """Decayed share of learned durations that were censored (stalled, clipped)."""
        t = self._total + self._censored
        return self._censored / t if t > 0 else 0.0

    # -- persistence ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "v": 3, "warmup": self.warmup, "window": self.window, "n": self.n, "w": self._w,
            "lo": self._lo, "wt": list(self._wt), "ls": list(self._ls), "total": self._total,
            "censored": self._censored, "since": self._since, "clo": self._clo, "cwt": list(self._cwt),
            "floor": self._floor,
            "summary": None if self._summary is None else list(self._summary), "limit": self._limit,
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self:
        b = cls(warmup=int(data["warmup"]), window=int(data["window"]))
        b.n = int(data["n"])
        b._w = float(data["w"])
        b._lo = int(data["lo"])
        b._wt = array("d", data["wt"])
        b._ls = array("d", data["ls"])
        b._total = float(data["total"])
        b._censored = float(data["censored"])
        b._clo = int(data.get("clo", 0))  # v2 snapshots have no censored histogram: starts empty
        b._cwt = array("d", data.get("cwt", ()))
        b._floor = data.get("floor")
        b._since = int(data["since"])
        s = data["summary"]
        b._summary = None if s is None else tuple(float(v) for v in s)
        b._limit = None if data["limit"] is None else float(data["limit"])
        if b._summary is not None and len(b._summary) != len(_SUMMARY_QS):  # an older snapshot
            qs = b._log_quantiles(_SUMMARY_QS)
            b._summary = None if qs is None else tuple(qs)
        return b

    def __getstate__(self) -> dict[str, Any]:
        return self.snapshot()

    def __setstate__(self, state: dict[str, Any]) -> None:
        other = type(self).restore(state)
        for name in self.__slots__:
            setattr(self, name, getattr(other, name))

    def __repr__(self) -> str:
        t, th = self.typical(), self.threshold()
        return (f"DurationBaseline(n={self.n}, typical={t and round(t, 3)}, "
                f"threshold={th and round(th, 3)})")
