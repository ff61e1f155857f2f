"""Business time: known spans, holidays, DST, the add_business inverse, and the auto decision."""

from __future__ import annotations

import math
import random
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.calendar import ActivityProfile, BusinessCalendar, WallClock, ZoneFinder, restore_calendar

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


def at(y: int, m: int, d: int, h: float = 0.0, tz: ZoneInfo = UTC) -> float:
    return datetime(y, m, d, tzinfo=tz).timestamp() + h * 3600


def test_friday_afternoon_to_monday_morning_is_two_working_hours() -> None:
    cal = BusinessCalendar()
    fri, mon = at(2026, 3, 6, 16), at(2026, 3, 9, 10)
    assert cal.business_seconds(fri, mon) == 2 * 3600
    assert cal.add_business(fri, 2 * 3600) == mon


def test_spans_inside_outside_and_reversed() -> None:
    cal = BusinessCalendar()
    assert cal.business_seconds(at(2026, 3, 2, 10), at(2026, 3, 2, 11.5)) == 1.5 * 3600
    assert cal.business_seconds(at(2026, 3, 7, 10), at(2026, 3, 8, 20)) == 0  # weekend
    assert cal.business_seconds(at(2026, 3, 2, 18), at(2026, 3, 3, 8)) == 0  # night
    assert cal.business_seconds(at(2026, 3, 3), at(2026, 3, 2)) == 0
    assert cal.business_seconds(at(2026, 3, 2), at(2026, 3, 9)) == 40 * 3600


def test_long_spans_are_counted_by_whole_weeks() -> None:
    cal = BusinessCalendar()
    a = at(2026, 1, 5)  # a Monday
    assert cal.business_seconds(a, a + 52 * 7 * 86400) == 52 * 40 * 3600
    assert cal.add_business(a, 52 * 40 * 3600) == at(2027, 1, 1, 17)  # Friday 17:00 of week 52


def test_fractional_hours_and_custom_workdays() -> None:
    cal = BusinessCalendar(workdays=(0, 2), start_hour=8.5, end_hour=12.25)
    assert cal.business_seconds(at(2026, 3, 2), at(2026, 3, 9)) == 2 * 3.75 * 3600
    assert cal.add_business(at(2026, 3, 2), 3.75 * 3600 + 60) == at(2026, 3, 4, 8.5) + 60


def test_holidays_are_not_working_time() -> None:
    cal = BusinessCalendar(holidays=[date(2026, 12, 25), "2026-12-28"])
    # Thursday 24th 16:00 -> Tuesday 29th 10:00: 1 h on the 24th, 25th and 28th off, 1 h on the 29th
    a, b = at(2026, 12, 24, 16), at(2026, 12, 29, 10)
    assert cal.business_seconds(a, b) == 2 * 3600
    assert cal.add_business(a, 2 * 3600) == b
    assert cal.add_business(at(2026, 12, 25, 10), 60) == at(2026, 12, 29, 9) + 60


def test_dst_change_week_in_berlin() -> None:
    cal = BusinessCalendar("Europe/Berlin")
    # Clocks go forward on Sunday 2026-03-29: the week still holds exactly 40 working hours
    mon, next_mon = at(2026, 3, 23, tz=BERLIN), at(2026, 3, 30, tz=BERLIN)
    assert next_mon - mon == 7 * 86400 - 3600
    assert cal.business_seconds(mon, next_mon) == 40 * 3600
    fri, tue = at(2026, 3, 27, 16, tz=BERLIN), at(2026, 3, 31, 10, tz=BERLIN)
    assert cal.business_seconds(fri, tue) == (1 + 8 + 1) * 3600
    assert cal.add_business(fri, 10 * 3600) == tue
    # and back in October (Sunday 25th): Monday 10:00 local is 09:00 UTC after the change
    assert cal.add_business(at(2026, 10, 23, 16, tz=BERLIN), 2 * 3600) == at(2026, 10, 26, 9)
    assert cal.business_seconds(at(2026, 10, 19, tz=BERLIN), at(2026, 10, 26, tz=BERLIN)) == 40 * 3600


def test_spring_forward_gap_inside_working_hours() -> None:
    # a 24/7 calendar in local time: the skipped hour 02:00-03:00 does not exist, so it is not worked
    cal = BusinessCalendar("Europe/Berlin", workdays=range(7), start_hour=0, end_hour=24)
    a, b = at(2026, 3, 29, tz=BERLIN), at(2026, 3, 30, tz=BERLIN)
    assert cal.business_seconds(a, b) == b - a == 23 * 3600


CALENDARS = [
    BusinessCalendar(),
    BusinessCalendar("Europe/Berlin", holidays=["2026-04-03", "2026-04-06", "2026-12-25"]),
    BusinessCalendar("America/New_York", workdays=(0, 1, 2, 3, 4, 5), start_hour=7.5, end_hour=19),
    BusinessCalendar("Asia/Kolkata", workdays=(6,), start_hour=22, end_hour=24),
]


@settings(max_examples=300, deadline=None)
@given(
    which=st.integers(0, len(CALENDARS) - 1),
    a=st.floats(at(2025, 6, 1), at(2027, 6, 1)),
    seconds=st.floats(0, 400 * 3600),
)
def test_add_business_inverts_business_seconds(which: int, a: float, seconds: float) -> None:
    cal = CALENDARS[which]
    end = cal.add_business(a, seconds)
    assert end >= a
    assert cal.business_seconds(a, end) == pytest.approx(seconds, abs=1e-3)
    # it is the earliest such instant: a little earlier, a little less work was done
    if seconds > 1:
        assert cal.business_seconds(a, end - 1) < seconds


@settings(max_examples=200, deadline=None)
@given(
    which=st.integers(0, len(CALENDARS) - 1),
    a=st.floats(at(2025, 6, 1), at(2027, 6, 1)),
    span=st.floats(0, 60 * 86400),
    cut=st.floats(0, 1),
)
def test_business_seconds_is_additive(which: int, a: float, span: float, cut: float) -> None:
    cal = CALENDARS[which]
    m, b = a + cut * span, a + span
    whole = cal.business_seconds(a, b)
    assert whole == pytest.approx(cal.business_seconds(a, m) + cal.business_seconds(m, b), abs=1e-3)
    assert 0 <= whole <= span + 1e-6


def test_hour_mask_round_trip_and_snapshot() -> None:
    cal = BusinessCalendar("Europe/Berlin", holidays=["2026-12-25"])
    mask = cal.hour_mask()
    assert sum(mask) == 40
    same = BusinessCalendar.from_hour_mask("Europe/Berlin", mask, holidays=["2026-12-25"])
    assert same == cal
    assert restore_calendar(cal.snapshot()) == cal
    assert restore_calendar(WallClock().snapshot()) == WallClock()


def test_wall_clock_is_identity() -> None:
    w = WallClock()
    assert w.business_seconds(10.0, 25.5) == 15.5 and w.business_seconds(5.0, 1.0) == 0.0
    assert w.add_business(10.0, 5.0) == 15.0


def test_invalid_calendars_are_rejected() -> None:
    with pytest.raises(ValueError):
        BusinessCalendar(start_hour=17, end_hour=9)
    with pytest.raises(ValueError):
        BusinessCalendar(workdays=())
    with pytest.raises(ValueError):
        BusinessCalendar.from_hour_mask("UTC", [False] * 168)
    with pytest.raises(Exception):  # noqa: B017 - zoneinfo raises its own error type
        BusinessCalendar("Mars/Olympus")


def business_hours_traffic(rng: random.Random, days: int, per_hour: float, tz: ZoneInfo) -> list[float]:
    out: list[float] = []
    for d in range(days):
        day = datetime(2026, 3, 2, tzinfo=tz).date().toordinal() + d
        dd = date.fromordinal(day)
        if dd.weekday() >= 5:
            continue
        t = datetime(dd.year, dd.month, dd.day, 9, tzinfo=tz).timestamp()
        end = t + 8 * 3600
        while (t := t + rng.expovariate(per_hour / 3600)) < end:
            out.append(t)
    return out


def test_auto_decides_business_time_for_office_hours_traffic() -> None:
    rng = random.Random(1)
    events = business_hours_traffic(rng, 21, 20.0, BERLIN)
    # stray night and weekend events (1 %) do not make those hours working time
    events += [at(2026, 3, 2 + rng.randrange(21), rng.uniform(0, 24), tz=BERLIN) for _ in range(25)]
    p = ActivityProfile("Europe/Berlin", min_events=2000, min_days=14)
    for t in sorted(events):
        p.learn_one(t)
    assert p.decided()
    cal = p.calendar()
    assert isinstance(cal, BusinessCalendar)
    assert cal.hour_mask() == BusinessCalendar("Europe/Berlin").hour_mask()
    snap = p.snapshot()
    assert type(p).restore(snap).calendar() == cal


def test_auto_keeps_wall_time_for_round_the_clock_traffic() -> None:
    rng = random.Random(2)
    p = ActivityProfile("UTC", min_events=2000, min_days=14)
    t = at(2026, 3, 2)
    for _ in range(10_000):
        t += rng.expovariate(1 / 500)  # ~7 events per hour, day and night
        p.learn_one(t)
        if p.decided():
            break
    assert p.decided() and isinstance(p.calendar(), WallClock)


def test_auto_keeps_wall_time_for_a_desk_working_round_the_clock_with_lighter_weekends() -> None:
    """30 tickets a weekday, 8 a weekend day, day and night, each with four events over a day: its
    weekend hours saw two or three events each in six weeks, under the three a stray-event filter asks
    of an hour; called off (4 seeds in 10), the weekends' work counted no time."""
    for seed in range(10):
        rng = random.Random(seed)
        p = ActivityProfile("UTC")
        t0 = t = at(2026, 3, 2)  # a Monday
        events: list[float] = []
        while t < t0 + 120 * 86400:
            t += rng.expovariate((30 if (t - t0) // 86400 % 7 < 5 else 8) / 86400)
            x = t
            for median, sigma in ((3600.0, 0.8), (8 * 3600.0, 0.6), (12 * 3600.0, 0.5)):
                events.append(x)
                x += median * rng.lognormvariate(0.0, sigma)
            events.append(x)
        for x in sorted(events):
            p.learn_one(x)
        assert p.decided() and isinstance(p.calendar(), WallClock), seed


def test_auto_takes_timestamps_of_days_for_wall_time() -> None:
    """Date-only exports put every event at midnight: one busy hour a day is no working week (a
    calendar of it read 60 days as 60 working hours)."""
    rng = random.Random(7)
    p = ActivityProfile("UTC")
    office = ActivityProfile("UTC")
    for d in range(60):
        for _ in range(40):
            p.learn_one(at(2026, 3, 2) + d * 86400.0)
    assert p.decided() and isinstance(p.calendar(), WallClock)
    assert not p.suspects_off_hours()
    for t in business_hours_traffic(rng, 60, 20.0, ZoneInfo("UTC")):  # the same days, worked 9 to 17
        office.learn_one(t)
    assert isinstance(office.calendar(), BusinessCalendar)


def test_auto_waits_for_enough_events_and_days() -> None:
    p = ActivityProfile(min_events=100, min_days=14)
    for i in range(5000):
        p.learn_one(at(2026, 3, 2) + i * 60.0)  # 3.5 days only
    assert not p.decided() and p.calendar() is None


def test_off_hours_are_suspected_early_for_office_traffic_only() -> None:
    office = ActivityProfile("Europe/Berlin")
    for t in business_hours_traffic(random.Random(3), 3, 20.0, BERLIN):
        office.learn_one(t)
    assert not office.decided() and office.suspects_off_hours()
    rng = random.Random(4)
    round_the_clock = ActivityProfile("UTC")
    t = at(2026, 3, 2)
    for _ in range(600):
        t += rng.expovariate(1 / 500)
        round_the_clock.learn_one(t)
    assert not round_the_clock.suspects_off_hours()
    assert not ActivityProfile().suspects_off_hours()


def test_activity_profile_guesses_a_provisional_week_and_names_the_days_not_seen_yet() -> None:
    p = ActivityProfile(timezone="UTC")
    monday = 1_767_571_200.0  # 2026-01-05 00:00 UTC
    assert p.provisional() is None
    for day in range(3):  # Monday to Wednesday, 9:00-17:00
        for k in range(96):
            p.learn_one(monday + day * 86400 + 9 * 3600 + k * 300)
    guess = p.provisional()
    assert guess is not None
    mask, unknown = guess
    assert unknown == {3, 4, 5, 6}  # Thursday..Sunday: no such day seen yet
    assert [h for h in range(24) if mask[h]] == list(range(9, 17))  # Monday's working hours
    assert mask[5 * 24 + 10]  # an unseen Saturday counts as working until seen (ages never under-counted)
    for k in range(96):  # Thursday and Friday worked, Saturday and Sunday pass without an event
        p.learn_one(monday + 3 * 86400 + 9 * 3600 + k * 300)
        p.learn_one(monday + 4 * 86400 + 9 * 3600 + k * 300)
    p.learn_one(monday + 6 * 86400 + 23.5 * 3600)  # a stray event late on Sunday
    mask, unknown = p.provisional()
    assert unknown == frozenset() and not mask[5 * 24 + 10] and mask[4 * 24 + 10]


def test_a_limit_of_centuries_is_never_not_a_crash():
    """A freak spread can give a limit of 1e10 working seconds: stepping through the DST periods of
    the centuries it spans ran past datetime's year 9999 (ValueError: year 10000 is out of range,
    which ended a backtest of a public loan log with a configured zone)."""
    cal = BusinessCalendar("Europe/Amsterdam")
    start = datetime(2016, 1, 4, 9, tzinfo=UTC).timestamp()
    assert cal.add_business(start, 1e10) == math.inf
    assert cal.add_business(start, 3600.0) == start + 3600.0


def _at(y: int, m: int, d: int) -> float:
    return datetime(y, m, d, 12, tzinfo=ZoneInfo("UTC")).timestamp()


def test_the_zone_of_a_source_is_found_from_its_offsets_and_follows_daylight_saving() -> None:
    f = ZoneFinder()
    assert f.observe(_at(2012, 1, 10), 3600.0) == "Europe/Paris"  # winter +1: the common zone
    for day in range(11, 31):  # offsets the guess explains cost one comparison, keep no sample
        assert f.observe(_at(2012, 1, day), 3600.0) is None
    assert f.observe(_at(2012, 7, 1), 7200.0) is None  # summer +2: Paris too
    assert len(f.samples) == 1
    # a fixed +1 source (no summer time): the guess moves once July shows +1 still
    g = ZoneFinder()
    g.observe(_at(2012, 1, 10), 3600.0)
    zone = g.observe(_at(2012, 7, 1), 3600.0)
    assert zone is not None and zone == g.zone
    assert all(datetime.fromtimestamp(t, ZoneInfo(zone)).utcoffset().total_seconds() == 3600.0  # type: ignore[union-attr]
               for t in (_at(2012, 1, 10), _at(2012, 7, 1), _at(2013, 3, 1)))


def test_utc_timestamps_keep_utc_and_offsets_no_zone_explains_stop_the_guessing() -> None:
    f = ZoneFinder()
    assert f.observe(_at(2012, 1, 10), 0.0) is None and f.zone == "UTC"
    assert f.observe(_at(2012, 7, 1), 0.0) is None and f.zone == "UTC"  # not London: no summer time
    mixed = ZoneFinder()
    mixed.observe(_at(2012, 1, 10), 3600.0)
    mixed.observe(_at(2012, 1, 10) + 60, -5 * 3600.0)  # two sources in two zones
    assert mixed.stopped and mixed.zone == "Europe/Paris"
    assert mixed.observe(_at(2012, 1, 11), 9 * 3600.0) is None


def test_zone_finder_pickles() -> None:
    import pickle

    f = ZoneFinder()
    f.observe(_at(2012, 1, 10), -5 * 3600.0)
    g = pickle.loads(pickle.dumps(f))
    assert (g.zone, g.samples, g.stopped) == (f.zone, f.samples, f.stopped) == ("America/New_York", f.samples, False)


def test_an_activity_profile_moved_to_another_zone_counts_the_same_instants() -> None:
    moved, native = ActivityProfile(), ActivityProfile(timezone="Asia/Tokyo")
    for h in range(200):
        t = _at(2026, 3, 2) + h * 1800.0
        moved.learn_one(t)
        native.learn_one(t)
    moved.rezone("Asia/Tokyo")
    assert moved.counts == native.counts and moved.timezone == "Asia/Tokyo"


def _hourly(zone: str, days: int, office: bool) -> list[float]:
    """Events every 10 minutes, 9:00-17:00 local on workdays (office) or round the clock, from
    1 February 2027 to past the March daylight-saving changes of Europe and the US."""
    tz = ZoneInfo(zone)
    start = datetime(2027, 2, 1, tzinfo=tz)
    out = []
    for d in range(days):
        day = start.date().toordinal() + d
        dt = date.fromordinal(day)
        if office and dt.weekday() >= 5:
            continue
        hours = range(9, 17) if office else range(24)
        for h in hours:
            for m in range(0, 60, 10):
                out.append(datetime(dt.year, dt.month, dt.day, h, m, tzinfo=tz).timestamp())
    return out


@pytest.mark.parametrize(("zone", "rule"), [("America/Chicago", "America/New_York"), ("Europe/Berlin", "Europe/London")])
def test_the_daylight_saving_rule_of_a_utc_source_is_found_from_its_office_hours(zone: str, rule: str) -> None:
    f = ZoneFinder()
    found = [(t, z) for t in _hourly(zone, 70, office=True) if (z := f.observe(t, None))]
    assert [z for _, z in found] == [rule]  # one switch, to the zone standing for the rule
    change = datetime(2027, 3, 14 if rule.startswith("America") else 28, 12, tzinfo=ZoneInfo("UTC")).timestamp()
    assert change < found[0][0] < change + 4 * 86400  # within the first workdays past the change (6 events an hour)
    assert f.learned_at is not None and f.learned_at < change  # what was learned predates it


def test_round_the_clock_traffic_stays_in_utc() -> None:
    f = ZoneFinder()
    assert [z for t in _hourly("Europe/Berlin", 70, office=False) if (z := f.observe(t, 0.0))] == []
    assert f.zone == "UTC"


def test_a_zone_finder_from_an_older_snapshot_restores_with_a_fresh_activity_ring() -> None:
    """Snapshots written before the activity ring hold (zone, samples, stopped) only: a worker must
    read them (it wedged on 'not enough values to unpack' when restarted over an older changelog)."""
    import pickle

    f = ZoneFinder.__new__(ZoneFinder)
    f.__setstate__(("Europe/Paris", [(1_767_225_600.0, 3600.0)], False))
    assert (f.zone, f.samples, f.stopped, f.pending, f.learned_at) == (
        "Europe/Paris", [(1_767_225_600.0, 3600.0)], False, 0, None)
    assert f.observe(1_767_229_200.0, 3600.0) in (None, "Europe/Paris")  # and it keeps working
    assert pickle.loads(pickle.dumps(f)).__getstate__()[:3] == f.__getstate__()[:3]
