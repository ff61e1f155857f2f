"""Workflow simulator with ground truth, for backtests and quality runs.

Each scenario is a function registered by name in :data:`SCENARIOS`. It returns a :class:`Scenario`
(the workflow models plus what to inject); :func:`simulate` turns it into delivered events and a
truth document that says exactly what was injected, so ``stagewatch evaluate`` can score alerts.

Model: items arrive as a Poisson process (given the count, arrival instants are uniform over the
period). An item enters the first stage at arrival; the time it spends in each stage is lognormal
around the median of (workflow, stage, segment). About 3 % of item-stages *stall*: they last
``median x factor`` (factor uniform 4..20), and some of them never leave (abandoned). An item that
has not left a stage before the end of the stream is still open at the end.

Time basis: when a workflow has a calendar (``business_hours``), the simulation runs on a business
clock (working seconds) that is mapped to wall time, so events only happen in working time and every
duration in the truth is in business seconds.
"""

from __future__ import annotations

import bisect
import csv
import json
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo

from monitor.events import Event, format_ts, parse_timestamp

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
DEFAULT_START = "2026-01-05T00:00:00Z"  # a Monday
DEFAULT_PERIOD_DAYS = 75.0
STALL_PROBABILITY = 0.03
STALL_FACTOR = (4.0, 20.0)
ABANDON_SHARE = 0.15  # of stalls: the item never leaves the stage
REGIONS = (("emea", 0.45), ("amer", 0.35), ("apac", 0.20))

Format = Literal["jsonl", "csv", "xes"]


# --------------------------------------------------------------------------- business calendar


class WorkCalendar:
    """Working-time arithmetic for one calendar (time zone, workdays, daily hours; no holidays).

    Precomputes the working intervals between ``origin`` and ``horizon`` (wall epoch seconds) and maps
    wall instants to a cumulative business clock and back, with bisection. Instants beyond the horizon
    map to ``inf``. Minimal on purpose: the simulator and the evaluator's baselines need exactly this.
    Deliberately independent of ``detectors.calendar.BusinessCalendar`` (the code under test): the
    ground truth must not share a bug with the engine it judges; a unit test checks the two agree.
    """

    def __init__(
        self,
        timezone: str = "UTC",
        workdays: Iterable[int] = (0, 1, 2, 3, 4),
        start_hour: float = 9.0,
        end_hour: float = 17.0,
        origin: float = 0.0,
        horizon: float = 0.0,
    ) -> None:
        self.timezone = timezone
        self.workdays = tuple(sorted(set(workdays)))
        self.start_hour = start_hour
        self.end_hour = end_hour
        tz = ZoneInfo(timezone)
        day = datetime.fromtimestamp(origin, tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(horizon, tz).date() + timedelta(days=1)
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._cum: list[float] = []  # business seconds before each interval
        total = 0.0
        while day <= last:  # bounded: one step per calendar day
            if day.weekday() in self.workdays:
                a = _local(day, start_hour, tz)
                b = _local(day, end_hour, tz)
                self._starts.append(a)
                self._ends.append(b)
                self._cum.append(total)
                total += b - a
            day += timedelta(days=1)
        self._total = total

    def to_dict(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "workdays": list(self.workdays),
            "start_hour": self.start_hour,
            "end_hour": self.end_hour,
        }

    def clock(self, wall: float) -> float:
        """Business seconds elapsed from the table's origin to ``wall``."""
        i = bisect.bisect_right(self._starts, wall) - 1
        if i < 0:
            return 0.0
        if i >= len(self._starts) - 1 and wall > self._ends[-1]:
            return math.inf
        return self._cum[i] + min(wall, self._ends[i]) - self._starts[i]

    def wall(self, clock: float) -> float:
        """The earliest wall instant at which the business clock reads ``clock``."""
        if clock > self._total or math.isinf(clock):
            return math.inf
        i = bisect.bisect_left(self._cum, clock) - 1
        if i < 0:
            return self._starts[0]
        return self._starts[i] + (clock - self._cum[i])

    def business_seconds(self, a: float, b: float) -> float:
        """Working seconds between wall instants ``a`` <= ``b``."""
        return self.clock(b) - self.clock(a)

    def add_business(self, wall: float, business: float) -> float:
        """The earliest wall instant ``business`` working seconds after ``wall``."""
        if business <= 0:
            return wall
        return self.wall(self.clock(wall) + business)


def _local(day: date, hour: float, tz: ZoneInfo) -> float:
    h = int(hour)
    m = int(round((hour - h) * 60))
    if h >= 24:
        return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() + 86400.0
    return datetime(day.year, day.month, day.day, h, m, tzinfo=tz).timestamp()


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class StageModel:
    name: str
    medians: dict[str, float]  # segment -> median seconds (business seconds when calendar)
    sigma: float
    lost_probability: float = 0.0
    waiting_on: str | None = None
    shape: str = "lognormal"  # the family of normal durations: see SHAPES


def _median_of(cdf: Callable[[float], float]) -> float:
    """The x where an increasing ``cdf`` reaches 0.5 (bisection in log space)."""
    lo, hi = 1e-6, 1e6
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if cdf(mid) < 0.5 else (lo, mid)
    return math.sqrt(lo * hi)


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    return 0.5 * (1.0 + math.erf(math.log(x / median) / (sigma * math.sqrt(2.0))))


# two kinds of normal: 70 % quick, 30 % about six times slower (each lognormal, sigma 0.35)
_BIMODAL = ((0.7, 1.0), (0.3, 6.0))
_BIMODAL_SCALE = 1.0 / _median_of(lambda x: sum(w * _lognormal_cdf(x, m, 0.35) for w, m in _BIMODAL))


def _gamma_median(k: float) -> float:
    """Median of gamma(k, 1) (Wilson-Hilferty; within 0.2 % for k >= 1)."""
    return k * (1.0 - 1.0 / (9.0 * k)) ** 3


# normal-duration families, each scaled to median 1 (the truth's medians stay exact): real stage
# durations are not all lognormal; the `shapes` scenario mixes them. "lognormal" uses the stage's sigma.
SHAPES: dict[str, Callable[[random.Random, float], float]] = {
    "lognormal": lambda rng, sigma: math.exp(sigma * rng.gauss(0.0, 1.0)),
    "gamma2": lambda rng, _s: rng.gammavariate(2.0, 1.0) / _gamma_median(2.0),
    "gamma3": lambda rng, _s: rng.gammavariate(3.0, 1.0) / _gamma_median(3.0),
    "exponential": lambda rng, _s: rng.expovariate(1.0) / math.log(2.0),
    "weibull1.2": lambda rng, _s: rng.weibullvariate(1.0, 1.2) / math.log(2.0) ** (1 / 1.2),
    "weibull1.5": lambda rng, _s: rng.weibullvariate(1.0, 1.5) / math.log(2.0) ** (1 / 1.5),
    "loglogistic2.5": lambda rng, _s: _loglogistic(rng, 2.5),
    "loglogistic3.5": lambda rng, _s: _loglogistic(rng, 3.5),
    "bimodal": lambda rng, _s: _BIMODAL_SCALE * (1.0 if rng.random() < _BIMODAL[0][0] else _BIMODAL[1][1])
    * math.exp(0.35 * rng.gauss(0.0, 1.0)),
}


def _loglogistic(rng: random.Random, beta: float) -> float:
    u = min(max(rng.random(), 1e-12), 1.0 - 1e-12)
    return (u / (1.0 - u)) ** (1.0 / beta)


@dataclass(frozen=True)
class WorkflowModel:
    name: str
    id_prefix: str
    flow: tuple[StageModel, ...]  # non-terminal stages in order
    final: str  # terminal stage reached by a completed item
    lost: str | None  # terminal stage for abandoned deals (None: items are never lost)
    segments: tuple[tuple[str, float], ...]  # (segment, weight)
    share: float  # share of all items
    owners: str
    calendar: dict[str, Any] | None = None  # {timezone, workdays, start_hour, end_hour}

    @property
    def stages(self) -> list[str]:
        return [s.name for s in self.flow] + [self.final] + ([self.lost] if self.lost else [])

    @property
    def terminal(self) -> list[str]:
        return [self.final] + ([self.lost] if self.lost else [])


@dataclass(frozen=True)
class Shift:
    workflow: str
    stage: str
    at_fraction: float
    factor: float


@dataclass(frozen=True)
class Silence:
    workflow: str
    at_fraction: float
    hours: float


@dataclass(frozen=True)
class Variation:
    """What a quality run may change in any scenario, to see how the engine fares beyond the defaults
    the scenarios were written with: every stage's family of normal durations (see :data:`SHAPES`;
    ``lognormal`` keeps each stage's own sigma), the share of item-stages that stall, and the range of
    multiples of the median a stall lasts."""

    family: str | None = None
    stall_share: float = STALL_PROBABILITY
    stall_factor: tuple[float, float] = STALL_FACTOR

    def __post_init__(self) -> None:
        if self.family is not None and self.family not in SHAPES:
            raise ValueError(f"unknown duration family {self.family!r}; known: {', '.join(SHAPES)}")
        if not 0.0 <= self.stall_share < 1.0:
            raise ValueError(f"the stall share is a fraction from 0 to below 1 (got {self.stall_share})")
        lo, hi = self.stall_factor
        if not 1.0 < lo <= hi:
            raise ValueError(f"a stall lasts a range of multiples of the median above 1, e.g. 4,20 (got {lo},{hi})")

    def apply(self, sc: Scenario) -> Scenario:
        if self.family is None:
            return sc
        family = self.family
        return replace(sc, workflows=tuple(
            replace(wf, flow=tuple(replace(sm, shape=family) for sm in wf.flow)) for wf in sc.workflows))

    def as_dict(self) -> dict[str, Any] | None:
        """What differs from the defaults (for truth.json), None when nothing does."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}
        return out or None


@dataclass(frozen=True)
class Scenario:
    name: str
    workflows: tuple[WorkflowModel, ...]
    shifts: tuple[Shift, ...] = ()
    silences: tuple[Silence, ...] = ()
    late_share: float = 0.0  # share of events delivered late
    max_delay_seconds: float = 0.0
    duplicate_share: float = 0.0


def _stage(name: str, first: float, second: float, sigma: float, lost: float = 0.0, waiting_on=None):
    return name, first, second, sigma, lost, waiting_on


_SALES = (
    # stage, enterprise median, smb median, sigma, P(lost after this stage)
    _stage("lead", 1.0 * DAY, 0.5 * DAY, 0.5, 0.04),
    _stage("qualification", 2.0 * DAY, 1.0 * DAY, 0.6, 0.08),
    _stage("contract", 3.5 * DAY, 1.0 * DAY, 0.5, 0.06),
    _stage("fulfillment", 4.0 * DAY, 2.0 * DAY, 0.4, 0.02),
    _stage("payment", 6.0 * DAY, 3.0 * DAY, 0.7, 0.02),
)
_SUPPORT = (
    # stage, premium median, standard median, sigma
    _stage("new", 10 * MINUTE, 20 * MINUTE, 0.6),
    _stage("triage", 30 * MINUTE, 1 * HOUR, 0.5),
    _stage("in_progress", 2 * HOUR, 4 * HOUR, 0.6),
    _stage("waiting_customer", 6 * HOUR, 8 * HOUR, 0.8, 0.0, "customer"),
)


def _build(rows, segments: tuple[str, str], ratio: float | None, scale: float) -> tuple[StageModel, ...]:
    out = []
    for name, first, second, sigma, lost, waiting in rows:
        if ratio is not None:  # first segment is `ratio` times slower than the second
            first = second * ratio
        medians = {segments[0]: first * scale, segments[1]: second * scale}
        out.append(StageModel(name, medians, sigma, lost, waiting))
    return tuple(out)


def sales_model(ratio: float | None = None, scale: float = 1.0, calendar=None) -> WorkflowModel:
    return WorkflowModel(
        name="sales",
        id_prefix="deal",
        flow=_build(_SALES, ("enterprise", "smb"), ratio, scale),
        final="follow_up",
        lost="lost",
        segments=(("enterprise", 0.3), ("smb", 0.7)),
        share=0.4,
        owners="rep",
        calendar=calendar,
    )


def support_model(ratio: float | None = None, scale: float = 1.0, calendar=None) -> WorkflowModel:
    return WorkflowModel(
        name="support",
        id_prefix="ticket",
        flow=_build(_SUPPORT, ("premium", "standard"), ratio, scale),
        final="resolved",
        lost=None,
        segments=(("premium", 0.25), ("standard", 0.75)),
        share=0.6,
        owners="agent",
        calendar=calendar,
    )


# --------------------------------------------------------------------------- scenarios

SCENARIOS: dict[str, Callable[[], Scenario]] = {}


def scenario(fn: Callable[[], Scenario]) -> Callable[[], Scenario]:
    SCENARIOS[fn.__name__] = fn
    return fn


@scenario
def steady() -> Scenario:
    return Scenario("steady", (sales_model(), support_model()))


@scenario
def segmented() -> Scenario:
    # enterprise 5x smb (premium support 1/3 of standard): a per-stage baseline cannot fit both
    sales = replace(sales_model(ratio=5.0), segments=(("enterprise", 0.5), ("smb", 0.5)))
    return Scenario("segmented", (sales, support_model(ratio=1 / 3)))


BERLIN_OFFICE = {"timezone": "Europe/Berlin", "workdays": [0, 1, 2, 3, 4], "start_hour": 9.0, "end_hour": 17.0}


@scenario
def business_hours() -> Scenario:
    # durations are working seconds; a sales "day" is one 8-hour working day
    cal = BERLIN_OFFICE
    return Scenario("business_hours", (sales_model(scale=8 / 24, calendar=cal), support_model(calendar=cal)))


@scenario
def slowdown() -> Scenario:
    return Scenario("slowdown", (sales_model(), support_model()), shifts=(Shift("sales", "fulfillment", 0.4, 2.5),))


@scenario
def silence() -> Scenario:
    return Scenario("silence", (sales_model(), support_model()), silences=(Silence("support", 0.5, 6.0),))


@scenario
def out_of_order() -> Scenario:
    return Scenario(
        "out_of_order",
        (sales_model(), support_model()),
        late_share=0.3,
        max_delay_seconds=300.0,
        duplicate_share=0.02,
    )


_SHAPES_OF = {  # stage -> family in the `shapes` scenario
    "lead": "gamma2", "qualification": "weibull1.5", "contract": "bimodal", "fulfillment": "loglogistic3.5",
    "new": "weibull1.2", "triage": "gamma3", "in_progress": "loglogistic2.5", "waiting_customer": "bimodal",
}


@scenario
def shapes() -> Scenario:
    # stage durations from other families than the lognormal (light and heavy tails, two modes)
    def reshape(wf: WorkflowModel) -> WorkflowModel:
        flow = tuple(replace(sm, shape=_SHAPES_OF.get(sm.name, sm.shape)) for sm in wf.flow)
        return replace(wf, flow=flow)

    return Scenario("shapes", (reshape(sales_model()), reshape(support_model())))


# --------------------------------------------------------------------------- simulation


@dataclass
class SimEvent:
    ts: float  # wall epoch seconds (event time)
    workflow: str
    entity_id: str
    stage: str
    segment: str
    region: str
    owner: str
    waiting_on: str | None
    event_id: str = ""

    def to_wire(self) -> dict[str, Any]:
        return self.to_event().to_wire()

    def to_event(self) -> Event:
        attributes = {"segment": self.segment, "region": self.region, "owner": self.owner}
        return Event(self.event_id, self.workflow, self.entity_id, self.stage, self.ts, attributes, self.waiting_on)


@dataclass
class Simulation:
    """Delivered events (in delivery order) and the truth document."""

    events: list[SimEvent]
    truth: dict[str, Any]
    stats: dict[str, int] = field(default_factory=dict)


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    x = rng.random() * sum(w for _, w in weighted)
    for name, w in weighted:
        x -= w
        if x < 0:
            return name
    return weighted[-1][0]


def simulate(
    name: str,
    items: int = 6000,
    seed: int = 1,
    speed: float = 1.0,
    start: str | float = DEFAULT_START,
    period_days: float = DEFAULT_PERIOD_DAYS,
    variation: Variation | None = None,
) -> Simulation:
    """Simulate scenario ``name``, changed by ``variation``. Deterministic for its arguments."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if items < 1:
        raise ValueError("items must be at least 1")
    if not speed > 0:
        raise ValueError("speed must be > 0")
    vary = variation or Variation()
    sc = vary.apply(SCENARIOS[name]())
    if speed != 1.0 and any(w.calendar for w in sc.workflows):
        raise ValueError(f"scenario {name!r} runs on a business calendar; --speed must be 1 for it")
    t0 = parse_timestamp(start) if isinstance(start, str) else float(start)
    t0 = float(round(t0))
    period = period_days * DAY / speed
    t_end = t0 + period

    events: list[SimEvent] = []
    anomalies: list[dict[str, Any]] = []
    medians: list[dict[str, Any]] = []
    shifts_out: list[dict[str, Any]] = []
    wf_out: dict[str, Any] = {}
    remaining = items
    for k, wf in enumerate(sc.workflows):
        n_wf = remaining if k == len(sc.workflows) - 1 else int(round(items * wf.share))
        n_wf = min(n_wf, remaining)
        remaining -= n_wf
        rng = random.Random(f"{seed}/{name}/{wf.name}")
        cal = WorkCalendar(**wf.calendar, origin=t0, horizon=t_end + 400 * DAY) if wf.calendar else None
        to_wall = cal.wall if cal else (lambda c: c)
        clock0 = cal.clock(t0) if cal else t0
        clock_end = cal.clock(t_end) if cal else t_end
        shifts = {s.stage: s for s in sc.shifts if s.workflow == wf.name}
        shift_clock = {st: clock0 + s.at_fraction * (clock_end - clock0) for st, s in shifts.items()}
        for st, s in shifts.items():
            shifts_out.append(
                {"workflow": wf.name, "stage": st, "at": format_ts(to_wall(shift_clock[st])), "factor": s.factor}
            )
        wf_out[wf.name] = {
            "stages": wf.stages,
            "terminal": wf.terminal,
            "segments": [s for s, _ in wf.segments],
            "calendar": cal.to_dict() if cal else None,
        }
        for sm in wf.flow:
            for seg, med in sm.medians.items():
                base = {"workflow": wf.name, "stage": sm.name, "segment": seg}
                if sm.name in shifts:
                    at = format_ts(to_wall(shift_clock[sm.name]))
                    medians.append({**base, "median_seconds": med / speed, "valid_from": format_ts(t0), "valid_to": at})
                    medians.append(
                        {
                            **base,
                            "median_seconds": med * shifts[sm.name].factor / speed,
                            "valid_from": at,
                            "valid_to": format_ts(t_end),
                        }
                    )
                else:
                    medians.append(
                        {**base, "median_seconds": med / speed, "valid_from": format_ts(t0), "valid_to": format_ts(t_end)}
                    )

        arrivals = sorted(clock0 + rng.random() * (clock_end - clock0) for _ in range(n_wf))
        n_owners = 20 if wf.owners == "rep" else 30
        for i, arrival in enumerate(arrivals):
            entity = f"{wf.id_prefix}-{i + 1:06d}"
            seg = _pick(rng, wf.segments)
            region = _pick(rng, REGIONS)
            owner = f"{wf.owners}-{rng.randrange(1, n_owners + 1):02d}"
            c = arrival
            stage = wf.flow[0]
            events.append(SimEvent(to_wall(c), wf.name, entity, stage.name, seg, region, owner, stage.waiting_on))
            for idx, sm in enumerate(wf.flow):
                median = sm.medians[seg]
                if sm.name in shifts and c >= shift_clock[sm.name]:
                    median *= shifts[sm.name].factor
                median /= speed
                stalled = rng.random() < vary.stall_share
                if stalled:
                    factor = rng.uniform(*vary.stall_factor)
                    abandoned = rng.random() < ABANDON_SHARE
                    dur = math.inf if abandoned else median * factor * math.exp(rng.gauss(0.0, 0.1))
                else:
                    dur = median * SHAPES[sm.shape](rng, sm.sigma)
                lost = rng.random() < sm.lost_probability
                nxt = c + dur
                left = nxt < clock_end
                if stalled:
                    anomalies.append(
                        {
                            "workflow": wf.name,
                            "entity_id": entity,
                            "stage": sm.name,
                            "segment": seg,
                            "entered_at": format_ts(to_wall(c)),
                            "duration_seconds": round(dur, 3) if left else None,
                            "factor": round(factor, 4),
                            "normal_median_seconds": median,
                            "abandoned": abandoned,
                        }
                    )
                if not left:
                    break
                if lost and wf.lost:
                    events.append(SimEvent(to_wall(nxt), wf.name, entity, wf.lost, seg, region, owner, None))
                    break
                nxt_stage = wf.flow[idx + 1] if idx + 1 < len(wf.flow) else None
                events.append(
                    SimEvent(
                        to_wall(nxt),
                        wf.name,
                        entity,
                        nxt_stage.name if nxt_stage else wf.final,
                        seg,
                        region,
                        owner,
                        nxt_stage.waiting_on if nxt_stage else None,
                    )
                )
                c = nxt

    # event time order, then ids
    events.sort(key=lambda e: (e.ts, e.workflow, e.entity_id))
    for n, ev in enumerate(events):
        ev.ts = round(ev.ts, 3)
        ev.event_id = f"ev-{n + 1:07d}"

    # silences: events in the window are lost (never delivered)
    silences_out: list[dict[str, Any]] = []
    lost_entities: set[str] = set()
    for sil in sc.silences:
        a = float(round(t0 + sil.at_fraction * period))
        b = a + sil.hours * HOUR / speed
        silences_out.append({"workflow": sil.workflow, "start": format_ts(a), "end": format_ts(b)})
        kept = []
        for ev in events:
            if ev.workflow == sil.workflow and a <= ev.ts < b:
                lost_entities.add(ev.entity_id)
            else:
                kept.append(ev)
        events = kept

    # delivery: some events late (out of order), some delivered twice
    drng = random.Random(f"{seed}/{name}/delivery")
    delivery: list[tuple[float, int, SimEvent]] = []
    max_delay = sc.max_delay_seconds / speed
    seen_delay = 0.0
    duplicates = 0
    for n, ev in enumerate(events):
        arrive = ev.ts
        if sc.late_share and drng.random() < sc.late_share:
            d = drng.uniform(0.0, max_delay)
            seen_delay = max(seen_delay, d)
            arrive += d
        delivery.append((arrive, n, ev))
        if sc.duplicate_share and drng.random() < sc.duplicate_share:
            duplicates += 1
            delivery.append((arrive + drng.uniform(1.0 / speed, max_delay or 1.0), n, ev))
    delivery.sort(key=lambda x: (x[0], x[1]))
    delivered = [ev for _, _, ev in delivery]

    truth = {
        "scenario": name,
        "seed": seed,
        "items": items,
        "speed": speed,
        "start": format_ts(t0),
        "end": format_ts(t_end),
        "workflows": wf_out,
        "medians": medians,
        "anomalies": anomalies,
        "shifts": shifts_out,
        "silences": silences_out,
        "lost_event_entities": sorted(lost_entities),
        "duplicates": duplicates,
        "max_delay_seconds": round(seen_delay, 3),
    }
    if changed := vary.as_dict():
        truth["variation"] = changed
    return Simulation(delivered, truth, {"events": len(delivered), "anomalies": len(anomalies)})


# --------------------------------------------------------------------------- writers

CSV_COLUMNS = ("case_id", "activity", "timestamp", "workflow", "segment", "region", "owner", "waiting_on", "event_id")


def duration_stream(seed: int, sigma: float, n: int, change_at: int | None = None, factor: float = 1.0,
                    outliers: float = 0.02, median: float = 3600.0) -> list[float]:
    """Seeded lognormal stage durations (seconds) for detector tests and benchmarks: ``median`` x
    lognormal(0, ``sigma``), times ``factor`` from index ``change_at`` on (a shift), and a share
    ``outliers`` of them 10x longer (stalls mixed into normal traffic)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        v = median * rng.lognormvariate(0.0, sigma)
        if change_at is not None and i >= change_at:
            v *= factor
        if rng.random() < outliers:
            v *= 10
        out.append(v)
    return out


def write_jsonl(events: Iterable[SimEvent], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for ev in events:
            f.write(json.dumps(ev.to_wire(), separators=(",", ":")))
            f.write("\n")


def write_csv(events: Iterable[SimEvent], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for ev in events:
            w.writerow(
                (ev.entity_id, ev.stage, format_ts(ev.ts), ev.workflow, ev.segment, ev.region, ev.owner,
                 ev.waiting_on or "", ev.event_id)
            )


def write_xes(events: Iterable[SimEvent], path: Path, log_name: str = "stagewatch-simulation") -> None:
    """XES 1.0 (IEEE 1849): one trace per entity, case attributes on the trace, events in time order."""
    traces: dict[str, list[SimEvent]] = {}
    for ev in events:
        traces.setdefault(ev.entity_id, []).append(ev)
    q = quoteattr
    with open(path, "w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8" ?>\n')
        f.write('<log xes.version="1.0" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">\n')
        for ext, prefix in (("Concept", "concept"), ("Time", "time"), ("Lifecycle", "lifecycle"),
                            ("Organizational", "org"), ("Identity", "identity")):
            f.write(f'\t<extension name="{ext}" prefix="{prefix}" uri="http://www.xes-standard.org/{prefix}.xesext"/>\n')
        f.write('\t<global scope="trace">\n\t\t<string key="concept:name" value="__INVALID__"/>\n\t</global>\n')
        f.write('\t<global scope="event">\n\t\t<string key="concept:name" value="__INVALID__"/>\n'
                '\t\t<string key="lifecycle:transition" value="complete"/>\n\t</global>\n')
        f.write('\t<classifier name="Activity" keys="concept:name"/>\n')
        f.write(f"\t<string key=\"concept:name\" value={q(log_name)}/>\n")
        for entity in sorted(traces):
            evs = sorted(traces[entity], key=lambda e: e.ts)
            first = evs[0]
            f.write("\t<trace>\n")
            f.write(f"\t\t<string key=\"concept:name\" value={q(entity)}/>\n")
            f.write(f"\t\t<string key=\"workflow\" value={q(first.workflow)}/>\n")
            f.write(f"\t\t<string key=\"segment\" value={q(first.segment)}/>\n")
            f.write(f"\t\t<string key=\"region\" value={q(first.region)}/>\n")
            for ev in evs:
                ts = datetime.fromtimestamp(ev.ts, UTC).isoformat(timespec="milliseconds")
                f.write("\t\t<event>\n")
                f.write(f"\t\t\t<string key=\"concept:name\" value={q(ev.stage)}/>\n")
                f.write(f"\t\t\t<date key=\"time:timestamp\" value={q(ts)}/>\n")
                f.write('\t\t\t<string key="lifecycle:transition" value="complete"/>\n')
                f.write(f"\t\t\t<string key=\"org:resource\" value={q(ev.owner)}/>\n")
                f.write(f"\t\t\t<string key=\"identity:id\" value={q(ev.event_id)}/>\n")
                if ev.waiting_on:
                    f.write(f"\t\t\t<string key=\"waiting_on\" value={q(ev.waiting_on)}/>\n")
                f.write("\t\t</event>\n")
            f.write("\t</trace>\n")
        f.write("</log>\n")


WRITERS: dict[str, Callable[[Iterable[SimEvent], Path], None]] = {
    "jsonl": write_jsonl,
    "csv": write_csv,
    "xes": write_xes,
}


def write(sim: Simulation, out: Path, fmt: Format = "jsonl") -> Path:
    """Write ``events.<fmt>`` and ``truth.json`` into ``out``; returns the events path."""
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(WRITERS)}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"events.{fmt}"
    WRITERS[fmt](sim.events, path)
    (out / "truth.json").write_text(json.dumps(sim.truth, indent=1) + "\n", encoding="utf-8")
    return path


def run(
    name: str,
    out: Path,
    items: int = 6000,
    seed: int = 1,
    fmt: Format = "jsonl",
    speed: float = 1.0,
    start: str | float = DEFAULT_START,
    variation: Variation | None = None,
) -> dict[str, Path]:
    """Simulate one scenario into ``out`` or, for ``all``, every scenario into ``out/<name>``."""
    names = list(SCENARIOS) if name == "all" else [name]
    written: dict[str, Path] = {}
    for n in names:
        sim = simulate(n, items=items, seed=seed, speed=speed, start=start, variation=variation)
        written[n] = write(sim, out / n if name == "all" else out, fmt)
    return written
