"""Business time: how many working seconds lie between two instants, and its inverse.

A :class:`BusinessCalendar` is a weekly working set in local time (a sorted list of
``[start, end)`` intervals in seconds since Monday 00:00) plus holidays (local dates). The
``workdays``/``start_hour``/``end_hour`` constructor builds that set; :meth:`from_hour_mask` builds
it from a 168-bin hour-of-week mask (what :class:`ActivityProfile` learns).

Cost: whole weeks are counted arithmetically and the position inside a week by bisection, so a
span costs O(log intervals) per UTC-offset period plus one step per DST transition and per holiday
inside it: O(1) for long spans in practice. DST is exact: inside a period of constant UTC offset,
local time is epoch time plus the offset; transitions are found once per (zone, year) with
zoneinfo and cached.

:class:`WallClock` has the same methods with identity semantics, so the engine can use either.

>>> cal = BusinessCalendar("Europe/Berlin")
>>> fri_16 = datetime(2026, 3, 6, 16, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
>>> mon_10 = datetime(2026, 3, 9, 10, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
>>> cal.business_seconds(fri_16, mon_10) / 3600
2.0
>>> cal.add_business(fri_16, 2 * 3600) == mon_10
True
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Self
from zoneinfo import ZoneInfo

WEEK = 7 * 86400
_MONDAY_SHIFT = 3 * 86400  # 1970-01-01 was a Thursday: naive local epoch + 3 days = since a Monday
_NEVER = 100 * 365.25 * 86400.0  # working seconds past which add_business answers inf
_MAX_STEPS = 100_000  # bound on loop iterations (DST periods + holidays crossed in one call)


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _raw_offset(tz: str, ts: float) -> float:
    off = datetime.fromtimestamp(ts, _zone(tz)).utcoffset()
    return off.total_seconds() if off is not None else 0.0


# per zone: the last constant-offset period looked up, (start, end, offset); a cache, not state
_PERIODS: dict[str, tuple[float, float, float]] = {}
# per zone: the UTC years covered, their span in epoch seconds, the offset changes inside it and the
# offset in force before the first of them and after each (offsets[i + 1] from changes[i] on)
_TABLES: dict[str, tuple[int, int, float, float, list[float], list[float]]] = {}


def _offset_table(tz: str, ts: float) -> tuple[int, int, float, float, list[float], list[float]]:
    table = _TABLES.get(tz)
    if table is not None and table[2] <= ts < table[3]:
        return table
    year = datetime.fromtimestamp(ts, UTC).year
    first, last = max(year - 2, 1), min(year + 2, 9998)
    if table is not None and table[1] - table[0] < 400:  # grow the years covered (a bounded span)
        first, last = min(first, table[0]), max(last, table[1])
    changes = [t for y in range(first, last + 1) for t in _transitions_in_year(tz, y)]
    start = datetime(first, 1, 1, tzinfo=UTC).timestamp()
    end = datetime(last + 1, 1, 1, tzinfo=UTC).timestamp()
    offsets = [_raw_offset(tz, start)] + [_raw_offset(tz, t) for t in changes]
    table = _TABLES[tz] = (first, last, start, end, changes, offsets)
    return table


def utc_offset(tz: str, ts: float) -> float:
    """UTC offset (seconds) of zone ``tz`` at epoch instant ``ts``: the period of constant offset that
    holds ``ts`` is found by bisection in the zone's table of offset changes (O(log n), whatever the
    order of the instants asked about) and kept for the next call."""
    if tz == "UTC":
        return 0.0
    p = _PERIODS.get(tz)
    if p is not None and p[0] <= ts < p[1]:
        return p[2]
    _first, _last, start, end, changes, offsets = _offset_table(tz, ts)
    i = bisect.bisect_right(changes, ts)
    off = offsets[i]
    if len(_PERIODS) > 1024:
        _PERIODS.clear()
    _PERIODS[tz] = (changes[i - 1] if i else start, changes[i] if i < len(changes) else end, off)
    return off


@lru_cache(maxsize=1024)
def _transitions_in_year(tz: str, year: int) -> tuple[float, ...]:
    """Epoch instants (seconds) where the UTC offset of ``tz`` changes during UTC year ``year``."""
    if tz == "UTC":
        return ()
    start = datetime(year, 1, 1, tzinfo=UTC).timestamp()
    end = datetime(year + 1, 1, 1, tzinfo=UTC).timestamp()
    out: list[float] = []
    t, off = start, _raw_offset(tz, start)
    while t < end:  # daily probes, then bisect to the second
        nxt = min(t + 86400, end)
        o2 = _raw_offset(tz, nxt)
        if o2 != off:
            lo, hi = t, nxt
            while hi - lo > 1:
                mid = float(math.floor((lo + hi) / 2))
                if _raw_offset(tz, mid) == off:
                    lo = mid
                else:
                    hi = mid
            out.append(float(hi))
            off = o2
        t = nxt
    return tuple(out)


def next_transition(tz: str, ts: float) -> float:
    """The first UTC-offset change strictly after ``ts`` (``inf`` when none within ~2 years)."""
    if tz == "UTC":
        return math.inf
    _first, _last, _start, end, changes, _offsets = _offset_table(tz, ts)
    i = bisect.bisect_right(changes, ts)
    if i < len(changes):
        return changes[i]
    if ts + 3 * 366 * 86400.0 <= end:  # the table covers two more years: none
        return math.inf
    year = datetime.fromtimestamp(ts, UTC).year
    for y in (year, year + 1, year + 2):
        for t in _transitions_in_year(tz, y):
            if t > ts:
                return t
    return math.inf


def hour_of_week(tz: str, ts: float) -> int:
    """Hour-of-week bin (0 = Monday 00:00..01:00 local) of epoch instant ``ts``."""
    local = ts + utc_offset(tz, ts) + _MONDAY_SHIFT
    return int(local // 3600) % 168


# Zones tried first when several fit a source's offsets equally (they then share the rules in force
# over the instants seen): the common zone of each offset pattern, so a name shown to a person is the
# one they would expect; then every other IANA zone by name, old-style names ("CET", "Etc/GMT-1") last.
_PREFERRED_ZONES = (
    "UTC", "Europe/London", "Europe/Paris", "Europe/Helsinki", "Europe/Moscow", "America/New_York",
    "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles", "America/Sao_Paulo",
    "Asia/Dubai", "Asia/Kolkata", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
)
_ZONE_SAMPLES = 64  # offsets kept that a later guess must also fit (the first, then the latest)


@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    from zoneinfo import available_timezones

    rest = sorted(available_timezones() - set(_PREFERRED_ZONES), key=lambda z: ("/" not in z or z.startswith("Etc/"), z))
    return _PREFERRED_ZONES + tuple(rest)


def zone_turn(old: str, new: str, at: float) -> int:
    """Whole hours by which hour-of-week bins of zone ``old`` turn to bin the same instants in zone
    ``new`` (their offset difference at ``at``; a half-hour zone lands in the nearer bin)."""
    return round((utc_offset(new, at) - utc_offset(old, at)) / 3600.0)


# One zone per daylight-saving rule in wide use, for sources whose timestamps name no zone (UTC ``Z``
# or epoch numbers): zones that share a rule bin the week the same up to a rotation, which the
# local-hour models (source rates, the learned working week) do not see.
_RULE_ZONES = ("UTC", "Europe/London", "America/New_York", "Australia/Sydney", "Pacific/Auckland")
_ACTIVITY_HOURS = 8 * 168  # the hourly event counts kept to judge the rules by: eight weeks
_ACTIVITY_MIN_EVENTS = 500  # fewer events in the window: no judgement
_ACTIVITY_MARGIN = 30.0  # log-likelihood (nats) by which a rule must explain the week better,
_ACTIVITY_MARGIN_PER_EVENT = 0.005  # and at least this much per event in the window (sampling noise grows with it)
_RULE_CHANGE_DAYS = 4  # a rule's change this many days around an instant is near it (rule_changes_near)


def rule_changes_near(ts: float) -> list[tuple[float, float]]:
    """The daylight-saving changes of the common rules (``_RULE_ZONES``) within four days of ``ts``, as
    (instant, seconds by which a working day in that rule moved in UTC: -3600 in spring, when it starts
    an hour earlier). While a source's zone is not known, its day may have moved so, and
    :class:`ZoneFinder` needs the days after a change to see which rule it follows."""
    return [c for c in _rule_changes_by_day(int(ts // 86400)) if abs(c[0] - ts) <= _RULE_CHANGE_DAYS * 86400.0]


@lru_cache(maxsize=64)
def _rule_changes_by_day(day: int) -> tuple[tuple[float, float], ...]:
    """:func:`rule_changes_near` for any instant of epoch day ``day`` (a day's margin more)."""
    start = (day - _RULE_CHANGE_DAYS - 1) * 86400.0
    changes = set()
    for z in _RULE_ZONES:
        c = next_transition(z, start)
        if c < start + (2 * _RULE_CHANGE_DAYS + 3) * 86400.0:
            changes.add((c, utc_offset(z, c - 1.0) - utc_offset(z, c + 1.0)))
    return tuple(sorted(changes))


class ZoneFinder:
    """The time zone a source's clock runs in: from the UTC offsets its timestamps carry, else from
    how its weekly activity moves at daylight-saving changes.

    Offsets: a timestamp written ``2011-10-01T09:38:44+02:00`` says where the source's working day is
    (9:38 in a zone at UTC+2 that day). Offsets alone do not name a zone, but the offsets of a whole
    stream narrow it down: the guess is the first zone (common zones first) whose offset matched every
    one kept so far; it is re-made only when an event's offset disagrees with it (a daylight-saving
    change the guess did not have, or the first offset seen). The zones replaced and the new one
    agreed on every instant seen, so nothing learned before needs to move. A stream whose offsets no
    zone explains (two sources in two zones) keeps the last guess and stops guessing. An offset of 0
    (``Z``) names no zone until the source has shown a non-zero one: most systems write UTC.

    Activity, for sources that name no zone: an office whose day starts at 9:00 in Amsterdam starts
    at 8:00 UTC in winter and 7:00 UTC in summer, so a week binned in UTC smears by an hour for weeks
    after each change, and a rate learned before it expects events an hour early (every morning
    looked like an outage). For a source known to have off-hours, events are counted by hour over the
    last eight weeks; once a day, while a daylight-saving change of some rule lies inside that window,
    the week is binned in local hours of one zone per rule (``_RULE_ZONES``) and scored by the
    log-likelihood of its hour-of-week histogram (a sharper week scores higher). The source follows
    a rule that beats the current one by 30 nats and 0.005 per event. A source without a rule's shift
    keeps UTC (the wrong rule smears its day's edges); the base offset cannot be seen this way (a
    rule's zone stands for all zones that share it).

    >>> f = ZoneFinder()
    >>> winter = datetime(2011, 12, 1, 9, tzinfo=UTC).timestamp()
    >>> f.observe(winter, 3600.0), f.observe(winter + 86400, 3600.0)
    ('Europe/Paris', None)
    >>> f.observe(winter + 200 * 86400, 7200.0)  # June: Paris is at +2 as well
    >>> f.observe(winter + 320 * 86400, 7200.0)  # mid-October 2012: still summer time in Europe
    """

    __slots__ = ("zone", "samples", "stopped", "counts", "stamps", "next_check", "learned_at", "hour", "pending")

    def __init__(self) -> None:
        self.zone = "UTC"
        self.samples: list[tuple[float, float]] = []  # (instant, non-zero-led offset) the zone must fit
        self.stopped = False
        self.counts = array("i", bytes(4 * _ACTIVITY_HOURS))  # events per hour, a ring by epoch hour
        self.stamps = array("i", bytes(4 * _ACTIVITY_HOURS))  # the epoch hour each slot counts
        self.next_check = 0  # epoch hour of the next judgement of the activity
        # an instant typical of what was learned before the latest change of zone: what the models
        # learned turns by the two zones' offset difference then (None: at the latest event)
        self.learned_at: float | None = None
        self.hour = -1  # the epoch hour of the latest event counted, and its events not in the ring yet
        self.pending = 0

    def observe(self, ts: float, offset: float | None, off_hours: bool = True) -> str | None:
        """Take one event's instant and the UTC offset (seconds) its time was written with, None for
        an epoch number; the new zone when the guess changed. ``off_hours``: the source is known to
        have quiet hours (its activity is judged only then: the edges of a working day are what moves
        at a daylight-saving change; a round-the-clock source gives only noise, large at high volume)."""
        if self.stopped:
            return None
        samples = self.samples
        if offset is None or (offset == 0.0 and not samples):
            if samples or not off_hours:
                return None
            h = int(ts // 3600)
            if h == self.hour:  # the common case: one more event in the same hour
                self.pending += 1
                return None
            return self._count(h)
        if samples and utc_offset(self.zone, ts) == offset:
            return None
        if len(samples) >= _ZONE_SAMPLES:
            del samples[1]
        samples.append((ts, offset))
        for name in _zone_names():
            zone = ZoneInfo(name)  # not _zone(): 600 names would flush its cache of the zones in use
            if all(datetime.fromtimestamp(t, zone).utcoffset() == timedelta(seconds=off) for t, off in samples):
                if name == self.zone:
                    return None
                self.zone, self.learned_at = name, None
                return name
        self.stopped = True
        return None

    @property
    def named(self) -> bool:
        """The zone was named by the timestamps' offsets (else it is UTC or a rule's zone)."""
        return bool(self.samples)

    def _count(self, h: int) -> str | None:
        """An event in epoch hour ``h``, another hour than the last one counted: the last hour's
        events go into the ring."""
        if self.pending:
            slot = self.hour % _ACTIVITY_HOURS
            stamp = self.stamps[slot]
            if stamp <= self.hour:  # not older than the window
                if stamp != self.hour:
                    self.stamps[slot] = self.hour
                    self.counts[slot] = 0
                self.counts[slot] += self.pending
        self.hour, self.pending = h, 1
        if h < self.next_check:
            return None
        self.next_check = h + 24
        best = self._judge(h)
        if best is None or best == self.zone:
            return None
        self.zone = best
        return best

    def _judge(self, now: int) -> str | None:
        """The rule's zone that explains the last eight weeks' activity best, None when no rule changed
        its offset inside them (then every rule explains it equally) or too few events were seen."""
        first = now - _ACTIVITY_HOURS + 1
        t0, t1 = first * 3600.0, (now + 1) * 3600.0
        if all(next_transition(z, t0) >= t1 for z in _RULE_ZONES):
            return None
        hours = [(s, c) for s, c in zip(self.stamps, self.counts, strict=True) if c and s >= first]
        total = sum(c for _, c in hours)
        if total < _ACTIVITY_MIN_EVENTS:
            return None
        scores = {}
        for z in _RULE_ZONES:
            week = [0] * 168
            for s, c in hours:
                week[hour_of_week(z, s * 3600.0 + 1800.0)] += c
            scores[z] = sum(c * math.log(c) for c in week if c)
        best = max(_RULE_ZONES, key=lambda z: scores[z])
        current = scores.get(self.zone, scores["UTC"])
        if scores[best] <= current + max(_ACTIVITY_MARGIN, _ACTIVITY_MARGIN_PER_EVENT * total):
            return None
        # found days after a change, most of what the models learned predates it: the window's middle
        self.learned_at = (t0 + t1) / 2
        return best

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.zone, self.samples, self.stopped, self.counts, self.stamps, self.next_check, self.learned_at,
                self.hour, self.pending)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        # a snapshot from before the activity ring holds only the first fields: the rest start fresh
        state = tuple(state) + ZoneFinder().__getstate__()[len(state):]
        (self.zone, self.samples, self.stopped, self.counts, self.stamps, self.next_check, self.learned_at,
         self.hour, self.pending) = state


class WallClock:
    """Wall time: every second counts."""

    __slots__ = ()

    def business_seconds(self, a: float, b: float) -> float:
        return b - a if b > a else 0.0

    def add_business(self, a: float, seconds: float) -> float:
        return a + max(seconds, 0.0)

    def in_zone(self, timezone: str, turn: int = 0) -> WallClock:
        return self

    def snapshot(self) -> dict[str, Any]:
        return {"type": "wall"}

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self:
        return cls()

    def __reduce__(self) -> tuple[type[WallClock], tuple[()]]:
        # no state: the same pickle compiled (core/mypyc_build.py) or not, and either loads in the other
        return WallClock, ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WallClock)

    def __hash__(self) -> int:
        return hash("wall")

    def __repr__(self) -> str:
        return "WallClock()"


@lru_cache(maxsize=64)
def holiday_spans(timezone: str, holidays: tuple[date, ...]) -> tuple[tuple[float, float], ...]:
    """Each holiday (a local date) as the epoch ``[start, end)`` of that day in ``timezone``, in order
    (cached: asked at every new silence limit)."""
    tzinfo = _zone(timezone)
    spans = []
    for d in sorted(set(holidays)):
        n = d + timedelta(days=1)
        spans.append((datetime(d.year, d.month, d.day, tzinfo=tzinfo).timestamp(),
                      datetime(n.year, n.month, n.day, tzinfo=tzinfo).timestamp()))
    return tuple(spans)


class BusinessCalendar:
    """Working time of a weekly schedule in a time zone, minus holidays (local dates)."""

    def __init__(
        self,
        timezone: str = "UTC",
        workdays: Sequence[int] = (0, 1, 2, 3, 4),
        start_hour: float = 9.0,
        end_hour: float = 17.0,
        holidays: Iterable[date | str] = (),
    ) -> None:
        if not 0.0 <= start_hour < end_hour <= 24.0:
            raise ValueError("need 0 <= start_hour < end_hour <= 24")
        days = sorted(set(int(d) for d in workdays))
        if not days or days[0] < 0 or days[-1] > 6:
            raise ValueError("workdays are 0 (Monday) .. 6 (Sunday), at least one")
        intervals = [(d * 86400 + start_hour * 3600, d * 86400 + end_hour * 3600) for d in days]
        self._setup(timezone, intervals, holidays)

    @classmethod
    def from_intervals(
        cls, timezone: str, intervals: Iterable[Sequence[float]], holidays: Iterable[date | str] = ()
    ) -> Self:
        """Build from ``[start, end)`` seconds since Monday 00:00 local (within one week)."""
        cal = cls.__new__(cls)
        cal._setup(timezone, [(float(s), float(e)) for s, e in intervals], holidays)
        return cal

    @classmethod
    def from_hour_mask(
        cls, timezone: str, mask: Sequence[bool], holidays: Iterable[date | str] = ()
    ) -> Self:
        """Build from 168 booleans, one per hour of the week (0 = Monday 00:00..01:00 local)."""
        if len(mask) != 168:
            raise ValueError("an hour-of-week mask has 168 entries")
        intervals: list[tuple[float, float]] = []
        for h, on in enumerate(mask):
            if not on:
                continue
            if intervals and intervals[-1][1] == h * 3600:
                intervals[-1] = (intervals[-1][0], (h + 1) * 3600.0)
            else:
                intervals.append((h * 3600.0, (h + 1) * 3600.0))
        return cls.from_intervals(timezone, intervals, holidays)

    def _setup(
        self, timezone: str, intervals: list[tuple[float, float]], holidays: Iterable[date | str]
    ) -> None:
        _zone(timezone)  # raises for an unknown zone
        merged: list[tuple[float, float]] = []
        for s, e in sorted(intervals):
            if not 0.0 <= s < e <= WEEK:
                raise ValueError(f"interval {(s, e)} is not inside one week")
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        if not merged:
            raise ValueError("a business calendar needs some working time")
        self.timezone = timezone
        self._starts = [s for s, _ in merged]
        self._ends = [e for _, e in merged]
        self._before: list[float] = []  # working seconds of the week before interval i
        acc = 0.0
        for s, e in merged:
            self._before.append(acc)
            acc += e - s
        self._week_total = acc
        hol = sorted({h if isinstance(h, date) else date.fromisoformat(h) for h in holidays})
        self.holidays: tuple[date, ...] = tuple(hol)
        spans = holiday_spans(timezone, tuple(hol))
        self._hol_starts: list[float] = [s for s, _e in spans]
        self._hol_ends: list[float] = [e for _s, e in spans]

    # -- the naive-local cumulative working-time function and its inverse -------------------------

    def _cum(self, x: float) -> float:
        """Working seconds from the naive-local origin to naive-local seconds ``x``."""
        weeks, r = divmod(x + _MONDAY_SHIFT, WEEK)
        i = bisect.bisect_right(self._starts, r) - 1
        inside = 0.0 if i < 0 else self._before[i] + min(r, self._ends[i]) - self._starts[i]
        return weeks * self._week_total + inside

    def _cum_inv(self, y: float) -> float:
        """The smallest naive-local ``x`` with ``_cum(x) >= y``."""
        weeks, rem = divmod(y, self._week_total)
        if rem <= 0.0:
            weeks -= 1
            rem = self._week_total
        i = bisect.bisect_left(self._before, rem) - 1
        return weeks * WEEK + self._starts[i] + (rem - self._before[i]) - _MONDAY_SHIFT

    def _plain(self, a: float, b: float) -> float:
        """Working seconds in [a, b) ignoring holidays, DST-exact."""
        total = 0.0
        t = a
        for _ in range(_MAX_STEPS):
            if t >= b:
                return total
            off = utc_offset(self.timezone, t)
            end = min(b, next_transition(self.timezone, t))
            total += self._cum(end + off) - self._cum(t + off)
            t = end
        raise RuntimeError("business_seconds: span too long")

    # -- public API -------------------------------------------------------------------------------

    def business_seconds(self, a: float, b: float) -> float:
        """Working seconds in [a, b) (epoch seconds); 0 if ``b <= a``."""
        if not b > a:
            return 0.0
        total = self._plain(a, b)
        i = bisect.bisect_right(self._hol_ends, a)
        while i < len(self._hol_starts) and self._hol_starts[i] < b:
            s, e = max(a, self._hol_starts[i]), min(b, self._hol_ends[i])
            if e > s:
                total -= self._plain(s, e)
            i += 1
        return max(total, 0.0)

    def add_business(self, a: float, seconds: float) -> float:
        """The epoch instant when ``seconds`` working seconds have elapsed after ``a``."""
        remaining = max(float(seconds), 0.0)
        if remaining == 0.0:
            return a
        if remaining > _NEVER:  # a limit of a century or more (a freak spread): never, in practice,
            return math.inf  # and stepping through its DST periods would run past datetime's years
        t = a
        tz = self.timezone
        for _ in range(_MAX_STEPS):
            i = bisect.bisect_right(self._hol_ends, t)
            if i < len(self._hol_starts) and self._hol_starts[i] <= t:
                t = self._hol_ends[i]  # inside a holiday: skip it
                continue
            next_hol = self._hol_starts[i] if i < len(self._hol_starts) else math.inf
            boundary = min(next_hol, next_transition(tz, t))
            off = utc_offset(tz, t)
            c0 = self._cum(t + off)
            end = self._cum_inv(c0 + remaining) - off
            if end <= boundary:
                return max(end, t)
            remaining -= self._cum(boundary + off) - c0
            t = boundary
            if remaining <= 0.0:
                return t
        raise RuntimeError("add_business: too many DST periods or holidays crossed")

    def in_zone(self, timezone: str, turn: int = 0) -> BusinessCalendar:
        """The same working hours (``turn`` hours later in the week: a learned week moved to another
        zone keeps its instants) and holidays, in local time of another zone."""
        if timezone == self.timezone and turn % 168 == 0:
            return self
        shift = (turn % 168) * 3600.0
        intervals: list[tuple[float, float]] = []
        for a, b in zip(self._starts, self._ends, strict=True):
            a, b = a + shift, b + shift
            if b <= WEEK:
                intervals.append((a, b))
            elif a >= WEEK:
                intervals.append((a - WEEK, b - WEEK))
            else:  # across the end of the week: two pieces
                intervals += [(a, WEEK), (0.0, b - WEEK)]
        return BusinessCalendar.from_intervals(timezone, intervals, self.holidays)

    def with_holidays(self, holidays: Iterable[date | str]) -> BusinessCalendar:
        """The same working week with these holidays (a week learned from activity, with the settings')."""
        return BusinessCalendar.from_intervals(self.timezone, list(zip(self._starts, self._ends, strict=True)), holidays)

    def hour_mask(self) -> list[bool]:
        """168 booleans: hours of the week that hold any working time."""
        mask = [False] * 168
        for s, e in zip(self._starts, self._ends, strict=True):
            for h in range(int(s // 3600), int(math.ceil(e / 3600))):
                mask[h % 168] = True
        return mask

    def weekly_hours(self) -> float:
        return self._week_total / 3600

    def snapshot(self) -> dict[str, Any]:
        return {
            "type": "business", "timezone": self.timezone,
            "intervals": [[s, e] for s, e in zip(self._starts, self._ends, strict=True)],
            "holidays": [d.isoformat() for d in self.holidays],
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self:
        return cls.from_intervals(data["timezone"], data["intervals"], data.get("holidays", ()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BusinessCalendar) and self.snapshot() == other.snapshot()

    def __hash__(self) -> int:
        return hash((self.timezone, tuple(self._starts), tuple(self._ends), self.holidays))

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.timezone!r}, {self.weekly_hours():g} h/week, {len(self.holidays)} holidays)"


def restore_calendar(data: dict[str, Any]) -> BusinessCalendar | WallClock:
    """Rebuild a calendar from its :meth:`snapshot`."""
    return WallClock() if data.get("type") == "wall" else BusinessCalendar.restore(data)


OFF_EVENTS_MAX = 0.05  # of the events, at most, in the hours a learned calendar calls off (ActivityProfile)
COARSE_SHARE = 0.95  # of the events at their two busiest hours of the day: timestamps of days (ActivityProfile)


class ActivityProfile:
    """Learns a workflow's weekly activity to decide, once, between business time and wall time.

    Counts events per local hour-of-week bin. Once ``min_events`` events spanning ``min_days`` have
    been seen, the rate of each bin (events per exposed hour) is compared with the mean rate: bins
    below ``quiet_ratio`` of it, or with fewer than ``min_bin_events`` events (stray events), are
    off-hours. If off-hours cover at least ``min_off_share`` of the week and hold fewer than
    ``OFF_EVENTS_MAX`` of the events (they are dead, not only quieter: a 24/7 desk with lighter
    weekends, 2 events a weekend hour in six weeks, had them called off), the decision is a
    :class:`BusinessCalendar` whose working time is the active bins; otherwise (24/7 traffic) a
    :class:`WallClock`. Timestamps of days (nearly every event at one or two hours of the day:
    date-only exports at midnight) are wall time too: a calendar of their one busy hour a day read
    60 days as "60 working hours". The decision is then fixed.
    """

    def __init__(
        self,
        timezone: str = "UTC",
        min_events: int = 1000,
        min_days: float = 7,  # one full week: every hour of the week seen once
        quiet_ratio: float = 0.02,
        min_off_share: float = 0.25,
        min_bin_events: int = 3,
    ) -> None:
        _zone(timezone)
        self.timezone = timezone
        self.min_events = int(min_events)
        self.min_days = float(min_days)
        self.quiet_ratio = float(quiet_ratio)
        self.min_off_share = float(min_off_share)
        self.min_bin_events = int(min_bin_events)
        self.n = 0
        self.counts = [0] * 168
        self.first: float | None = None
        self.last: float | None = None
        self._decision: BusinessCalendar | WallClock | None = None

    def rezone(self, timezone: str, turn: int | None = None) -> None:
        """Count in another zone's local hours, keeping what was counted (and the working week
        decided from it) at the same instants: bins turn by ``turn`` hours (default: the zones'
        offset difference at the latest event), as :meth:`detectors.silence.SourceRate.rezone`."""
        _zone(timezone)
        if turn is None:
            turn = zone_turn(self.timezone, timezone, self.last) if self.last is not None else 0
        self.timezone = timezone
        if turn % 168:
            self.counts = self.counts[-turn:] + self.counts[:-turn]
            self._by_hour = None
        if self._decision is not None:
            self._decision = self._decision.in_zone(timezone, turn)

    def learn_one(self, ts: float) -> None:
        if self._decision is not None:
            return
        self.n += 1
        b = hour_of_week(self.timezone, ts)
        self.counts[b] += 1
        if self._by_hour is not None:
            self._by_hour[b % 24] += 1
        self.first = ts if self.first is None else min(self.first, ts)
        self.last = ts if self.last is None else max(self.last, ts)
        if self.n >= self.min_events and self.last - self.first >= self.min_days * 86400:
            self._decision = self._decide()

    def _exposure(self) -> list[float]:
        """Hours each hour-of-week bin was observed between the first and last event."""
        assert self.first is not None and self.last is not None
        exp = [0.0] * 168
        weeks, rest = divmod(self.last - self.first, WEEK)
        for h in range(168):
            exp[h] = weeks
        t = self.first
        end = self.first + rest
        for _ in range(200):  # at most 168 partial hours
            if t >= end:
                break
            nxt = min(end, (math.floor(t / 3600) + 1) * 3600)
            exp[hour_of_week(self.timezone, t)] += (nxt - t) / 3600
            t = nxt
        return exp

    def coarse(self) -> bool:
        """Nearly every event at one or two hours of the day: timestamps that carry the day, not the
        hour (date-only exports put every event at midnight), or a once-a-day batch. Its other hours
        are not off-hours: days are its unit, wall time measures them (a business calendar of its one
        busy hour a day said "60 working hours" for 60 days)."""
        first = second = 0
        for c in self.by_hour():
            if c > first:
                first, second = c, first
            elif c > second:
                second = c
        return self.n > 0 and first + second >= COARSE_SHARE * self.n

    def _decide(self) -> BusinessCalendar | WallClock:
        if self.coarse():
            return WallClock()
        exposure = self._exposure()
        rates = [c / e if e > 0 else 0.0 for c, e in zip(self.counts, exposure, strict=True)]
        mean = sum(self.counts) / max(sum(exposure), 1e-9)
        active = [r >= self.quiet_ratio * mean and c >= self.min_bin_events
                  for r, c in zip(rates, self.counts, strict=True)]
        off_share = 1.0 - sum(active) / 168
        # the hours called off must be (nearly) dead, not only quieter: a 24/7 desk with lighter
        # weekends had its weekend hours (a third of the weekday rate, two events each in six weeks)
        # called off, and its weekend work counted no time
        off_events = sum(c for c, on in zip(self.counts, active, strict=True) if not on)
        if off_share >= self.min_off_share and any(active) and off_events < OFF_EVENTS_MAX * self.n:
            return BusinessCalendar.from_hour_mask(self.timezone, active)
        return WallClock()

    def decided(self) -> bool:
        return self._decision is not None

    def suspects_off_hours(self, min_events: int = 100, quiet_hours: int = 6) -> bool:
        """Before the decision: do some hours of the day look dead already (nights)? Then durations
        measured in wall time cannot be trusted yet. Pure; cheap (24 sums)."""
        if self._decision is not None or self.n < min_events or self.first is None or self.last is None:
            return False
        if self.last - self.first < 86400 or self.coarse():
            return False
        mean = self.n / 24
        return sum(1 for c in self.by_hour() if c <= self.quiet_ratio * mean) >= quiet_hours

    def calendar(self) -> BusinessCalendar | WallClock | None:
        return self._decision

    # events per hour of the day (all days of the week), kept up to date by learn_one: the engine asks
    # ``suspects_off_hours`` at every stage completion of the first week, and 168 sums each time were
    # a quarter of its cost there. None (also in profiles pickled before it existed): rebuilt from counts.
    _by_hour: list[int] | None = None

    def by_hour(self) -> list[int]:
        if self._by_hour is None:
            self._by_hour = [sum(self.counts[d * 24 + h] for d in range(7)) for h in range(24)]
        return self._by_hour

    # the provisional calendar in force before the decision (class defaults: older snapshots lack them)
    in_force: tuple[bool, ...] | None = None
    unknown_days: frozenset[int] = frozenset()
    checked_at: float = -math.inf

    def provisional(self, min_days: float = 1.0) -> tuple[tuple[bool, ...], frozenset[int]] | None:
        """Before the decision, once ``min_days`` of data show dead hours: a best guess of the working
        week, and the days of the week not seen yet (a page on such a day waits: it may be a day off).

        Hours of the day are working hours when active on the days seen so far; a day of the week is
        off once a whole such day passed without activity, unknown while none has passed yet (the
        guess counts it as working so an item's age is never under-counted once it is seen), else
        working. Pure."""
        if self._decision is not None or self.first is None or self.last is None:
            return None
        if self.last - self.first < min_days * 86400 or not self.suspects_off_hours():
            return None
        mean = self.n / 24
        hours = [c > self.quiet_ratio * mean and c >= self.min_bin_events for c in self.by_hour()]
        seen = self._whole_days_seen()
        per_day = [sum(self.counts[d * 24:(d + 1) * 24]) for d in range(7)]
        typical_day = self.n / max(1, sum(1 for d in range(7) if per_day[d] > 0))
        days = [not (seen[d] and per_day[d] <= self.quiet_ratio * typical_day) for d in range(7)]
        unknown = frozenset(d for d in range(7) if not seen[d] and per_day[d] == 0)
        return tuple(days[h // 24] and hours[h % 24] for h in range(168)), unknown

    def _whole_days_seen(self) -> list[bool]:
        """Per day of the week (0 = Monday): did a whole local such day lie between first and last?"""
        assert self.first is not None and self.last is not None
        seen = [False] * 7
        day = math.ceil((self.first + utc_offset(self.timezone, self.first) + _MONDAY_SHIFT) / 86400)
        for _ in range(8):
            start = day * 86400 - _MONDAY_SHIFT  # local midnight, as naive epoch seconds
            if start + 86400 - utc_offset(self.timezone, self.last) > self.last:
                break
            seen[day % 7] = True
            day += 1
        return seen

    def day_of_week(self, ts: float) -> int:
        return hour_of_week(self.timezone, ts) // 24

    def snapshot(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone, "min_events": self.min_events, "min_days": self.min_days,
            "quiet_ratio": self.quiet_ratio, "min_off_share": self.min_off_share,
            "min_bin_events": self.min_bin_events, "n": self.n,
            "counts": list(self.counts), "first": self.first, "last": self.last,
            "decision": None if self._decision is None else self._decision.snapshot(),
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self:
        p = cls(data["timezone"], data["min_events"], data["min_days"], data["quiet_ratio"],
                data["min_off_share"], data.get("min_bin_events", 3))
        p.n = int(data["n"])
        p.counts = [int(c) for c in data["counts"]]
        p.first, p.last = data["first"], data["last"]
        d = data["decision"]
        p._decision = None if d is None else restore_calendar(d)
        return p
