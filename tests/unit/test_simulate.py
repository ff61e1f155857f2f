from __future__ import annotations

import json
import random
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.events import decode_record, parse_timestamp
from monitor.simulate import DAY, SCENARIOS, SHAPES, Variation, WorkCalendar, run, simulate

ITEMS = 1500


def _timeline(sim):
    """entity -> [(ts, stage)] in time order, duplicates removed."""
    seen = set()
    by_entity = defaultdict(list)
    for ev in sim.events:
        if ev.event_id in seen:
            continue
        seen.add(ev.event_id)
        by_entity[(ev.workflow, ev.entity_id)].append((ev.ts, ev.stage))
    for v in by_entity.values():
        v.sort()
    return by_entity


def test_same_seed_gives_identical_output_and_another_seed_differs():
    a = simulate("out_of_order", items=400, seed=7)
    b = simulate("out_of_order", items=400, seed=7)
    c = simulate("out_of_order", items=400, seed=8)
    assert [e.to_wire() for e in a.events] == [e.to_wire() for e in b.events]
    assert a.truth == b.truth
    assert [e.to_wire() for e in a.events] != [e.to_wire() for e in c.events]


def test_events_follow_the_contract_and_are_in_delivery_order_for_steady():
    sim = simulate("steady", items=300, seed=1)
    for ev in sim.events[:200]:
        good, bad = decode_record(json.dumps(ev.to_wire()).encode())
        assert not bad and good[0].event_id == ev.event_id
        assert ev.to_wire()["timestamp"].endswith("Z")
        assert set(ev.to_wire()["attributes"]) == {"segment", "region", "owner"}
    ts = [e.ts for e in sim.events]
    assert ts == sorted(ts)  # no delays in steady: delivery order is time order
    assert sim.truth["items"] == 300
    assert {e.entity_id for e in sim.events} <= {f"deal-{i:06d}" for i in range(1, 121)} | {
        f"ticket-{i:06d}" for i in range(1, 181)
    }


def test_injected_stall_durations_are_visible_in_the_events():
    sim = simulate("steady", items=ITEMS, seed=3)
    tl = _timeline(sim)
    end = parse_timestamp(sim.truth["end"])
    anomalies = sim.truth["anomalies"]
    assert anomalies
    closed = open_ = 0
    for a in anomalies:
        steps = tl[(a["workflow"], a["entity_id"])]
        entered = parse_timestamp(a["entered_at"])
        i = next(k for k, (t, s) in enumerate(steps) if s == a["stage"] and abs(t - entered) < 0.01)
        if a["duration_seconds"] is None:
            open_ += 1
            assert i == len(steps) - 1  # nothing after: still open at the end
        else:
            closed += 1
            assert steps[i + 1][0] - entered == pytest.approx(a["duration_seconds"], abs=0.01)
            assert steps[i + 1][0] <= end
            assert a["duration_seconds"] >= 3 * a["normal_median_seconds"]  # factor >= 4, noise sigma 0.1
        assert 4 <= a["factor"] <= 20
    assert closed and open_


def test_about_three_percent_of_item_stages_stall():
    sim = simulate("steady", items=6000, seed=2)
    tl = _timeline(sim)
    terminal = {wf: set(w["terminal"]) for wf, w in sim.truth["workflows"].items()}
    visits = sum(1 for (wf, _e), steps in tl.items() for _t, s in steps if s not in terminal[wf])
    share = len(sim.truth["anomalies"]) / visits
    assert 0.02 < share < 0.04


def test_normal_durations_match_the_truth_medians():
    sim = simulate("segmented", items=6000, seed=4)
    tl = _timeline(sim)
    stalled = {(a["workflow"], a["entity_id"], a["stage"]) for a in sim.truth["anomalies"]}
    seg = {(e.workflow, e.entity_id): e.segment for e in sim.events}
    durations = defaultdict(list)
    for (wf, ent), steps in tl.items():
        for (t0, s0), (t1, _s1) in zip(steps, steps[1:], strict=False):
            if (wf, ent, s0) not in stalled:
                durations[(wf, s0, seg[(wf, ent)])].append(t1 - t0)
    medians = {(m["workflow"], m["stage"], m["segment"]): m["median_seconds"] for m in sim.truth["medians"]}
    for key in [("sales", "contract", "enterprise"), ("sales", "contract", "smb"), ("support", "triage", "standard")]:
        observed = statistics.median(durations[key])
        assert observed == pytest.approx(medians[key], rel=0.2), key
    assert medians[("sales", "contract", "enterprise")] == pytest.approx(5 * medians[("sales", "contract", "smb")])


def test_slowdown_shifts_fulfillment_by_the_factor_and_stalls_follow_the_new_median():
    sim = simulate("slowdown", items=6000, seed=1)
    (shift,) = sim.truth["shifts"]
    assert (shift["workflow"], shift["stage"], shift["factor"]) == ("sales", "fulfillment", 2.5)
    at = parse_timestamp(shift["at"])
    tl = _timeline(sim)
    stalled = {(a["entity_id"], a["stage"]) for a in sim.truth["anomalies"]}
    before, after = [], []
    for (wf, ent), steps in tl.items():
        if wf != "sales":
            continue
        for (t0, s0), (t1, _s1) in zip(steps, steps[1:], strict=False):
            if s0 == "fulfillment" and (ent, s0) not in stalled:
                (after if t0 >= at else before).append(t1 - t0)
    assert statistics.median(after) / statistics.median(before) == pytest.approx(2.5, rel=0.25)
    spans = [m for m in sim.truth["medians"] if (m["stage"], m["segment"]) == ("fulfillment", "smb")]
    assert len(spans) == 2 and spans[0]["valid_to"] == spans[1]["valid_from"] == shift["at"]
    for a in sim.truth["anomalies"]:
        if a["stage"] == "fulfillment" and parse_timestamp(a["entered_at"]) >= at:
            assert a["normal_median_seconds"] == pytest.approx(spans[1]["median_seconds"] if a["segment"] == "smb"
                                                               else 2.5 * 4 * DAY)


def test_silence_loses_every_event_of_the_workflow_in_the_window():
    sim = simulate("silence", items=ITEMS, seed=1)
    (s,) = sim.truth["silences"]
    a, b = parse_timestamp(s["start"]), parse_timestamp(s["end"])
    assert b - a == 6 * 3600
    assert not [e for e in sim.events if e.workflow == s["workflow"] and a <= e.ts < b]
    assert [e for e in sim.events if e.workflow != s["workflow"] and a <= e.ts < b] or ITEMS < 1000
    lost = set(sim.truth["lost_event_entities"])
    assert lost and all(x.startswith("ticket-") for x in lost)
    # the same seed without the silence has exactly those entities' events in the window
    steady = simulate("steady", items=ITEMS, seed=1)
    assert len(steady.events) > len(sim.events)


def test_out_of_order_delays_are_bounded_and_duplicates_counted():
    sim = simulate("out_of_order", items=ITEMS, seed=5)
    ids = Counter(e.event_id for e in sim.events)
    assert sum(n - 1 for n in ids.values()) == sim.truth["duplicates"] > 0
    ts = [e.ts for e in sim.events]
    assert ts != sorted(ts)
    latest = float("-inf")
    max_lag = 0.0
    for t in ts:
        latest = max(latest, t)
        max_lag = max(max_lag, latest - t)
    assert 0 < max_lag <= 2 * 300  # an event can be overtaken by one delayed up to 300 s later
    assert 0 < sim.truth["max_delay_seconds"] <= 300


def test_business_hours_events_only_in_berlin_working_time_and_durations_in_business_seconds():
    sim = simulate("business_hours", items=ITEMS, seed=1)
    tz = ZoneInfo("Europe/Berlin")
    for e in sim.events:
        local = datetime.fromtimestamp(e.ts, tz)
        assert local.weekday() < 5 and 9 <= local.hour < 17, local
    cal_doc = sim.truth["workflows"]["support"]["calendar"]
    assert cal_doc == {"timezone": "Europe/Berlin", "workdays": [0, 1, 2, 3, 4], "start_hour": 9.0, "end_hour": 17.0}
    start, end = parse_timestamp(sim.truth["start"]), parse_timestamp(sim.truth["end"])
    cal = WorkCalendar(**cal_doc, origin=start, horizon=end + 400 * DAY)
    tl = _timeline(sim)
    checked = 0
    for a in sim.truth["anomalies"]:
        if a["duration_seconds"] is None:
            continue
        steps = tl[(a["workflow"], a["entity_id"])]
        entered = parse_timestamp(a["entered_at"])
        i = next(k for k, (t, s) in enumerate(steps) if s == a["stage"] and abs(t - entered) < 0.01)
        assert cal.business_seconds(entered, steps[i + 1][0]) == pytest.approx(a["duration_seconds"], abs=0.01)
        checked += 1
    assert checked > 10


def test_work_calendar_skips_nights_and_weekends():
    friday_16 = parse_timestamp("2026-01-09T15:00:00Z")  # 16:00 in Berlin (UTC+1 in January)
    cal = WorkCalendar("Europe/Berlin", origin=friday_16 - 10 * DAY, horizon=friday_16 + 30 * DAY)
    monday_10 = cal.add_business(friday_16, 2 * 3600)  # 1 h on Friday, 1 h on Monday
    assert monday_10 == parse_timestamp("2026-01-12T09:00:00Z")
    assert cal.business_seconds(friday_16, monday_10) == 2 * 3600
    assert cal.business_seconds(parse_timestamp("2026-01-10T10:00:00Z"), parse_timestamp("2026-01-11T12:00:00Z")) == 0


def test_speed_divides_every_duration():
    slow = simulate("steady", items=200, seed=1)
    fast = simulate("steady", items=200, seed=1, speed=100.0)
    s0, f0 = parse_timestamp(slow.truth["start"]), parse_timestamp(fast.truth["start"])
    for a, b in zip(slow.events[:50], fast.events[:50], strict=True):
        assert (b.ts - f0) == pytest.approx((a.ts - s0) / 100, abs=0.002)
    assert fast.truth["medians"][0]["median_seconds"] == pytest.approx(slow.truth["medians"][0]["median_seconds"] / 100)
    with pytest.raises(ValueError, match="speed"):
        simulate("business_hours", items=50, speed=10)


def test_run_all_writes_one_directory_per_scenario(tmp_path):
    written = run("all", tmp_path, items=60, seed=1)
    assert set(written) == set(SCENARIOS)
    for name, path in written.items():
        assert path == tmp_path / name / "events.jsonl"
        truth = json.loads((tmp_path / name / "truth.json").read_text())
        assert truth["scenario"] == name
        keys = {"scenario", "seed", "items", "start", "end", "workflows", "medians", "anomalies", "shifts",
                "silences", "lost_event_entities", "duplicates", "max_delay_seconds"}
        assert keys <= set(truth)
    with pytest.raises(ValueError, match="unknown scenario"):
        run("nope", tmp_path)


def test_work_calendar_agrees_with_the_engine_calendar():
    calendar = pytest.importorskip("detectors.calendar")
    start = parse_timestamp("2026-03-02T00:00:00Z")  # spans the Berlin DST change of 2026-03-29
    ours = WorkCalendar("Europe/Berlin", origin=start, horizon=start + 120 * DAY)
    theirs = calendar.BusinessCalendar("Europe/Berlin", (0, 1, 2, 3, 4), 9.0, 17.0)
    for k in range(40):
        a = start + k * 1.37 * DAY
        b = a + (k + 1) * 0.61 * DAY
        assert ours.business_seconds(a, b) == pytest.approx(theirs.business_seconds(a, b), abs=1e-3)
        assert ours.add_business(a, k * 5000.0) == pytest.approx(theirs.add_business(a, k * 5000.0), abs=1e-3)


@pytest.mark.parametrize("family", sorted(SHAPES))
def test_every_duration_family_has_median_one_so_the_truth_medians_stay_exact(family):
    rng = random.Random(3)
    draws = sorted(SHAPES[family](rng, 0.5) for _ in range(20_001))
    assert draws[10_000] == pytest.approx(1.0, rel=0.03)


def test_a_variation_changes_every_stage_family_and_the_stalls_and_says_so_in_the_truth():
    base = simulate("steady", items=2000, seed=2)
    varied = simulate("steady", items=2000, seed=2, variation=Variation("gamma2", 0.1, (2.0, 5.0)))
    assert "variation" not in base.truth
    assert varied.truth["variation"] == {"family": "gamma2", "stall_share": 0.1, "stall_factor": (2.0, 5.0)}
    assert len(varied.truth["anomalies"]) > 2.5 * len(base.truth["anomalies"])  # 10 % stall, not 3 %
    assert all(2.0 <= a["factor"] <= 5.0 for a in varied.truth["anomalies"])
    assert simulate("steady", items=2000, seed=2, variation=Variation()).events == base.events  # the defaults
    for bad in (dict(family="pareto"), dict(stall_share=1.0), dict(stall_factor=(0.5, 2.0))):
        with pytest.raises(ValueError):
            Variation(**bad)
