"""The detection engine: plain Python, no I/O.

``process(event) -> alerts`` and ``tick(now) -> alerts`` are the whole interface for drivers; the Faust
worker (wall clock drives ``tick``) and ``stagewatch backtest`` (event time drives ``tick``) run this
same code, so a backtest shows exactly what the live system would have paged.

State, per workflow: a clock (wall or business calendar, possibly learned), per stage-state
(a stage, or a stage while ``waiting_on`` someone) the duration baselines per segment plus the
stage-level fallback, a drift detector, a flow tracker; per open item a small slotted record and
one entry in a deadline heap (lazy invalidation; ``heapq``'s algorithm, compiled: ``DeadlineHeap``),
so ``tick`` costs O(due · log n).

How an open item is judged
    When an item enters a stage-state its deadline is ``entered_at + threshold`` in the workflow's
    clock. At the deadline the item is re-judged with the *current* baseline (it may have moved):
    still past it → ``stalled`` fires; not yet → re-scheduled. Warming baselines re-check later
    with back-off. Two guards keep false pages down where the cause is not the item:
    - a stage where a large share of the open items is past the limit is a stage-wide slowdown:
      item pages are held, and the drift detector decides whether the normal has moved;
    - a workflow whose source looks quiet (no events for far longer than its rate explains) holds
      its item pages: the events may be lost, not the work stalled. Items open across a detected
      silence are not paged until they show a new event.

Censoring: a duration that was paged as stalled is learned clipped at the limit it broke, so
stalling cannot become normal by slow creep; a real, lasting change is the drift detector's call,
which resets the baselines to the new normal (and says so with ``bottleneck_shift``).
"""

from __future__ import annotations

import heapq
import math
import pickle
from bisect import bisect_left, bisect_right
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from functools import lru_cache
from typing import Any, ClassVar

from mypy_extensions import mypyc_attr

from detectors import (
    ActivityProfile,
    BusinessCalendar,
    DurationBaseline,
    FlowTracker,
    ShiftDetector,
    SourceRate,
    WallClock,
)
from detectors._core import INSTANT_SECONDS, DeadlineHeap
from detectors.calendar import WEEK, ZoneFinder, holiday_spans, rule_changes_near, zone_turn
from detectors.creep import Creep, CreepWatch
from detectors.drift import Shift
from detectors.public_holidays import holiday_key, public_holidays
from detectors.silence import past_holidays
from monitor.config import Settings, WorkflowConfig
from monitor.events import Alert, Event, alert_id, format_ts, human_duration, parse_timestamp
from monitor.metrics import DURATION_BUCKETS
from monitor.views import BaselineView, Counters, HistogramView, ItemView, SourceView, StageView

OTHER = "other"
ALL_SEGMENTS = "*"
DEFAULT_SEGMENT = "all"

# Judgement constants, each explainable in business words.
STAGE_WIDE_SHARE = 0.05  # crossings up to this share of a window's arrivals are never "stage-wide" (the alert budget)
STAGE_WIDE_MIN_OVERDUE = 4  # fewer items crossing the limit in one window is never "stage-wide"
QUIET_FACTOR = 0.5  # no event for half the silence limit: item pages wait until the source is clear
STAGE_CHECK_EVERY = 300.0  # event-time seconds between backlog / source checks, however often tick runs
IDLE_CHECK_MAX = 6 * 3600.0  # ... the backlog and learned-end checks double their interval up to this while
# no event arrives (quiet nights, the years of a sparse log) and run at the first check after one does;
# the source (silence) check keeps its pace
MAX_CATCH_UP_STEPS = 200_000  # event-time ticks one event may trigger before the clock jumps instead
TERMINAL_CHECK_EVERY = 3600.0  # ... between checks whether a stage no item leaves is terminal
END_MIN_MOVED = 30  # items that moved on before a stage they mostly end at can be told from a slow one
END_SHARE = 0.6  # ... and at most this share of its arrivals ever moved on
END_AGE = 10.0  # ... most of the items resting there older than this many times the p99 of movers
END_LATE = 0.1  # ... and of the items that rested past the limit, at most this share moved on after
ENDED_KEPT = 10_000  # items closed at learned ends remembered per workflow, to see them come back
PROVISIONAL_CHECK_EVERY = 3600.0  # event-time seconds between re-guesses of a still-undecided calendar
WARMING_RECHECK = 300.0  # shortest re-check of an item whose baseline is warming (seconds)
MAX_RECHECK = 7 * 86400.0
LONG_LIMIT = 30 * 86400.0  # a limit (working seconds) past which the item's idle time is looked at first
RECENT_PER_SEGMENT = 48  # durations kept per segment to re-seed a baseline after a shift
SHIFT_RESOLVE_AFTER = 30  # completed items in the new normal before a bottleneck_shift resolves
CLAIM_FROM_LATEST = 10  # a slowdown is claimed no larger than the median of this many latest completions says
FLAP_WINDOW = 90 * 86400.0  # a stage that got slower (or piled up work) more than FLAP_PAGES times in this window ...
FLAP_PAGES = 2  # ... keeps changing its pace (a monthly cycle, batches): its further ones are not ticketed (_rhythm)
# a minority segment's own shift test asks this much more evidence than its stage's: each segment is one test
# more (a 56-run check raised two false tickets at the stage's threshold: "1.2x slower for premium", and a
# spell of a heavy-tailed waiting step)
SEGMENT_TEST_STRICTER = 1.5
CREEP_SETTLE_MAX = 21 * 86400.0  # the items of an entry day are taken as finished at most this long after it
# a creep's ticket stays open at least this long: a creep has no moment its new normal begins (30 completions
# on a busy stage were 6 hours), and with partitions each finds it on another day; while one's ticket is
# open, the others' finds re-learn without one (4 partitions: 7 tickets of one creep in 40 days)
CREEP_TICKET_OPEN = 14 * 86400.0
FILL_SHARE = 0.1  # a stage whose open items are this share or more from the first half of its watch is still filling
FILL_STEP = 1.05  # ... its open items are kept at watch ages this factor apart
FILL_SEEN = 0.25  # ... and it was seen letting FILL_SEEN_ITEMS go after this share of its watch or more
FILL_SEEN_ITEMS = 5
FILL_GROWTH = 1.5  # ... unless its young items are this many times those it held at half its watch (or beyond noise)
FILL_RECHECK = 3600.0  # ... judged again after this long (event time)
RHYTHM_OUTGROWN = 2.0  # a backlog of a stage's rhythm is ticketed after all once it holds this many times its usual
# a segment's ticket resolves after SHIFT_RESOLVE_AFTER completions of its own, or this many of the others' in a row
SEGMENT_TICKET_IDLE = 10 * SHIFT_RESOLVE_AFTER
# a public holiday (not one the settings list) is taken back as a working day once it had, in minutes with events,
# the quietest day of the week's and this share of the rest of a usual day of its weekday (the learned rates), and
# at least HOLIDAY_WORKED_MIN more (Engine._public_holiday)
HOLIDAY_WORKED_SHARE = 0.25
HOLIDAY_WORKED_MIN = 5
HOLIDAY_WARMUP = 14 * 86400.0  # ... judged once the source was heard this long (its rates show a usual day)
FACTOR_SAID_UNDER = 100.0  # a slowdown's factor is said below this; from it on, the typicals before and after

SEVERITY = {
    "stalled": None,  # from config (workflow/stage severity), default "page"
    "slow_stage": "ticket",
    "bottleneck_shift": "ticket",
    "backlog_growth": "ticket",
    "source_silent": "page",
}


def _burst(recent: int, expected: float) -> bool:
    """Far more items crossing the limit in one window than the stage's own history explains."""
    return recent >= STAGE_WIDE_MIN_OVERDUE and recent > 3.0 * expected + 3.0 * math.sqrt(expected)


def _recheck_at(item: Item, now: float) -> float:
    """When to look again at an item judged without a limit of its own stage (warming): after a quarter of
    its age (at least a few minutes), so once the baseline is warm it is judged at most ~25 % of its age late."""
    return now + min(max((now - item.entered_at) * 0.25, WARMING_RECHECK), MAX_RECHECK)


def claimed_ratio(shift: Shift, meaningful: float, seen: float = math.inf) -> float:
    """The factor a slowdown the drift test found is claimed at (below 1: none is). The test's levels are
    in units of the segment's typical, its ratio the new level over the reference it left. On a stage of
    two kinds (minutes and months) that reference can sit far from the typical: a new level at the
    typical was called "996x slower" (BPI 2019). The smaller factor is claimed; and a reference a
    ``meaningful`` factor off the typical was no normal: against it the slowdown must show against the
    typical too (a "1.1x slower" ticket where the test saw 794x). Nor more than ``seen``, the latest
    completions' median in the test's unit. NaN claims none."""
    if shift.ratio <= 1.0:
        return shift.ratio
    ratio = min(shift.ratio, shift.after_seconds, seen)
    off = shift.before_seconds > meaningful or shift.before_seconds * meaningful < 1.0
    # and never below half the meaningful factor (the test's own confirmation): "1.1x slower" is none
    return ratio if ratio >= (meaningful if off else math.sqrt(meaningful)) else 0.0


def _rhythm(earlier: list[float], ts: float, what: str, then: str) -> tuple[list[float], str | None]:
    """A stage's episode of a kind (a slowdown, a backlog) at ``ts`` after the ``earlier`` ones: the
    ones to keep, and what its ticket adds ("", or that more are its rhythm), None for no ticket: the
    FLAP_PAGES + 1-th within FLAP_WINDOW is the stage's rhythm (a monthly cycle, weekly batches), said
    in the last ticket, not ticketed again while it goes on."""
    recent = [t for t in earlier if t > ts - FLAP_WINDOW][-FLAP_PAGES:] + [ts]
    if len(recent) > FLAP_PAGES:
        return recent, None
    if len(recent) < FLAP_PAGES:
        return recent, ""
    return recent, f"; {len(recent)} {what} in {human_duration(ts - recent[0])}: more within {human_duration(FLAP_WINDOW)} {then}"


def slower(ratio: float) -> str:
    """A slowdown's factor in words, "2.5x slower"; from FACTOR_SAID_UNDER on, "much slower": a step most
    items passed within seconds that now takes hours (the mix of a stage of two kinds changed: the receipt
    log's "4161.1x slower: typical is now 31.0 working hours, was 27 s"), where the two typicals say it."""
    return f"{ratio:.1f}x slower" if ratio < FACTOR_SAID_UNDER else "much slower"


def _typical_words(seconds: float, business: bool) -> str:
    """A typical as said beside another: "within 10 s" for a step done at once (the shift test does not tell
    such steps apart), else its duration."""
    return f"within {human_duration(INSTANT_SECONDS)}" if seconds <= INSTANT_SECONDS else human_duration(seconds, business)


def _compared(now: float, was: float | None, same: float, business: bool) -> str:
    """A typical against the one before: "2.5x the 2.3 days before"; "was within 10 s" of a step once done
    at once; "was 27 s" for a factor no reader pictures (``slower``); "about as before" within a factor of
    ``same``'s square root (half the meaningful factor; 1: never said); empty when there was none before."""
    if not was:
        return ""
    ratio = now / was
    if was <= INSTANT_SECONDS or ratio >= FACTOR_SAID_UNDER or ratio * FACTOR_SAID_UNDER <= 1.0:
        return f"was {_typical_words(was, business)}"
    if abs(math.log(ratio)) < 0.5 * math.log(same):
        return "about as before"
    return f"{ratio:.1f}x the {human_duration(was, business)} before"


def state_name(stage: str, waiting_on: str | None) -> str:
    """How a stage-state is named in views and metrics: the stage, or the stage while waiting on someone."""
    return stage if waiting_on is None else f"{stage} (waiting on {waiting_on})"


class EventRejected(ValueError):
    """A valid-looking event a driver refuses (e.g. far ahead of the wall clock); it goes to the DLQ."""


def check_not_future(ts: float, now: float, max_future: float) -> None:
    """Live drivers only: an event far ahead of the wall clock would fast-forward every clock."""
    if ts > now + max_future:
        raise EventRejected(
            f"timestamp {format_ts(ts)} is more than {human_duration(max_future)} ahead of the clock {format_ts(now)}"
        )


# Compiled by mypyc (core/mypyc_build.py): ``serializable`` lets pickle make an instance without __init__;
# allow_interpreted_subclasses (on each subclass too) makes one constructed from interpreted code (tests,
# benches) run its __init__, which mypyc skips otherwise for serializable classes
@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
class Pickled:
    """Pickles as a dict of the fields in ``PICKLED``, the same compiled or not; the form pickled
    before, ``(None, slots)``, still loads."""

    __slots__ = ()
    PICKLED: ClassVar[tuple[str, ...]] = ()

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.PICKLED if hasattr(self, k)}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):
            state = state[1]
        for k, v in state.items():
            if k in self.PICKLED:
                setattr(self, k, v)


# an open item's fields
ITEM_FIELDS = (
    "entity_id", "wf", "state", "segment", "entered_at", "last_ts", "seq", "fired", "fired_limit", "ids",
    "suspect", "slow_alert", "held", "due",
)


@mypyc_attr(allow_interpreted_subclasses=True)
class Item(Pickled):
    __slots__ = ITEM_FIELDS
    PICKLED = ITEM_FIELDS

    def __init__(self, entity_id: str, wf: WorkflowState, state: StageState, segment: str, ts: float) -> None:
        self.entity_id = entity_id
        self.wf = wf
        self.state = state
        self.segment = segment
        self.entered_at = ts
        self.last_ts = ts
        self.seq = 0  # the heap entry that is current for this item (0 = none)
        self.fired = False
        self.fired_limit = 0.0
        self.ids: tuple[str, ...] = ()
        self.suspect = False
        self.slow_alert: str | None = None
        self.held = False
        self.due = 0.0  # when the item is judged next (its heap entry's time)


SEGMENT_FIELDS = ("baseline", "buckets", "sum", "count", "recent", "drift")


@mypyc_attr(allow_interpreted_subclasses=True)
class SegmentStats(Pickled):
    """Baseline, histogram and recent durations of one (stage-state, segment)."""

    __slots__ = SEGMENT_FIELDS
    PICKLED = SEGMENT_FIELDS

    def __init__(self, warmup: int) -> None:
        self.baseline = DurationBaseline(warmup=warmup)
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.sum = 0.0
        self.count = 0
        # (entered, left) of the latest completions: re-seed after a shift, re-measure on a new calendar
        self.recent: deque[tuple[float, float]] = deque(maxlen=RECENT_PER_SEGMENT)
        # the segment's own shift test, once it is a minority of its stage (``Engine._segment_test``)
        self.drift: ShiftDetector | None = None

    def __setstate__(self, state: Any) -> None:
        self.drift = None  # a snapshot from before segments were tested alone has none
        super().__setstate__(state)

    def observe(self, seconds: float, censored: bool, entered: float, left: float) -> None:
        """A completed duration; ``censored``: it broke the limit, so it only says "at least this long"."""
        self.buckets[bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.sum += seconds
        self.count += 1
        self.recent.append((entered, left))
        self.baseline.learn_one(seconds, censored)

    def latest(self, clock: Any, last: int = RECENT_PER_SEGMENT) -> list[float]:
        """The durations of the ``last`` latest completions (oldest first), measured with ``clock``."""
        return [clock.business_seconds(a, b) for a, b in list(self.recent)[-last:]]

    def relearn(self, clock: Any, last: int = RECENT_PER_SEGMENT) -> None:
        """Start the baseline over from the latest completions, measured with ``clock``."""
        self.baseline.reset(keep_recent=self.latest(clock, last))


# a stage-state's fields
STAGE_FIELDS = (
    "wf", "name", "stage", "waiting_on", "segments", "all", "drift", "flow", "terminal",
    "configured_terminal", "wip", "stalled", "first_arrival", "shift_alert", "shift_remaining",
    "backlog_alert", "held", "cfg", "terminal_checked", "crossings", "crossings_total", "moved_on",
    "late_returns", "slowdowns", "backlogs", "shift_idle", "creep", "shift_until", "filled",
    "longest", "fill_until",
)


@mypyc_attr(allow_interpreted_subclasses=True)
class StageState(Pickled):
    """One stage, or one stage while waiting on someone (``waiting_on``)."""

    __slots__ = (*STAGE_FIELDS, "members")
    PICKLED = STAGE_FIELDS  # not ``members``: the engine's open items say where each is

    def __init__(self, wf: WorkflowState, name: str, stage: str, waiting_on: str | None, warmup: int) -> None:
        self.wf = wf
        self.name = name
        self.stage = stage
        self.waiting_on = waiting_on
        self.segments: dict[str, SegmentStats] = {}
        self.all = SegmentStats(warmup)
        self.drift = ShiftDetector()
        self.creep = CreepWatch(min_ratio=self.drift.min_ratio)  # a slowdown built up over weeks
        self.flow = FlowTracker()
        cfg = wf.engine.settings.stage(wf.name, stage)
        self.cfg = cfg
        self.configured_terminal = bool(cfg.terminal) or stage in wf.cfg.terminal_stages
        self.terminal = self.configured_terminal
        self.wip = 0
        self.stalled = 0
        self.first_arrival: float | None = None
        self.shift_alert: Alert | None = None
        self.shift_remaining = 0
        self.shift_idle = 0  # completions of other segments in a row while a segment's ticket is open
        self.shift_until = -math.inf  # ... and not before this (a creep's ticket: CREEP_TICKET_OPEN)
        self.backlog_alert: Alert | None = None
        self.held = 0  # open items past the limit whose page is held back by a stage-wide slowdown
        self.terminal_checked = -math.inf
        self.crossings: deque[float] = deque()  # when items first crossed the limit, recent window only
        self.crossings_total = 0
        self.moved_on = 0  # items that left for another stage (not closed or expired here)
        self.late_returns = 0  # items closed here as ended that came back after a long rest
        # when slowdowns were found, and by whose test (a segment's, "": the stage's), the last FLAP_WINDOW only
        self.slowdowns: list[tuple[float, str]] = []
        # (when it began, the most items waiting) of the latest backlog episodes, the last FLAP_WINDOW only
        self.backlogs: list[tuple[float, int]] = []
        # (when, open items) since it was first seen, at watch ages FILL_STEP apart: how it filled up
        self.filled: list[tuple[float, int]] = []
        self.longest: list[float] = []  # the FILL_SEEN_ITEMS longest wall times items took to leave it (a heap)
        self.fill_until = -math.inf  # taken as filling up (``Engine._filling``) until then
        # the open items in this stage-state (entity id -> item), in no useful order: for counts; what
        # is done to each of them goes in the engine's order (``Engine._items_in``)
        self.members: dict[str, Item] = {}

    def __setstate__(self, state: Any) -> None:
        self.slowdowns = []  # a snapshot from before flapping was judged has none
        self.backlogs = []  # ... nor one from before a backlog's rhythm was
        self.shift_idle = 0
        self.creep = CreepWatch()  # ... nor one from before gradual slowdowns were
        self.shift_until = -math.inf
        self.filled = []
        self.longest = []
        self.fill_until = -math.inf
        state = state[1] if isinstance(state, tuple) else state
        # ... one from before segments were tested alone has the stage's times alone, and backlog episodes
        # were their start times alone once (converted before they reach the typed fields)
        slowdowns: list[Any] = state.get("slowdowns") or []
        backlogs: list[Any] = state.get("backlogs") or []
        super().__setstate__({**state, "slowdowns": [s if isinstance(s, tuple) else (s, "") for s in slowdowns],
                              "backlogs": [b if isinstance(b, tuple) else (b, 0) for b in backlogs]})
        self.members = {}  # filled by ``Engine._rebind`` from the open items

    def stage_wide(self, now: float, window: float) -> bool:
        """Items cross the limit in a burst: the stage slowed for everyone, not one item stalled."""
        c = self.crossings
        while c and c[0] < now - window:
            c.popleft()
        span = now - (self.first_arrival if self.first_arrival is not None else now)
        expected = (self.crossings_total - len(c)) / max(span - window, window) * window
        # however short the history (a stage whose limit is weeks has seen few windows): crossings up
        # to the alert budget's share of the items arriving in a window are not a stage-wide slowdown
        budget = STAGE_WIDE_SHARE * self.flow.arrival_rate() * window
        return _burst(len(c), expected if expected > budget else budget)


# a workflow's fields (the engine first)
WORKFLOW_FIELDS = (
    "engine", "name", "cfg", "clock", "business", "profile", "zones", "states", "stage_count",
    "rate", "last_ts", "events", "silent_alert", "silences", "all", "silent_cache", "heard_ts", "ended",
    "worked_holidays", "holiday_next", "holiday_watch", "worked_names",
)
# the public holiday under way, of Engine._public_holiday: (its end, minutes with events on it, those expected on
# the quietest day of the week and on a usual day of its weekday, its date, the latest minute counted); none
NO_HOLIDAY: tuple[float, int, float, float, date, float] = (-math.inf, 0, math.inf, math.inf, date.min, -math.inf)


@lru_cache(maxsize=64)
def _days_off(listed: tuple[date, ...], public: tuple[date, ...], worked: tuple[date, ...]) -> tuple[date, ...]:
    """The settings' holidays and the public ones less those worked, in order."""
    return tuple(sorted(set(listed) | (set(public) - set(worked))))


@lru_cache(maxsize=64)
def _named_off(spec: str | None, worked: tuple[str, ...]) -> tuple[date, ...]:
    """The public holidays of ``spec`` but those named in ``worked``, in order."""
    return tuple(d for d in public_holidays(spec) if holiday_key(spec, d) not in worked)


@lru_cache(maxsize=64)
def _unlisted(listed: tuple[date, ...], public: tuple[date, ...], worked: tuple[date, ...]) -> tuple[date, ...]:
    """The public holidays the settings do not list and the source was not seen working on, in order:
    the days that may yet turn out to be working days."""
    taken = set(listed) | set(worked)
    return tuple(d for d in public if d not in taken)


@mypyc_attr(allow_interpreted_subclasses=True)
class WorkflowState(Pickled):
    __slots__ = (*WORKFLOW_FIELDS, "spans_cache")
    # not the engine: pickled through it, a learned-state snapshot carried every open item (and with
    # partitions, through ``peers``, every other partition's engine); ``Engine._rebind`` sets it back
    PICKLED = WORKFLOW_FIELDS[1:]

    def __setstate__(self, state: Any) -> None:
        state = state[1] if isinstance(state, tuple) else state
        if not isinstance(state.get("silent_cache", {}), dict):  # a one-entry tuple in earlier versions
            state = {**state, "silent_cache": {}}
        # (snapshots of versions that knew no public holidays)
        self.worked_holidays: tuple[date, ...] = ()
        self.holiday_next, self.holiday_watch = -math.inf, NO_HOLIDAY
        self.worked_names: tuple[str, ...] = ()
        super().__setstate__(state)
        self.spans_cache: tuple[Any, ...] = ()

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.cfg: WorkflowConfig = engine.settings.workflow(name)
        self.clock: Any = WallClock()
        self.business = False
        self.profile: ActivityProfile | None = None
        # the source's time zone found from its timestamps (offsets, or how its day moves at
        # daylight-saving changes), unless the settings name one
        self.zones: ZoneFinder | None = None if self.cfg.calendar.zone_given else ZoneFinder()
        # public holidays the source was seen working on (``Engine._public_holiday``), the start (epoch) of
        # the next one that may be, the one under way, and the names of those worked (the same holiday of
        # another year is a working day too)
        self.worked_holidays = ()
        self.holiday_next = -math.inf
        self.holiday_watch = NO_HOLIDAY
        self.worked_names = ()
        self.spans_cache = ()  # (zone, cfg, worked, days off as epoch spans): ``holidays``, not pickled
        self.set_calendar(self.cfg.calendar)
        self.states: dict[tuple[str, str | None], StageState] = {}
        self.stage_count = 0
        self.rate = SourceRate(timezone=self.zone())  # hour-of-week bins in local time
        self.last_ts: float | None = None
        self.events = 0
        self.silent_alert: Alert | None = None
        self.silences: list[tuple[float, float]] = []  # (start, end) of detected silences; end=inf while silent
        self.all = SegmentStats(engine.settings.engine.warmup)  # workflow-level fallback
        self.silent_cache: dict[float, float | None] = {}  # last event time -> silent_after(it)
        # the latest event heard, still waiting in the lateness buffer or not: the source is not
        # silent while an event it sent waits there
        self.heard_ts = -math.inf
        # items closed at a stage learned to be where items end, newest last (bounded): one that
        # shows up again moved on from there after all
        self.ended: OrderedDict[str, tuple[StageState, float]] = OrderedDict()  # -> (stage, entered at)

    def last_heard(self) -> float | None:
        """Event time of the workflow's latest event, applied or still in the lateness buffer."""
        if self.last_ts is None:
            return None
        return self.last_ts if self.last_ts >= self.heard_ts else self.heard_ts

    def zone(self) -> str:
        """The time zone of the workflow's local hours: the configured one, else the one found."""
        return self.cfg.calendar.timezone if self.zones is None else self.zones.zone

    def time_basis(self) -> str:
        """How the workflow's durations and hours are measured, in words (backtest summary)."""
        how = f"working hours ({self.clock.weekly_hours():g} h a week)" if self.business else "wall time"
        if self.zones is None:
            why = "as configured"
        elif self.zones.named:
            # offsets do not name a zone: this is the first common one that fits them (its daylight-saving
            # rule is assumed until an offset contradicts it)
            o = self.zones.samples[0][1]
            first = f"UTC{'+' if o >= 0 else '-'}{int(abs(o)) // 3600:02d}:{int(abs(o)) % 3600 // 60:02d}"
            why = f"a guess: the first common zone that fits the timestamps' offsets, e.g. {first}"
        elif self.zone() != "UTC":
            why = "the daylight-saving rule its activity follows"
        else:
            why = "no zone seen in the timestamps"
        spec = self.cfg.calendar.public_spec
        off = f", the public holidays of {spec} off" if self.business and spec else ""
        return f"{how}, local hours of {self.zone()} ({why}){off}"

    def follow_zone(self, zone: str) -> None:
        """Count local hours in ``zone`` from now on (source rates, the activity profile, working
        hours); what was learned stays at the same instants. Configured working hours move only to a
        zone the settings or the timestamps' offsets named (one found from the activity stands for
        its daylight-saving rule, not for a base offset that "9 to 5" could be read in)."""
        at = self.zones.learned_at if self.zones is not None else None
        at = self.last_ts if at is None else at
        turn = zone_turn(self.rate.timezone, zone, at) if at is not None else 0
        self.rate.rezone(zone, turn)
        if self.profile is not None:
            self.profile.rezone(zone, turn)
        if self.cfg.calendar.mode != "business":  # a learned week: the same instants
            self.clock = self.clock.in_zone(zone, turn)
        elif self.zones is None or self.zones.named:  # configured hours: the same local hours
            self.clock = self.clock.in_zone(zone)

    def set_calendar(self, cal: Any) -> bool:
        """Follow the calendar settings; True when the clock changed (durations must be re-measured)."""
        zone = self.zone()
        if cal.mode != "auto":
            self.profile = None
        elif self.profile is None and not self.business:
            self.profile = ActivityProfile(timezone=zone)
        # (else the week being learned, or a guess waiting for its verdict, goes on: an edit of the
        # holidays during the first weeks froze the guess for good, a 56-hour week)
        if cal.mode == "business":
            new = BusinessCalendar(zone, cal.workdays, cal.start_hour, cal.end_hour, self.days_off())
            if self.business and self.clock.snapshot() == new.snapshot():
                return False
            self.clock, self.business = new, True
            return True
        if cal.mode == "wall" and self.business:
            self.clock, self.business = WallClock(), False
            return True
        return False

    def silent_since(self, since: float) -> bool:
        """Whether a silence of this source was called that lasted until ``since`` or later (or lasts)."""
        return any(end >= since for _start, end in self.silences)

    def _public(self) -> tuple[date, ...]:
        """The public holidays of the workflow's country (``calendar.public_holidays``) but those of the
        names it was seen working on (Columbus Day, in any year)."""
        return _named_off(self.cfg.calendar.public_spec, self.worked_names)

    def days_off(self) -> tuple[date, ...]:
        """The local dates the workflow takes off: the holidays of the settings, and the public ones of
        its country less those it was seen working on."""
        return _days_off(self.cfg.calendar.holidays, self._public(), self.worked_holidays)

    def may_work(self) -> tuple[date, ...]:
        """The days off that the source may yet show to be working days: the public holidays the
        settings do not list (those they list are taken as said)."""
        return _unlisted(self.cfg.calendar.holidays, self._public(), self.worked_holidays)

    def holidays(self) -> tuple[tuple[float, float], ...]:
        """The days off as epoch ``[start, end)`` of local days in the workflow's zone, for a workflow
        with off-hours: a round-the-clock source runs on holidays too (an outage of one on a holiday in
        its settings was paged after 24.6 hours instead of 1.1). Kept until the zone, the settings or the
        days worked change: asked at every new silence limit."""
        if not self.business:
            return ()
        zone, c = self.zone(), self.spans_cache
        if not c or c[0] != zone or c[1] is not self.cfg or c[2] != (len(self.worked_holidays), len(self.worked_names)):
            days = self.days_off()
            c = self.spans_cache = (zone, self.cfg, (len(self.worked_holidays), len(self.worked_names)),
                                    holiday_spans(zone, days) if days else ())
        spans: tuple[tuple[float, float], ...] = c[3]
        return spans

    def widened(self, last: float, limit: float, limit_after: Callable[[float], float | None]) -> float:
        """The silence limit after an event at ``last`` that the source's rates give (``limit``; from
        another instant: ``limit_after``), past the holidays of the settings and, for an office whose
        zone is not known yet, within four days of a daylight-saving change of a common rule, as if its
        day had moved by that change's hour from then on: its rates still expect the old hours (a
        Berlin office was paged silent at 15:56 UTC the Monday after the spring change, an hour after
        it closed, for 15 hours; 21 stalls of items open then were never paged). The hour goes one way
        only: in spring a stop in a day's last hour is called the next morning, in autumn one in its
        first hour an hour late."""
        limit = past_holidays(self.holidays(), last, limit, limit_after)
        zones = self.zones
        if not self.business or zones is None or zones.zone != "UTC" or zones.named:
            return limit
        for change, moved in rule_changes_near(last):
            if change >= limit:
                continue  # judged before it
            # from the change on (the events due between the latest one and a change at night or at a
            # weekend left out), the rates read at the hour the day moved from
            start = max(last, change)
            after = limit_after(start - moved)
            if after is not None and after + moved > limit:
                limit = after + moved
        return limit

    def silent_after(self, last: float) -> float | None:
        """When no event since ``last`` means "silent" (cached: asked about the latest event heard and
        the latest applied, which only move when events arrive)."""
        cache = self.silent_cache
        limit = cache.get(last, math.nan)
        if limit is not None and math.isnan(limit):
            limit = self.rate.silent_after(last)
            if limit is not None:  # a few minutes without events is never "the integration is down"
                limit = max(self.widened(last, limit, self.rate.silent_after), last + self.engine.ec.silence_min_seconds)
            if len(cache) >= 4:
                cache.clear()
            cache[last] = limit
        return limit


# what a snapshot holds of an Engine: everything but the settings (the workflows and stages keep theirs, and
# ``ec`` the engine's, to tell a restart with changed settings) and what drivers set (dirty, peers, on_late)
STATE_FIELDS = (
    "scope", "items", "workflows", "heap", "seq", "queue", "buffer", "buffer_seq", "pending", "max_ts", "clock",
    "closed", "counters", "active", "next_stage_check", "next_flow_check", "flow_every", "applied_at_flow",
    "alert_changes", "feedback_factor", "ec",
)


class Engine:
    def __init__(self, settings: Settings | None = None, scope: str | None = None) -> None:
        """``scope``: this engine's share of the stream (``partition-N`` when there are several), part
        of the identity of its stage-level alerts, so two partitions never fire one identity twice. A
        source's silence is judged over the partitions together (``peers``): one of them pages it."""
        self._read_settings(settings or Settings())
        self.scope = scope
        self.items: dict[str, Item] = {}
        self.workflows: dict[str, WorkflowState] = {}
        self.heap = DeadlineHeap()  # (due, seq, item); an item's entry is current while item.seq == seq
        self.seq = 0
        # the lateness buffer: events that arrive in time order (most) wait in a FIFO, the others in a
        # heap; released merged by (time, arrival), as one heap would (a deque is cheaper than heap order)
        self.queue: deque[tuple[float, int, Event]] = deque()
        self.buffer: list[tuple[float, int, Event]] = []
        self.buffer_seq = 0
        self.pending: dict[str, int] = {}  # entity id -> its events waiting in the lateness buffer
        self.max_ts: float | None = None
        self.clock: float | None = None  # the last tick's now
        self.closed: OrderedDict[str, tuple[float, tuple[str, ...]]] = OrderedDict()
        self.counters = Counters()
        self.active: dict[str, Alert] = {}  # alert_id -> firing alert
        self.next_stage_check = -math.inf
        self.next_flow_check = -math.inf  # the next backlog / learned-end check (see IDLE_CHECK_MAX)
        self.flow_every = STAGE_CHECK_EVERY
        self.applied_at_flow = -1  # events applied (all workflows) at the last such check
        self.dirty: set[str] | None = None  # entity ids changed since the last checkpoint (worker only)
        # alerts a restore fired or resolved because its settings changed (what a reload would have):
        # for the driver to publish (``restore``, ``restore_parts``)
        self.restored: list[Alert] = []
        # alerts fired or resolved so far: a checkpoint is due when this moved, even without an event (a
        # stage alert fired on a tick, a silence resolved by another partition)
        self.alert_changes = 0
        # the other partitions' engines of the same worker or replay (``streams.group.EngineGroup``), asked
        # before calling a source silent; set by the driver, not part of the state
        self.peers: Any = None
        self.on_late: Callable[[Event, str], None] | None = None  # see _late; set by the driver, not state
        # ops feedback: threshold multipliers per (workflow, stage-state, segment), within configured bounds
        self.feedback_factor: dict[tuple[str, str, str], float] = {}

    # ------------------------------------------------------------------ intake
    def process(self, event: Event) -> list[Alert]:
        """Take one validated event. Returns the alerts whose status changed."""
        ts = event.timestamp
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts
        lateness = self.lateness
        if lateness <= 0:
            out: list[Alert] = []
            self._apply(event, out)
            return out
        wf = self.workflows.get(event.workflow)
        if wf is not None and ts > wf.heard_ts:
            wf.heard_ts = ts
        self.buffer_seq += 1
        queue = self.queue
        if not queue or ts >= queue[-1][0]:
            queue.append((ts, self.buffer_seq, event))
        else:
            heapq.heappush(self.buffer, (ts, self.buffer_seq, event))
        pending = self.pending
        eid = event.entity_id
        pending[eid] = pending.get(eid, 0) + 1
        return self._release(self.max_ts - lateness)

    def _release(self, watermark: float) -> list[Alert]:
        out: list[Alert] = []
        queue = self.queue
        buf = self.buffer
        pending = self.pending
        while True:
            # the earlier of the two heads by (time, arrival)
            if queue and (not buf or queue[0][0] < buf[0][0]
                          or (queue[0][0] == buf[0][0] and queue[0][1] < buf[0][1])):
                if queue[0][0] > watermark:
                    break
                ev = queue.popleft()[2]
            elif buf and buf[0][0] <= watermark:
                ev = heapq.heappop(buf)[2]
            else:
                break
            left = pending.pop(ev.entity_id, 1) - 1
            if left > 0:
                pending[ev.entity_id] = left
            self._apply(ev, out)
        return out

    def _buffered_first(self) -> float:
        """Event time of the earliest event in the lateness buffer (inf when empty)."""
        first = self.queue[0][0] if self.queue else math.inf
        return self.buffer[0][0] if self.buffer and self.buffer[0][0] < first else first

    def flush(self) -> list[Alert]:
        """Release every buffered event (end of a replay)."""
        return self._release(math.inf)

    def _late(self, ev: Event, workflow: str, why: str) -> None:
        """An event older than its item's state, beyond the allowed lateness: counted, not applied, and
        handed to ``on_late`` when a driver keeps such events (backtest: the DLQ file; the worker: the DLQ
        topic)."""
        self._count(workflow, "late")
        if self.on_late is not None:
            self.on_late(ev, f"late: {why}; beyond the allowed lateness of "
                             f"{human_duration(self.lateness)}, not applied")

    def _count(self, workflow: str, outcome: str, n: int = 1) -> None:
        key = (workflow, outcome)
        ev = self.counters.events
        ev[key] = ev.get(key, 0) + n

    def _workflow(self, name: str) -> WorkflowState:
        wf = self.workflows.get(name)
        if wf is None:
            if len(self.workflows) >= self.ec.max_workflows and name != OTHER:
                self._overflow("workflow")
                return self._workflow(OTHER)
            wf = self.workflows[name] = WorkflowState(self, name)
        return wf

    def _overflow(self, dimension: str) -> None:
        ov = self.counters.overflow
        ov[dimension] = ov.get(dimension, 0) + 1

    def _state(self, wf: WorkflowState, stage: str, waiting_on: str | None) -> StageState:
        key = (stage, waiting_on)
        st = wf.states.get(key)
        if st is None:
            if wf.stage_count >= self.ec.max_stages_per_workflow and stage != OTHER:
                self._overflow("stage")
                return self._state(wf, OTHER, None)
            name = state_name(stage, waiting_on)
            st = wf.states[key] = StageState(wf, name, stage, waiting_on, self.ec.warmup)
            wf.stage_count += 1
        return st

    def _segment_of(self, wf: WorkflowState, attributes: dict[str, str]) -> str:
        keys = wf.cfg.segment_by
        if keys is None:
            return attributes.get("segment", DEFAULT_SEGMENT)
        return "/".join(attributes.get(k, "-") for k in keys) or DEFAULT_SEGMENT

    @staticmethod
    def _segment_named(wf: WorkflowState, attributes: dict[str, str]) -> str | None:
        """The segment an event of an open item names, or None when it names none (later events often
        carry no attributes: the item keeps the segment it had)."""
        keys = wf.cfg.segment_by
        if keys is None:
            return attributes.get("segment")
        if not keys or not all(k in attributes for k in keys):
            return None
        return "/".join(attributes[k] for k in keys)

    def _relabel(self, item: Item, wf: WorkflowState, st: StageState, attributes: dict[str, str]) -> bool:
        """An item relabelled on its way (an smb deal upgraded to enterprise at contract) is judged as one
        of its new segment from now on; whether it was. Never into "other": an item whose segment
        overflowed would be counted again at every event."""
        named = self._segment_named(wf, attributes)
        if (named is None or named == item.segment
                or (named not in st.segments and len(st.segments) >= self.ec.max_segments_per_stage)):
            return False
        item.segment = self._segment_stats(st, named)[0]
        return True

    def _segment_stats(self, st: StageState, segment: str) -> tuple[str, SegmentStats]:
        seg = st.segments.get(segment)
        if seg is None:
            if len(st.segments) >= self.ec.max_segments_per_stage and segment != OTHER:
                self._overflow("segment")
                return self._segment_stats(st, OTHER)
            seg = st.segments[segment] = SegmentStats(self.ec.warmup)
        return segment, seg

    def _apply(self, ev: Event, out: list[Alert]) -> None:
        wf = self._workflow(ev.workflow)
        ts = ev.timestamp
        wfname = wf.name
        item = self.items.get(ev.entity_id)
        if item is None:
            closed = self.closed.get(ev.entity_id)
            if closed is not None:
                if ev.event_id in closed[1]:
                    self._count(wfname, "duplicate")
                    return
                if ts < closed[0]:
                    self._late(ev, wfname, f"{ev.entity_id} was closed at {format_ts(closed[0])}, after this event")
                    return
                if ts == closed[0]:
                    # at the very instant its item ended (logs write several events at one time, and which
                    # of them is listed first is chance): nothing to apply, nothing late, no reopening
                    self._count(wfname, "accepted")
                    return
                del self.closed[ev.entity_id]
                if self.dirty is not None:
                    self.dirty.add(ev.entity_id)
        else:
            if ev.event_id in item.ids:
                self._count(wfname, "duplicate")
                return
            if ts < item.entered_at:
                self._late(ev, wfname, f"{ev.entity_id} entered {item.state.stage} at {format_ts(item.entered_at)}, "
                                       "after this event")
                return
        self._count(wfname, "accepted")
        wf.events += 1
        # source rate and calendar learning (event time)
        if wf.last_ts is None or ts > wf.last_ts:
            wf.last_ts = ts
        if wf.zones is not None:
            zone = wf.zones.observe(ts, ev.utc_offset, wf.business)
            if zone is not None:
                wf.follow_zone(zone)
        wf.rate.observe(ts)
        if ts >= wf.holiday_next and wf.business:
            self._public_holiday(wf, ts)
        if wf.profile is not None:
            wf.profile.learn_one(ts)
            if wf.profile.decided():
                self._adopt_calendar(wf)
            elif ts >= wf.profile.checked_at + PROVISIONAL_CHECK_EVERY:
                wf.profile.checked_at = ts
                self._provisional_calendar(wf)
        # the engine holding the source's silence: this one, or with partitions maybe another; only an
        # event newer than the silence's start ends it (one heard before, released late from a lateness
        # buffer whose partition's clock lags, is no sign that the source is back)
        holder = self if wf.silent_alert is not None else (
            self.peers.silent_holder(wfname) if self.peers is not None else None)
        if holder is not None and ts > holder.workflows[wfname].silences[-1][0]:
            holder._end_silence(holder.workflows[wfname], ts, out)

        st = self._state(wf, ev.stage, ev.waiting_on)
        if item is not None and item.state is st:
            # the same stage-state again: a heartbeat, not a transition (a field update may relabel it)
            item.ids = (item.ids + (ev.event_id,))[-4:]
            item.last_ts = ts
            if ev.attributes and self._relabel(item, wf, st, ev.attributes) and not item.fired:
                self._schedule(item, ts)  # judged by its new segment's limit from now on
            if self.dirty is not None:
                self.dirty.add(ev.entity_id)
            return
        segment = self._segment_of(wf, ev.attributes) if item is None else item.segment
        if item is not None:
            self._leave(item, ts, out)
            if item.wf is not wf:  # an entity id reused across workflows: start over in the new one
                self._close(item, ts, out)
                item = None
        if item is None:
            if wf.ended:
                self._returned(wf, ev.entity_id, ts)
            if len(self.items) >= self.max_open_items:
                # heard (the source's rate learned it), but not tracked: not "accepted"
                self._overflow("item")
                self._count(wfname, "accepted", -1)
                self._count(wfname, "dropped_capacity")
                return
            segment = self._segment_stats(st, segment)[0] if segment not in st.segments else segment
            item = Item(ev.entity_id, wf, st, segment, ts)
            self.items[ev.entity_id] = item
        elif ev.attributes:
            self._relabel(item, wf, st, ev.attributes)  # the stage it left was learned in the old segment
        item.ids = (item.ids + (ev.event_id,))[-4:]
        self._enter(item, st, ts, out)
        if self.dirty is not None:
            self.dirty.add(ev.entity_id)

    # ------------------------------------------------------------ transitions
    def _enter(self, item: Item, st: StageState, ts: float, out: list[Alert]) -> None:
        item.state.members.pop(item.entity_id, None)
        st.members[item.entity_id] = item
        item.state = st
        item.entered_at = ts
        item.last_ts = ts
        item.fired = False
        item.suspect = False
        st.wip += 1
        if st.first_arrival is None:
            st.first_arrival = ts
        st.flow.arrive(ts)
        if st.terminal:
            self._close(item, ts, out)  # a slow_stage ticket of the stage it left resolves: it is done
            return
        self._schedule(item, ts)

    def _leave(self, item: Item, ts: float, out: list[Alert]) -> None:
        """The item leaves its stage-state at ts: learn the duration, resolve its alerts."""
        st = item.state
        wf = item.wf
        st.wip -= 1
        st.moved_on += 1
        item.seq = 0  # invalidate the heap entry
        if item.held:
            item.held = False
            st.held -= 1
        seconds = wf.clock.business_seconds(item.entered_at, ts)
        # the stage's flow as it stood: read after this departure, a stage holding an item or two
        # drains at most completions, and the drift test held its slowdowns back (a 3x slowdown
        # found after 29 completions instead of 15)
        inflow = st.flow.inflow_share()
        # Little's law holds in one clock: arrivals per wall second and WIP over wall time need the
        # wall time in stage (business seconds would make a 9-to-5 stage's queue look 4x too long)
        wall = ts - item.entered_at
        st.flow.depart(ts, wall)
        if len(st.longest) < FILL_SEEN_ITEMS:
            heapq.heappush(st.longest, wall)
        elif wall > st.longest[0]:
            heapq.heapreplace(st.longest, wall)
        if item.slow_alert is not None:
            self._resolve(item.slow_alert, ts, out, "the item moved on")
            item.slow_alert = None
        limit, _basis = self._limit(st, item.segment)
        if item.fired:
            st.stalled -= 1
            self._resolve(
                alert_id("stalled", wf.name, st.stage, item.entity_id),
                ts,
                out,
                f"{item.entity_id} left {st.name} after {human_duration(seconds, wf.business)}",
            )
            censored = True
        else:
            censored = limit is not None and seconds > limit
            if (
                limit is not None
                and seconds > limit
                and not item.suspect
                and not self._calendar_unsure(wf, ts)
                and self.ec.slow_stage_enabled
                and not st.cfg.mute
                and not wf.cfg.mute
            ):
                alert = self._item_alert("slow_stage", item, ts, seconds, limit, "firing")
                item.slow_alert = alert.alert_id
                out.append(alert)
        if item.suspect:
            return  # the duration spans lost events: learn nothing from it
        segment, seg = self._segment_stats(st, item.segment)
        first = st.all.baseline.n == 0
        seg.observe(seconds, censored, item.entered_at, ts)
        # by the day it entered, for a slowdown built up over weeks; the overflow segment is a mix of many
        # (no level of its own); of a stage of worked steps beside a smaller kind of instant ones, the
        # worked steps, as the shift test below reads them
        if (self.drift_enabled and segment != OTHER
                and not (seconds < INSTANT_SECONDS and seg.baseline.instant_minority())):
            st.creep.learn(segment, item.entered_at, max(seconds, INSTANT_SECONDS))
        st.all.observe(seconds, censored, item.entered_at, ts)
        if first:
            self._wake(st, item, ts)
        wf.all.baseline.learn_one(seconds, censored)
        # a workflow whose calendar is still being learned measures in wall time, where a night or a
        # weekend inside a stage looks like a slowdown: drift starts once the clock is settled.
        # And a stage seen for less than twice its limit has only shown its quick completions (the
        # slow ones are still inside): a reference taken then would call the rest a slowdown.
        # The detector sees each duration relative to its own segment's typical one, so a change in
        # the mix (a week of enterprise deals in a stage shared with smb) is not a shift; and only
        # once that typical is warm: resting on a handful of items, it still moves as it learns.
        # (of a stage of worked steps beside a smaller kind of instant ones, the worked kind's typical:
        # the median of both falls in the gap between them and moves with their mix)
        typical = seg.baseline.worked_typical() if seg.baseline.n >= seg.baseline.warmup else None
        if (
            typical is not None  # 0 s when most of its steps are done at once: the floor below
            # a step done at once in a stage of worked ones: how many there are is the stage's mix (a
            # vendor's batch booked in one go), not its pace; the test follows the worked kind (BPI 2019:
            # 30 quiet "speedups" of invoices in a year, each re-learning the stage from a batch)
            and not (seconds < INSTANT_SECONDS and seg.baseline.instant_minority())
            and self.drift_enabled
            and self._calendar_settled(wf)
            and self._representative(st, limit, ts)
        ):
            # steps done within seconds are one kind to the test: a system step now taking 8 s instead
            # of 0 s is no bottleneck to anyone, and on a log scale it looked like a 10,000-fold change
            unit = max(typical, INSTANT_SECONDS)
            value = max(seconds, INSTANT_SECONDS) / unit
            found = st.drift.update(value, ts, inflow)
            if found is not None:
                self._shift(st, self._claim(st, st.all, seg, found, typical, unit), ts, out)
            elif not self._segment_test(st, segment, seg, value, ts, inflow, typical, unit, out) \
                    and st.shift_alert is not None:
                # a segment's ticket counts its own completions; one whose segment stopped getting items
                # (SEGMENT_TICKET_IDLE of the others' in a row) would hold it, and the stage's, for good
                if st.shift_alert.segment in (None, segment):
                    st.shift_remaining -= 1
                    st.shift_idle = 0
                else:
                    st.shift_idle += 1
                if (st.shift_remaining <= 0 or st.shift_idle >= SEGMENT_TICKET_IDLE) and ts >= st.shift_until:
                    self._resolve(st.shift_alert.alert_id, ts, out, self._settled(st, st.shift_alert))
                    st.shift_alert = None

    @staticmethod
    def _claim(st: StageState, base: SegmentStats, seg: SegmentStats, found: Any, typical: float,
               unit: float) -> Shift:
        """The shift a test found, as claimed: against ``base``'s typical (the stage's, or the segment's
        for its own test), no larger than the median of the segment's latest completions says."""
        wf = st.wf
        before = max(base.baseline.typical() or typical, INSTANT_SECONDS)
        # what the segment's latest completions took, in the test's unit: residuals taken with a
        # unit that has moved since (a stage of several kinds) put the new level where no
        # completion is ("303x slower: typical is now 7732 working hours", of a log a year long)
        latest = sorted(max(d, INSTANT_SECONDS) for d in seg.latest(wf.clock, CLAIM_FROM_LATEST))
        ratio = claimed_ratio(found, st.drift.min_ratio, latest[len(latest) // 2] / unit)
        # (the worked kind's typical is read afresh; the median of both, as of the last refresh)
        now = unit if seg.baseline.instant_minority() else max(seg.baseline.typical() or typical, INSTANT_SECONDS)
        if max(now / unit, unit / now) > st.drift.min_ratio:
            # the test's unit, the typical of a few completions ago, is no longer the typical: the
            # median of a stage of two kinds (seconds and a day) crossed from one kind to the other,
            # and the test's levels say nothing in seconds ("29471x slower: typical is now 10216
            # days"): re-learned quietly
            ratio = 0.0
        return Shift(before, before * ratio, ratio, found.detected_at)

    def _segment_test(self, st: StageState, segment: str, seg: SegmentStats, value: float, ts: float,
                      inflow: float, typical: float, unit: float, out: list[Alert]) -> bool:
        """A minority segment's own shift test (True: it found one). The stage's test reads every item
        against its own segment's typical, so a segment that slowed alone moves it by its share only:
        enterprise at a fifth of the items, 2.5-5x slower, was ticketed in 2 of 9 runs, its items paged one
        by one until its baseline re-learned. A segment of half the items or more is most of the stage's
        test already; the pooled buckets (items without a segment, the overflow) are no group anyone
        manages."""
        if segment == OTHER or segment == DEFAULT_SEGMENT or 2 * seg.count >= st.all.count:
            return False
        test = seg.drift
        if test is None:
            test = seg.drift = ShiftDetector(threshold_sigmas=st.drift.threshold_sigmas * SEGMENT_TEST_STRICTER)
        found = test.update(value, ts, inflow)
        if found is None:
            return False
        shift = self._claim(st, seg, seg, found, typical, unit)
        if shift.ratio < st.drift.min_ratio:
            shift = Shift(shift.before_seconds, 0.0, 0.0, shift.detected_at)  # no meaningful factor: re-learned
        self._shift(st, shift, ts, out, segment)
        return True

    def _wake(self, st: StageState, leaving: Item, ts: float) -> None:
        """The stage's first completion: its parked items are warming from now on (once per stage,
        so one scan of the open items)."""
        for other in self._items_in(st):
            if other is not leaving and not other.fired:
                self._schedule(other, ts)

    def _items_in(self, st: StageState) -> list[Item]:
        return [item for item in self.items.values() if item.state is st]

    @staticmethod
    def _representative(st: StageState, limit: float | None, ts: float) -> bool:
        """Has the stage been watched long enough that its completions include the slow normal ones?"""
        first = st.first_arrival
        return limit is not None and first is not None and ts - first >= 2.0 * limit

    def _close(self, item: Item, ts: float, out: list[Alert]) -> None:
        st = item.state
        if st.terminal:
            st.wip -= 1
            st.flow.depart(ts, 0.0)
            if not st.configured_terminal:  # a learned end: remember the item, to see it come back
                ended = st.wf.ended
                ended[item.entity_id] = (st, item.entered_at)
                if len(ended) > ENDED_KEPT:
                    ended.popitem(last=False)
        if item.slow_alert is not None:
            self._resolve(item.slow_alert, ts, out, "the item closed")
            item.slow_alert = None
        item.seq = 0
        self.items.pop(item.entity_id, None)
        st.members.pop(item.entity_id, None)
        if self.dirty is not None:
            self.dirty.add(item.entity_id)
        if self.ec.recently_closed:
            self.closed[item.entity_id] = (ts, item.ids)
            if len(self.closed) > self.ec.recently_closed:
                forgotten = self.closed.popitem(last=False)[0]
                if self.dirty is not None:
                    self.dirty.add(forgotten)

    # --------------------------------------------------------------- limits
    def _sensitivity(self, st: StageState) -> float:
        return st.cfg.sensitivity or self.sensitivity

    def _limit(self, st: StageState, segment: str) -> tuple[float | None, str]:
        """The current stall limit for an item of this segment, and which level gave it."""
        sens = self._sensitivity(st)
        seg = st.segments.get(segment)
        limit = seg.baseline.threshold(sens) if seg is not None else None
        basis = "segment"
        if limit is None:
            limit = st.all.baseline.threshold(sens)
            basis = "stage"
            if limit is not None and seg is not None:
                # the segment is still warming: the stage's limit in units of typical, applied to this
                # segment's typical so far when that is slower (enterprise deals judged by an smb-heavy
                # stage limit would page at 1.6x their own typical)
                own, stage_typical = seg.baseline.recent_typical(), st.all.baseline.recent_typical()
                if own is not None and stage_typical and own > stage_typical:
                    limit *= own / stage_typical
        if limit is None and st.all.baseline.n >= 3:
            # workflow-level fallback only once the stage has shown a few completions of its own,
            # and never below what this stage has already shown
            wl = st.wf.all.baseline.threshold(sens)
            own = st.all.baseline.quantile(0.99)
            if wl is not None:
                limit = max(wl, (own or 0.0) * 2.0)
                basis = "workflow"
        if limit is None:
            return None, "warming"
        if self.feedback_factor:
            limit *= self.feedback_factor.get((st.wf.name, st.name, segment), 1.0)
        if limit < self.lateness:
            # never stalled sooner than its next event may arrive late (a step that is usually instant
            # is not stalled after a minute); a stage's own min/max_threshold_seconds still win
            limit = self.lateness
        cfg = st.cfg
        if cfg.min_threshold_seconds is not None:
            limit = max(limit, cfg.min_threshold_seconds)
        if cfg.max_threshold_seconds is not None:
            limit = min(limit, cfg.max_threshold_seconds)
        return limit, basis

    def _expected(self, st: StageState, segment: str) -> tuple[float | None, float | None, bool]:
        """(typical, p95) of the segment's own completions once it has 3, else of the whole stage's;
        and whether they are the segment's own."""
        seg = st.segments.get(segment)
        for b in ((seg.baseline if seg else None), st.all.baseline):
            if b is not None and b.typical() is not None and b.n >= 3:
                return b.typical(), b.quantile(0.95), b is not st.all.baseline
        return None, None, False

    def _schedule(self, item: Item, now: float) -> None:
        st = item.state
        limit, basis = self._limit(st, item.segment)
        if limit is None and st.all.baseline.n == 0:
            # no item has completed this stage yet (often one where items end, not learned terminal
            # yet): nothing can give it a limit before a completion, which wakes it (``_wake``), or
            # before the stage is learned terminal, which closes it (``_stage_checks``)
            self._park(item)
            return
        idle = self._idle_at(item)
        if limit is None:
            due = _recheck_at(item, now)
        else:
            clock = item.wf.clock
            if limit > LONG_LIMIT and idle < math.inf and clock.business_seconds(item.entered_at, idle) < limit:
                # the item goes idle before it reaches its limit: no need to find where a limit of
                # months or years of working time falls (through every daylight-saving period it spans)
                due = idle
            else:
                due = clock.add_business(item.entered_at, limit)
                if due <= now:
                    # judged at the next tick. Not at `now`: when entered + limit rounds to `now` while
                    # the age is still under the limit, that tick judged it again and again, forever
                    due = math.nextafter(now, math.inf)
            if basis == "workflow":
                # the workflow's limit, borrowed while the stage warms, spans every stage (hundreds of
                # days in the first days of a stream): the stage's own is taken once it is there. (Not
                # the stage's while a segment warms: a two-mode stage's first limits, from its quick
                # kind, would page the slow kind's early items)
                due = min(due, _recheck_at(item, now))
        self._push(item, due if due < idle else idle)

    def _idle_at(self, item: Item) -> float:
        """When the item, with no further event, stops being tracked (``item_idle_days``)."""
        return item.last_ts + self.idle_after

    def _park(self, item: Item) -> None:
        """An item that needs no further judgement: look at it again only when it would go idle."""
        idle = self._idle_at(item)
        if idle < math.inf:
            self._push(item, idle)

    def _push(self, item: Item, due: float) -> None:
        self.seq += 1
        item.seq = self.seq
        item.due = due
        self.heap.push(due, self.seq, item)

    # ----------------------------------------------------------------- tick
    def next_due(self) -> float:
        """The earliest ``now`` at which :meth:`tick` can do more than move the clock (a due deadline,
        a stage/source check, or late-buffered events to release); a lower bound, never later.
        Drivers that tick in fixed steps (:class:`EventClock`) skip the steps before it."""
        due = self.next_stage_check
        first = self.heap.first_due()  # inf when empty
        if first < due:
            due = first
        # tick releases when the first buffered ts <= now - lateness (inf when none); a second early absorbs
        # float rounding
        release = self._buffered_first() + self.lateness - 1.0
        if release < due:
            due = release
        return due

    def tick(self, now: float) -> list[Alert]:
        """Advance the clock to ``now``: release late-buffered events, judge due items, check sources."""
        if (
            now < self.next_stage_check
            and self.heap.first_due() > now
            # (a buffer kept from a larger allowed lateness is released too: a reload, or a snapshot)
            and (not (self.queue or self.buffer) or self._buffered_first() > now - self.lateness)
        ):
            self.clock = now if self.clock is None or now > self.clock else self.clock
            return []  # nothing due: the common case, kept cheap
        out: list[Alert] = []
        if self.queue or self.buffer:
            out.extend(self._release(now - self.lateness))
        if self.clock is None or now > self.clock:
            self.clock = now
        stage_checks = now >= self.next_stage_check
        if stage_checks:
            self.next_stage_check = now + STAGE_CHECK_EVERY
            for wf in self.workflows.values():
                self._check_source(wf, now, out)
        heap = self.heap
        while True:
            entry = heap.pop_due(now)
            if entry is None:
                break
            _due, seq, item = entry
            if item.seq != seq:
                continue  # stale entry: the item moved on or was re-scheduled
            item.seq = 0
            self._judge(item, now, out)
            if self.dirty is not None:
                self.dirty.add(item.entity_id)
        if stage_checks:
            applied = sum(wf.events for wf in self.workflows.values())
            idle = applied == self.applied_at_flow
            if not idle or now >= self.next_flow_check:
                self._stage_checks(now, out)
                self.flow_every = min(2.0 * self.flow_every, IDLE_CHECK_MAX) if idle else STAGE_CHECK_EVERY
                self.applied_at_flow = applied
                self.next_flow_check = now + self.flow_every
        return out

    def _stage_checks(self, now: float, out: list[Alert]) -> None:
        for wf in self.workflows.values():
            for st in list(wf.states.values()):
                if st.terminal:
                    continue
                self._learn_terminal(st, now)
                if st.terminal:  # its items end here, a page on any of them was a false one
                    self._end_items(st, now, out, f"{st.name} is where most {st.wf.name} items end")
                    continue
                if self.ec.backlog_enabled:
                    self._note_fill(st, now)
                    self._check_backlog(st, now, out)
                if self.drift_enabled and st.creep.due(now):
                    self._check_creep(st, now, out)

    def _end_items(self, st: StageState, now: float, out: list[Alert], why: str,
                   items: list[Item] | None = None) -> None:
        """The open items of ``st`` (or ``items``) are taken as done where they stand, a stage where items
        end (``why``): their stalled pages resolve and they close."""
        for item in self._items_in(st) if items is None else items:
            self._let_go(item, now, out, f"{why}: {item.entity_id} is taken as done")
            self._close(item, now, out)

    def _judge(self, item: Item, now: float, out: list[Alert]) -> None:
        st = item.state
        wf = item.wf
        if st.terminal:  # learned terminal after the item entered
            self._end_items(st, now, out, f"{st.name} is where {wf.name} items end", [item])
            return
        if now >= self._idle_at(item):
            self._expire(item, now, out)
            return
        if item.fired:
            self._park(item)
            return
        limit, _ = self._limit(st, item.segment)
        if limit is None:
            self._learn_terminal(st, now)
            if st.terminal:
                self._close(item, now, out)
                return
            self._schedule(item, now)
            return
        age = wf.clock.business_seconds(item.entered_at, now)
        if age < limit:
            self._schedule(item, now)
            return
        if item.entity_id in self.pending:
            # the item's next event is here but still waiting out the allowed lateness: judge it
            # once that event is applied (it may well have moved on in time)
            self._defer(item, now, self.lateness)
            return
        if st.cfg.mute or wf.cfg.mute:
            self._park(item)
            return
        # guard 0: nights look dead (or no full day seen yet) and the calendar is not learned, or
        # only guessed and today may be a day off: the age may count hours nobody works
        if self._calendar_unsure(wf, now):
            self._defer(item, now, max(limit * 0.25, 3600.0))
            return
        # guard 1: events may be lost, not the work stalled
        if item.suspect or self._overlaps_silence(wf, item.entered_at):
            item.suspect = True
            self._park(item)
            return
        if self._quiet(wf, now):
            self._defer(item, now, max(limit * 0.05, 60.0))
            return
        # guard 2: a stage-wide slowdown is the stage's problem (drift decides), not this item's
        if not item.held:
            st.crossings.append(now)
            st.crossings_total += 1
        if st.stage_wide(now, limit):
            if not item.held:
                item.held = True
                st.held += 1
            self._defer(item, now, max(limit * 0.25, 60.0))
            return
        if item.held:
            item.held = False
            st.held -= 1
        item.fired = True
        item.fired_limit = limit
        st.stalled += 1
        out.append(self._item_alert("stalled", item, now, age, limit, "firing"))
        self._park(item)

    def _expire(self, item: Item, now: float, out: list[Alert]) -> None:
        """No event for ``item_idle_days``: the item is taken as finished where it stands (real logs end
        many cases at stages that are also passed mid-case) and no longer tracked."""
        st = item.state
        st.wip -= 1
        st.flow.depart(now, math.nan)  # out of the queue, without a duration to learn
        self._let_go(item, now, out,
                     f"no event for {human_duration(now - item.last_ts)}: {item.entity_id} is no longer tracked")
        ex = self.counters.expired
        ex[item.wf.name] = ex.get(item.wf.name, 0) + 1
        self._close(item, now, out)

    def _defer(self, item: Item, now: float, delay: float) -> None:
        self._push(item, now + delay)

    def _let_go(self, item: Item, now: float, out: list[Alert], why: str) -> None:
        """The item stops being tracked where it stands: its stalled page resolves with ``why``."""
        st = item.state
        if item.held:
            item.held = False
            st.held -= 1
        if item.fired:
            st.stalled -= 1
            self._resolve(alert_id("stalled", item.wf.name, st.stage, item.entity_id), now, out, why)

    def _returned(self, wf: WorkflowState, entity_id: str, ts: float) -> None:
        """An item closed at a stage learned to be an end shows up again: it moved on from there. A
        quick return is what the few that pass through do; a return after a long rest (END_AGE x the
        p99 of those that moved on; any return while none had) means items resting there do get
        going again: after END_MIN_MOVED such returns the stage is watched again (a slow stage taken
        for an end before its first item left it)."""
        got = wf.ended.pop(entity_id, None)
        if got is None:
            return
        st, entered = got
        if not st.terminal or st.configured_terminal:
            return
        st.moved_on += 1
        moved = st.all.baseline.quantile(0.99) if st.all.baseline.n else None
        if moved is None or wf.clock.business_seconds(entered, ts) > END_AGE * moved:
            st.late_returns += 1
        if st.late_returns >= END_MIN_MOVED:
            st.terminal = False
            st.terminal_checked = ts
            for eid in [e for e, (s, _) in wf.ended.items() if s is st]:
                del wf.ended[eid]

    def _learn_terminal(self, st: StageState, now: float) -> None:
        """A stage items do not leave, long after many entered it, is where items end.

        Most often none ever leaves. But real logs also end cases at a stage a few pass through (a
        resolved ticket now and then reopened, an order confirmed and for some delivered after):
        while at most 60 % of its items ever moved on, most of those resting there have rested ten
        times the p99 of those that moved on, and hardly any item that rested past its limit ever
        moved on after (at most one in ten of them), waiting there is being done, not stalling: the
        alternative pages every case the log ends there (BPI 2012: 3,401 pages on declined
        applications). A stage whose stalled items do get going again, however late, stays watched."""
        if st.terminal or st.first_arrival is None:
            return
        if st.flow.arrivals < self.ec.terminal_learn_min_items or now < st.terminal_checked + TERMINAL_CHECK_EVERY:
            return
        if st.moved_on == 0:
            st.terminal_checked = now
            longest = 0.0
            for other in st.wf.states.values():
                if other is not st and other.all.baseline.n >= 3:
                    p = other.all.baseline.quantile(0.99) or 0.0
                    longest = max(longest, p)
            if longest and now - st.first_arrival > 3 * longest:
                st.terminal = True
        elif st.moved_on >= END_MIN_MOVED and END_SHARE * st.flow.arrivals > st.moved_on:
            st.terminal_checked = now
            base = st.all.baseline
            moved = base.quantile(0.99)
            late = base.censored_fraction() * st.moved_on  # items that moved on only past their limit
            resting = st.wip
            # (the movers' p99 from END_MIN_MOVED durations at least: a stage worked once a week, taken for
            # an end and watched again when its items came back, was an end again two days later on the p99
            # of the one item it had seen move on, and flipped so every week)
            if (not moved or base.n < END_MIN_MOVED or resting < self.ec.terminal_learn_min_items // 2
                    or late > END_LATE * (late + resting)):
                return
            # the items resting there longer than END_AGE x the movers' p99. Working time never runs
            # ahead of the wall clock: fewer than half of them that old in wall time, fewer in working
            # time (most checks end here, without sorting the stage's items)
            members = st.members.values()
            if 2 * sum(1 for item in members if now - item.entered_at > END_AGE * moved) < len(members):
                return
            # an item's age grows as its entry gets older, so they are a prefix of the entries in time
            # order (bisected)
            entered = sorted(item.entered_at for item in members)
            clock = st.wf.clock
            old = bisect_left(entered, -END_AGE * moved, key=lambda t: -clock.business_seconds(t, now))
            if 2 * old >= len(entered) and late <= END_LATE * (late + old):
                st.terminal = True

    # ---------------------------------------------------------- stage alerts
    def _shift(self, st: StageState, shift: Any, ts: float, out: list[Alert], segment: str | None = None,
               creep: Creep | None = None) -> None:
        """A shift found by the stage's test, or by ``segment``'s own, or a ``creep`` (a slowdown built
        up over weeks): the baselines re-learn (that segment's alone; a creep's have followed it), and a
        slowdown is ticketed. (The
        stage's ticket names no segment: when it is written, the items of a slower segment that entered
        since the change have mostly not finished, and whether that segment slowed too is not known yet;
        the resolution compares each segment with its own typical before.)"""
        wf = st.wf
        if shift.ratio >= 1.0:
            # a slowdown found is not to be found again as a creep; a speedup's weeks stay (when the stage
            # is back to normal after a fast spell, the weeks before it say that this is no creep)
            st.creep.reset()
        # each segment's typical before the change (not re-learned yet; of a creep, weeks ago), for the
        # resolution to compare with
        tested = st.segments if segment is None else {segment: st.segments[segment]}
        before = ({name: round(t, 3) for name, t in creep.before.items()} if creep is not None else
                  {name: round(t, 3) for name, seg in tested.items() if (t := seg.baseline.typical()) is not None})
        if creep is None:  # (the baselines follow a creep by themselves: re-learnt, 190 pages of BPI 2017 moved)
            for seg in tested.values():
                seg.relearn(wf.clock, SHIFT_RESOLVE_AFTER)
            if segment is None:
                st.all.relearn(wf.clock, SHIFT_RESOLVE_AFTER)
                for seg in st.segments.values():
                    seg.drift = None  # the segments' own tests start over from the new normal too
        if shift.ratio < 1.0 or not self.ec.drift_enabled or shift.after_seconds < self.lateness:
            # a stage that got faster re-learns quietly (so does one whose new level is below its typical:
            # see _leave); so does one whose new typical is within the allowed lateness, the timing
            # noise of its source's events: a minute instead of 25 s is no bottleneck to anyone
            return
        # a segment's slowdowns and the stage's flap apart: enterprise's own ticket, then the stage's as its
        # other segments' slowed items finish, is one change found twice, not a stage that keeps changing
        # (a creep that goes on is ticketed again at each further 1.5x: no rhythm, a stage getting ever slower)
        scope = segment or ""
        flapping: str | None = ""
        if creep is None:
            kept = [(t, s) for t, s in st.slowdowns if t > ts - FLAP_WINDOW]
            recent, flapping = _rhythm([t for t, s in kept if s == scope], ts, "slowdowns", "re-learn without a ticket")
            st.slowdowns = [(t, s) for t, s in kept if s != scope] + [(t, scope) for t in recent]
        if flapping is None:
            return  # it keeps changing its pace: said in the last ticket, not ticketed again while it does
        if self._held_elsewhere("bottleneck_shift", wf, st.stage):
            return  # another partition found it first: one ticket for the stage
        aid = alert_id("bottleneck_shift", wf.name, st.stage, None, self.scope)
        if aid in self.active:
            if segment is None and st.shift_alert is not None and st.shift_alert.segment:
                # the stage's ticket after a segment's own: that segment re-learned at its ticket, and its
                # typical before the change is the one that ticket kept
                before.update(st.shift_alert.details.get("typical_before") or {})
            self._resolve(aid, ts, out, "superseded by a new shift")
        alert = self._stage_alert(
            "bottleneck_shift", wf, st.stage, ts,
            observed=shift.after_seconds,
            expected=shift.before_seconds,
            threshold=shift.before_seconds * 1.5,
            score=round(min(1.0, abs(math.log(max(shift.ratio, 1e-9))) / math.log(4)), 3),
            segment=segment,
            summary=(
                f"{st.name} in {wf.name} got {slower(shift.ratio)}{f' for {segment}' if segment else ''}"
                f"{f' over {human_duration(creep.over)}' if creep is not None else ''}: "
                f"typical is now "
                f"{human_duration(shift.after_seconds, wf.business)}, was {_typical_words(shift.before_seconds, wf.business)}"
                f"{flapping}"
            ),
            waiting_on=st.waiting_on,
            # each segment's typical before, for the resolution to say which changed (of several)
            details={"ratio": round(shift.ratio, 3),
                     **({"typical_before": before} if len(before) > 1 or segment or creep else {}),
                     **({"over_seconds": creep.over} if creep is not None else {})},
        )
        st.shift_alert = alert
        st.shift_remaining = SHIFT_RESOLVE_AFTER
        st.shift_idle = 0
        st.shift_until = ts + CREEP_TICKET_OPEN if creep is not None else -math.inf
        self._fire(alert, out)

    def _check_creep(self, st: StageState, now: float, out: list[Alert]) -> None:
        """Once a day, the stage's creep watch judges (``detectors.creep``), once the stage has been watched
        long enough to have shown its slow normal items and its calendar is settled."""
        wf = st.wf
        if not self._calendar_settled(wf) or not self._representative(
                st, st.all.baseline.threshold(self._sensitivity(st)), now):
            st.creep.reset()
            return
        # an entry day's level is read once its items have mostly finished: three typical durations on, in
        # wall time (a week holds 40 working hours of an office's 9-to-5: 4.2x as long)
        week = 7 * 86400.0
        worked = wf.clock.business_seconds(now - week, now) if wf.business else week
        typical = st.all.baseline.worked_typical() or 0.0
        settle = min(3.0 * typical * week / max(worked, 1.0), CREEP_SETTLE_MAX)
        found = st.creep.observe(now, settle)
        if found is not None:
            shift = Shift(found.before_seconds, found.after_seconds, found.ratio, now)
            self._shift(st, shift, now, out, found.segment, creep=found)

    @staticmethod
    def _settled(st: StageState, shift: Alert) -> str:
        """Why a bottleneck_shift resolves, with the new normal as now learned: the ticket's figures are
        from the first completions after the change, the quick ones (the slow ones are still inside). A
        stage whose typical is back under half the meaningful factor over the one before had a spell, no
        new normal: "its slowdown has passed"."""
        business = st.wf.business
        compared: list[tuple[float, float]] = []  # (typical now, the one before) where compared
        said: list[str] = []
        if len(st.segments) > 1 or shift.segment:
            # the test reads each item against its own segment's typical, and one segment may have slowed
            # alone: the stage's typical would say another thing than the ticket; each segment's, largest
            # first, against its own before the change (where the ticket kept it), where enough items that
            # entered since the ticket have finished (a slower segment's slowed items may still be inside);
            # a segment's own ticket, that segment's alone
            before = shift.details.get("typical_before") or {}
            since = parse_timestamp(shift.at)
            typicals = [(seg.count, name, seg) for name, seg in st.segments.items() if shift.segment in (None, name)]
            for _n, name, seg in sorted(typicals, key=lambda c: (c[0], c[1]), reverse=True)[:3]:
                t = seg.baseline.typical()
                if t is None:
                    continue
                was = before.get(name) if sum(a >= since for a, _b in seg.recent) >= CLAIM_FROM_LATEST // 2 else None
                change = _compared(t, was, st.drift.min_ratio, business)
                said.append(f"{human_duration(t, business)} for {name}" + (f" ({change})" if change else ""))
                if was:
                    compared.append((t, was))
        else:
            now, was = st.all.baseline.typical(), shift.expected_seconds
            if now is not None and was:
                said.append(f"{human_duration(now, business)}, {_compared(now, was, 1.0, business)}")
                compared.append((now, was))
        # seconds are one, as to the test; passed when every one said was compared, each under half the factor
        back = len(compared) == len(said) > 0 and all(
            max(now, INSTANT_SECONDS) / max(was, INSTANT_SECONDS) < math.sqrt(st.drift.min_ratio) for now, was in compared)
        # (a creep's ticket closes after CREEP_TICKET_OPEN, whether or not it goes on: no "new normal" said)
        words = (f"{st.name}'s slowdown has passed" if back else
                 f"{st.name}'s gradual slowdown stands" if "over_seconds" in shift.details else
                 f"{st.name} has settled at its new normal")
        return f"{words}: typical is {', '.join(said)}" if said else words

    def _check_backlog(self, st: StageState, now: float, out: list[Alert]) -> None:
        flow = st.flow
        if not flow.in_backlog(now):
            if st.backlog_alert is not None:
                self._resolve(st.backlog_alert.alert_id, now, out, "departures caught up with arrivals")
                st.backlog_alert = None
            return
        wf = st.wf
        backlog = flow.backlog()
        assert backlog is not None  # in_backlog() just said so
        episodes = st.backlogs
        current = episodes[-1] if episodes and episodes[-1][0] == backlog.since else None
        if current is not None and backlog.wip > current[1]:
            episodes[-1] = (backlog.since, backlog.wip)  # the most items it held
        if st.backlog_alert is not None or st.cfg.mute or wf.cfg.mute:
            return
        if self._quiet(wf, now) or self._held_elsewhere("backlog_growth", wf, st.stage):
            return
        if self._filling(st, now, backlog.wip):
            return
        rhythm: str | None = None
        if current is None:
            # a stage whose work piles up and drains again and again does so by design: weekly batches
            # (every weekend's queue ticketed, 12 in 17 weeks), a month-end rush
            _kept, rhythm = _rhythm([t for t, _w in episodes], backlog.since, "backlogs",
                                   "are taken for its rhythm while no bigger")
            # every episode of the window kept: the most items of any of them is the stage's usual
            st.backlogs = [e for e in episodes if e[0] > backlog.since - FLAP_WINDOW] + [(backlog.since, backlog.wip)]
        if rhythm is None:
            # ... while it is no bigger than its usual pile-ups: a stage that stopped for days after two
            # small ones in the weeks before (600 items waiting) was never ticketed
            usual = max((w for _t, w in st.backlogs[:-1]), default=0)
            if backlog.wip <= RHYTHM_OUTGROWN * usual:
                return
            rhythm = f"; more than its usual pile-ups (at most {usual} waiting)"
        alert = self._stage_alert(
            "backlog_growth", wf, st.stage, now,
            # in time-in-stage terms (Little's law): the wait the current queue implies, the normal
            # time in stage, and the wait at which growth pages
            observed=round(backlog.normal_seconds * backlog.growth_ratio, 3) if backlog.expected_wip > 0 else 0.0,
            expected=round(backlog.normal_seconds, 3),
            threshold=round(backlog.normal_seconds * flow.growth_factor, 3),
            score=round(min(1.0, backlog.growth_ratio / 4), 3),
            summary=(
                f"work is piling up in {st.name} ({wf.name}): {backlog.wip} items waiting, "
                f"about {backlog.expected_wip:.0f} expected for the current flow; "
                f"{backlog.arrival_rate_per_s * 86400:.0f}/day arrive, "
                f"{backlog.departure_rate_per_s * 86400:.0f}/day leave{rhythm}"
            ),
            waiting_on=st.waiting_on,
            details={"wip": backlog.wip, "expected_wip": round(backlog.expected_wip, 2)},
        )
        st.backlog_alert = alert
        self._fire(alert, out)

    @staticmethod
    def _note_fill(st: StageState, now: float) -> None:
        """Keep the stage's open items at watch ages FILL_STEP apart (a few hundred over years)."""
        first = st.first_arrival
        if first is not None and (not st.filled or now - first >= FILL_STEP * (st.filled[-1][0] - first)):
            st.filled.append((now, st.wip))

    @staticmethod
    def _filling(st: StageState, now: float, wip: int) -> bool:
        """The stage is still filling up since it was first seen, and that explains its queue: a share of
        FILL_SHARE or more of its open items entered in the first half of the time it was watched, it
        was seen letting FILL_SEEN_ITEMS items go after FILL_SEEN of that time or more (a tail that
        leaves, not items that never do, nor one odd item), and the others, the young ones, are no more
        than it held when it had been watched that half: both are the items of the same ages, so
        FILL_GROWTH times as many or noise.
        Once found, it holds for FILL_RECHECK (it counts the stage's open items).

        A heavy-tailed stage (a few items take months) keeps filling for months after a deployment: its
        slow items have not left yet, so the completions seen are the quick ones and Little's law expects
        too few items. It was ticketed as a backlog on day 1-3, and the ticket stayed open 28-62 days
        (lognormal sigma 2, 100 items a day, 3 runs). A real pile-up is of young items: ticketed once they
        alone outgrow the stage's fill. Items that never leave are no fill: BPI 2012's fraud checks, 53
        open of which 35 for over 2 months, none of the 103 done taking over 7 days, are still ticketed."""
        if now < st.fill_until:
            return True
        first = st.first_arrival
        if (first is None or wip <= 0 or not st.filled or len(st.longest) < FILL_SEEN_ITEMS
                or st.longest[0] < FILL_SEEN * (now - first)):
            return False
        mid = first + 0.5 * (now - first)
        old = sum(1 for item in st.members.values() if item.entered_at < mid)
        if old < FILL_SHARE * wip:
            return False
        i = bisect_right(st.filled, mid, key=lambda sample: sample[0]) - 1
        if i < 0:
            return False
        held = float(st.filled[i][1])  # when the young ones' ages were the whole watch
        young = wip - old
        if young > max(FILL_GROWTH * held, held + 6.0 * math.sqrt(held) + 3.0):
            return False
        st.fill_until = now + FILL_RECHECK
        return True

    def _calendar_unsure(self, wf: WorkflowState, now: float) -> bool:
        """Calendar ``auto`` has not decided and the data so far either shows dead hours or spans
        less than a day (so it could not show them yet); with a provisional calendar in force, only
        on days of the week not seen yet (they may be days off)."""
        p = wf.profile
        if p is None:
            return False
        if p.in_force is not None:
            return p.day_of_week(now) in p.unknown_days
        if p.first is None or p.last is None or p.last - p.first < 86400:
            return True
        return p.suspects_off_hours()

    def _calendar_settled(self, wf: WorkflowState) -> bool:
        """Durations are measured on the workflow's final clock (drift compares them over weeks)."""
        p = wf.profile
        if p is None:
            return True
        return p.in_force is None and not self._calendar_unsure(wf, p.last or 0.0)

    def _provisional_calendar(self, wf: WorkflowState) -> None:
        """Before the ``auto`` calendar decides (one full week), work on a best guess from the days
        seen so far, so stalls of the first week can page; the decision replaces it."""
        p = wf.profile
        assert p is not None
        guess = p.provisional()
        if guess is None:
            if p.in_force is not None:  # nights no longer look dead: back to wall time
                p.in_force, p.unknown_days = None, frozenset()
                wf.clock, wf.business = WallClock(), False
                self._remeasure(wf)
            return
        mask, p.unknown_days = guess
        if mask != p.in_force:
            p.in_force = mask
            wf.clock, wf.business = BusinessCalendar.from_hour_mask(p.timezone, mask, wf.days_off()), True
            self._remeasure(wf)

    def _public_holiday(self, wf: WorkflowState, ts: float) -> None:
        """An event at ``ts``, at or past the start of the next public holiday that may be a working day
        (``holiday_next``): counted when it falls on that day (minutes with events, as the source's rates
        count them), and once the source was as busy on it as on a working day, the day is taken back as
        one, and so is the holiday of that name in any year: an office open on Whit Monday has its items
        age that day and its silence called that day. As busy as on a working day: the minutes of the
        quietest day of the week (what comes on a day off: a morning export, a weekend shift) and
        HOLIDAY_WORKED_SHARE of the rest of a usual day of that weekday, at least HOLIDAY_WORKED_MIN more;
        with partitions, over this worker's engines. Not judged: a holiday on a day of the week the
        calendar does not work (a Saturday job is no sign of a worked Christmas), nor one in the source's
        first HOLIDAY_WARMUP (its rates do not show a usual day yet). Past the day, the next such holiday
        is looked up."""
        end, moments, closed, usual, day, minute = wf.holiday_watch
        if ts >= end:
            may_work = wf.may_work()
            spans = holiday_spans(wf.zone(), may_work)
            i = bisect_right(spans, ts, key=lambda span: span[0]) - 1
            if i < 0 or ts >= spans[i][1] or not self._judged_holiday(wf, spans[i]):
                wf.holiday_next = spans[i + 1][0] if i + 1 < len(spans) else math.inf
                wf.holiday_watch = NO_HOLIDAY
                return
            day = may_work[i]
            # minutes with events an hour, by hour of the week from Monday 0:00 local, summed by day
            rates = wf.rate._tables()[0]
            days = [sum(rates[d * 24:(d + 1) * 24]) for d in range(7)]
            wf.holiday_next, end, moments, closed, usual = spans[i][0], spans[i][1], 0, min(days), days[day.weekday()]
        if ts >= minute + 60.0:
            moments += 1
            minute = ts - ts % 60.0
        wf.holiday_watch = (end, moments, closed, usual, day, minute)
        for _eng, other in self._peer_workflows(wf.name):
            if other.holiday_watch[4] == day:
                moments += other.holiday_watch[1]
                closed += other.holiday_watch[2]
                usual += other.holiday_watch[3]
        if moments >= closed + max(HOLIDAY_WORKED_MIN, HOLIDAY_WORKED_SHARE * (usual - closed)):
            self._worked_holiday(wf, day, ts)

    @staticmethod
    def _judged_holiday(wf: WorkflowState, span: tuple[float, float]) -> bool:
        """Whether the public holiday ``span`` may be taken back: the source was heard for HOLIDAY_WARMUP
        before it, and its calendar works on that day of the week (the same day a week before or after)."""
        start, end = span
        heard = [st.first_arrival for st in wf.states.values() if st.first_arrival is not None]
        if not heard or start - min(heard) < HOLIDAY_WARMUP:
            return False
        clock = wf.clock
        return any(clock.business_seconds(start + week, end + week) > 0 for week in (-WEEK, WEEK))

    def _worked_holiday(self, wf: WorkflowState, day: date, ts: float, told: bool = False) -> None:
        """The source works on the public holiday ``day`` (seen at ``ts``): a working day from now on, and
        the holiday of its name in any year (the clock, the silence limits, the open items' deadlines).
        The other partitions' engines of this worker are told (``told``: by one)."""
        wf.worked_holidays += (day,)
        name = holiday_key(wf.cfg.calendar.public_spec, day)
        if name and name not in wf.worked_names:
            wf.worked_names += (name,)
        wf.holiday_next, wf.holiday_watch = -math.inf, NO_HOLIDAY
        if isinstance(wf.clock, BusinessCalendar):
            wf.clock = wf.clock.with_holidays(wf.days_off())
        wf.silent_cache.clear()
        for st in wf.states.values():  # their deadlines skipped the day
            for item in list(st.members.values()):
                if item.seq and not item.fired:
                    self._schedule(item, ts)
        for eng, other in self._peer_workflows(wf.name) if not told else []:
            if day not in other.worked_holidays:
                eng._worked_holiday(other, day, ts, told=True)

    def _peer_workflows(self, name: str) -> list[tuple[Engine, WorkflowState]]:
        """The workflow ``name`` in the other partitions' engines of this worker (``peers``) that have it."""
        if self.peers is None:
            return []
        return [(eng, eng.workflows[name]) for eng in self.peers.engines.values()
                if eng is not self and name in eng.workflows]

    def _quiet(self, wf: WorkflowState, now: float) -> bool:
        """No event applied for longer than the source's rate explains (silence not necessarily
        declared yet). Applied, not heard: when a quiet source resumes, item pages wait until its
        first events are past the allowed lateness, so the moves it sends in that burst count first.
        So the gap is measured up to what is applied by now (``now`` less the allowed lateness): to
        ``now``, an allowed lateness over half the silence limit made every source quiet, every due
        page waited and none fired (400 items a day, 15 minutes' lateness: 212 of 1288 stalls paged)."""
        if not self.ec.silence_enabled:
            return False
        judged = self._source_limit(wf, applied=True)
        if judged is None:
            return False
        last, limit = judged
        return now - self.lateness > last + (limit - last) * QUIET_FACTOR

    def _source_limit(self, wf: WorkflowState, applied: bool) -> tuple[float, float] | None:
        """(the source's latest event, the instant after which no event since means silence); over all
        partitions when this engine is one of several (``EngineGroup.source_limit``)."""
        if self.peers is not None:
            judged = self.peers.source_limit(wf.name, applied)
            if judged is None:
                return None
            last, limit = judged
            return last, max(limit, last + self.ec.silence_min_seconds)
        last = wf.last_ts if applied else wf.last_heard()
        if last is None:
            return None
        limit = wf.silent_after(last)
        return None if limit is None else (last, limit)

    def _overlaps_silence(self, wf: WorkflowState, since: float) -> bool:
        if self.peers is not None:  # a silence any partition called (this one's included)
            return bool(self.peers.silenced_since(wf.name, since))
        return wf.silent_since(since)

    def _check_source(self, wf: WorkflowState, now: float, out: list[Alert]) -> None:
        if not self.ec.silence_enabled:
            return
        judged = self._source_limit(wf, applied=False)
        if wf.silent_alert is not None:
            if self.peers is not None and judged is not None and judged[0] > wf.silences[-1][0]:
                self._end_silence(wf, now, out)  # another partition heard the source again (a restart between)
            return
        if judged is None:
            return
        last, limit = judged
        if now < limit or wf.cfg.mute:
            return
        if self._held_elsewhere("source_silent", wf, None):
            return  # the partition whose clock passed the limit first pages: one alert for the source
        expected = wf.rate.expected_gap(last) if self.peers is None else self.peers.typical_gap(wf.name, last)
        gap = now - last
        wf.silences.append((last, math.inf))
        alert = self._stage_alert(
            "source_silent", wf, None, now,
            observed=gap,
            expected=expected or 0.0,
            threshold=limit - last,
            score=0.999,
            summary=(
                f"no {wf.name} events for {human_duration(gap)}; at this time they usually arrive every "
                f"{human_duration(expected or 0.0)} — is the integration down?"
            ),
            details={"last_event_at": format_ts(last)},
        )
        wf.silent_alert = alert
        self._fire(alert, out)

    def _end_silence(self, wf: WorkflowState, ts: float, out: list[Alert], why: str = "") -> None:
        assert wf.silent_alert is not None
        start, _ = wf.silences[-1]
        wf.silences[-1] = (start, ts)
        if len(wf.silences) > 16:
            del wf.silences[0]
        self._resolve(wf.silent_alert.alert_id, ts, out, why or f"{wf.name} events are arriving again")
        wf.silent_alert = None

    def _checks_off(self, now: float, out: list[Alert]) -> None:
        """The tickets of checks the settings turn off, or mute, resolve: no check would resolve them
        later (a source_silent page of a workflow muted or no longer watched for silence rang on)."""
        for wf in self.workflows.values():
            if wf.silent_alert is not None and (wf.cfg.mute or not self.ec.silence_enabled):
                self._end_silence(wf, now, out, f"{wf.name} is no longer watched for silence (settings)")
            for st in wf.states.values():
                if st.shift_alert is not None and not self.drift_enabled:
                    self._resolve(st.shift_alert.alert_id, now, out, f"{st.name} is no longer watched for slowdowns (settings)")
                    st.shift_alert = None
                if st.backlog_alert is not None and (st.cfg.mute or wf.cfg.mute or not self.ec.backlog_enabled):
                    self._resolve(st.backlog_alert.alert_id, now, out, f"{st.name} is no longer watched for backlogs (settings)")
                    st.backlog_alert = None

    def _adopt_calendar(self, wf: WorkflowState) -> None:
        assert wf.profile is not None
        guessed = wf.profile.in_force is not None
        cal = wf.profile.calendar()
        wf.profile = None
        if cal is None or isinstance(cal, WallClock):
            if guessed:
                wf.clock, wf.business = WallClock(), False
                self._remeasure(wf)
            return
        holidays = wf.days_off()  # the settings name them in any mode; activity cannot tell them
        wf.clock = cal.with_holidays(holidays) if holidays and isinstance(cal, BusinessCalendar) else cal
        wf.business = True
        self._remeasure(wf)

    def _remeasure(self, wf: WorkflowState) -> None:
        """The workflow's clock changed: re-measure the latest completions with it, start drift over."""
        wf.all = SegmentStats(self.ec.warmup)
        for st in wf.states.values():
            st.all.relearn(wf.clock)
            for seg in st.segments.values():
                seg.relearn(wf.clock)
                for a, b in seg.recent:
                    wf.all.baseline.learn_one(wf.clock.business_seconds(a, b))
                seg.drift = None
            st.drift = ShiftDetector()
            st.creep.reset()

    # ------------------------------------------------------- alert lifecycle
    def _stage_alert(
        self,
        kind: str,
        wf: WorkflowState,
        stage: str | None,
        at: float,
        *,
        observed: float,
        expected: float,
        threshold: float,
        score: float,
        summary: str,
        waiting_on: str | None = None,
        details: dict[str, Any] | None = None,
        segment: str | None = None,
    ) -> Alert:
        """A firing alert about a whole stage or workflow (no item), identified within this engine's scope."""
        return Alert(
            alert_id=alert_id(kind, wf.name, stage, None, self.scope),
            kind=kind,
            status="firing",
            workflow=wf.name,
            stage=stage,
            entity_id=None,
            segment=segment,
            at=format_ts(at),
            observed_seconds=round(observed, 3),
            expected_seconds=round(expected, 3),
            threshold_seconds=round(threshold, 3),
            score=score,
            severity=SEVERITY[kind] or "ticket",
            summary=summary,
            waiting_on=waiting_on,
            details=details or {},
        )

    def _item_alert(self, kind: str, item: Item, at: float, observed: float, limit: float, status: str) -> Alert:
        st = item.state
        wf = item.wf
        typical, p95, own = self._expected(st, item.segment)
        typical = typical or limit / 3
        # "typical for enterprise" only when the figures are enterprise's own: a segment with fewer than
        # 3 completions (a customer id as segment, first seen) is quoted the stage's, without its name
        seg_words = f" for {item.segment}" if own and item.segment not in (DEFAULT_SEGMENT, ALL_SEGMENTS) else ""
        p95_words = f" (p95 {human_duration(p95, wf.business)})" if p95 else ""
        biz = wf.business
        wait = f" waiting on {st.waiting_on}" if st.waiting_on else ""
        if kind == "stalled":
            summary = (
                f"{item.entity_id} has been in {st.stage}{wait} {human_duration(observed, biz)}; "
                f"typical{seg_words} is {human_duration(typical, biz)}{p95_words}"
            )
        else:
            summary = (
                f"{item.entity_id} spent {human_duration(observed, biz)} in {st.stage}{wait}; "
                f"typical{seg_words} is {human_duration(typical, biz)}{p95_words}"
            )
        seg = st.segments.get(item.segment)
        base = seg.baseline if seg is not None and seg.baseline.threshold() is not None else st.all.baseline
        sev = st.cfg.severity or wf.cfg.severity if kind == "stalled" else SEVERITY[kind]
        alert = Alert(
            alert_id=alert_id(kind, wf.name, st.stage, item.entity_id),
            kind=kind,
            status=status,
            workflow=wf.name,
            stage=st.stage,
            entity_id=item.entity_id,
            segment=item.segment,
            at=format_ts(at),
            observed_seconds=round(observed, 3),
            expected_seconds=round(typical, 3),
            threshold_seconds=round(limit, 3),
            score=round(base.score_one(observed), 4),
            severity=sev or "page",
            summary=summary,
            waiting_on=st.waiting_on,
            details={"time_basis": "business" if biz else "wall", "entered_at": format_ts(item.entered_at)},
        )
        if status == "firing":
            self._fire(alert, [])
        return alert

    def _held_elsewhere(self, kind: str, wf: WorkflowState, stage: str | None) -> bool:
        """Another partition's engine (of this worker or replay) has this ``kind`` of alert firing for
        the stage (None: the source): each partition judges its own share of a stage, and the first to
        find a shift or a backlog tickets it for all (with 4 partitions a slowdown was 4 tickets)."""
        if self.peers is None:
            return False
        holder = self.peers.holder(kind, wf.name, stage)
        return holder is not None and holder is not self

    def _fire(self, alert: Alert, out: list[Alert]) -> None:
        self.alert_changes += 1
        self.active[alert.alert_id] = alert
        if alert.entity_id is None and self.peers is not None:
            self.peers.holds(alert, self, True)
        key = (alert.workflow, alert.kind)
        an = self.counters.anomalies
        an[key] = an.get(key, 0) + 1
        out.append(alert)

    def _resolve(self, aid: str, ts: float, out: list[Alert], why: str) -> None:
        alert = self.active.pop(aid, None)
        if alert is None:
            return
        if alert.entity_id is None and self.peers is not None:
            self.peers.holds(alert, self, False)
        self.alert_changes += 1
        resolved = Alert(**{f: getattr(alert, f) for f in alert.__struct_fields__})
        resolved.status = "resolved"
        resolved.at = format_ts(ts)
        resolved.details = {**alert.details, "resolution": why}
        out.append(resolved)

    # ---------------------------------------------------------------- views
    def stage_views(self, now: float) -> Iterator[StageView]:
        oldest: dict[int, float] = {}
        for item in self.items.values():  # every open item (a stalled one may have no next judgement)
            age = now - item.entered_at
            if age > oldest.get(id(item.state), 0.0):
                oldest[id(item.state)] = age
        # the items whose limit falls within the next hour (not the re-checks of warming or held ones)
        due: dict[int, int] = {}
        horizon = now + 3600
        limits: dict[tuple[int, str], float | None] = {}
        for when, seq, item in self.heap.entries():
            if when > horizon or item.seq != seq or item.fired:
                continue  # judged next after the hour: its limit too (or it goes idle first)
            st = item.state
            at = (id(st), item.segment)
            if at not in limits:
                limits[at] = self._limit(st, item.segment)[0]
            limit = limits[at]
            if limit is not None and now < item.wf.clock.add_business(item.entered_at, limit) <= horizon:
                due[id(st)] = due.get(id(st), 0) + 1
        for wf in self.workflows.values():
            total = sum((st.all.baseline.typical() or 0.0) * max(st.wip, 0) for st in wf.states.values()) or 1.0
            for st in wf.states.values():
                share = (st.all.baseline.typical() or 0.0) * max(st.wip, 0) / total
                if st.shift_alert is not None:
                    share = max(share, 0.5 + 0.5 * min(1.0, st.shift_alert.details.get("ratio", 1.0) / 4))
                yield StageView(
                    workflow=wf.name,
                    stage=st.name,
                    wip=0 if st.terminal else max(st.wip, 0),
                    stalled=st.stalled,
                    oldest_age_seconds=oldest.get(id(st), 0.0),
                    due_next_hour=due.get(id(st), 0),
                    arrivals_total=st.flow.arrivals,
                    departures_total=st.flow.departures,
                    bottleneck_score=round(share, 4),
                    terminal=st.terminal,
                )

    def baseline_views(self) -> Iterator[BaselineView]:
        for wf in self.workflows.values():
            basis = "business" if wf.business else "wall"
            for st in wf.states.values():
                if st.terminal:
                    continue
                for segment, seg in [(ALL_SEGMENTS, st.all), *st.segments.items()]:
                    b = seg.baseline
                    limit, source = self._limit(st, segment) if segment != ALL_SEGMENTS else (
                        b.threshold(self._sensitivity(st)),
                        "stage" if b.threshold() is not None else "warming",
                    )
                    yield BaselineView(
                        workflow=wf.name,
                        stage=st.name,
                        segment=segment,
                        n=b.n,
                        typical_seconds=b.typical(),
                        p95_seconds=b.quantile(0.95),
                        threshold_seconds=limit,
                        source=source,
                        time_basis=basis,
                        time_zone=wf.zone(),
                    )

    def source_views(self, now: float) -> Iterator[SourceView]:
        for wf in self.workflows.values():
            if wf.last_ts is None:
                continue
            yield SourceView(
                workflow=wf.name,
                last_event_timestamp=wf.last_ts,
                events_total=wf.events,
                silent=wf.silent_alert is not None,
                expected_gap_seconds=wf.rate.expected_gap(now),
            )

    def histogram_views(self) -> Iterator[HistogramView]:
        for wf in self.workflows.values():
            for st in wf.states.values():
                for segment, seg in st.segments.items():
                    if seg.count:
                        yield HistogramView(wf.name, st.name, segment, list(seg.buckets), seg.sum, seg.count)

    def item_view(self, entity_id: str, now: float) -> ItemView | None:
        item = self.items.get(entity_id)
        if item is None:
            return None
        st = item.state
        wf = item.wf
        age = wf.clock.business_seconds(item.entered_at, now)
        typical, _p95, _own = self._expected(st, item.segment)
        limit, basis = self._limit(st, item.segment)
        deadline = wf.clock.add_business(item.entered_at, limit) if limit is not None else None
        if deadline is not None and math.isinf(deadline):
            deadline = None  # a limit of a century or more: no deadline in practice
        biz = wf.business
        if limit is None:
            why = f"{st.name} has too few completed items to judge yet (baseline warming up)"
        elif item.fired:
            why = (
                f"stalled: {human_duration(age, biz)} in {st.name}, past the limit of "
                f"{human_duration(limit, biz)} ({basis} baseline)"
            )
        elif item.suspect:
            why = f"not paged: {wf.name} events may have been lost while the source was silent"
        else:
            why = (
                f"on track: {human_duration(age, biz)} of a {human_duration(limit, biz)} limit "
                f"({basis} baseline, typical {human_duration(typical or 0, biz)})"
            )
        return ItemView(
            entity_id=entity_id,
            workflow=wf.name,
            stage=st.name,
            segment=item.segment,
            entered_at=item.entered_at,
            age_seconds=age,
            expected_seconds=typical,
            threshold_seconds=limit,
            deadline=deadline,
            waiting_on=st.waiting_on,
            stalled=item.fired,
            why=why,
            time_basis="business" if biz else "wall",
            time_zone=wf.zone(),
        )

    def feedback(self, workflow: str, stage: str, segment: str, verdict: bool) -> float:
        """An ops engineer judged an item alert: false raises that stage's limit one step (never past
        ``feedback_max_factor``), true lowers it one step back towards the learned limit. Returns the factor."""
        key = (workflow, stage, segment)
        f = self.feedback_factor.get(key, 1.0)
        step = self.ec.feedback_step
        f = max(1.0, f / step) if verdict else min(self.ec.feedback_max_factor, f * step)
        if f == 1.0:
            self.feedback_factor.pop(key, None)
        else:
            self.feedback_factor[key] = f
        return f

    def active_alerts(self) -> list[Alert]:
        return list(self.active.values())

    @property
    def open_items(self) -> int:
        return len(self.items)

    # ------------------------------------------------------------ snapshot
    def snapshot(self) -> bytes:
        """Everything learned and open, as bytes (the settings are not part of it)."""
        return pickle.dumps(self._state_dict(with_items=True), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, data: bytes, settings: Settings | None = None) -> Engine:
        engine = cls(settings)
        engine._load_state(pickle.loads(data))  # noqa: S301 - our own snapshot, never user input
        ended, _resegmented, changed = engine._rebind()
        if changed:
            engine.restored = engine._settings_applied(ended)
        return engine

    def _state_dict(self, with_items: bool) -> dict[str, Any]:
        skip = set() if with_items else {"items", "heap", "closed", "active"}
        state = {k: getattr(self, k) for k in STATE_FIELDS if k not in skip}
        if not with_items:
            # stage-level alerts travel with the learned state, item alerts with their item
            state["active"] = {k: a for k, a in self.active.items() if a.entity_id is None}
        return state

    def _load_state(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            if k in STATE_FIELDS:  # a field a later version dropped is left out
                if k == "heap" and isinstance(v, list):  # a snapshot from when it was a heapq list
                    v = DeadlineHeap(v)
                setattr(self, k, v)

    def _rebind(self) -> tuple[list[StageState], set[str], bool]:
        """Engine-wide links a snapshot does not carry, and the settings (``_take_settings``'s result)."""
        for wf in self.workflows.values():
            wf.engine = self
            if not hasattr(wf, "heard_ts"):  # a snapshot from before heard_ts
                wf.heard_ts = max((ts for ts, _, ev in [*self.queue, *self.buffer] if ev.workflow == wf.name),
                                  default=-math.inf)
            if not hasattr(wf, "ended"):  # a snapshot from before the learned ends were watched
                wf.ended = OrderedDict()
            if not hasattr(wf, "zones"):  # from before zones were found from offsets: reconfigure decides
                wf.zones = None
            for st in wf.states.values():
                st.members = {}
                if not hasattr(st, "moved_on"):  # a snapshot from before moved_on: its completions
                    st.moved_on = int(st.all.baseline.n)
                    st.late_returns = 0
        for item in self.items.values():
            item.state.members[item.entity_id] = item
        return self._take_settings(self.settings)

    def snapshot_learned(self) -> bytes:
        """What was learned (baselines, detectors, stage alerts, counters), without the open items."""
        return pickle.dumps(self._state_dict(with_items=False), protocol=pickle.HIGHEST_PROTOCOL)

    def export_item(self, entity_id: str) -> bytes | None:
        """One entity's state for a changelog: its open item, or when it closed and its latest event ids
        while it is remembered among the recently closed (a duplicate of its events is no reopening, a
        restart later too); None when neither (a tombstone)."""
        item = self.items.get(entity_id)
        if item is None:
            closed = self.closed.get(entity_id)
            return None if closed is None else pickle.dumps(closed, protocol=pickle.HIGHEST_PROTOCOL)
        st = item.state
        alerts = [
            self.active[a]
            for a in (alert_id("stalled", item.wf.name, st.stage, entity_id), item.slow_alert)
            if a is not None and a in self.active
        ]
        return pickle.dumps(
            (
                item.wf.name, st.stage, st.waiting_on, item.segment, item.entered_at, item.last_ts,
                item.fired, item.fired_limit, item.ids, item.suspect, item.held,
                item.slow_alert, alerts, item.due if item.seq else None,
            ),
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    @classmethod
    def restore_parts(
        cls,
        learned: bytes | None,
        items: Iterable[tuple[str, bytes]],
        settings: Settings | None,
        now: float,
        scope: str | None = None,
    ) -> Engine:
        """Rebuild an engine from a learned-state snapshot and item records (changelog recovery). Settings
        changed since the snapshot take effect as a reload's (``restored``: its alerts; ``dirty``: the
        items they changed), so an edit made while the worker was down is no different."""
        engine = cls(settings, scope)
        if learned:
            engine._load_state(pickle.loads(learned))  # noqa: S301 - our own snapshot
            engine.items, engine.heap, engine.closed = {}, DeadlineHeap(), OrderedDict()
            ended, resegmented, changed = engine._rebind()
        else:
            ended, resegmented, changed = [], set(), False
        relabelled: set[str] = set()
        for wf in engine.workflows.values():
            for st in wf.states.values():
                st.wip = st.stalled = st.held = 0
        closed: list[tuple[float, str, tuple[str, ...]]] = []
        for entity_id, raw in items:
            record = pickle.loads(raw)  # noqa: S301 - our own changelog
            if len(record) == 2:  # a recently closed entity: (closed at, its latest event ids)
                closed.append((record[0], entity_id, record[1]))
                continue
            (wfname, stage, waiting_on, segment, entered_at, last_ts, fired, fired_limit, ids, suspect, held,
             slow_alert, alerts, due) = record
            if wfname in resegmented:  # of the old segment_by: rewritten at the next checkpoint
                segment = DEFAULT_SEGMENT
                relabelled.add(entity_id)
            wf = engine._workflow(wfname)
            st = engine._state(wf, stage, waiting_on)
            item = Item(entity_id, wf, st, segment, entered_at)
            item.last_ts, item.fired, item.fired_limit, item.ids = last_ts, fired, fired_limit, ids
            item.suspect, item.held, item.slow_alert = suspect, held, slow_alert
            engine.items[entity_id] = item
            st.members[entity_id] = item
            for a in alerts:
                engine.active[a.alert_id] = a
            st.wip += 1
            st.stalled += fired
            st.held += held
            if due is not None:
                engine._push(item, due)  # the same judgement time as before the restart
            elif not fired:
                engine._schedule(item, now)
        closed.sort()  # the order they closed in: the longest closed are forgotten first, as before
        for at, entity_id, ids in closed:
            engine.closed[entity_id] = (at, ids)
        if relabelled or changed:
            engine.dirty = relabelled  # and what the new settings change, for the next checkpoint
        if changed:
            engine.restored = engine._settings_applied(ended)
        return engine

    def _read_settings(self, settings: Settings) -> None:
        self.settings = settings
        ec = self.ec = settings.engine
        # what the per-event path reads of them, as plain fields (a pydantic model's attribute is a dict
        # lookup behind its __getattr__ hook); derived from the settings, never part of the state
        self.lateness = ec.allowed_lateness_seconds
        self.idle_after = ec.item_idle_days * 86400.0 if ec.item_idle_days > 0 else math.inf
        self.sensitivity = ec.sensitivity
        self.drift_enabled = ec.drift_enabled
        self.max_open_items = ec.max_open_items

    def reconfigure(self, settings: Settings) -> list[Alert]:
        """Apply new settings keeping everything learned; returns the alerts the change fires or resolves.
        What a user changes takes effect now, not at each item's next deadline: open items are judged
        again against their new limits (a lowered limit pages now; items that crossed the limit of a
        stage while it was muted page once it is not), the pages of a stage muted now resolve, the
        items of a stage made terminal are done, a stage no longer configured terminal is not (unless
        it was learned to be one), configured working hours taken away go back to wall time (learned
        again where the calendar is ``auto``), feedback factors stay within the new bound, and the
        events a shorter allowed lateness no longer holds back are applied."""
        return self._settings_applied(self._take_settings(settings)[0])

    def _settings_applied(self, ended: list[StageState]) -> list[Alert]:
        """What new settings do at once, after ``_take_settings`` (a reload; a restore whose settings
        changed): see ``reconfigure``. ``ended``: the stage-states they made terminal."""
        out: list[Alert] = []
        if self.queue or self.buffer:
            assert self.max_ts is not None
            out.extend(self._release(self.max_ts - self.lateness if self.lateness > 0 else math.inf))
        now = self.clock
        if now is None:  # never ticked: no item was judged yet
            return out
        for st in ended:
            self._end_items(st, now, out, f"{st.name} is where {st.wf.name} items end (settings)")
        self._checks_off(now, out)
        for item in list(self.items.values()):
            st = item.state
            if item.fired and (st.cfg.mute or item.wf.cfg.mute):
                self._let_go(item, now, out, f"{st.name} of {item.wf.name} is muted in the settings")
                item.fired = False
            if item.fired:
                self._park(item)  # still looked at when it goes idle (item_idle_days may be new)
            else:
                self._schedule(item, now)
        return out

    def _take_settings(self, settings: Settings) -> tuple[list[StageState], set[str], bool]:
        """The settings in force from now on (a reload, a restore); returns the stage-states they make
        terminal, the workflows whose ``segment_by`` they changed, and whether anything changed."""
        old_ec = self.ec
        self._read_settings(settings)
        changed = self.ec != old_ec
        ended: list[StageState] = []
        resegmented: set[str] = set()
        warmup = self.ec.warmup
        for wf in self.workflows.values():
            # what is learned already pages after the new warm-up (a no-op where it is the same)
            for stats in (wf.all, *(seg for st in wf.states.values() for seg in (st.all, *st.segments.values()))):
                stats.baseline.warmup = warmup
            old_cfg = wf.cfg
            old_calendar, old_segment_by = old_cfg.calendar, old_cfg.segment_by
            wf.cfg = settings.workflow(wf.name)
            changed = changed or wf.cfg != old_cfg
            if wf.cfg.segment_by != old_segment_by:
                resegmented.add(wf.name)
            if wf.cfg.calendar.zone_given:
                wf.zones = None
            elif wf.zones is None:  # the settings no longer name the zone: the timestamps may
                wf.zones = ZoneFinder()
            if wf.cfg.calendar != old_calendar:
                wf.holiday_next, wf.spans_cache = -math.inf, ()  # the holidays may be others
                # another country's: none worked yet (settings from before public holidays had none)
                if wf.cfg.calendar.public_spec != old_calendar.public_spec:
                    wf.worked_holidays, wf.worked_names, wf.holiday_watch = (), (), NO_HOLIDAY
                hours_gone = old_calendar.mode == "business" and wf.cfg.calendar.mode == "auto" and wf.business
                if hours_gone:
                    wf.clock, wf.business = WallClock(), False
                changed = wf.set_calendar(wf.cfg.calendar) or hours_gone
                if not changed and isinstance(wf.clock, BusinessCalendar) and wf.clock.holidays != wf.days_off():
                    wf.clock = wf.clock.with_holidays(wf.days_off())  # a learned week, with the new holidays
                    changed = True
                if changed:
                    self._remeasure(wf)
            wf.follow_zone(wf.zone())
            for st in wf.states.values():
                learned_end = st.terminal and not st.configured_terminal
                old_stage_cfg, st.cfg = st.cfg, settings.stage(wf.name, st.stage)
                changed = changed or st.cfg != old_stage_cfg
                st.configured_terminal = bool(st.cfg.terminal) or st.stage in wf.cfg.terminal_stages
                if st.configured_terminal and not st.terminal:
                    ended.append(st)
                st.terminal = learned_end or st.configured_terminal
        if resegmented:
            self._resegment(resegmented)
        most = self.ec.feedback_max_factor
        self.feedback_factor = {k: min(f, most) for k, f in self.feedback_factor.items()}
        return ended, resegmented, changed

    def _resegment(self, workflows: set[str]) -> None:
        """``segment_by`` changed for these workflows: what their stages learned per segment is of the
        old key, no segment of the new one, and would hold the slots (``max_segments_per_stage``) the new
        segments need. It is dropped, with the creep watch's completions by segment and the feedback on
        old segments' limits; the stage-wide baselines stay. Open items (no event of theirs is kept to
        read the new key from) are judged stage-wide until an event names their new segment."""
        for name in workflows:
            for st in self.workflows[name].states.values():
                st.segments.clear()
                st.creep.reset()
        self.feedback_factor = {k: f for k, f in self.feedback_factor.items() if k[0] not in workflows}
        for item in self.items.values():
            if item.wf.name in workflows:
                item.segment = DEFAULT_SEGMENT
                if self.dirty is not None:
                    self.dirty.add(item.entity_id)


def check_step(step: float) -> float:
    """An event-time tick step: a positive, finite number of seconds."""
    if not (step > 0 and math.isfinite(step)):
        raise ValueError(f"the tick step must be a positive number of seconds, got {step!r}")
    return step


class EventClock:
    """Ticks an engine in fixed steps of event time, as the live timer would tick it on the wall clock.

    Used by ``backtest`` and by the worker's ``--clock event`` mode, so both tick identically.
    """

    __slots__ = ("step", "next_tick", "last_ts")

    def __init__(self, step: float) -> None:
        self.step = check_step(step)
        self.next_tick: float | None = None
        self.last_ts: float | None = None

    def advance(self, engine: Engine, ts: float) -> list[Alert]:
        """Tick every step up to ``ts`` (call before processing an event with timestamp ``ts``)."""
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts
        if self.next_tick is None:
            self.next_tick = ts + self.step
            return []
        if ts < self.next_tick:
            return []
        out: list[Alert] = []
        step = self.step
        t = self.next_tick
        due = engine.next_due()
        while ts >= t:
            if t < due:
                # nothing due at this step, nor at the next ones before `due` (or `ts`): those ticks would
                # only move the engine's clock, so skip to the last of them (a quiet month of a sparse log
                # is one step here, not 43,200)
                k = math.floor((min(ts, due) - t) / step)
                if k > 0:
                    last = t + k * step
                    if last >= due or last > ts:
                        k -= 1
                    t += k * step
                if engine.clock is None or t > engine.clock:
                    engine.clock = t
            else:
                out.extend(engine.tick(t))
                due = engine.next_due()
            t += step
        self.next_tick = t
        return out

    def finish(self, engine: Engine) -> list[Alert]:
        """End of a replay: release buffered events and tick at the last event time."""
        out = engine.flush()
        if self.last_ts is not None:
            out.extend(engine.tick(self.last_ts))
        return out
