"""Engine behaviour: paging open items, lifecycle, idempotency, ordering, state round-trips."""

from __future__ import annotations

import copyreg
import io
import math
import pickle
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from monitor.config import CalendarConfig, EngineConfig, load_settings
from monitor.engine import (
    Engine,
    EventClock,
    EventRejected,
    SegmentStats,
    StageState,
    WorkflowState,
    check_not_future,
)
from monitor.events import Alert, Event, alert_id, parse_timestamp

DAY = 86400.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def make_settings(**engine):
    base = {"warmup": 10, "allowed_lateness_seconds": 0, "silence_enabled": False, "backlog_enabled": False}
    base.update(engine)
    return load_settings(
        None,
        engine=base,
        workflows={"sales": {"terminal_stages": ["won"], "calendar": {"mode": "wall"}}},
    )


def ev(entity, stage, ts, eid=None, segment="smb", wf="sales", waiting_on=None):
    return Event(eid or f"{entity}-{stage}-{ts}", wf, entity, stage, ts, {"segment": segment}, waiting_on)


def normal_history(n=60, seed=1, start=T0, typical=2 * DAY):
    """n deals lead -> contract -> won, contract lasting about `typical`, arriving every 2 hours."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = start + i * 7200
        d = typical * rng.lognormvariate(0, 0.3)
        out += [ev(f"d{i}", "lead", t), ev(f"d{i}", "contract", t + 3600), ev(f"d{i}", "won", t + 3600 + d)]
    return sorted(out, key=lambda e: e.timestamp)


def feed(engine, events, step=600.0):
    alerts = []
    next_tick = None
    for e in events:
        if next_tick is None:
            next_tick = e.timestamp
        while e.timestamp >= next_tick:
            alerts += engine.tick(next_tick)
            next_tick += step
        alerts += engine.process(e)
    return alerts


def test_open_item_pages_before_its_next_event_and_resolves_when_it_moves():
    eng = Engine(make_settings())
    hist = normal_history()
    feed(eng, hist)
    t = hist[-1].timestamp
    eng.process(ev("deal-42", "lead", t))
    eng.process(ev("deal-42", "contract", t + 60))
    limit = eng.item_view("deal-42", t + 60).threshold_seconds
    assert limit is not None and 2 * DAY < limit < 20 * DAY
    assert [a for a in eng.tick(t + 60 + limit * 0.9) if a.entity_id == "deal-42"] == []
    fired = [a for a in eng.tick(t + 60 + limit * 1.01) if a.entity_id == "deal-42"]
    assert len(fired) == 1 and fired[0].kind == "stalled" and fired[0].status == "firing"
    a = fired[0]
    assert a.stage == "contract" and a.segment == "smb" and a.severity == "page"
    assert "deal-42 has been in contract" in a.summary and "typical for smb" in a.summary
    assert a.observed_seconds >= a.threshold_seconds > a.expected_seconds > 0
    # no second page for the same identity on later ticks
    assert [x for x in eng.tick(t + 60 + limit * 3) if x.entity_id == "deal-42"] == []
    moved = eng.process(ev("deal-42", "won", t + 60 + limit * 4))
    assert [(x.kind, x.status, x.alert_id) for x in moved] == [("stalled", "resolved", a.alert_id)]


def test_a_segment_without_completions_of_its_own_is_quoted_the_stages_figures_without_its_name():
    # a customer id as segment: the first deal of cust-7 is judged and explained by the stage's
    # completions, so the page must not say "typical for cust-7" (it has none)
    eng = Engine(make_settings())
    hist = normal_history()
    feed(eng, hist)
    t = hist[-1].timestamp
    eng.process(ev("deal-7", "lead", t, segment="cust-7"))
    eng.process(ev("deal-7", "contract", t + 60, segment="cust-7"))
    fired = [a for a in eng.tick(t + 60 + 30 * DAY) if a.entity_id == "deal-7" and a.kind == "stalled"]
    assert len(fired) == 1 and fired[0].segment == "cust-7"
    assert "typical is" in fired[0].summary and "cust-7" not in fired[0].summary.split(";")[1]


def test_no_page_while_the_baseline_is_warming_up():
    eng = Engine(make_settings(warmup=50))
    hist = normal_history(n=20)
    alerts = feed(eng, hist)
    t = hist[-1].timestamp
    eng.process(ev("slow", "contract", t))
    alerts += eng.tick(t + 30 * DAY)
    assert [a for a in alerts if a.kind in ("stalled", "slow_stage")] == []
    assert "warming" in eng.item_view("slow", t + 30 * DAY).why


def test_duplicate_events_are_counted_and_ignored():
    eng = Engine(make_settings())
    e = ev("d1", "lead", T0, eid="x1")
    eng.process(e)
    eng.process(e)
    assert eng.counters.events[("sales", "duplicate")] == 1
    assert eng.counters.events[("sales", "accepted")] == 1


def test_terminal_stage_closes_the_item_and_late_duplicates_stay_ignored():
    eng = Engine(make_settings())
    eng.process(ev("d1", "lead", T0, eid="a"))
    eng.process(ev("d1", "won", T0 + 10, eid="b"))
    assert eng.open_items == 0
    eng.process(ev("d1", "won", T0 + 10, eid="b"))
    assert eng.open_items == 0 and eng.counters.events[("sales", "duplicate")] == 1


def test_an_event_at_the_instant_its_item_closed_is_not_late_nor_reopens_it():
    # process-mining logs write several events at one time (an application declined, its offer declined)
    late = []
    eng = Engine(make_settings())
    eng.on_late = lambda e, why: late.append(why)
    eng.process(ev("d1", "lead", T0))
    eng.process(ev("d1", "won", T0 + 10))
    eng.process(ev("d1", "offer_declined", T0 + 10))
    assert eng.open_items == 0 and late == [] and eng.counters.events[("sales", "accepted")] == 3
    eng.process(ev("d1", "offer_sent", T0 + 9))  # before the close: late, kept with its reason
    assert eng.open_items == 0 and len(late) == 1 and "was closed at" in late[0]


def test_out_of_order_within_lateness_gives_the_same_alerts_as_in_order():
    hist = normal_history(n=80, seed=3)
    stall_t = hist[-1].timestamp
    tail = [ev("s1", "lead", stall_t), ev("s1", "contract", stall_t + 60), ev("z", "lead", stall_t + 30 * DAY)]
    ordered = hist + tail
    rng = random.Random(7)
    shuffled = sorted(ordered, key=lambda e: e.timestamp + rng.uniform(0, 240))
    a1 = feed(Engine(make_settings(allowed_lateness_seconds=300)), ordered)
    a2 = feed(Engine(make_settings(allowed_lateness_seconds=300)), shuffled)
    key = lambda a: (a.alert_id, a.status, a.at)  # noqa: E731
    assert sorted(map(key, a1)) == sorted(map(key, a2))
    assert any(a.entity_id == "s1" and a.kind == "stalled" for a in a1)


def test_a_slow_stage_ticket_of_an_item_that_then_ends_is_resolved_not_left_firing():
    """A stage completed far past its limit straight into an end: the ticket fires and, the item being
    done, resolves; the resolution was dropped (Alertmanager kept the ticket firing)."""
    eng, t = _warm(make_settings())
    limit = _in_contract(eng, t)
    out = eng.process(ev("deal-42", "won", t + 60 + 2 * limit))
    assert [(a.kind, a.status) for a in out] == [("slow_stage", "firing"), ("slow_stage", "resolved")]
    assert out[1].details["resolution"] == "the item closed" and eng.active_alerts() == []


def test_snapshot_restore_continues_exactly():
    hist = normal_history(n=90, seed=5)
    cut = len(hist) // 2
    straight = Engine(make_settings())
    expected = feed(straight, hist)
    first = Engine(make_settings())
    got = feed(first, hist[:cut])
    restored = Engine.restore(first.snapshot(), make_settings())
    got += feed(restored, hist[cut:])
    assert [(a.alert_id, a.status, a.at) for a in got] == [(a.alert_id, a.status, a.at) for a in expected]


def test_a_snapshot_from_before_the_heard_time_restores_and_continues():
    """Workers upgrade onto changelogs written by earlier versions: workflow state without
    ``heard_ts`` (a one-entry ``silent_cache`` tuple), ``ended`` or public holidays (nor settings that
    knew them), stage state without ``moved_on``, the record of its filling up, and with its slowdowns'
    times alone, segment state without its own shift test, a source rate without its recent pace."""
    hist = normal_history(n=90, seed=5)
    cut = len(hist) // 2
    expected = feed(Engine(make_settings(silence_enabled=True)), hist)
    first = Engine(make_settings(silence_enabled=True))
    got = feed(first, hist[:cut])
    for wf in first.workflows.values():
        rate = wf.rate.__getstate__()  # and from before the recent pace counted
        del rate["recent_seen"], rate["recent_due"]
        wf.rate.__dict__.clear()
        wf.rate.__setstate__(rate)

    class OldPickler(pickle.Pickler):
        """Pickles workflow and stage state as the earlier versions had them (the fields they lacked
        left out: attributes of the compiled engine's classes cannot be deleted)."""

        def reducer_override(self, obj: object) -> object:
            if isinstance(obj, WorkflowState):
                # no heard_ts (a one-entry silent_cache tuple then), learned ends, zones found from offsets or
                # public holidays
                state = {k: v for k, v in obj.__getstate__().items() if k not in (
                    "heard_ts", "ended", "zones", "worked_holidays", "holiday_next", "holiday_watch", "worked_names")}
                return copyreg.__newobj__, (WorkflowState,), {**state, "silent_cache": (math.nan, None)}
            if isinstance(obj, CalendarConfig):  # settings that knew no public holidays
                state = obj.__getstate__()
                fields = {k: v for k, v in state["__dict__"].items() if k != "public_holidays"}
                return copyreg.__newobj__, (CalendarConfig,), {**state, "__dict__": fields}
            if isinstance(obj, StageState):
                state = {k: v for k, v in obj.__getstate__().items() if k not in (
                    "moved_on", "late_returns", "filled", "longest", "fill_until")}
                # the slowdowns' times alone (all the stage's test's then)
                return copyreg.__newobj__, (StageState,), {**state, "slowdowns": [t for t, _by in obj.slowdowns]}
            if isinstance(obj, SegmentStats):  # no test of its own
                state = {k: v for k, v in obj.__getstate__().items() if k != "drift"}
                return copyreg.__newobj__, (SegmentStats,), state
            return NotImplemented

    stage = next(iter(first.workflows["sales"].states))
    first.workflows["sales"].states[stage].slowdowns = [(1.0, "")]  # one long before the flapping window
    old = io.BytesIO()
    OldPickler(old, protocol=pickle.HIGHEST_PROTOCOL).dump(first._state_dict(with_items=True))
    restored = Engine.restore(old.getvalue(), make_settings(silence_enabled=True))
    assert restored.workflows["sales"].states[stage].slowdowns == [(1.0, "")]  # pickled as [1.0]
    assert pickle.loads(old.getvalue())["workflows"]["sales"].cfg.calendar.public_holidays == "none"  # as before
    got += feed(restored, hist[cut:])
    assert [(a.alert_id, a.status, a.at) for a in got] == [(a.alert_id, a.status, a.at) for a in expected]
    wf = restored.workflows["sales"]
    assert wf.silent_after(wf.last_ts) is not None


def test_settings_pickled_before_a_setting_existed_load_as_that_version_ran() -> None:
    """Snapshots carry settings: a field an old pickle lacks takes the value that keeps the old
    behaviour where one is declared (no public holidays), else its default."""
    settings = load_settings(None, workflows={"ops": {"calendar": {"timezone": "Europe/Berlin"}}})

    class OldPickler(pickle.Pickler):
        def reducer_override(self, obj: object) -> object:
            if isinstance(obj, (CalendarConfig, EngineConfig)):
                state = obj.__getstate__()
                gone = "public_holidays" if isinstance(obj, CalendarConfig) else "warmup"
                fields = {k: v for k, v in state["__dict__"].items() if k != gone}
                return copyreg.__newobj__, (type(obj),), {**state, "__dict__": fields}
            return NotImplemented

    old = io.BytesIO()
    OldPickler(old, protocol=pickle.HIGHEST_PROTOCOL).dump(settings)
    back = pickle.loads(old.getvalue())
    assert back.workflows["ops"].calendar.public_holidays == "none" and back.workflows["ops"].calendar.public_spec is None
    assert back.engine.warmup == EngineConfig().warmup
    assert back.workflows["ops"].calendar.timezone == "Europe/Berlin"
    assert pickle.loads(pickle.dumps(settings)) == settings  # a whole pickle is untouched


def members_match(eng: Engine) -> bool:
    """Each stage-state's ``members`` are exactly the open items standing in it."""
    for wf in eng.workflows.values():
        for state in wf.states.values():
            standing = {e: id(i) for e, i in eng.items.items() if i.state is state}
            if {e: id(i) for e, i in state.members.items()} != standing:
                return False
    return True


def test_item_export_and_learned_state_rebuild_the_same_engine():
    hist = normal_history(n=70, seed=9)
    eng = Engine(make_settings())
    eng.dirty = set()
    feed(eng, hist)
    t = hist[-1].timestamp
    eng.process(ev("open-1", "contract", t))
    items = [(e, eng.export_item(e)) for e in eng.items]
    rebuilt = Engine.restore_parts(eng.snapshot_learned(), items, make_settings(), t)
    assert rebuilt.open_items == eng.open_items
    assert members_match(rebuilt) and members_match(Engine.restore(eng.snapshot(), make_settings()))
    later = t + 40 * DAY
    a = sorted((x.alert_id, x.status) for x in eng.tick(later))
    b = sorted((x.alert_id, x.status) for x in rebuilt.tick(later))
    assert a == b and a


def test_events_far_ahead_of_the_wall_clock_are_rejected_with_a_reason():
    check_not_future(T0 + 3600, T0, DAY)
    with pytest.raises(EventRejected, match="ahead of the clock"):
        check_not_future(T0 + 2 * DAY, T0, DAY)


def test_cardinality_is_capped_and_counted():
    eng = Engine(load_settings(None, engine={"max_workflows": 3, "max_stages_per_workflow": 4, "allowed_lateness_seconds": 0}))
    for i in range(50):
        eng.process(Event(f"e{i}", f"wf{i}", f"x{i}", f"stage{i}", T0 + i, {}, None))
    assert len(eng.workflows) <= 4  # three plus "other"
    assert all(len(w.states) <= 5 for w in eng.workflows.values())
    assert eng.counters.overflow["workflow"] >= 46


def test_waiting_on_is_judged_against_the_wait_baseline():
    eng = Engine(make_settings())
    rng = random.Random(2)
    events = []
    for i in range(40):
        t = T0 + i * 3600
        events += [
            ev(f"w{i}", "contract", t),
            ev(f"w{i}", "contract", t + 600, waiting_on="legal"),
            ev(f"w{i}", "won", t + 600 + 5 * DAY * rng.lognormvariate(0, 0.2)),
        ]
    feed(eng, sorted(events, key=lambda e: e.timestamp))
    t = T0 + 60 * DAY
    eng.process(ev("w-new", "contract", t, waiting_on="legal"))
    view = eng.item_view("w-new", t + 3600)
    assert view.waiting_on == "legal" and view.threshold_seconds > 5 * DAY


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 6),  # entity
            st.sampled_from(["lead", "contract", "won", "lost"]),
            st.integers(0, 40 * 24),  # hour
            st.booleans(),  # duplicate
        ),
        max_size=120,
    ),
    st.integers(0, 3),
)
def test_any_order_or_duplication_never_crashes_nor_double_fires(rows, seed):
    eng = Engine(make_settings(warmup=3, allowed_lateness_seconds=3600))
    rng = random.Random(seed)
    events = []
    for ent, stage, hour, dup in rows:
        e = ev(f"e{ent}", stage, T0 + hour * 3600.0)
        events.append(e)
        if dup:
            events.append(e)
    rng.shuffle(events)
    state: dict[str, str] = {}
    out = []
    for i, e in enumerate(events):
        out += eng.process(e)
        if i % 5 == 0:
            out += eng.tick(max(x.timestamp for x in events[: i + 1]))
        assert members_match(eng)
    out += eng.flush() + eng.tick(T0 + 100 * DAY)
    assert members_match(eng) and members_match(Engine.restore(eng.snapshot(), eng.settings))
    for a in out:
        prev = state.get(a.alert_id)
        assert prev != a.status, f"{a.alert_id} went {prev} -> {a.status}"
        state[a.alert_id] = a.status


def test_feedback_raises_a_stage_limit_within_bounds_and_true_lowers_it_back():
    eng = Engine(make_settings())
    feed(eng, normal_history())
    st = eng.workflows["sales"].states[("contract", None)]
    base, _ = eng._limit(st, "smb")
    assert eng.feedback("sales", "contract", "smb", False) == pytest.approx(1.2)
    assert eng._limit(st, "smb")[0] == pytest.approx(base * 1.2)
    for _ in range(10):
        eng.feedback("sales", "contract", "smb", False)
    assert eng._limit(st, "smb")[0] == pytest.approx(base * 2.0)  # feedback_max_factor
    for _ in range(10):
        eng.feedback("sales", "contract", "smb", True)
    assert eng._limit(st, "smb")[0] == pytest.approx(base)  # never below the learned limit
    assert eng._limit(st, "enterprise")[0] != base * 2.0  # other segments untouched


def test_an_item_whose_next_event_waits_in_the_lateness_buffer_is_not_paged():
    """The event that moves the item has arrived but waits out the allowed lateness when the item's
    limit passes: no page (the item moved on in time), while a truly stalled item still pages."""
    eng = Engine(make_settings(allowed_lateness_seconds=3600))
    hist = normal_history()
    feed(eng, hist)
    t = hist[-1].timestamp + 7200
    for name in ("moving", "stuck"):
        eng.process(ev(name, "lead", t))
        eng.process(ev(name, "contract", t + 60))
    eng.tick(t + 2 * 3600)  # both entries released from the buffer
    limit = eng.item_view("moving", t + 2 * 3600).threshold_seconds
    assert limit is not None
    cross = t + 60 + limit
    eng.process(ev("moving", "won", cross - 600))  # 10 minutes before its limit, still buffered
    pages = eng.tick(cross + 60) + eng.tick(cross + 1800) + eng.tick(cross + 7200)
    paged = {a.entity_id for a in pages if a.kind == "stalled" and a.status == "firing"}
    assert paged == {"stuck"}
    assert "moving" not in eng.items  # it closed at won when its event was released


def test_an_item_idle_for_item_idle_days_is_no_longer_tracked_and_its_page_resolves():
    eng = Engine(make_settings(item_idle_days=30))
    hist = normal_history()
    feed(eng, hist)
    t = hist[-1].timestamp + 7200
    eng.process(ev("gone", "lead", t))
    eng.process(ev("gone", "contract", t + 60))
    fired = [a for a in eng.tick(t + 20 * DAY) if a.entity_id == "gone"]
    assert [(a.kind, a.status) for a in fired] == [("stalled", "firing")]
    assert eng.tick(t + 29 * DAY) == [] and "gone" in eng.items
    resolved = [a for a in eng.tick(t + 30 * DAY + 60) if a.entity_id == "gone"]
    assert [(a.kind, a.status) for a in resolved] == [("stalled", "resolved")]
    assert "no longer tracked" in resolved[0].details["resolution"]
    assert "gone" not in eng.items and eng.counters.expired == {"sales": 1}
    assert sum(s.wip for s in eng.stage_views(t + 31 * DAY) if s.stage == "contract") == 0
    assert eng.workflows["sales"].states[("contract", None)].flow.wip == 0  # out of the backlog's queue too
    # a new event for it starts it over, as for any closed item
    assert eng.process(ev("gone", "contract", t + 31 * DAY)) == [] and "gone" in eng.items


@pytest.mark.parametrize("lateness", [0, 1800, 3600])
def test_a_source_applied_an_allowed_lateness_behind_the_clock_is_not_quiet(lateness):
    # a busy source (a deal every 4 minutes, silent after ~30 minutes without an event) replayed with
    # its events applied `lateness` behind the clock: read as a quiet source, it held every due page
    # until the item moved on (the reviewer's 400 deals a day at 15 minutes: 212 of 1288 stalls paged)
    from monitor.backtest import replay

    rng = random.Random(2)
    events = []
    t = T0
    for i in range(4000):
        t += rng.expovariate(1 / 240)
        d = 7200 * rng.lognormvariate(0, 0.4)
        events += [ev(f"d{i}", "lead", t), ev(f"d{i}", "contract", t + 60), ev(f"d{i}", "won", t + 60 + d)]
    events.sort(key=lambda e: e.timestamp)
    eng = Engine(make_settings(silence_enabled=True, allowed_lateness_seconds=lateness, warmup=30))
    list(replay(eng, ((e, None) for e in events if e.timestamp < T0 + 10 * DAY), finish=False))
    wf = eng.workflows["sales"]
    assert wf.rate.silent_after(wf.last_ts) - wf.last_ts < 2 * 3600
    assert not eng._quiet(wf, wf.last_ts + lateness)  # noqa: SLF001 - its judgement at the usual lag


def test_a_usually_instant_step_is_not_stalled_sooner_than_events_may_arrive_late():
    eng = Engine(make_settings(allowed_lateness_seconds=300))
    rng = random.Random(2)
    t = T0
    for i in range(60):  # "check" takes ~20 s
        eng.process(ev(f"c{i}", "check", t))
        eng.process(ev(f"c{i}", "won", t + 20 * rng.lognormvariate(0, 0.3)))
        t += 600
    eng.tick(t)
    eng.process(ev("slow", "check", t))
    eng.process(ev("other", "check", t + 400))  # moves the watermark past "slow": it is applied
    assert eng.tick(t + 250) == []  # past the ~80 s the baseline alone would allow
    assert eng.item_view("slow", t + 250).threshold_seconds == 300.0
    pages = eng.tick(t + 301)
    assert [(a.entity_id, a.kind) for a in pages if a.status == "firing"] == [("slow", "stalled")]


def test_a_slower_segment_still_warming_is_not_judged_by_the_faster_stage_limit():
    """smb deals take ~1 day in contract, enterprise ~4; with only a few enterprise completions the
    stage-level limit (mostly smb) would page enterprise deals at ~1.5x their own typical."""
    eng = Engine(make_settings(warmup=30))
    rng = random.Random(8)
    t = T0
    for i in range(200):
        seg = "enterprise" if i % 20 == 0 else "smb"  # 10 enterprise completions: that segment is warming
        d = (4 if seg == "enterprise" else 1) * DAY * rng.lognormvariate(0, 0.3)
        feed(eng, [ev(f"d{i}", "contract", t, segment=seg), ev(f"d{i}", "won", t + d, segment=seg)])
        t += 3600
    eng.process(ev("big", "contract", t, segment="enterprise"))
    view = eng.item_view("big", t)
    typical_enterprise = 4 * DAY
    assert view.threshold_seconds > 3.5 * typical_enterprise  # the stage's limit in enterprise units


def test_a_few_stalls_early_in_a_busy_stage_page_rather_than_read_as_a_stage_wide_slowdown():
    """Ten deals a day, contract ~1 day; five deals stall in the same few days of the second week.
    With little crossing history every crossing looked like a burst and all five were held; five
    of ~40 arrivals in a window is within the alert budget, so they page."""
    eng = Engine(make_settings())
    rng = random.Random(9)
    events = []
    for i in range(300):
        t = T0 + i * 8640.0
        stuck = i in (100, 103, 106, 109, 112)
        events += [ev(f"d{i}", "contract", t)]
        if not stuck:
            events += [ev(f"d{i}", "won", t + DAY * rng.lognormvariate(0, 0.3))]
    alerts = feed(eng, sorted(events, key=lambda e: e.timestamp))
    # they entered on days 10-11 and cross their ~5-day limit on days 15-16: paged then (the last two
    # were held until day 21 before), not days later
    paged = {a.entity_id for a in alerts if a.kind == "stalled" and a.status == "firing"
             and parse_timestamp(a.at) < T0 + 17 * DAY}
    assert {"d100", "d103", "d106", "d109", "d112"} <= paged
    assert len(paged) <= 7


def _open_stage_settings():
    # no terminal stage configured: "done" must be learned from the data
    return load_settings(None, engine={"warmup": 10, "allowed_lateness_seconds": 0, "silence_enabled": False,
                                       "backlog_enabled": False, "terminal_learn_min_items": 20},
                         workflows={"sales": {"calendar": {"mode": "wall"}}})


def _into_done(eng, n, start=T0):
    """n deals spend about an hour in "lead" and then sit in "done", which nobody ever leaves."""
    events = []
    for i in range(n):
        t = start + i * 600
        events += [ev(f"d{i}", "lead", t), ev(f"d{i}", "done", t + 3600 + i)]
    return feed(eng, sorted(events, key=lambda e: e.timestamp))


def test_items_of_a_stage_nobody_has_left_are_parked_until_its_first_completion():
    eng = Engine(_open_stage_settings())
    _into_done(eng, 10)
    idle = eng.ec.item_idle_days * DAY
    done = [eng.items[f"d{i}"] for i in range(10)]
    # nothing can give "done" a limit before one of its items completes: no re-check before idle
    assert all(item.due == item.last_ts + idle for item in done)
    eng.tick(T0 + 3 * DAY)
    assert all(item.due == item.last_ts + idle for item in done)
    # the first completion wakes the others: from then on they are warming, re-checked soon
    t = T0 + 3 * DAY + 60
    eng.process(ev("d0", "invoiced", t))
    assert all(t < item.due < t + 7 * DAY + 1 for item in done[1:])


def test_a_stage_nobody_ever_leaves_is_learned_terminal_and_its_parked_items_close():
    eng = Engine(_open_stage_settings())
    _into_done(eng, 40)
    eng.tick(T0 + 2 * DAY)  # long after 3 x the longest other stage's p99: stage checks find it terminal
    done = eng.workflows["sales"].states[("done", None)]
    assert done.terminal
    assert not eng.items
    assert done.wip == 0


def _orders(n: int, goes_on: float, days_in_stage: float, seed: int = 3) -> list[Event]:
    """n orders: "placed" for about an hour, then "confirmed"; a share ``goes_on`` of them moves on
    to "delivered" after about ``days_in_stage`` days (lognormal), the others end at "confirmed"."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        t = T0 + i * 1800
        c = t + 3600 * rng.lognormvariate(0, 0.3)
        events += [ev(f"o{i}", "placed", t), ev(f"o{i}", "confirmed", c)]
        if rng.random() < goes_on:
            events.append(ev(f"o{i}", "delivered", c + days_in_stage * DAY * rng.lognormvariate(0, 0.5)))
    return sorted(events, key=lambda e: e.timestamp)


def test_a_stage_most_items_end_at_is_learned_terminal_though_a_few_pass_through():
    """A log that ends most cases at "confirmed" while one in seven goes on to "delivered" within
    hours (the pm4py interval log: 689 of its 829 pages were such cases): once most of its items
    have rested there ten times longer than any moved on, the stage is where items end. Pages fired
    while that was being learned resolve, later items close there without paging."""
    eng = Engine(_open_stage_settings())
    alerts = feed(eng, _orders(1500, goes_on=1 / 7, days_in_stage=0.1))
    confirmed = eng.workflows["sales"].states[("confirmed", None)]
    assert confirmed.terminal
    firing = {a.alert_id for a in alerts if a.kind == "stalled" and a.status == "firing"}
    resolved = {a.alert_id for a in alerts if a.kind == "stalled" and a.status == "resolved"}
    assert firing <= resolved  # no page left open on a finished order
    late = [a for a in alerts if a.kind == "stalled" and a.status == "firing" and parse_timestamp(a.at) > T0 + 20 * DAY]
    assert late == []
    assert not [i for i in eng.items.values() if i.state is confirmed]


def test_a_slow_stage_taken_for_an_end_is_watched_again_once_its_items_come_back():
    """Nine in ten orders leave "confirmed" after ~10 days. Before the first one does, a stage nobody
    has left hours after the others' p99 reads as an end, and its items close there. When they come
    back (they moved on after all), the stage is one items pass through and is watched again: an
    order that then rests there pages as stalled."""
    eng = Engine(_open_stage_settings())
    events = _orders(1500, goes_on=0.9, days_in_stage=10)
    feed(eng, events)
    confirmed = eng.workflows["sales"].states[("confirmed", None)]
    assert not confirmed.terminal
    assert confirmed.moved_on > 0.4 * confirmed.flow.arrivals
    t = events[-1].timestamp
    eng.process(ev("stuck", "placed", t))
    eng.process(ev("stuck", "confirmed", t + 3600))
    fired = feed(eng, [ev("other", "placed", t + 150 * DAY)], step=3600.0)
    assert [a.kind for a in fired if a.entity_id == "stuck" and a.status == "firing"] == ["stalled"]


def test_a_stage_worked_once_a_week_stays_watched_and_learns_its_waits():
    """Invoices wait in "payment_run" for Monday's run (0-7 days). Before the first run it reads as an
    end; when its invoices come back it is watched again, and must stay so: it became an end again two
    days later, on the p99 of the one invoice it had seen leave, and flipped every week, learning from
    almost nothing (an invoice stuck for weeks went unpaged, the waits of the rest paged)."""
    eng = Engine(_open_stage_settings())
    rng = random.Random(23)
    monday = T0 + 4 * DAY  # 2026-01-05
    events, t, flips, was = [], T0, 0, False
    for i in range(1200):
        t += rng.expovariate(20 / DAY)
        entered = t + 6 * 3600 * rng.lognormvariate(0, 0.6)
        week = monday + ((entered - monday) // (7 * DAY)) * 7 * DAY
        run = week + 9 * 3600 if entered <= week + 11 * 3600 else week + 7 * DAY + 9 * 3600
        events += [ev(f"inv-{i}", "submitted", t), ev(f"inv-{i}", "payment_run", entered),
                   ev(f"inv-{i}", "paid", max(run, entered) + rng.uniform(0, 3 * 3600))]
    events.sort(key=lambda e: e.timestamp)
    for k in range(0, len(events), 200):
        feed(eng, events[k:k + 200])
        st = eng.workflows["sales"].states.get(("payment_run", None))
        if st is not None and st.terminal != was:
            flips, was = flips + 1, st.terminal
    st = eng.workflows["sales"].states[("payment_run", None)]
    assert not st.terminal and flips <= 2  # taken for an end once, watched again once
    assert st.all.baseline.n > 500 and 2 * DAY < st.all.baseline.typical() < 5 * DAY


def _minutely(eng: Engine, clock: EventClock, start: float, end: float, fired: list) -> None:
    """One event a minute of workflow "ops" in [start, end), ticked like a backtest."""
    t = start
    while t < end:
        e = Event(f"o{t}", "ops", f"o{t}", "open", t, {}, None)
        fired += clock.advance(eng, t) + eng.process(e)
        t += 60.0


@pytest.mark.parametrize("straggler", [False, True])
def test_no_silence_while_the_sources_latest_event_waits_in_the_lateness_buffer(straggler: bool) -> None:
    settings = load_settings(None, engine={"allowed_lateness_seconds": 300, "backlog_enabled": False})
    eng, clock, fired = Engine(settings), EventClock(60.0), []
    _minutely(eng, clock, T0, T0 + 8 * DAY, fired)  # every hour of the week seen
    last = T0 + 8 * DAY - 60
    fired += clock.advance(eng, last + 600)  # past the lateness: every event applied, no silence yet
    limit = eng.workflows["ops"].silent_after(last)
    assert limit is not None and last + 1200 < limit < last + 3600  # one a minute: silent after ~30 minutes
    if straggler:  # one event shortly before the limit, still buffered when the ticks pass the limit
        t = limit - 60
        fired += clock.advance(eng, t) + eng.process(Event("late-one", "ops", "late-one", "open", t, {}, None))
    fired += clock.advance(eng, limit + 120)
    silent = [a for a in fired if a.kind == "source_silent"]
    assert len(silent) == (0 if straggler else 1)


def _office_source(days: int, quiet: set[int], zone: str = "UTC", first: str = "2026-03-02",
                   per_hour: float = 20.0) -> list[Event]:
    """~``per_hour`` events an hour, 9:00-17:00 local on weekdays from Monday ``first``, none on the days
    (from then) in ``quiet``; timestamps in UTC, naming no zone."""
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    rng, out, monday = random.Random(7), [], date.fromisoformat(first)
    for d in range(days):
        if d % 7 >= 5 or d in quiet:
            continue
        day = monday + timedelta(days=d)
        t = datetime(day.year, day.month, day.day, 9, tzinfo=ZoneInfo(zone)).timestamp()
        end = t + 8 * 3600
        while (t := t + rng.expovariate(per_hour / 3600)) < end:
            out.append(Event(f"e{t}", "ops", f"x{len(out)}", "open", t, {}, None))
    return out


def test_a_calendar_edit_while_auto_learns_the_week_keeps_what_it_learned() -> None:
    """A holiday added to an ``auto`` calendar in its first week: the week it learns, and decides, is
    the same as without the edit (the profile was thrown away: a guess froze as a 56-hour week)."""
    events = _office_source(42, set())

    def settings(holidays: list[str]) -> Any:
        return load_settings(None, engine={"allowed_lateness_seconds": 0, "silence_enabled": False,
                                           "backlog_enabled": False},
                             workflows={"ops": {"calendar": {"mode": "auto", "holidays": holidays}}})

    weeks = []
    for edit_on in (None, 3, 10):  # never; in the first week; after the first guess
        eng = Engine(settings([]))
        for k, e in enumerate(events):
            if edit_on is not None and e.timestamp >= events[0].timestamp + edit_on * DAY and k and \
                    events[k - 1].timestamp < events[0].timestamp + edit_on * DAY:
                eng.reconfigure(settings(["2026-04-02"]))
            eng.process(e)
        wf = eng.workflows["ops"]
        assert wf.profile is None and wf.business  # decided
        weeks.append(wf.clock.snapshot()["intervals"])
    assert weeks[0] == weeks[1] == weeks[2]
    assert 35 <= sum(e - s for s, e in weeks[0]) / 3600 <= 45  # about 9 to 5 on weekdays


@pytest.mark.parametrize(("holidays", "quiet", "silent_on"), [
    ((), {17}, ["2026-03-19"]),  # a Thursday off that nobody told it of reads as an outage
    (("2026-03-19",), {17}, []),  # in the settings: no event is due that day
    (("2026-03-19",), {17, 18}, ["2026-03-20"]),  # ... and the Friday after it still is
])
@pytest.mark.parametrize("partitions", [1, 2])  # one engine, or two judging the source together
def test_a_holiday_in_the_settings_is_no_silence(holidays: tuple[str, ...], quiet: set[int],
                                                 silent_on: list[str], partitions: int) -> None:
    from monitor.backtest import replay

    settings = load_settings(None, engine={"backlog_enabled": False}, workflows={"ops": {"calendar": {
        "mode": "business", "timezone": "UTC", "holidays": list(holidays)}}})
    engines = [Engine(settings, scope=f"partition-{p}" if partitions > 1 else None) for p in range(partitions)]
    alerts = list(replay(engines if partitions > 1 else engines[0], ((e, None) for e in _office_source(25, quiet))))
    fired = [a.at for a in alerts if a.kind == "source_silent" and a.status == "firing"]
    assert [at[:10] for at in fired] == silent_on
    assert all(at[11:13] in ("09", "10") for at in fired), fired  # early in the working day (10:07 here)


def _berlin_office(public: str, quiet: set[int], until: str | None = None, partitions: int = 1,
                   batch: bool = False, per_hour: float = 20.0) -> tuple[list[Alert], list[Engine]]:
    """Replay ~``per_hour`` events an hour of a Berlin office (zone in the settings, 9-17 local on weekdays from
    Monday 2 March 2026, none on the days in ``quiet``; with ``until``, none from that instant to the
    Monday after; with ``batch``, an export of an event a minute from 7:00 to 8:00 every day, days off
    too) with the public holidays ``public``, on ``partitions`` engines; the source_silent alerts."""
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    from monitor.backtest import replay

    settings = load_settings(None, engine={"backlog_enabled": False}, workflows={"ops": {"calendar": {
        "mode": "business", "timezone": "Europe/Berlin", "public_holidays": public}}})
    events = _office_source(77, quiet, "Europe/Berlin", per_hour=per_hour)
    if batch:
        for d in range(77):
            day = date(2026, 3, 2) + timedelta(days=d)
            t = datetime(day.year, day.month, day.day, 7, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
            events += [Event(f"b{d}-{k}", "ops", f"b{d}-{k}", "open", t + 60 * k) for k in range(60)]
        events.sort(key=lambda e: e.timestamp)
    if until is not None:
        stop = parse_timestamp(until)
        events = [e for e in events if not stop <= e.timestamp < stop + 2.5 * DAY]
    engines = [Engine(settings, scope=f"partition-{p}" if partitions > 1 else None) for p in range(partitions)]
    alerts = replay(engines if partitions > 1 else engines[0], ((e, None) for e in events))
    return [a for a in alerts if a.kind == "source_silent"], engines


GOOD_FRIDAY, EASTER_MONDAY, LABOUR_DAY, ASCENSION = 32, 35, 60, 73  # days from Monday 2 March 2026


@pytest.mark.parametrize(("public", "batch", "silent_on"), [
    ("auto", False, []),  # Germany's, from the zone: Easter, Labour Day and Ascension Day are days off
    ("DE-BY", False, []),  # ... or a country's (and region's) by name
    ("auto", True, []),  # ... also with a morning export every day: what comes on a day off is no working day
    ("none", False, ["2026-04-03", "2026-05-01", "2026-05-14"]),  # none: each reads as an outage (to the next workday)
])
def test_public_holidays_of_the_zones_country_are_no_silence(public: str, batch: bool, silent_on: list[str]) -> None:
    fired, (eng,) = _berlin_office(public, {GOOD_FRIDAY, EASTER_MONDAY, LABOUR_DAY, ASCENSION}, batch=batch)
    on_holidays = [a.at[:10] for a in fired if a.status == "firing" and a.at[:10] in
                   ("2026-04-03", "2026-04-06", "2026-05-01", "2026-05-14")]
    assert on_holidays == silent_on
    assert eng.workflows["ops"].worked_holidays == ()


@pytest.mark.parametrize(("partitions", "per_hour"), [(1, 20.0), (8, 4.0)])
def test_a_public_holiday_the_source_works_on_is_a_working_day(partitions: int, per_hour: float) -> None:
    # open on Labour Day (Friday 1 May, a German public holiday), and then stopped at 13:00: within the
    # first hours of that day it is taken back as a working day, so the stop is an outage paged that
    # afternoon, not one first seen on Monday morning. With partitions, by all of them together (8 of a
    # source of 4 events an hour: alone, none saw enough that morning, and no page came at all)
    from datetime import date

    closed = {GOOD_FRIDAY, EASTER_MONDAY, ASCENSION}
    fired, engines = _berlin_office("auto", closed, until="2026-05-01T13:00:00+02:00", partitions=partitions,
                                    per_hour=per_hour)
    for eng in engines:
        wf = eng.workflows["ops"]
        assert wf.worked_holidays == (date(2026, 5, 1),)
        assert date(2026, 5, 1) not in wf.clock.holidays and date(2026, 5, 14) in wf.clock.holidays  # Ascension
    if partitions == 1:  # (a source this sparse, split 8 ways, is not paged silent that day, holiday or not)
        pages = [a.at for a in fired if a.status == "firing"]
        assert len(pages) == 1 and pages[0].startswith("2026-05-01T11"), pages  # 13:xx in Berlin
    restored = Engine.restore(engines[0].snapshot(), engines[0].settings).workflows["ops"]
    assert restored.worked_holidays == (date(2026, 5, 1),) and restored.worked_names == ("Labor Day",)


def test_a_public_holiday_worked_one_year_is_watched_the_next() -> None:
    # a New York office open on Columbus Day and closed on the other public holidays: Thanksgiving and
    # Christmas are no outage (two working public holidays in a row once made every one a working day,
    # and both were paged silent), and a stop at 9:30 on the next year's Columbus Day is paged that morning
    from datetime import date

    from monitor.backtest import replay

    first = date(2026, 8, 31)  # a Monday
    closed = {(d - first).days for d in (date(2026, 9, 7), date(2026, 11, 11), date(2026, 11, 26), date(2026, 12, 25),
                                         date(2027, 1, 1), date(2027, 1, 18), date(2027, 2, 15), date(2027, 5, 31),
                                         date(2027, 6, 18), date(2027, 7, 5), date(2027, 9, 6))}
    events = _office_source(412, closed, "America/New_York", first.isoformat(), per_hour=8.0)
    stop = parse_timestamp("2027-10-11T09:30:00-04:00")  # Columbus Day 2027
    events = [e for e in events if not stop <= e.timestamp < stop + 2.5 * DAY]
    settings = load_settings(None, engine={"backlog_enabled": False}, workflows={"ops": {"calendar": {
        "mode": "business", "timezone": "America/New_York", "start_hour": 9, "end_hour": 17}}})
    eng = Engine(settings)
    fired = [a.at for a in replay(eng, ((e, None) for e in events)) if a.kind == "source_silent" and a.status == "firing"]
    assert eng.workflows["ops"].worked_names == ("Columbus Day",)
    assert len(fired) == 1 and fired[0].startswith("2027-10-11T1"), fired  # that morning (UTC-4)


@pytest.mark.parametrize(("public", "error"), [
    ("XX", "unknown country 'XX'"),
    ("US-ZZ", "US has no region 'ZZ'"),
])
def test_unknown_public_holidays_are_a_clear_error(public: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        load_settings(None, workflows={"ops": {"calendar": {"public_holidays": public}}})


@pytest.mark.parametrize("mode", ["wall", "auto"])
def test_a_holiday_in_the_settings_is_no_rest_for_a_round_the_clock_source(mode: str) -> None:
    # a source that runs on holidays too stops half an hour into one in its settings: an outage, paged
    # within the hour as on any day (24.6 hours later when every holiday was taken for a day off)
    settings = load_settings(None, engine={"backlog_enabled": False}, workflows={"ops": {"calendar": {
        "mode": mode, "holidays": ["2026-01-10"]}}})
    eng, clock, fired = Engine(settings), EventClock(60.0), []
    stop = T0 + 9 * DAY + 1800  # 2026-01-10 00:30 UTC
    _minutely(eng, clock, T0, stop, fired)
    fired += clock.advance(eng, stop + 6 * 3600)
    silent = [parse_timestamp(a.at) for a in fired if a.kind == "source_silent" and a.status == "firing"]
    assert len(silent) == 1 and silent[0] - stop < 3600


@pytest.mark.parametrize(("gap", "silent_at"), [
    (None, []),  # the office's day moved an hour earlier in UTC: its first evening is no outage
    (("2026-03-31T00:00", "2026-04-01T00:00"), ["2026-03-31T07"]),  # ... and a Tuesday without events still is
    (("2026-03-31T10:00", "2026-03-31T23:00"), ["2026-03-31T10"]),  # ... as is a stop at noon (local): at once
])
def test_an_office_whose_zone_is_not_known_yet_is_not_silent_at_a_daylight_saving_change(
        gap: tuple[str, str] | None, silent_at: list[str]) -> None:
    # a Berlin office writing UTC timestamps from February on: its rates are learned in UTC hours, and
    # on the Monday after the spring change (29 March) it closed at 15:00 UTC, not 16:00; paged silent at
    # 15:56 UTC, for 15 hours, before its zone could be seen
    from monitor.backtest import replay

    events = _office_source(68, set(), "Europe/Berlin", "2026-02-02")
    if gap is not None:
        a, b = (parse_timestamp(f"{t}:00Z") for t in gap)
        events = [e for e in events if not a <= e.timestamp < b]
    engine = Engine(load_settings(None, engine={"backlog_enabled": False}))
    alerts = list(replay(engine, ((e, None) for e in events)))
    fired = [a.at for a in alerts if a.kind == "source_silent" and a.status == "firing"]
    assert [at[:13] for at in fired] == silent_at, fired
    assert engine.workflows["ops"].business


def test_a_segment_feeds_the_shift_detector_only_once_its_own_typical_is_warm():
    """Durations reach the drift detector relative to their segment's typical; a typical resting on
    a handful of items still moves as it learns, which reads as a shift of the stage."""
    eng = Engine(make_settings(warmup=10))
    feed(eng, normal_history(n=120))  # smb: long enough for the stage to be representative
    st = eng.workflows["sales"].states[("contract", None)]
    fed = st.drift.n  # none yet: ten days of history are not twice the stage's limit
    start = T0 + 120 * 7200 + 30 * DAY
    later = [e for i in range(15) for e in (
        ev(f"ent{i}", "lead", start + i * 7200, segment="enterprise"),
        ev(f"ent{i}", "contract", start + i * 7200 + 3600, segment="enterprise"),
        ev(f"ent{i}", "won", start + i * 7200 + 3600 + 2 * DAY, segment="enterprise"),
    )]
    feed(eng, sorted(later, key=lambda e: e.timestamp))
    assert st.segments["enterprise"].baseline.n == 15
    assert st.drift.n - fed == 15 - 9  # from its 10th (warmup) on: the first 9 only warm its typical


def test_source_rates_are_binned_in_the_configured_time_zone():
    """Office traffic starts at 8:00 local: in UTC that hour moves with daylight saving, so a
    UTC-binned rate learned in summer expects events an hour early in winter. A configured calendar
    zone bins the source's rate in local time (it was always UTC)."""
    s = load_settings(None, engine={"allowed_lateness_seconds": 0},
                      workflows={"sales": {"calendar": {"mode": "wall", "timezone": "Europe/Amsterdam"}}})
    eng = Engine(s)
    eng.process(ev("d1", "lead", T0))
    assert eng.workflows["sales"].rate.timezone == "Europe/Amsterdam"


def test_a_time_zone_set_by_a_settings_reload_rebins_the_source_rate():
    """A zone named later (hot reload) bins the source's rate in it from then on, keeping what was
    learned: the bins turn by the zones' offset difference rather than starting over."""
    eng = Engine(load_settings(None, engine={"allowed_lateness_seconds": 0}))
    for i in range(50):
        eng.process(ev(f"d{i}", "lead", T0 + i * 600))
    rate = eng.workflows["sales"].rate
    before = list(rate.counts)
    eng.reconfigure(load_settings(None, engine={"allowed_lateness_seconds": 0},
                                  workflows={"sales": {"calendar": {"mode": "wall", "timezone": "Asia/Tokyo"}}}))
    assert rate.timezone == "Asia/Tokyo"
    assert list(rate.counts) == before[-9:] + before[:-9]  # UTC+9: every bin 9 hours later
    assert sum(rate.counts) == 50


def test_an_idle_stretch_slows_the_stage_checks_and_an_event_restores_their_pace():
    """Without events nothing the backlog and learned-end checks judge moves much: they double their
    interval up to IDLE_CHECK_MAX (a 13-year sparse log replayed 5x faster); the next event brings
    back the 300 s pace."""
    from monitor.engine import IDLE_CHECK_MAX, STAGE_CHECK_EVERY

    e = Engine(make_settings(backlog_enabled=True))
    history = normal_history(30)
    for x in history:
        e.process(x)
    calls: list[float] = []

    def tick(now: float) -> None:
        scheduled = e.next_flow_check
        e.tick(now)
        if e.next_flow_check != scheduled:  # the checks ran and set their next time
            calls.append(now)

    last = max(x.timestamp for x in history)
    for k in range(1, 2 * 288 + 1):  # two quiet days, ticked every 300 s
        tick(last + STAGE_CHECK_EVERY * k)
    assert 8 <= len(calls) <= 16  # 5, 10, 20 ... 320 min, then every 6 h (576 ticks before)
    assert e.flow_every == IDLE_CHECK_MAX
    t = last + 2 * DAY + 60
    e.process(ev("d-late", "lead", t))
    n = len(calls)
    tick(t + STAGE_CHECK_EVERY)  # the first check after an event runs, however far the idle one was
    assert len(calls) == n + 1 and e.flow_every == STAGE_CHECK_EVERY


def test_the_event_clock_skips_quiet_steps_in_one_go_whatever_the_step():
    """Steps with nothing due only move the engine's clock: a month between two events with a 1 ms
    step (2.6e9 steps) takes no time, ends on the same step grid, and a step <= 0 is refused."""
    eng = Engine()
    clock = EventClock(0.001)
    t0 = 1_767_225_600.0
    assert clock.advance(eng, t0) == [] and clock.advance(eng, t0 + 30 * 86400 + 0.0005) == []
    # on the grid up to float rounding at epoch magnitudes (a 1 ms step is ~4000 ulps there)
    assert abs(eng.clock - (t0 + 30 * 86400)) < 0.01 and clock.next_tick > t0 + 30 * 86400 + 0.0005
    with pytest.raises(ValueError, match="positive number of seconds"):
        EventClock(0.0)


def test_partitions_judge_a_source_silent_together_and_page_once():
    """With the stream split over partitions (one engine each, as the worker and backtest --partitions),
    one partition's quiet spell is no outage while the others hear the source; when all stop, the source
    is paged once (as one engine would, not N times and hours later), and it resolves when any partition
    hears the source again. Learned-state snapshots do not carry the engine (nor its peers)."""
    from monitor.backtest import replay
    from streams.app import partition_for

    ids: dict[int, list[str]] = {0: [], 1: []}
    k = 0
    while min(len(v) for v in ids.values()) < 50:
        ids[partition_for(f"t{k}".encode(), 2)].append(f"t{k}")
        k += 1
    settings = load_settings(None, engine={"backlog_enabled": False, "allowed_lateness_seconds": 0})

    def minutely(start: float, end: float, parts: tuple[int, ...]) -> list[Event]:
        out, t, i = [], start, 0
        while t < end:
            p = parts[i % len(parts)]
            e = ids[p][i % 50]
            out.append(Event(f"{e}-{t}", "ops", e, "open", t, {}, None))
            t, i = t + 60.0, i + 1
        return out

    events = minutely(T0, T0 + 8 * DAY, (0, 1))  # every hour of the week seen by both
    events += minutely(T0 + 8 * DAY, T0 + 8 * DAY + 4 * 3600, (1,))  # partition 0 hears nothing for 4 h
    end = T0 + 8 * DAY + 4 * 3600
    p0 = 0
    events += [Event("late", "ops", ids[p0][0], "open", end + 6 * 3600, {}, None)]  # 6 h without any event
    engines = [Engine(settings, scope=f"partition-{p}") for p in range(2)]
    alerts = list(replay(engines, ((e, None) for e in events)))
    silent = [(a.status, a.alert_id, a.at) for a in alerts if a.kind == "source_silent"]
    assert [s[0] for s in silent] == ["firing", "resolved"], silent
    # one alert for the source, from the partition whose clock passed the limit (the one the next event reached)
    assert silent[0][1] == silent[1][1] == alert_id("source_silent", "ops", None, None, f"partition-{p0}")
    fired_at = parse_timestamp(silent[0][2])
    assert end < fired_at < end + 3600  # one event a minute over the partitions: silent after ~30 minutes
    with_peers = len(engines[0].snapshot_learned())
    engines[0].peers = None
    assert len(engines[0].snapshot_learned()) == with_peers  # the other partitions are not in the snapshot


def _stage_tickets(partitions: int, items: int = 3000) -> tuple[list[Alert], dict[str, Any]]:
    from monitor.backtest import replay
    from monitor.simulate import simulate

    sim = simulate("slowdown", items=items, seed=1)
    events = sorted((e.to_event() for e in sim.events), key=lambda e: e.timestamp)
    engines = [Engine(scope=f"partition-{p}" if partitions > 1 else None) for p in range(partitions)]
    alerts = [a for a in replay(engines, ((e, None) for e in events)) if a.kind in ("bottleneck_shift", "backlog_growth")]
    return alerts, sim.truth["shifts"][0]


def test_partitions_ticket_a_slowdown_they_all_see_once():
    """Each partition judges its own share of a stage, so each found the slowdown of `fulfillment`: 4
    partitions, 4 shift tickets a few hours apart ("1.8x slower", "2.2x slower", ...) and 3 backlog
    tickets. The first partition to find a shift or a backlog tickets it for the stage; the others
    re-learn quietly (a backlog another partition holds is ticketed once that one resolves)."""
    alerts, shift = _stage_tickets(4)
    firing: dict[tuple[str, str, str | None], str] = {}
    for a in alerts:
        key = (a.kind, a.workflow, a.stage)
        if a.status == "firing":
            assert key not in firing or firing[key] == a.alert_id, f"two tickets at once for {key}"
            firing[key] = a.alert_id
        else:
            assert firing.pop(key) == a.alert_id
    shifts = [a for a in alerts if a.kind == "bottleneck_shift" and a.status == "firing"]
    assert [a.stage for a in shifts] == [shift["stage"]]
    one, _ = _stage_tickets(1)
    assert [a.stage for a in one if a.kind == "bottleneck_shift" and a.status == "firing"] == [shift["stage"]]


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.sampled_from(["lead", "contract", "won"]), st.integers(0, 9 * 24 * 12)),
        max_size=100,
    ),
    st.integers(2, 3),
    st.integers(8 * 24 * 12, (8 * 24 + 12) * 12),  # the source stops after this many 5-minute steps ...
    st.integers(0, 10 * 12),  # ... for this many
)
def test_partitions_never_double_fire_an_identity_even_the_shared_silence(rows, partitions, stop, length):
    """A replay with several partition engines (which judge a source's silence together and share its
    identity) never fires an identity twice without a resolve between, whatever the stream: a steady
    base (an event every 5 minutes for 9 days, so the source's weekly rate is learned) with a stop of up
    to 10 hours on the ninth day, and random events on top."""
    from monitor.backtest import replay

    base = [ev(f"e{k % 10}", ("lead", "contract", "won")[k % 3], T0 + k * 300.0)
            for k in range(9 * 24 * 12) if not stop <= k < stop + length]
    extra = [ev(f"e{ent}", stage, T0 + k * 300.0 + 7.0) for ent, stage, k in rows]
    events = sorted(base + extra, key=lambda e: e.timestamp)
    settings = make_settings(warmup=3, allowed_lateness_seconds=0, silence_enabled=True)
    engines = [Engine(settings, scope=f"partition-{p}") for p in range(partitions)]
    state: dict[str, str] = {}
    for a in replay(engines, ((e, None) for e in events), step=300.0):
        prev = state.get(a.alert_id)
        assert prev != a.status, f"{a.alert_id} ({a.kind}) went {prev} -> {a.status}"
        state[a.alert_id] = a.status


def test_a_workflow_pickles_without_its_engine_and_old_snapshots_still_load():
    """A learned-state snapshot must not carry the engine (with it every open item) through its
    workflows; a snapshot pickled before (slots state with the engine) still restores."""
    import pickle

    from monitor.engine import WORKFLOW_FIELDS, WorkflowState

    eng = Engine(make_settings())
    feed(eng, normal_history(n=40))
    wf = eng.workflows["sales"]
    assert "engine" not in wf.__getstate__()
    old_state = (None, {k: getattr(wf, k) for k in WORKFLOW_FIELDS})  # the format before __getstate__
    old = WorkflowState.__new__(WorkflowState)
    old.__setstate__(old_state)
    assert old.name == "sales" and old.states.keys() == wf.states.keys() and not hasattr(old, "engine")
    back = Engine.restore(eng.snapshot(), eng.settings)
    assert back.workflows["sales"].engine is back and back.open_items == eng.open_items
    assert len(pickle.dumps(eng.workflows)) < len(eng.snapshot())  # the items travel once, with the engine


# --------------------------------------------------------------------------- settings reloaded at runtime


def _reload_settings(stages=None, terminal=("won",), calendar=None, **engine):
    base = {"warmup": 10, "allowed_lateness_seconds": 0, "silence_enabled": False, "backlog_enabled": False}
    base.update(engine)
    wf = {"terminal_stages": list(terminal), "calendar": calendar or {"mode": "wall"}}
    if stages:
        wf["stages"] = stages
    return load_settings(None, engine=base, workflows={"sales": wf})


def _warm(settings):
    eng = Engine(settings)
    history = normal_history()
    feed(eng, history)
    return eng, history[-1].timestamp


def _in_contract(eng, t):
    """deal-42 enters contract at t + 60 on a warm engine; its limit there."""
    eng.process(ev("deal-42", "lead", t))
    eng.process(ev("deal-42", "contract", t + 60))
    return eng.item_view("deal-42", t + 60).threshold_seconds


def _ticks(eng, start, hours, entity=None):
    out = [a for k in range(1, hours) for a in eng.tick(start + k * 3600)]
    return [a for a in out if entity is None or a.entity_id == entity]


def test_a_lower_limit_set_by_a_reload_pages_now_not_at_the_old_deadline():
    eng, t = _warm(_reload_settings())
    assert _in_contract(eng, t) > 5 * DAY
    eng.tick(t + 2 * DAY)
    assert eng.reconfigure(_reload_settings(stages={"contract": {"max_threshold_seconds": DAY}})) == []
    paged = _ticks(eng, t + 2 * DAY, 48, "deal-42")
    assert [(a.kind, a.status) for a in paged] == [("stalled", "firing")]
    assert parse_timestamp(paged[0].at) <= t + 2 * DAY + 3600  # at the next tick, not after 10 days


def test_a_new_segment_by_frees_the_old_segments_slots_and_judges_open_items_stage_wide():
    """segment_by changed by a reload: the segments of the old key are dropped (they held the slots
    of max_segments_per_stage, and the new segments all overflowed into "other"); open items, whose
    new segment no kept event says, are judged on the stage's limit."""

    def settings(segment_by):
        return load_settings(None, engine={"warmup": 3, "allowed_lateness_seconds": 0, "silence_enabled": False,
                                           "backlog_enabled": False, "max_segments_per_stage": 2},
                             workflows={"sales": {"terminal_stages": ["won"], "calendar": {"mode": "wall"},
                                                  "segment_by": list(segment_by)}})

    def deal(entity, t, **attributes):
        return [Event(f"{entity}-lead", "sales", entity, "lead", t, attributes),
                Event(f"{entity}-contract", "sales", entity, "contract", t + 60, {}),
                Event(f"{entity}-won", "sales", entity, "won", t + 60 + DAY, {})]

    eng = Engine(settings(["region"]))
    events = [e for i in range(8) for e in deal(f"r{i}", T0 + i * 3600, region=("eu", "us")[i % 2], tier="smb")]
    feed(eng, sorted(events, key=lambda e: e.timestamp))
    t = T0 + 3 * DAY
    eng.process(Event("open-lead", "sales", "open", "lead", t, {"region": "eu"}))
    eng.process(Event("open-contract", "sales", "open", "contract", t + 60, {}))
    contract = eng.workflows["sales"].states[("contract", None)]
    assert set(contract.segments) == {"eu", "us"} and contract.creep.cohorts
    eng.feedback_factor[("sales", "contract", "eu")] = 1.2
    eng.reconfigure(settings(["tier"]))
    assert contract.segments == {} and eng.items["open"].segment == "all"
    # the creep watch's completions by old segment go too (a creep it found there raised KeyError)
    assert not contract.creep.cohorts and eng.feedback_factor == {}
    assert eng.item_view("open", t + 120).threshold_seconds == eng._limit(contract, "all")[0] is not None
    later = [e for i in range(4) for e in deal(f"t{i}", t + DAY + i * 3600, tier=("enterprise", "smb")[i % 2])]
    feed(eng, sorted(later, key=lambda e: e.timestamp))
    assert {"enterprise", "smb"} <= set(contract.segments) and "other" not in contract.segments

    # a restart with the new segment_by (the worker's recovery: learned state, then item records)
    eng = Engine(settings(["region"]))
    feed(eng, sorted(events, key=lambda e: e.timestamp))
    eng.process(Event("open-lead", "sales", "open", "lead", t, {"region": "eu"}))
    eng.process(Event("open-contract", "sales", "open", "contract", t + 60, {}))
    records = [(e, eng.export_item(e)) for e in eng.items]
    back = Engine.restore_parts(eng.snapshot_learned(), records, settings(["tier"]), t + 120)
    assert back.items["open"].segment == "all" and back.dirty == {"open"}  # its record is rewritten
    contract = back.workflows["sales"].states[("contract", None)]
    assert contract.segments == {}
    feed(back, sorted(later, key=lambda e: e.timestamp))
    assert {"enterprise", "smb"} <= set(contract.segments) and "eu" not in contract.segments
    same = Engine.restore_parts(eng.snapshot_learned(), records, settings(["region"]), t + 120)
    assert same.items["open"].segment == "eu" and same.dirty is None


def _reloaded_and_restarted(eng, new, how, start, hours):
    """The alerts of ``eng`` given ``new`` settings by a live reload, and by a restart (``how``), then
    ticked hourly from ``start``: (alert id, status, at) each."""
    snap = eng.snapshot()
    live = Engine.restore(snap, eng.settings)
    assert live.restored == []  # the same settings: nothing to do
    got_live = live.reconfigure(new) + _ticks(live, start, hours)
    if how == "restore":
        back = Engine.restore(snap, new)
    else:
        records = [(e, eng.export_item(e)) for e in eng.items]
        back = Engine.restore_parts(eng.snapshot_learned(), records, new, start)
    got_back = back.restored + _ticks(back, start, hours)
    key = lambda alerts: [(a.alert_id, a.status, a.at) for a in alerts]  # noqa: E731
    return key(got_live), key(got_back)


@pytest.mark.parametrize("how", ["restore", "restore_parts"])
@pytest.mark.parametrize("change", ["lower limit", "mute", "terminal", "idle days"])
def test_a_restart_with_changed_settings_does_what_a_live_reload_does(how: str, change: str) -> None:
    """Settings changed while the worker was down (edit, restart) take effect as a reload's: a lowered
    limit paged 8 days late, a muted stage's page and a stage made terminal's item stayed open, an
    item paged before a new item_idle_days was never let go."""
    settings = _reload_settings(item_idle_days=0) if change == "idle days" else _reload_settings()
    eng, t = _warm(settings)
    _in_contract(eng, t)
    days = 2 if change == "lower limit" else 20
    paged = _ticks(eng, t, 24 * days, "deal-42")
    assert len(paged) == (0 if change == "lower limit" else 1)
    now = t + 24 * days * 3600
    new = {
        "lower limit": _reload_settings(stages={"contract": {"max_threshold_seconds": DAY}}),
        "mute": _reload_settings(stages={"contract": {"mute": True}}),
        "terminal": _reload_settings(terminal=("won", "contract")),
        "idle days": _reload_settings(item_idle_days=30),
    }[change]
    live, restarted = _reloaded_and_restarted(eng, new, how, now, 24 * 15)
    assert restarted == live
    deal = [(status, parse_timestamp(at)) for aid, status, at in live if aid == alert_id("stalled", "sales", "contract", "deal-42")]
    if change == "lower limit":  # paged at the first tick, not at the old limit's 8 days later
        assert [s for s, _ in deal] == ["firing"] and deal[0][1] <= now + 3600
    else:
        assert [s for s, _ in deal] == ["resolved"]


def test_checks_turned_off_resolve_their_tickets() -> None:
    """A source_silent page of a workflow no longer watched for silence, or muted, resolves (it rang on
    for good: no check would resolve it)."""
    settings = load_settings(None, engine={"allowed_lateness_seconds": 0, "backlog_enabled": False})
    for off in ({"engine": {"silence_enabled": False}}, {"workflows": {"ops": {"mute": True}}}):
        eng, clock, fired = Engine(settings), EventClock(60.0), []
        _minutely(eng, clock, T0, T0 + 8 * DAY, fired)
        fired += clock.advance(eng, T0 + 9 * DAY)
        assert [a.status for a in fired if a.kind == "source_silent"] == ["firing"]
        engine = {"allowed_lateness_seconds": 0, "backlog_enabled": False, **off.get("engine", {})}
        out = eng.reconfigure(load_settings(None, engine=engine, workflows=off.get("workflows", {})))
        assert [(a.kind, a.status) for a in out] == [("source_silent", "resolved")]
        assert "no longer watched for silence" in out[0].details["resolution"]
        assert eng.active_alerts() == [] and clock.advance(eng, T0 + 10 * DAY) == []


def test_muting_a_stage_resolves_its_pages_and_unmuting_pages_what_crossed_the_limit_meanwhile():
    eng, t = _warm(_reload_settings())
    _in_contract(eng, t)
    assert [a.status for a in _ticks(eng, t, 24 * 20, "deal-42")] == ["firing"]
    now = t + 24 * 20 * 3600
    resolved = eng.reconfigure(_reload_settings(stages={"contract": {"mute": True}}))
    assert [(a.entity_id, a.status) for a in resolved] == [("deal-42", "resolved")]
    assert resolved[0].details["resolution"] == "contract of sales is muted in the settings"
    assert eng.active_alerts() == [] and _ticks(eng, now, 24 * 10) == []
    later = now + 24 * 10 * 3600
    assert eng.reconfigure(_reload_settings()) == []  # unmuted: the item, long past its limit, pages
    assert [(a.entity_id, a.status) for a in _ticks(eng, later, 3)] == [("deal-42", "firing")]


def test_a_stage_made_terminal_by_a_reload_ends_its_items_and_their_pages():
    eng, t = _warm(_reload_settings())
    _in_contract(eng, t)
    _ticks(eng, t, 24 * 20)
    changed = eng.reconfigure(_reload_settings(terminal=("won", "contract")))
    assert [(a.entity_id, a.status) for a in changed] == [("deal-42", "resolved")]
    assert eng.open_items == 0 and eng.active_alerts() == []
    eng.reconfigure(_reload_settings())  # and no longer terminal when the settings say so no more
    st = eng.workflows["sales"].states[("contract", None)]
    assert not st.terminal and not st.configured_terminal


def _baselines(eng):
    return [s.baseline for wf in eng.workflows.values()
            for s in (wf.all, *(x for st in wf.states.values() for x in (st.all, *st.segments.values())))]


def test_a_changed_warmup_applies_to_what_is_learned_on_a_reload_and_on_a_restore():
    """The warm-up was fixed in each baseline when it was created: raising ``engine.warmup`` left every
    stage already seen paging after the old one, even after a restart."""
    eng, t = _warm(_reload_settings())
    assert _in_contract(eng, t) is not None
    eng.tick(t + 120)
    assert eng.reconfigure(_reload_settings(warmup=100_000)) == []
    assert eng.item_view("deal-42", t + 180).threshold_seconds is None  # warming again
    assert _ticks(eng, t + 120, 24 * 20, "deal-42") == []
    mixed, _ = _warm(_reload_settings())
    mixed.workflows["sales"].states[("contract", None)].all.baseline.warmup = 50  # as an older reload left it
    assert {b.warmup for b in _baselines(Engine.restore(mixed.snapshot(), _reload_settings()))} == {10}
    restored = Engine.restore(eng.snapshot(), _reload_settings())  # a restart with the warm-up back
    later = t + 24 * 20 * 3600  # (the item is looked at again at its warming re-check, at most a week)
    assert [(a.kind, a.status) for a in _ticks(restored, later, 24 * 7, "deal-42")] == [("stalled", "firing")]


def test_an_item_that_entered_before_its_stage_was_warm_pages_on_the_stage_limit_once_there_is_one():
    """Entered before its stage had a limit of its own, an item was scheduled at the workflow's limit,
    which spans every stage (an hour in lead, days in contract): hundreds of days in the first days of
    a stream, so a deal stuck since then never paged."""
    eng = Engine(_reload_settings())
    rng = random.Random(3)
    history = []  # a deal every 12 hours: the stage's first completions come one by one
    for i in range(50):
        t = T0 + i * 43200.0
        history += [ev(f"d{i}", "lead", t), ev(f"d{i}", "contract", t + 3600),
                    ev(f"d{i}", "won", t + 3600 + 2 * DAY * rng.lognormvariate(0, 0.3))]
    history.sort(key=lambda e: e.timestamp)
    stuck = [ev("stuck", "lead", T0 - 3600), ev("stuck", "contract", T0 - 1800)]
    out = feed(eng, stuck + history) + _ticks(eng, history[-1].timestamp, 24 * 40)
    paged = [a for a in out if a.entity_id == "stuck"]
    assert [(a.kind, a.stage) for a in paged] == [("stalled", "contract")]
    assert parse_timestamp(paged[0].at) - (T0 - 1800) < 12 * DAY  # typical 2 days: its limit about 8


def test_an_item_relabelled_on_its_way_is_judged_as_one_of_its_new_segment():
    """A deal upgraded from smb to enterprise at contract was judged by smb's limits to the end ("typical
    for smb is 2.0 days" where its events said enterprise); an event naming no segment keeps it."""
    eng, t = _warm(_reload_settings())
    eng.process(ev("deal-9", "lead", t + 60, segment="smb"))
    eng.process(ev("deal-9", "contract", t + 120, segment="enterprise"))
    assert eng.items["deal-9"].segment == "enterprise"
    eng.process(Event("e3", "sales", "deal-9", "legal", t + 180, {}, None))
    assert eng.items["deal-9"].segment == "enterprise"
    eng.process(ev("deal-9", "legal", t + 240, segment="smb"))  # a field update within the stage
    assert eng.items["deal-9"].segment == "smb"
    lead = eng.workflows["sales"].states[("lead", None)]
    assert lead.segments["smb"].baseline.n > 0 and "enterprise" not in lead.segments  # learned where it was
    # an item whose segment overflowed into "other" is not counted again at every stage
    capped = Engine(_reload_settings(max_segments_per_stage=1))
    stages = ("lead", "contract", "legal", "signed", "won")
    for i, stage in enumerate(stages):  # every stage holds segment "a"
        capped.process(ev("a", stage, T0 + i * 60, segment="a"))
    for i, stage in enumerate(stages[:-1]):
        capped.process(ev("b", stage, T0 + 600 + i * 60, segment="b"))
    assert capped.items["b"].segment == "other" and capped.counters.overflow == {"segment": 1}


def test_an_item_whose_deadline_rounds_to_now_is_judged_at_the_next_tick_not_again_and_again():
    """Its age a hair under its limit, entered + limit rounded to the tick's instant: the item was pushed
    at that instant and the same tick judged it again, forever (a public review log froze the replay)."""
    import signal

    def frozen(_sig: int, _frame: object) -> None:
        raise TimeoutError("a tick never returned")

    limit = DAY + 1e-8  # entered + limit rounds to entered + DAY in epoch seconds
    before = signal.signal(signal.SIGALRM, frozen)
    signal.alarm(30)  # the warm-up history's own items meet the rounding at whole-second ticks
    try:
        eng, t = _warm(_reload_settings(stages={"contract": {"min_threshold_seconds": limit,
                                                             "max_threshold_seconds": limit}}))
        entered = float(int(t) + 60)
        eng.process(ev("deal-42", "lead", entered - 30))
        eng.process(ev("deal-42", "contract", entered))
        item, now = eng.items["deal-42"], entered + DAY
        assert entered + limit == now and now - entered < limit
        eng._schedule(item, now)
        assert item.due > now
        assert [(a.kind, a.entity_id) for a in eng.tick(now + 60)] == [("stalled", "deal-42")]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)


def test_a_lateness_lowered_to_zero_by_a_reload_applies_the_buffered_events_and_never_loops():
    """An item's next event waited in the lateness buffer when a reload set the allowed lateness to 0:
    the buffer was never released again and the item, still 'pending', was deferred by 0 seconds at its
    deadline, forever (the worker's event loop froze)."""
    eng, t = _warm(_reload_settings(allowed_lateness_seconds=300))
    eng.tick(t + 100)
    eng.process(ev("deal-7", "lead", t + 200))
    eng.process(ev("deal-7", "contract", t + 260))
    eng.tick(t + 700)
    eng.process(ev("deal-7", "qualification", t + 5 * DAY))  # waits out the lateness
    assert eng.pending == {"deal-7": 1}
    eng.reconfigure(_reload_settings(allowed_lateness_seconds=0))
    assert eng.pending == {} and eng.items["deal-7"].state.stage == "qualification"
    _ticks(eng, t + 5 * DAY, 24 * 30)  # returns: no loop


def test_a_buffer_restored_under_a_zero_lateness_is_released_by_the_next_tick():
    eng, t = _warm(_reload_settings(allowed_lateness_seconds=300))
    eng.tick(t + 100)
    eng.process(ev("deal-7", "lead", t + 200))
    eng.tick(t + 700)
    eng.process(ev("deal-7", "contract", t + 5 * DAY))
    kept = Engine.restore(eng.snapshot(), _reload_settings(allowed_lateness_seconds=300))
    assert kept.pending == {"deal-7": 1} and kept.next_due() <= t + 5 * DAY
    # restored under a zero lateness: released at once, as a reload to it does
    restored = Engine.restore(eng.snapshot(), _reload_settings(allowed_lateness_seconds=0))
    assert restored.pending == {} and restored.items["deal-7"].state.stage == "contract"
    restored.tick(t + 5 * DAY + 60)
    assert restored.pending == {} and restored.items["deal-7"].state.stage == "contract"


def test_configured_working_hours_taken_away_go_back_to_wall_time_and_learning():
    hours = {"mode": "business", "timezone": "UTC", "workdays": [0, 1, 2, 3, 4], "start_hour": 9, "end_hour": 17}
    eng, t = _warm(_reload_settings(calendar=hours))
    wf = eng.workflows["sales"]
    assert wf.business
    eng.reconfigure(_reload_settings(calendar={"mode": "auto", "timezone": "UTC"}))
    assert not wf.business and wf.profile is not None and type(wf.clock).__name__ == "WallClock"


def test_stage_bounds_out_of_order_are_refused():
    from monitor.config import ConfigError

    with pytest.raises(ConfigError, match="min_threshold_seconds .* above max_threshold_seconds"):
        _reload_settings(stages={"contract": {"min_threshold_seconds": 100, "max_threshold_seconds": 10}})


def test_stage_views_count_the_items_due_within_the_hour_and_the_oldest_of_all_open_items():
    """``due_next_hour`` counted every judgement scheduled within the hour (warming re-checks, deferrals);
    ``oldest_age_seconds`` only items with a next judgement (a stalled one with item_idle_days 0 has none)."""
    warming = Engine(make_settings())  # three completions: no limit yet, items re-checked every few minutes
    t = T0
    for i in range(3):
        for stage, dt in (("lead", 0), ("contract", 60), ("won", 60 + 2 * DAY)):
            warming.process(ev(f"d{i}", stage, t + dt))
        t += 3600
    t += 3 * DAY
    for i in range(5):
        warming.process(ev(f"n{i}", "lead", t))
        warming.process(ev(f"n{i}", "contract", t + 60))
    warming.tick(t + 120)
    assert all(v.due_next_hour == 0 for v in warming.stage_views(t + 120))

    eng, t = _warm(make_settings(item_idle_days=0))
    limit = _in_contract(eng, t)
    contract = lambda now: next(v for v in eng.stage_views(now) if v.stage == "contract")  # noqa: E731
    assert contract(t + 60 + limit - 1800).due_next_hour == 1
    assert contract(t + 60 + limit - 7200).due_next_hour == 0
    assert [a.kind for a in eng.tick(t + 60 + limit + 600) if a.entity_id == "deal-42"] == ["stalled"]
    assert contract(t + 30 * DAY).oldest_age_seconds >= 30 * DAY - 60


def test_an_item_dropped_at_the_open_items_cap_is_not_counted_accepted():
    eng = Engine(make_settings(max_open_items=2))
    for i in range(5):
        eng.process(ev(f"d{i}", "lead", T0 + i))
    assert eng.counters.events[("sales", "accepted")] == 2
    assert eng.counters.events[("sales", "dropped_capacity")] == 3
