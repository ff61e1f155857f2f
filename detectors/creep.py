"""Gradual slowdown ("creep") of one (workflow, stage): the stage's typical now against its typical weeks ago.

Why a second test beside :class:`detectors.drift.ShiftDetector`
    The shift test reads each duration against its segment's *current* typical and keeps a reference
    that follows slow change on purpose (a stage's normal moves with the seasons). A stage that slows a
    little every day (fulfilment 1 % a day slower for two months: 1.8x) is then never a shift: the
    baseline's typical (a decayed median of ~1000 completions: days on a busy stage) moves with the
    creep, so every duration looks normal against it. Measured on a reviewer's streams (24/7, review
    8 h typical, 20 completions a day, creeping for 60 days): 1 %/day never ticketed, 2 %/day after
    38-58 days, each ticket claiming 1.4-1.6x where the stage had become 2.1-3.1x slower.

Method
    The engine hands over every completion with the time its item entered, and the watch counts it by
    the day the item entered, in a histogram of log-durations (5 % bins) per segment: every completion
    of a busy day, in bounded memory. By entry, not by completion: in completion order a burst of
    arrivals finishes its quick items first and its slow ones after, and a month-end rush read as a
    creep a week later (4 of 4 runs of a test stream). Once a day (event time) it judges.

    A segment's level at a day is the mean of the middle half of the log-durations of the items that
    entered in the week up to it (two weeks where one holds under ``min_completions``, 50), with its
    standard error from their spread (winsorized at the quartiles). A whole week: a busy stage's
    single day compared a Friday with weekdays weeks before (items entering on Fridays 1.6x slower: 3
    false creeps in 3 runs). The middle half's mean, not the median: of durations in whole days (half
    of them one day, a third two) the median jumped between one and two days on a few items' chance
    (6 false 2.0x creeps in 3 runs). The current level is that of the latest days whose items have
    mostly finished (``settle`` after they entered: the engine gives three typical durations, in wall
    time); the baseline's typical would lag weeks behind on a stage of a few items a day.

    A creep is found when, against a level at least ``shortest`` (3 weeks) before it: the stage's level
    rose by ``min_ratio`` (1.5x, the shift test's meaningful factor) or more, by ``z`` (5) standard
    errors or more, and the level a week before had already risen by half that factor (in log terms:
    sqrt(1.5) = 1.22x): a rise built up over weeks, not last week's jump (that is the shift test's, and
    a single odd week is no trend). Each segment is compared with itself, weighted by its items a day,
    so a change in the mix (more enterprise deals, each slow by nature) is no creep. The most recent
    qualifying day wins (the shortest span that shows the factor: "1.6x slower over 3 weeks"). A
    segment of under half the stage's items is also tested alone, at 1.2x the standard errors (each
    segment is one test more): to the stage's level a segment that slowed alone counts by its share
    only (enterprise at a fifth of the deals, 3 %/day slower for two months: never the stage's creep).

    What could look like a creep in a steady stream is a stage still filling (its first completions
    are the quick ones): the engine hands completions over only once the stage is watched long enough
    to have shown its slow normal items, and starts the watch over when the baselines re-learn (a
    shift, a new calendar).

>>> import random
>>> rng = random.Random(1)
>>> day = 86400.0
>>> def judged(w, d, level):  # 20 items entered on day d - 1, each done after a lognormal duration; judged
...     for i in range(20):
...         w.learn("smb", (d - 1) * day + i * 3600.0, level * rng.lognormvariate(0, 0.6))
...     return w.observe(d * day, settle=day)
>>> w, found = CreepWatch(), None
>>> for d in range(70):  # 3 % slower a day for the items entering from day 10 on
...     found = judged(w, d, 3600.0 * 1.03 ** max(0, d - 11))
...     if found:
...         break
>>> d, found.over / day, round(found.ratio, 2), round(found.before["smb"])
(31, 22.0, 1.71, 3269)
>>> w, found = CreepWatch(), None
>>> for d in range(90):  # enterprise, a fifth of 200 deals a day, 3 % slower a day from day 10
...     for i in range(200):
...         enterprise = i % 5 == 0
...         level = 7200.0 * 1.03 ** max(0, d - 11) if enterprise else 3600.0
...         w.learn("enterprise" if enterprise else "smb", (d - 1) * day + i * 400.0, level * rng.lognormvariate(0, 0.6))
...     found = w.observe(d * day, settle=day)
...     if found:
...         break
>>> d, found.segment, round(found.ratio, 2)
(26, 'enterprise', 1.59)
>>> steady = CreepWatch()
>>> [judged(steady, d, 3600.0) for d in range(365)].count(None)
365
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

DAY = 86400.0
# segment -> (level: middle-half mean log-duration, its winsorized spread, completions, completions a day)
Levels = dict[str, tuple[float, float, int, float]]


@dataclass(frozen=True)
class Creep:
    ratio: float  # level now / level then (weighted over segments)
    over: float  # seconds between the entry days of the two levels
    before: dict[str, float]  # each compared segment's level then (seconds)
    before_seconds: float  # the compared segments' levels then and now, weighted as the ratio is
    after_seconds: float
    segment: str | None = None  # the segment that slowed alone, or None: the stage


WATCH_FIELDS = ("every", "shortest", "horizon", "min_ratio", "z", "min_completions", "cohorts", "levels", "last_at")


class CreepWatch:
    """The completions of one stage's segments by the day they entered (a histogram of log-durations a
    day and segment), and the test above. ``learn`` takes each completion; ``observe`` judges (once a
    day: it skips until a day has passed); ``reset`` starts over."""

    __slots__ = WATCH_FIELDS

    def __init__(self, every: float = DAY, shortest: float = 21 * DAY, horizon: float = 84 * DAY,
                 min_ratio: float = 1.5, z: float = 5.0, min_completions: int = 50) -> None:
        if not (0 < every < shortest <= horizon) or min_ratio <= 1.0 or z < 0 or min_completions < 3:
            raise ValueError("need 0 < every < shortest <= horizon, min_ratio > 1, z >= 0, min_completions >= 3")
        self.every = float(every)
        self.shortest = float(shortest)
        self.horizon = float(horizon)
        self.min_ratio = float(min_ratio)
        self.z = float(z)
        self.min_completions = int(min_completions)
        # entry day (epoch seconds // every) -> segment -> log-duration bin -> completions
        self.cohorts: dict[int, dict[str, dict[int, int]]] = {}
        # entry day -> the segments' levels (see Levels) up to it, as read once it had settled (its late
        # completions, past three typical durations, are not read again: a day's levels are read once)
        self.levels: dict[int, Levels] = {}
        self.last_at: float | None = None  # the last judgement's time

    def learn(self, segment: str, entered: float, seconds: float) -> None:
        """An item of ``segment`` that entered at ``entered`` completed after ``seconds``."""
        if seconds > 0:
            bins = self.cohorts.setdefault(int(entered // self.every), {}).setdefault(segment, {})
            b = round(math.log(seconds) / BIN)
            bins[b] = bins.get(b, 0) + 1

    @property
    def _week(self) -> int:
        """Entry days in a week (``shortest`` / 3)."""
        return int(self.shortest / 3 // self.every)

    @property
    def _span(self) -> int:
        """Entry days in the ``horizon``."""
        return int(self.horizon // self.every)

    def due(self, now: float) -> bool:
        return self.last_at is None or now >= self.last_at + self.every

    def reset(self) -> None:
        self.cohorts.clear()
        self.levels.clear()
        self.last_at = None

    def observe(self, now: float, settle: float) -> Creep | None:
        """Judge at ``now`` (once a day); a creep when found. ``settle``: how long after they entered most
        of an entry day's items have finished (the engine: three typical durations), so that its level no
        longer lacks the slow ones."""
        if not self.due(now):
            return None
        self.last_at = now
        cohorts = self.cohorts
        newest = int((now - settle) // self.every) - 1  # the latest entry day settled
        week, span = self._week, self._span
        oldest = newest - span - week
        for day in [d for d in cohorts if d < oldest]:
            del cohorts[day]
        for day in [d for d in self.levels if d < oldest]:
            del self.levels[day]
        current = self._levels(newest)
        week_ago = self._levels(newest - week)
        rise, half = math.log(self.min_ratio), 0.5 * math.log(self.min_ratio)
        # the stage (all its segments), then each segment of under half its items alone, asked for
        # SEGMENT_STRICTER times the evidence (each is one test more): to the stage's test a segment that
        # slowed alone counts by its weight only
        total = sum(rate for _lv, _spread, _n, rate in current.values())
        scopes: list[str | None] = [None]
        if len(current) > 1:
            scopes += sorted(s for s, (_lv, _spread, _n, rate) in current.items() if 2 * rate < total)
        weekly = [self._levels(newest - k * week) for k in range(span // week + 1)]
        spread = {scope: _dispersion([_only(lv, scope) for lv in weekly]) for scope in scopes}
        for end in range(newest - 3 * week, newest - span - 1, -1):
            old = self._levels(end)
            for scope in scopes:
                now_lv, old_lv, week_lv = (_only(lv, scope) for lv in (current, old, week_ago))
                z = self.z if scope is None else self.z * SEGMENT_STRICTER
                was, change, variance = _compare(old_lv, now_lv)
                variance *= spread[scope]
                if change < rise or change < z * math.sqrt(variance) or _compare(old_lv, week_lv)[1] < half:
                    continue
                # a level in a dip is no normal to compare with: a week in the horizon before it was already
                # half the factor above it (a 4-week fast spell, then back to normal: 6 false creeps in 15 runs)
                if any(_compare(old_lv, _only(self._levels(end - k * week), scope))[1] >= half
                       for k in range(1, span // week + 1)):
                    continue
                if scope is not None and _compare(_without(old, scope), _without(current, scope))[1] >= half:
                    continue  # the rest of the stage slowed too: the stage's creep (its test asks more items)
                before = {s: math.exp(old_lv[s][0]) for s in now_lv if s in old_lv}
                return Creep(math.exp(change), (newest - end) * self.every, before, math.exp(was),
                             math.exp(was + change), scope)
        return None

    def _levels(self, end: int) -> Levels:
        """Each segment's (level, spread, completions, completions a day) of the items that entered in the
        week up to day ``end`` (two weeks where one holds under ``min_completions``), read once."""
        levels = self.levels.get(end)
        if levels is None:
            levels = self.levels[end] = self._read(end)
        return levels

    def _read(self, end: int) -> Levels:
        week = self._week
        levels: Levels = {}
        for weeks in (1, 2):
            taken: dict[str, dict[int, int]] = {}
            for day in range(end, end - weeks * week, -1):
                for s, bins in self.cohorts.get(day, {}).items():
                    got = taken.setdefault(s, {})
                    for b, k in bins.items():
                        got[b] = got.get(b, 0) + k
            for s, got in taken.items():
                n = sum(got.values())
                if n >= self.min_completions and s not in levels:
                    level, spread = _interquartile([(b * BIN, k) for b, k in got.items()])
                    levels[s] = (level, max(spread, MIN_SIGMA), n, n / (weeks * week))
        return levels

    # ------------------------------------------------------------------ state
    def snapshot(self) -> dict[str, Any]:
        return {
            "every": self.every, "shortest": self.shortest, "horizon": self.horizon, "min_ratio": self.min_ratio,
            "z": self.z, "min_completions": self.min_completions, "last_at": self.last_at,
            "cohorts": [[day, {s: sorted(bins.items()) for s, bins in segments.items()}]
                        for day, segments in sorted(self.cohorts.items())],
            "levels": [[day, {s: list(lv) for s, lv in levels.items()}] for day, levels in sorted(self.levels.items())],
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> CreepWatch:
        w = cls(data["every"], data["shortest"], data["horizon"], data["min_ratio"], data["z"], data["min_completions"])
        w.last_at = None if data["last_at"] is None else float(data["last_at"])
        for day, segments in data["cohorts"]:
            w.cohorts[int(day)] = {s: {int(b): int(k) for b, k in bins} for s, bins in segments.items()}
        for day, levels in data["levels"]:
            w.levels[int(day)] = {s: (float(lv), float(spread), int(n), float(rate))
                                  for s, (lv, spread, n, rate) in levels.items()}
        return w

    def __getstate__(self) -> dict[str, Any]:
        return self.snapshot()

    def __setstate__(self, state: dict[str, Any]) -> None:
        twin = self.restore(state)
        for name in WATCH_FIELDS:  # compiled (mypyc), the class has no __slots__ attribute
            setattr(self, name, getattr(twin, name))


BIN = 0.05  # log-duration bins: 5 % wide
SEGMENT_STRICTER = 1.2  # a segment's own test asks this many times the standard errors (each is one test more)
MIN_SIGMA = 0.05  # a level's spread is never taken as less (durations all of one value: a spread of 0)


def _interquartile(weighted: list[tuple[float, int]]) -> tuple[float, float]:
    """The mean of the middle half of values with counts (of a histogram's bins), and the standard
    deviation of them winsorized at the quartiles (its standard error is that / (0.5 sqrt(n))). Not the
    median: of durations in whole days (50 % one day, 30 % two) the median jumps between one and two
    days on a few items' chance, which read as 2.0x creeps; the middle half's mean moves with the shares."""
    ordered = sorted(weighted)
    n = sum(k for _v, k in ordered)
    lo, hi = 0.25 * n, 0.75 * n
    acc = 0.0
    total = 0.0
    q1 = q3 = ordered[0][0]
    for v, k in ordered:
        inside = max(0.0, min(acc + k, hi) - max(acc, lo))
        total += inside * v
        if acc < lo:
            q1 = v
        if acc < hi:
            q3 = v
        acc += k
    mean = total / (hi - lo)
    clipped = [(min(max(v, q1), q3), k) for v, k in ordered]
    centre = sum(v * k for v, k in clipped) / n
    return mean, math.sqrt(sum(k * (v - centre) ** 2 for v, k in clipped) / n)


def _dispersion(weekly: list[Levels]) -> float:
    """How many times the variance its items' spread gives a level really has, from the weeks' levels
    (newest first): the mean of their squared second differences (a steady trend, a creep, has none)
    over what the spreads give them, at least 1. Items that come in batches (a vendor's debit memos
    handled together) move a week's level more than as many independent ones would (BPI 2019's
    "Vendor creates debit memo": 8 to 46 working hours from one week to the next; over that log's
    stages the factor was above 1 in 130 of 8,450 judgements, 1.6 at the median of those, up to 21).
    One from four second differences on."""
    terms = []
    for a, b, c in zip(weekly, weekly[1:], weekly[2:], strict=False):
        if not (a and b and c):
            continue
        _x, first, var_ab = _compare(b, a)
        _y, second, var_bc = _compare(c, b)
        if math.isfinite(var_ab) and math.isfinite(var_bc):
            # (of equal variances v: the second difference's is 6 v, the two differences' 2 v each)
            terms.append((first - second) ** 2 / (1.5 * (var_ab + var_bc)))
    return max(1.0, sum(terms) / len(terms)) if len(terms) >= 4 else 1.0


def _without(levels: Levels, segment: str) -> Levels:
    return {s: lv for s, lv in levels.items() if s != segment}


def _only(levels: Levels, segment: str | None) -> Levels:
    """``levels`` of ``segment`` alone (None: all)."""
    if segment is None:
        return levels
    return {segment: levels[segment]} if segment in levels else {}


def _compare(old: Levels, new: Levels) -> tuple[float, float, float]:
    """(old level, change of level, its variance) of the segments in both, each compared with itself and
    weighted by its completions a day now (the stage's level is that of its items: a fifth of them
    3x slower is 1.25x, not the 1.7x of equal weights); (0, 0, inf) when none is in both. A level's
    standard error is its spread / (0.5 sqrt(n)), with the larger of the two spreads: the spread of 50
    durations is itself noisy, and read low at one end it made a 1.6x "creep" of noise (2 of 6 runs of a
    test stream)."""
    was = total = weight = variance = 0.0
    for s, (level, spread, n, rate) in new.items():
        then = old.get(s)
        if then is None:
            continue
        was += rate * then[0]
        total += rate * (level - then[0])
        variance += rate * rate * (2.0 * max(spread, then[1])) ** 2 * (1.0 / n + 1.0 / then[2])
        weight += rate
    return (was / weight, total / weight, variance / weight**2) if weight else (0.0, 0.0, math.inf)
