"""A workflow whose calendar is still being learned (``auto``) measures in wall time, where nights and
weekends inside a stage look like slowdowns: no bottleneck_shift may come of that."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pytest

from monitor.backtest import replay
from monitor.engine import Engine
from monitor.events import parse_timestamp
from monitor.simulate import simulate


@pytest.mark.parametrize("seed", [3, 7])
def test_no_bottleneck_shift_from_calendar_learning(seed: int) -> None:
    sim = simulate("business_hours", items=2000, seed=seed)  # office hours only, no injected shift
    events = sorted((e.to_event() for e in sim.events), key=lambda e: e.timestamp)
    alerts = list(replay(Engine(), ((e, None) for e in events)))
    shifts = [f"{a.at} {a.workflow}/{a.stage}" for a in alerts if a.kind == "bottleneck_shift"]
    assert shifts == []


def _mixed_stage(seed: int, slowdown_at: int | None, n: int = 3000, flip: bool = True,
                 slowed: tuple[str, ...] = ("enterprise", "smb"), share: float = 0.4, factor: float = 2.5,
                 sigma: float = 0.4, slower: float = 5.0) -> list:
    """Deals through one shared stage, one every half hour, enterprise ``slower`` than smb; the mix flips
    from 80 % smb to 80 % enterprise halfway (a change of who is in the stage, not of how long anyone
    takes; ``share`` enterprise throughout without ``flip``), and optionally every deal of a ``slowed``
    segment gets ``factor`` times slower from deal ``slowdown_at`` on."""
    import random

    from monitor.events import Event

    rng = random.Random(seed)
    out = []
    t0 = 1_767_225_600.0
    for i in range(n):
        t = t0 + i * 1800.0
        enterprise = rng.random() < (share if not flip else 0.2 if i < n // 2 else 0.8)
        d = (slower if enterprise else 1) * 3 * 3600 * rng.lognormvariate(0, sigma)
        seg = {"segment": "enterprise" if enterprise else "smb"}
        if slowdown_at is not None and i >= slowdown_at and seg["segment"] in slowed:
            d *= factor
        out += [Event(f"d{i}-a", "sales", f"d{i}", "review", t, seg), Event(f"d{i}-b", "sales", f"d{i}", "done", t + d, seg)]
    return sorted(out, key=lambda e: e.timestamp)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_change_in_segment_mix_is_not_a_bottleneck_shift_but_a_slowdown_is(seed: int) -> None:
    from monitor.config import load_settings

    settings = load_settings(None, workflows={"sales": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    mix = list(replay(Engine(settings), ((e, None) for e in _mixed_stage(seed, None))))
    assert [a.summary for a in mix if a.kind == "bottleneck_shift"] == []
    slow = list(replay(Engine(settings), ((e, None) for e in _mixed_stage(seed, 2000))))
    found = [a for a in slow if a.kind == "bottleneck_shift" and a.status == "firing"]
    assert len(found) >= 1 and "review in sales got" in found[0].summary and "slower" in found[0].summary


def test_a_factor_no_reader_can_picture_is_said_as_the_two_typicals() -> None:
    from monitor.engine import slower

    assert slower(2.46) == "2.5x slower" and slower(99.9) == "99.9x slower"
    assert slower(4161.1) == "much slower"


def _one_stage(seed: int, days: int, per_day: Callable[[float], float], factor: Callable[[float, str], float],
               names: tuple[str, str, str, str], typical: float, enterprise: float = 0.0) -> list:
    """Items of workflow ``names[0]`` (ids ``names[1]``N) through stage ``names[2]`` to ``names[3]`` for
    ``days``: ``per_day(day)`` arrivals a day, each taking ``typical`` x lognormal(0, 0.6) x
    ``factor(day it entered, segment)``; with ``enterprise``, that share of them is of the segment
    enterprise (3x slower), the others smb."""
    import random

    from monitor.events import Event

    rng = random.Random(seed)
    t0, day = 1_767_225_600.0, 86400.0
    wf, prefix, stage, end = names
    out, t, i = [], t0, 0
    while t < t0 + days * day:
        t += rng.expovariate(per_day((t - t0) / day) / day)
        segment = ("enterprise" if rng.random() < enterprise else "smb") if enterprise else ""
        d = typical * rng.lognormvariate(0, 0.6) * factor((t - t0) / day, segment) * (3 if segment == "enterprise" else 1)
        attrs = {"segment": segment} if segment else {}
        out += [Event(f"{prefix}{i}-a", wf, f"{prefix}{i}", stage, t, attrs),
                Event(f"{prefix}{i}-b", wf, f"{prefix}{i}", end, t + d, attrs)]
        i += 1
    return sorted(out, key=lambda e: e.timestamp)


def _burst_stage(seed: int, slowdown_at: float | None) -> list:
    """Deals through one stage (typical 2 days), 10 a day, 100 a day in the last week of each quarter
    (an end-of-quarter push); optionally every deal entering from day ``slowdown_at`` on is 2x slower."""
    return _one_stage(seed, 270, lambda d: 100 if any(q - 7 <= d < q for q in (90, 180)) else 10,
                      lambda d, _s: 2 if slowdown_at is not None and d >= slowdown_at else 1,
                      ("sales", "d", "contract", "won"), 2 * 86400.0)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_slow_items_of_an_end_of_quarter_burst_are_no_slowdown_but_a_slowdown_is(seed: int) -> None:
    # after a burst of arrivals the completions are its quick items first, then its slow ones, at
    # durations unchanged: read in completion order, a slowdown (measured: 1-2 tickets per stage and
    # quarter) - but work then drains from the stage, where a real slowdown holds it back
    from monitor.config import load_settings

    settings = load_settings(None, workflows={"sales": {"terminal_stages": ["won"], "calendar": {"mode": "wall"}}})
    bursts = list(replay(Engine(settings), ((e, None) for e in _burst_stage(seed, None))))
    assert [a.summary for a in bursts if a.kind == "bottleneck_shift"] == []
    slow = list(replay(Engine(settings), ((e, None) for e in _burst_stage(seed, 120))))
    found = [a for a in slow if a.kind == "bottleneck_shift" and a.status == "firing"]
    assert len(found) >= 1 and "slower" in found[0].summary
    # the deals entering from May 1 take 4 days instead of 2: ticketed May 8-12 on seeds 1-6, the same
    # days (within one) as without the flow's say, and on seeds 1-2 the false tickets before made
    # this one a re-learn without a ticket ("2 slowdowns in 30 days")
    assert found[0].at < "2026-05-14"


def test_a_slowdown_of_a_stage_that_holds_an_item_at_a_time_is_not_held_back_by_its_flow() -> None:
    # a review stage of ~1 hour with one item arriving every ~3 hours: read after the completing item
    # has left, its flow looks like draining at most completions; a 3x slowdown was found after a
    # median 35 completions (seeds 1-12; 15 as read before the departure, as without the flow's say)
    from monitor.config import load_settings
    from monitor.events import Event, parse_timestamp

    settings = load_settings(None, workflows={"ops": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    counts = []
    for seed in range(1, 7):
        import random

        rng = random.Random(seed)
        t, events, change = 1_767_225_600.0, [], 0.0
        for i in range(2000):
            t += rng.expovariate(0.3 / 3600)
            change = t if i == 1500 else change
            d = 3600 * rng.lognormvariate(0, 0.5) * (3 if i >= 1500 else 1)
            events += [Event(f"r{i}-a", "ops", f"r{i}", "review", t), Event(f"r{i}-b", "ops", f"r{i}", "done", t + d)]
        events.sort(key=lambda e: e.timestamp)
        alerts = replay(Engine(settings), ((e, None) for e in events))
        found = [parse_timestamp(a.at) for a in alerts if a.kind == "bottleneck_shift" and a.status == "firing"]
        assert len(found) == 1 and found[0] > change
        counts.append(sum(1 for e in events if e.stage == "done" and change <= e.timestamp <= found[0]))
    assert sorted(counts)[3] <= 22  # measured 9-32, the 4th of 6 at 18 (read after the departure: 21-74, 36)


def _office_week(days: int) -> list:
    """Reviews 9:00-16:00 UTC on weekdays from Monday 2026-01-05, each done 30-60 min later."""
    import random

    from monitor.events import Event

    rng = random.Random(4)
    t0 = 1_767_571_200.0  # Monday 2026-01-05 00:00 UTC
    out = []
    for d in range(days):
        if d % 7 >= 5:
            continue
        for k in range(84):
            t = t0 + d * 86400 + 9 * 3600 + k * 300
            out += [Event(f"r{d}-{k}-a", "ops", f"r{d}-{k}", "review", t),
                    Event(f"r{d}-{k}-b", "ops", f"r{d}-{k}", "done", t + rng.uniform(1800, 3600))]
    return out


@pytest.mark.parametrize("days", [3, 20])  # on the first guess of the week, and once it is decided
def test_a_learned_working_week_keeps_the_holidays_of_the_settings(days: int) -> None:
    # the week is learned from activity (auto), and a day off shows as no activity at all: only the
    # settings can say it is a holiday. Without them a review open over Thanksgiving and Christmas counted
    # those working hours, and a reviewer's office streams got 5 false slowdown tickets in 6 runs
    from datetime import date

    from monitor.config import load_settings

    settings = load_settings(None, workflows={"ops": {"terminal_stages": ["done"],
                                                      "calendar": {"mode": "auto", "holidays": ["2026-01-29"]}}})
    engine = Engine(settings)
    list(replay(engine, ((e, None) for e in sorted(_office_week(days), key=lambda e: e.timestamp))))
    clock = engine.workflows["ops"].clock
    assert engine.workflows["ops"].business and clock.holidays == (date(2026, 1, 29),)
    wednesday_9, friday_9 = 1_767_571_200.0 + 23 * 86400 + 9 * 3600, 1_767_571_200.0 + 25 * 86400 + 9 * 3600
    assert clock.business_seconds(wednesday_9, friday_9) == clock.business_seconds(wednesday_9, wednesday_9 + 86400)


def test_a_stall_in_the_first_week_pages_on_a_guessed_calendar_but_never_on_an_unseen_weekend() -> None:
    from monitor.config import load_settings
    from monitor.events import Event, parse_timestamp

    settings = load_settings(None, workflows={"ops": {"terminal_stages": ["done"]}})  # calendar: auto
    t0 = 1_767_571_200.0
    tue_10, fri_15 = t0 + 86400 + 10 * 3600, t0 + 4 * 86400 + 15 * 3600
    stuck = [Event("s1", "ops", "tue-stuck", "review", tue_10), Event("s2", "ops", "fri-stuck", "review", fri_15)]
    events = sorted(_office_week(12) + stuck, key=lambda e: e.timestamp)
    engine = Engine(settings)
    pages = {a.entity_id: a for a in replay(engine, ((e, None) for e in events))
             if a.kind == "stalled" and a.status == "firing"}
    assert parse_timestamp(pages["tue-stuck"].at) < t0 + 2 * 86400  # on Tuesday, not after the week
    fri_page = parse_timestamp(pages["fri-stuck"].at)
    assert fri_page >= t0 + 7 * 86400 + 9 * 3600  # Monday's working hours, not the weekend
    assert engine.workflows["ops"].business  # the decision after one week: office hours
    assert len(pages) <= 4  # the two stuck items, and hardly a false page around the guess


def _office_claims(offsets: bool, days: int = 54, per_day: float = 200.0) -> list:
    """Claims opened and closed 9:00-17:00 in Amsterdam on workdays, from Monday 7 September 2026
    across the end of summer time (25 October); timestamps with their UTC offset, or epoch numbers."""
    import random
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from monitor.events import Event

    ams = ZoneInfo("Europe/Amsterdam")
    rng = random.Random(1)
    out, n = [], 0
    for d in range(days):
        day = (datetime(2026, 9, 7, tzinfo=ams) + timedelta(days=d)).date()
        if day.weekday() >= 5:
            continue
        t = datetime(day.year, day.month, day.day, 9, tzinfo=ams).timestamp()
        end = t + 8 * 3600
        while (t := t + rng.expovariate(per_day / (8 * 3600))) < end:
            n += 1
            off = datetime.fromtimestamp(t, ams).utcoffset().total_seconds() if offsets else None  # type: ignore[union-attr]
            out.append(Event(f"e{n}", "claims", f"c{n // 2}", "open" if n % 2 else "done", t, {}, None, off))
    return out


@pytest.mark.parametrize("source", ["offsets", "epoch", "epoch-utc-configured"])
def test_the_working_day_stays_in_place_across_daylight_saving(source: str) -> None:
    """Learned in UTC, an Amsterdam office's day starts an hour later after summer time ends, and
    every morning of the next weeks looked like an integration outage (10 pages in 2 weeks with the
    zone configured as UTC). Offsets in the timestamps name the zone (Europe/Paris: the same rules):
    nothing pages. Epoch timestamps name none: the week's activity shows the European rule the day
    after the change (Europe/London stands for it), and only the mornings before that page."""
    from monitor.config import load_settings
    from monitor.engine import EventClock

    workflows = {"claims": {"calendar": {"timezone": "UTC"}}} if source == "epoch-utc-configured" else {}
    settings = load_settings(None, engine={"silence_enabled": True, "backlog_enabled": False,
                                           "allowed_lateness_seconds": 0}, workflows=workflows)
    engine, clock, pages = Engine(settings), EventClock(300.0), []
    for e in _office_claims(source == "offsets"):
        pages += [a for a in clock.advance(engine, e.timestamp) + engine.process(e)
                  if a.kind == "source_silent" and a.status == "firing"]
    wf = engine.workflows["claims"]
    if source == "offsets":
        assert (wf.zone(), wf.rate.timezone) == ("Europe/Paris", "Europe/Paris")
        assert pages == []
    elif source == "epoch":
        assert (wf.zone(), wf.rate.timezone) == ("Europe/London", "Europe/London")
        assert len(pages) <= 2 and all(a.at < "2026-10-28" for a in pages)
    else:  # UTC as configured: the test can tell
        assert wf.zone() == "UTC" and len(pages) >= 5


def test_a_zone_named_in_the_settings_is_not_second_guessed_from_offsets() -> None:
    from monitor.config import load_settings

    settings = load_settings(None, engine={"allowed_lateness_seconds": 0},
                             workflows={"claims": {"calendar": {"timezone": "Asia/Tokyo"}}})
    engine = Engine(settings)
    for e in _office_claims(True, days=3):
        engine.process(e)
    wf = engine.workflows["claims"]
    assert wf.zones is None and wf.zone() == wf.rate.timezone == "Asia/Tokyo"


@pytest.mark.parametrize(("typical", "ticket"), [(20.0, False), (1200.0, True)])
def test_a_stage_that_slows_within_the_allowed_lateness_relearns_without_a_ticket(typical: float, ticket: bool) -> None:
    """The same 2.5x slowdown of one stage, at two scales: 20 s -> 50 s lies within the allowed lateness
    (5 min, the timing noise of the source's events: no bottleneck to anyone) and re-learns quietly;
    20 min -> 50 min opens a ticket. Either way the baseline follows the new normal."""
    import random

    from monitor.config import load_settings
    from monitor.events import Event

    rng = random.Random(5)
    t0 = 1_767_225_600.0
    events = []
    for i in range(3000):
        d = typical * rng.lognormvariate(0, 0.4) * (2.5 if i >= 2000 else 1.0)
        t = t0 + i * 1800.0
        events += [Event(f"d{i}-a", "ops", f"d{i}", "review", t), Event(f"d{i}-b", "ops", f"d{i}", "done", t + d)]
    settings = load_settings(None, workflows={"ops": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    engine = Engine(settings)
    alerts = list(replay(engine, ((e, None) for e in sorted(events, key=lambda e: e.timestamp))))
    shifts = [a for a in alerts if a.kind == "bottleneck_shift" and a.status == "firing"]
    assert bool(shifts) is ticket
    learned = engine.workflows["ops"].states[("review", None)].all.baseline.typical()
    assert learned == pytest.approx(2.5 * typical, rel=0.25)  # re-learned, ticket or not
    assert not [a for a in alerts if a.kind == "stalled"]  # the new normal pages no item


def _changing_pace(seed: int, every: int, n: int = 4000) -> list:
    """Reviews every 30 min, 3 h typical, 3x slower in every other stretch of ``every`` reviews (a
    stage with a monthly cycle or batches: its pace keeps changing, it has no one new normal)."""
    import random

    from monitor.events import Event

    rng = random.Random(seed)
    t0 = 1_767_225_600.0
    out = []
    for i in range(n):
        t = t0 + i * 1800.0
        d = 3 * 3600 * rng.lognormvariate(0, 0.4) * (3.0 if (i // every) % 2 else 1.0)
        out += [Event(f"d{i}-a", "sales", f"d{i}", "review", t), Event(f"d{i}-b", "sales", f"d{i}", "done", t + d)]
    return sorted(out, key=lambda e: e.timestamp)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_stage_that_keeps_changing_pace_is_ticketed_twice_not_every_time(seed: int) -> None:
    from monitor.config import load_settings

    settings = load_settings(None, workflows={"sales": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    engine = Engine(settings)
    alerts = list(replay(engine, ((e, None) for e in _changing_pace(seed, every=500))))  # 3x slower 4 times in 83 days
    pages = [a for a in alerts if a.kind == "bottleneck_shift" and a.status == "firing"]
    found = engine.workflows["sales"].states[("review", None)].slowdowns
    assert len(found) == 3  # the detector saw the changes (the last three kept) ...
    assert len(pages) == 2  # ... the first two ticketed, the second saying the rest are not
    assert "2 slowdowns in" in pages[1].summary and "re-learn without a ticket" in pages[1].summary


def _system_step(seed: int, later: float) -> list:
    """Orders through a step a system does (0 s, now and then a few seconds), then a manual review of
    ~2 hours; from order 1500 on the step takes ``later`` seconds (about)."""
    import random

    from monitor.events import Event

    rng = random.Random(seed)
    t, out = 1_767_225_600.0, []
    for i in range(3000):
        t += rng.expovariate(1 / 600)
        if i < 1500:
            d = 0.0 if rng.random() < 0.9 else rng.uniform(1, 3)
        else:
            d = later * rng.lognormvariate(0, 0.3)
        r = 7200 * rng.lognormvariate(0, 0.4)
        out += [Event(f"o{i}-a", "ops", f"o{i}", "booked", t), Event(f"o{i}-b", "ops", f"o{i}", "review", t + d),
                Event(f"o{i}-c", "ops", f"o{i}", "done", t + d + r)]
    return sorted(out, key=lambda e: e.timestamp)


@pytest.mark.parametrize("seed", [1, 2])
def test_seconds_of_a_system_step_are_no_bottleneck_but_hours_are(seed: int) -> None:
    # BPI 2012: "A_ACTIVATED got 16211.5x slower: typical is now 2.3 working hours, was 0.5 s", of a
    # step whose completions went from 0 s to 8 s: on a log scale the largest change of the log
    from monitor.config import load_settings

    settings = load_settings(None, workflows={"ops": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    seconds = list(replay(Engine(settings), ((e, None) for e in _system_step(seed, 6.0))))
    assert [a.summary for a in seconds if a.kind == "bottleneck_shift"] == []
    hours = list(replay(Engine(settings), ((e, None) for e in _system_step(seed, 3 * 3600.0))))
    found = [a for a in hours if a.kind == "bottleneck_shift" and a.status == "firing"]
    assert len(found) == 1 and found[0].stage == "booked"
    assert "was within 10 s" in found[0].summary and 2 * 3600 < found[0].observed_seconds < 4 * 3600


def test_a_slowdown_is_claimed_at_the_smaller_factor_and_against_a_reference_that_was_no_normal() -> None:
    from detectors.drift import Shift
    from monitor.engine import claimed_ratio

    # levels in units of the segment's typical: the reference at the typical, the new level 2.4x it
    assert claimed_ratio(Shift(1.05, 2.4, 2.29, 0.0), 1.5) == 2.29
    assert claimed_ratio(Shift(1.0, 0.5, 0.5, 0.0), 1.5) == 0.5  # a speedup stays one
    # BPI 2019: a reference at 1/700 of the typical (a stage of minutes and months): "794x slower" of a
    # new level 1.1x the typical is none; 3x the typical is claimed as 3x
    assert claimed_ratio(Shift(0.0014, 1.1, 794.0, 0.0), 1.5) < 1.0
    assert claimed_ratio(Shift(0.0014, 3.0, 2143.0, 0.0), 1.5) == 3.0
    # a reference above the typical: its own, smaller, factor
    assert claimed_ratio(Shift(2.0, 5.0, 2.5, 0.0), 1.5) == 2.5
    assert claimed_ratio(Shift(2.0, 2.4, 1.2, 0.0), 1.5) < 1.0
    # never below half the meaningful factor (the test's own confirmation): the new level at the
    # typical, a reference 0.7x it, is no "1.02x slower"; nor is NaN anything
    assert claimed_ratio(Shift(0.7, 1.02, 1.457, 0.0), 1.5) < 1.0
    assert claimed_ratio(Shift(1.0, math.nan, math.nan, 0.0), 1.5) < 1.0
    # nor above what the latest completions say (residuals taken in a unit that has moved since: BPI
    # 2017's "303x slower: typical is now 7732 working hours" of a log a year long)
    assert claimed_ratio(Shift(1.38, 418.0, 303.0, 0.0), 1.5, seen=7.0) == 7.0
    assert claimed_ratio(Shift(1.0, 2.4, 2.4, 0.0), 1.5, seen=1.1) < 1.0


def test_a_shift_resolves_with_the_new_normal_as_learned_by_then() -> None:
    # the ticket is written from the first completions after the change, the quick ones: the simulated
    # 2.5x slowdown was ticketed as 1.5x; settled, it says 2.5x
    sim = simulate("slowdown", items=6000, seed=1)
    events = sorted((e.to_event() for e in sim.events), key=lambda e: e.timestamp)
    shift = [a for a in replay(Engine(), ((e, None) for e in events)) if a.kind == "bottleneck_shift"]
    assert [a.status for a in shift] == ["firing", "resolved"]
    import re

    # the stage's two segments (each item is read against its own segment's typical): each one's
    ticketed = float(re.search(r"got ([0-9.]+)x slower", shift[0].summary).group(1))
    said = re.fullmatch(r"fulfillment has settled at its new normal: typical is ([0-9.]+) days for (\w+) "
                        r"\(([0-9.]+)x the [0-9.]+ days before\), ([0-9.]+) days for (\w+) "
                        r"\(([0-9.]+)x the [0-9.]+ days before\)", shift[1].details["resolution"])
    assert ticketed < 2.0 and said is not None, shift[1].details["resolution"]
    # the simulated 2.5x slowdown of a stage typically 2.3 days: 3.5 days in the ticket; settled, smb 5.0,
    # enterprise 8.5, each against its own typical before: 2.5x and 2.1x
    now = float(re.search(r"typical is now ([0-9.]+) days", shift[0].summary).group(1))
    assert min(float(said.group(1)), float(said.group(4))) > now
    assert min(float(said.group(3)), float(said.group(6))) > 2.0


def test_a_shift_that_passed_resolves_as_passed() -> None:
    import random

    from monitor.config import load_settings
    from monitor.events import Event

    # a stage ticketed as slower whose typical is, 30 completions on, back near the one before (real logs'
    # spells: "decide got 4.1x slower", then 3.0 days against the 5.4 before) had no new normal
    rng = random.Random(1)
    settings = load_settings(None, workflows={"ops": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    engine = Engine(settings)
    events = []
    for i in range(300):
        t = 1_767_225_600.0 + i * 1800.0
        d = 3 * 3600 * rng.lognormvariate(0, 0.3)
        events += [Event(f"r{i}-a", "ops", f"r{i}", "review", t, {}), Event(f"r{i}-b", "ops", f"r{i}", "done", t + d, {})]
    list(replay(engine, ((e, None) for e in sorted(events, key=lambda e: e.timestamp))))
    st = engine.workflows["ops"].states[("review", None)]
    typical = st.all.baseline.typical()

    def settled(before: float) -> str:
        shift = engine._stage_alert("bottleneck_shift", st.wf, "review", 0.0, observed=4 * before, expected=before,
                                    threshold=1.5 * before, score=1.0, summary="")
        return engine._settled(st, shift)

    assert settled(1.8 * typical).startswith("review's slowdown has passed: typical is 3.0 hours, 0.6x the ")
    assert settled(0.5 * typical).startswith("review has settled at its new normal: typical is 3.0 hours, 2.0x the ")
    assert settled(typical / 400) == "review has settled at its new normal: typical is 3.0 hours, was 27 s"
    # a step once done at once, back within seconds: passed, though 5 s is 2.5x the 2 s before
    st.all.baseline.reset(keep_recent=[5.0] * 40)
    assert settled(2.0) == "review's slowdown has passed: typical is 5.0 s, was within 10 s"


def _days_to_ticket(seed: int, items: int, every_hours: float, typical: float, slowed_from: int,
                    share: float = 1.0) -> float:
    """Reviews through one stage (one every ``every_hours``, ``typical`` seconds each, lognormal), a ``share``
    of them 10x slower from review ``slowed_from`` on: days from then to the first bottleneck_shift ticket
    (inf: none)."""
    import random

    from monitor.config import load_settings
    from monitor.events import Event, parse_timestamp

    rng = random.Random(seed)
    settings = load_settings(None, workflows={"ops": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    t0, events = 1_767_225_600.0, []
    for i in range(items):
        t = t0 + i * every_hours * 3600.0
        d = typical * rng.lognormvariate(0, 0.4)
        if i >= slowed_from and (share >= 1.0 or rng.random() < share):
            d *= 10
        events += [Event(f"r{i}-a", "ops", f"r{i}", "review", t, {}), Event(f"r{i}-b", "ops", f"r{i}", "done", t + d, {})]
    alerts = list(replay(Engine(settings), ((e, None) for e in sorted(events, key=lambda e: e.timestamp))))
    found = [parse_timestamp(a.at) for a in alerts if a.kind == "bottleneck_shift" and a.status == "firing"]
    return (found[0] - (t0 + slowed_from * every_hours * 3600.0)) / 86400.0 if found else math.inf


@pytest.mark.parametrize("seed", [1, 2])
def test_a_new_check_that_most_items_now_wait_for_is_ticketed(seed: int) -> None:
    # reviews of about an hour; from review 1000 on, 60 % of them wait for a new manual check, 10x longer:
    # the slowed ones page one by one while the rest pass at the old pace, as when a backlog of parked items
    # is cleared among fresh ones; but this one stays, and the stage's typical moved (a rule that took such
    # a slowdown for a cleared backlog when the test fired lost its ticket in 6 of 8 runs)
    assert _days_to_ticket(seed, 1600, 4.0, 3600.0, 1000, share=0.6) < 8.0


@pytest.mark.parametrize("seed", [1, 2])
def test_a_stage_of_few_items_that_got_ten_times_slower_is_ticketed_though_its_items_page(seed: int) -> None:
    # three reviews a day, 3 hours each, then 30: most new reviews pass their limit and page one by one
    # (no burst), and those pages are the slowdown's first evidence (a version of the shift test that left
    # paged items out found it after 18-22 days)
    assert _days_to_ticket(seed, 1200, 8.0, 3 * 3600.0, 800) < 8.0


def _invoices(seed: int, slowdown_at: int | None) -> list:
    """Invoices through one step: most take about a day of a clerk's work, and once a week a vendor's
    batch of 40 is booked at once (0-3 s each); optionally the clerks' invoices take 3x as long from
    invoice ``slowdown_at`` on."""
    import random

    from monitor.events import Event

    rng = random.Random(seed)
    t, out, i = 1_767_225_600.0, [], 0
    while i < 3000:
        t += rng.expovariate(1 / 3600)
        batch = 40 if rng.random() < 1 / 150 else 1
        for _ in range(batch):
            d = rng.uniform(0, 3) if batch > 1 else 86400 * rng.lognormvariate(0, 0.5)
            if batch == 1 and slowdown_at is not None and i >= slowdown_at:
                d *= 3
            out += [Event(f"i{i}-a", "ap", f"i{i}", "booking", t), Event(f"i{i}-b", "ap", f"i{i}", "paid", t + d)]
            i += 1
    return sorted(out, key=lambda e: e.timestamp)


def test_a_batch_booked_at_once_is_no_speedup_of_a_worked_step() -> None:
    # BPI 2019's invoices: 30 quiet "speedups" in a year, each re-learning the step from a batch, and
    # "29471x slower: typical is now 10216 days" tickets in between (2 such a seed here, before)
    import re

    from monitor.config import load_settings

    settings = load_settings(None, workflows={"ap": {"terminal_stages": ["paid"], "calendar": {"mode": "wall"}}})
    tickets = []
    for seed in range(1, 7):
        engine = Engine(settings)
        alerts = list(replay(engine, ((e, None) for e in _invoices(seed, None))))
        shifts = [a.summary for a in alerts if a.kind == "bottleneck_shift" and a.status == "firing"]
        assert engine.workflows["ap"].states[("booking", None)].drift.snapshot()["shifts"] == len(shifts)  # no speedup
        assert all(float(re.search(r"got ([0-9.]+)x", s).group(1)) < 5 for s in shifts), shifts
        tickets += shifts
    # known: the stage's typical, a median of both kinds, sits below the worked kind's; a few false
    # tickets of 1.5-3x remain (measured: 2 in these 6 streams)
    assert len(tickets) <= 2, tickets
    for seed in (1, 2):
        slow = list(replay(Engine(settings), ((e, None) for e in _invoices(seed, 2000))))
        found = [a for a in slow if a.kind == "bottleneck_shift" and a.status == "firing"]
        assert found and "booking in ap got" in found[-1].summary


def test_dates_without_a_time_where_a_third_finish_the_same_day_raise_no_shift() -> None:
    # the median of both kinds (0 s and whole days) falls in the gap between them and moves with the
    # mix: read against it, the whole-day items looked slower and slower (a reviewer's streams: 20 false
    # tickets in 6 x 6000 items at a same-day share of 35 %); the test reads them against the days' typical
    import random

    from monitor.config import load_settings
    from monitor.events import Event

    settings = load_settings(None, workflows={"ops": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    for seed in (9, 10, 11):
        rng = random.Random(seed)
        day0, events = 1_767_225_600.0, []
        for i in range(6000):
            k = 0 if rng.random() < 0.35 else 1 + int(rng.expovariate(1.0))
            t = day0 + 86400 * (i // 20)
            events += [Event(f"{i}-a", "ops", f"e{i}", "work", t), Event(f"{i}-b", "ops", f"e{i}", "done", t + 86400 * k)]
        events.sort(key=lambda e: e.timestamp)
        alerts = replay(Engine(settings), ((e, None) for e in events))
        assert [a.summary for a in alerts if a.kind == "bottleneck_shift"] == []



def _shift_alerts(events: list) -> list:
    from monitor.config import load_settings

    settings = load_settings(None, workflows={"sales": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    return [a for a in replay(Engine(settings), ((e, None) for e in events)) if a.kind == "bottleneck_shift"]


@pytest.mark.parametrize(("seed", "share", "factor"), [(1, 0.2, 3.0), (2, 0.2, 5.0), (3, 0.25, 4.0)])
def test_a_slowdown_of_a_minority_segment_alone_is_ticketed_for_it(seed: int, share: float, factor: float) -> None:
    # enterprise, a fifth of the deals, slows alone: to the stage's test, which reads each deal against its
    # own segment's typical, that is a fifth of its items (ticketed in 2 of 6 runs of 3-5x before the
    # segments' own tests)
    alerts = _shift_alerts(_mixed_stage(seed, 1500, flip=False, slowed=("enterprise",), share=share, factor=factor))
    firing = [a for a in alerts if a.status == "firing"]
    assert len(firing) == 1 and firing[0].segment == "enterprise"
    assert 0 < parse_timestamp(firing[0].at) - (1_767_225_600.0 + 1500 * 1800.0) < 7 * 86400
    assert f"review in sales got {firing[0].details['ratio']:.1f}x slower for enterprise: typical is now" \
        in firing[0].summary
    why = [a.details["resolution"] for a in alerts if a.status == "resolved"]
    assert len(why) == 1 and why[0].startswith("review has settled at its new normal: typical is ")
    assert re.search(r"for enterprise \(([0-9.]+)x the [0-9.]+ hours before\)$", why[0]), why  # its ticket's alone


def test_a_segments_ticket_resolves_though_the_segment_stops_getting_items() -> None:
    # enterprise slows alone and is ticketed; then no enterprise deal comes any more: its ticket resolves
    # after 300 of the other segments' completions in a row (it held the stage's ticket open for good)
    events = _mixed_stage(1, 1500, flip=False, slowed=("enterprise",), share=0.2, factor=3.0)
    ticket = next(a for a in _shift_alerts(events) if a.status == "firing")
    cut = parse_timestamp(ticket.at)
    gone = {e.entity_id for e in events if e.attributes["segment"] == "enterprise" and e.stage == "review" and e.timestamp > cut}
    alerts = _shift_alerts([e for e in events if e.entity_id not in gone])
    assert [(a.segment, a.status) for a in alerts] == [("enterprise", "firing"), ("enterprise", "resolved")]


def test_the_resolution_of_a_shift_says_which_segment_slowed() -> None:
    compared = 0
    for seed in range(1, 4):
        # smb, the majority, slowed, or both: the stage's test finds it and its ticket names no segment (the
        # slower one's items that entered since the change have not finished when the test fires); settled,
        # each segment against its own typical before, where enough items that entered since have finished
        for slowed in (("smb",), ("enterprise", "smb")):
            alerts = _shift_alerts(_mixed_stage(seed, 1500, flip=False, slowed=slowed))
            assert all(a.segment is None and " for " not in a.summary for a in alerts if a.status == "firing")
            said = [a.details["resolution"] for a in alerts if a.status == "resolved"]
            assert all(re.search(r"for smb \(([0-9.]+)x the [0-9.]+ hours before\)", r) for r in said), said
            compared += len(said)
    assert compared >= 4


def test_one_change_found_first_in_a_quick_segment_then_in_the_stage_is_no_flapping() -> None:
    # both segments slow 4x; smb's slowed deals (3 hours, now 12) finish first and its own test tickets it;
    # the stage's test follows once enterprise's (a day, now four) finish: one change found twice, not a
    # stage that keeps changing its pace ("2 slowdowns in 4 hours: more re-learn without a ticket")
    alerts = _shift_alerts(_mixed_stage(2, 1500, flip=False, share=0.8, factor=4.0, sigma=0.3, slower=8.0))
    firing = [a for a in alerts if a.status == "firing"]
    assert [a.segment for a in firing] == ["smb", None]
    assert "slowdowns in" not in firing[1].summary
    assert firing[1].details["typical_before"]["smb"] == firing[0].details["typical_before"]["smb"]
    why = next(a for a in alerts if a.status == "resolved" and a.at > firing[1].at).details["resolution"]
    assert re.search(r"for smb \(([0-9.]+)x the [0-9.]+ (hours|min) before\)", why), why  # against its typical before its own ticket


def _creeping_stage(seed: int, per_day: float, enterprise: float = 0.0) -> list:
    """Cases through review (typical 8 hours, 20 a day) for 150 days; the cases entering from day 30 on
    take ``per_day`` longer a day for 60 days (1.5 %: 2.4x at the end), then stay. With ``enterprise``,
    100 cases a day, that share of them enterprise, and only enterprise creeps."""
    return _one_stage(seed, 150, lambda d: 100 if enterprise else 20,
                      lambda d, s: (1 + per_day) ** min(max(d - 30, 0.0), 60.0) if s in ("", "enterprise") else 1.0,
                      ("cases", "c", "review", "done"), 8 * 3600.0, enterprise)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_stage_that_slows_a_little_every_day_is_ticketed_and_a_steady_one_is_not(seed: int) -> None:
    # 1.5 % a day: the shift test's reference follows it (measured on a reviewer's streams: 1 %/day never
    # ticketed, 2 %/day after 38-58 days); the creep watch compares the level of the cases entering now
    # with that of weeks ago
    from monitor.config import load_settings
    from monitor.events import parse_timestamp

    settings = load_settings(None, workflows={"cases": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    steady = list(replay(Engine(settings), ((e, None) for e in _creeping_stage(seed, 0.0))))
    assert [a.summary for a in steady if a.kind == "bottleneck_shift"] == []
    creep = list(replay(Engine(settings), ((e, None) for e in _creeping_stage(seed, 0.015))))
    found = [a for a in creep if a.kind == "bottleneck_shift" and a.status == "firing"]
    assert found and "review in cases got 1." in found[0].summary and " slower over " in found[0].summary
    day = (parse_timestamp(found[0].at) - 1_767_225_600.0) / 86400
    assert 30 + 14 <= day <= 30 + 45  # 1.5x is reached on day 30 + 27


def test_a_segment_that_slows_a_little_every_day_alone_is_ticketed_for_that_segment() -> None:
    # enterprise, a fifth of the cases, 2 % a day slower: to the stage's level it is a fifth of the change
    from monitor.config import load_settings

    settings = load_settings(None, workflows={"cases": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    steady = list(replay(Engine(settings), ((e, None) for e in _creeping_stage(1, 0.0, enterprise=0.2))))
    assert [a.summary for a in steady if a.kind == "bottleneck_shift"] == []
    creep = list(replay(Engine(settings), ((e, None) for e in _creeping_stage(1, 0.02, enterprise=0.2))))
    found = [a for a in creep if a.kind == "bottleneck_shift" and a.status == "firing"]
    assert found and found[0].segment == "enterprise" and " slower for enterprise over " in found[0].summary
    assert (parse_timestamp(found[0].at) - 1_767_225_600.0) / 86400 <= 30 + 45


def test_neither_whole_day_durations_nor_a_weekday_pattern_is_a_creep() -> None:
    # a reviewer's streams: durations in whole days (half of them one day, a third two; the median jumped
    # between one and two days: 6 false 2.0x creeps in 3 runs), and items entering on Fridays 1.6x slower
    # (a busy stage's single entry day compared a Friday with weekdays weeks before: 3 in 3 runs)
    import random

    from monitor.config import load_settings
    from monitor.events import Event

    settings = load_settings(None, workflows={"cases": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    rng = random.Random(1)
    t0, day = 1_767_225_600.0, 86400.0  # a Thursday
    whole_days = []
    for i in range(200 * 20):
        t = t0 + (i // 20) * day
        d = day * (1 if rng.random() < 0.5 else 2 if rng.random() < 0.6 else 3)
        whole_days += [Event(f"w{i}-a", "cases", f"w{i}", "review", t), Event(f"w{i}-b", "cases", f"w{i}", "done", t + d)]
    fridays = _one_stage(1, 200, lambda d: 150, lambda d, _s: 1.6 if int(d) % 7 == 1 else 1.0,
                         ("cases", "f", "review", "done"), 8 * 3600.0)
    for events in (sorted(whole_days, key=lambda e: e.timestamp), fridays):
        alerts = replay(Engine(settings), ((e, None) for e in events))
        assert [a.summary for a in alerts if a.kind == "bottleneck_shift" and " over " in a.summary] == []


def test_partitions_ticket_a_creep_once_and_a_watch_without_drift_keeps_nothing() -> None:
    # each partition finds a creep on a day of its own; a creep's ticket resolved after 30 completions
    # (6 hours here), and 4 partitions raised 7 tickets of one creep in 40 days
    from monitor.backtest import partition_engines
    from monitor.config import load_settings

    settings = load_settings(None, workflows={"cases": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    events = _one_stage(2, 150, lambda d: 200, lambda d, _s: 1.02 ** min(max(d - 30, 0.0), 60.0),
                        ("cases", "c", "review", "done"), 8 * 3600.0)
    alerts = list(replay(partition_engines(settings, 4), ((e, None) for e in events)))
    creeps = [a for a in alerts if a.kind == "bottleneck_shift" and a.status == "firing" and " over " in a.summary]
    assert 1 <= len(creeps) <= 2  # 2 %/day for 60 days is 3.3x: a second 1.5x may follow the first
    quiet = load_settings(None, engine={"drift_enabled": False},
                          workflows={"cases": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    engine = Engine(quiet)
    list(replay(engine, ((e, None) for e in events)))
    assert all(not st.creep.cohorts for wf in engine.workflows.values() for st in wf.states.values())
