from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from monitor.evaluate import (
    Oracle,
    Page,
    RiverP99,
    StaticSLA,
    Step,
    Truth,
    alert_pages,
    evaluate,
    load_steps,
    print_evaluation,
    replay_pages,
    score_alerts,
    score_baselines,
    score_pages,
    stage_tally,
)
from monitor.events import Alert, alert_id, encode_alert, format_ts, parse_timestamp
from monitor.simulate import simulate, write

H = 3600.0
T0 = parse_timestamp("2026-01-05T00:00:00Z")


def _truth(**extra) -> Truth:
    anomalies = [
        {"workflow": "w", "entity_id": f"e{i}", "stage": "s", "segment": "x", "entered_at": format_ts(T0 + i * H),
         "duration_seconds": None, "factor": 5.0, "normal_median_seconds": H}
        for i in range(4)
    ]
    doc = {
        "scenario": "tiny", "seed": 0, "items": 2000, "start": format_ts(T0), "end": format_ts(T0 + 100 * H),
        "workflows": {"w": {"stages": ["s", "done"], "terminal": ["done"], "segments": ["x"], "calendar": None}},
        "medians": [{"workflow": "w", "stage": "s", "segment": "x", "median_seconds": H,
                     "valid_from": format_ts(T0), "valid_to": format_ts(T0 + 100 * H)}],
        "anomalies": anomalies, "shifts": [], "silences": [], "lost_event_entities": ["e9", "e3"],
        "duplicates": 0, "max_delay_seconds": 0,
    }
    doc.update(extra)
    return Truth(doc)


def test_precision_recall_f1_and_false_pages_on_a_hand_built_case():
    truth = _truth()
    # anomalies e0..e3 entered at T0+i h, onset = entered + 3 h
    pages = [
        Page("w", "e0", "s", T0 + 4 * H),  # delay 1 h
        Page("w", "e0", "s", T0 + 9 * H),  # second page on the same item-stage: counted once
        Page("w", "e1", "s", T0 + 4 * H),  # delay 0 h
        Page("w", "e2", "s", T0 + 8 * H),  # delay 3 h
        Page("w", "e7", "s", T0 + 5 * H),  # false page
        Page("w", "e9", "s", T0 + 5 * H),  # false page, on an entity whose events were lost
        Page("w", "e8", "s", T0 + 5 * H, severity="ticket"),  # false, but not a page
        Page("w", "e3", "s", T0 + 7 * H),  # right: e3 truly stalled, though some of its events were lost
    ]
    s = score_pages(truth, pages)
    assert (s.anomalies, s.pages, s.detected) == (4, 7, 4)
    assert s.precision == pytest.approx(4 / 7)
    assert s.recall == pytest.approx(4 / 4)
    assert s.f1 == pytest.approx(2 * (4 / 7) * 1.0 / (4 / 7 + 1.0))
    assert s.false_pages_per_1000 == pytest.approx(2 / 2.0)  # 2 false pages / (2000 items / 1000)
    assert s.delay_median_hours == pytest.approx(1.0)  # delays [1, 0, 3, 1] h
    assert s.delay_p90_hours == pytest.approx(2.4)  # [0, 1, 1, 3] h: p90 interpolates to 2.4
    assert s.pages_on_lost == 1


def test_stage_tally_counts_found_false_and_missed_stalls_per_stage():
    extra = {"workflow": "w", "entity_id": "e5", "stage": "t", "segment": "x", "entered_at": format_ts(T0),
             "duration_seconds": None, "factor": 5.0, "normal_median_seconds": H}
    truth = _truth()
    truth = _truth(anomalies=[*truth.doc["anomalies"], extra])
    pages = [
        Page("w", "e0", "s", T0 + 4 * H),
        Page("w", "e0", "s", T0 + 9 * H),  # the same item-stage again: once
        Page("w", "e1", "s", T0 + 4 * H),
        Page("w", "e7", "s", T0 + 5 * H),  # no stall there
        Page("w", "e8", "s", T0 + 5 * H, severity="ticket"),  # counted as score_pages' precision counts it
        Page("w", "e5", "s", T0 + 5 * H),  # e5 stalled in t, not in s
    ]
    assert stage_tally(truth, pages) == {
        "w/s": {"found": 2, "false": 3, "missed": 2},
        "w/t": {"found": 0, "false": 0, "missed": 1},
    }
    s = score_pages(truth, pages)
    assert (s.detected, s.pages - s.detected) == (2, 3)


def test_no_pages_scores_zero_without_dividing_by_zero():
    s = score_pages(_truth(), [])
    assert (s.precision, s.recall, s.f1, s.delay_median_hours) == (0.0, 0.0, 0.0, None)


def _alert(kind, wf, stage, entity, at, status="firing", severity="page"):
    return Alert(alert_id(kind, wf, stage, entity), kind, status, wf, stage, entity, None, format_ts(at),
                 0.0, 0.0, 0.0, 1.0, severity, "")


def test_alerts_score_shift_and_silence_delays_and_false_ones():
    truth = _truth(
        shifts=[{"workflow": "w", "stage": "s", "at": format_ts(T0 + 10 * H), "factor": 2.5}],
        silences=[{"workflow": "w", "start": format_ts(T0 + 20 * H), "end": format_ts(T0 + 26 * H)}],
    )
    alerts = [
        _alert("stalled", "w", "s", "e1", T0 + 5 * H),
        _alert("stalled", "w", "s", "e1", T0 + 6 * H, status="resolved"),
        _alert("bottleneck_shift", "w", "s", None, T0 + 5 * H),  # before the shift: false
        _alert("bottleneck_shift", "w", "s", None, T0 + 58 * H),  # 2 days after
        _alert("source_silent", "w", None, None, T0 + 21.5 * H),  # 1.5 h after the start
        _alert("source_silent", "w", None, None, T0 + 40 * H),  # outside [start, end + 1 h]: false
        _alert("backlog_growth", "w", "s", None, T0 + 40 * H, severity="ticket"),
    ]
    r = score_alerts(truth, alerts)
    assert r["pages"]["detected"] == 1 and r["pages"]["pages"] == 1
    assert r["shifts"][0]["delay_days"] == pytest.approx(2.0)
    assert r["false_shifts"] == 1
    assert r["silences"][0]["delay_hours"] == pytest.approx(1.5)
    assert r["false_silences"] == 1
    assert r["firing_by_kind"] == {"stalled": 1, "bottleneck_shift": 2, "source_silent": 2, "backlog_growth": 1}
    missed = score_alerts(truth, alerts[:2])
    assert missed["shifts"][0]["delay_days"] is None and missed["silences"][0]["delay_hours"] is None


def test_replay_pages_at_the_next_event_after_the_deadline_or_at_the_end():
    truth = _truth()
    steps = [
        Step(T0, "w", "a", "s", "x"),  # leaves after 2 h: below 3 x 1 h, no page
        Step(T0 + 0.5 * H, "w", "b", "s", "x"),  # deadline T0 + 3.5 h, next event at T0 + 5 h
        Step(T0 + 2 * H, "w", "a", "done", "x"),
        Step(T0 + 5 * H, "w", "c", "s", "x"),  # never leaves: deadline T0 + 8 h, paged at the next event
        Step(T0 + 6 * H, "w", "b", "done", "x"),
        Step(T0 + 9 * H, "w", "d", "s", "x"),  # deadline T0 + 12 h > last event: paged at end of stream
    ]
    pages = replay_pages(truth, steps, Oracle(truth, 3.0))
    assert pages == [
        Page("w", "b", "s", T0 + 5 * H),
        Page("w", "c", "s", T0 + 9 * H),
        Page("w", "d", "s", T0 + 100 * H),
    ]
    assert replay_pages(truth, steps, Oracle(truth, 200.0)) == []  # deadlines after the end never page


def test_river_p99_waits_for_thirty_observations_then_pages_items_already_open():
    truth = _truth()
    steps = [Step(T0, "w", "old", "s", "x")]  # open before any baseline exists
    for i in range(30):
        steps += [Step(T0 + i * 60, "w", f"n{i}", "s", "x"), Step(T0 + i * 60 + 600, "w", f"n{i}", "done", "x")]
    steps.append(Step(T0 + 5 * H, "w", "late", "s", "x"))
    steps.sort(key=lambda s: s.ts)
    pages = replay_pages(truth, steps, RiverP99())
    assert [(p.entity_id, p.at) for p in pages] == [("old", T0 + 5 * H), ("late", T0 + 100 * H)]
    assert replay_pages(truth, steps, RiverP99(min_obs=31)) == []


def test_static_sla_is_the_p99_of_the_first_thirty_days_in_force_over_the_whole_stream():
    truth = _truth(end=format_ts(T0 + 40 * 86400))
    steps = []
    for i in range(100):
        t = T0 + i * 3600
        steps += [Step(t, "w", f"n{i}", "s", "x"), Step(t + 600 + i, "w", f"n{i}", "done", "x")]
    steps += [Step(T0 + 29 * 86400, "w", "slow", "s", "x"), Step(T0 + 35 * 86400, "w", "other", "s", "x")]
    steps.sort(key=lambda s: s.ts)
    sla = StaticSLA(truth, steps)
    assert sla.limits[("w", "s")] == pytest.approx(600 + 98.01, abs=0.01)
    pages = replay_pages(truth, steps, StaticSLA(truth, steps))
    # the slowest item of the first month (699 s) crosses it too: as a limit set from that month would
    assert [(p.entity_id, p.at) for p in pages] == [
        ("n99", T0 + 99 * 3600 + 699), ("slow", T0 + 35 * 86400), ("other", T0 + 40 * 86400)]


def test_evaluate_end_to_end_on_simulated_files(tmp_path):
    sim = simulate("segmented", items=1500, seed=3)
    events = write(sim, tmp_path, "jsonl")
    # an "engine" that pages exactly the injected anomalies at onset + 1 h, plus one false page
    truth = Truth(sim.truth)
    with open(tmp_path / "alerts.jsonl", "wb") as f:
        for a in sim.truth["anomalies"]:
            f.write(encode_alert(_alert("stalled", a["workflow"], a["stage"], a["entity_id"], truth.onset(a) + H)))
            f.write(b"\n")
        f.write(encode_alert(_alert("stalled", "sales", "lead", "deal-000001", truth.start + 86400)) + b"\n")
    ev = evaluate(tmp_path / "truth.json", tmp_path / "alerts.jsonl", events)
    pages = ev.engine["pages"]
    assert pages["recall"] == 1.0 and pages["detected"] == len(sim.truth["anomalies"])
    assert pages["delay_median_hours"] == pytest.approx(1.0)
    assert pages["false_pages_per_1000"] == pytest.approx(1 / 1.5, abs=1e-3)
    b = ev.baselines
    assert {r["c"] for r in b["oracle_sweep"]} >= {3.0, 5.0}
    # per-segment truth beats one per-stage limit when segments differ 5x
    assert b["oracle"]["f1"] > b["static_sla"]["f1"] + 0.1
    assert b["oracle"]["f1"] > b["river_p99"]["f1"]
    by_stage = ev.extra["by_stage"]
    assert sum(c["found"] for c in by_stage["engine"].values()) == pages["detected"]
    assert sum(c["false"] for c in by_stage["engine"].values()) == 1
    assert sum(c["missed"] for c in by_stage["engine"].values()) == 0
    assert sum(c["found"] for c in by_stage["oracle"].values()) == b["oracle"]["detected"]
    json.dumps(ev.as_dict())
    out = io.StringIO()
    print_evaluation(ev, Console(file=out, width=200))
    assert "stalls by stage" in out.getvalue() and "sales/lead" in out.getvalue()


def test_load_steps_dedups_and_orders_out_of_order_delivery(tmp_path):
    sim = simulate("out_of_order", items=300, seed=1)
    steps = load_steps(write(sim, tmp_path, "jsonl"))
    assert len(steps) == len({e.event_id for e in sim.events}) < len(sim.events)
    assert [s.ts for s in steps] == sorted(s.ts for s in steps)


def test_business_time_baselines_use_working_seconds(tmp_path):
    sim = simulate("business_hours", items=1500, seed=2)
    truth = Truth(sim.truth)
    steps = load_steps(write(sim, tmp_path, "jsonl"))
    b = score_baselines(truth, steps, sweep=(5.0,))
    # measured in wall time the nights and weekends would swamp the medians; in business time the oracle works
    assert b["oracle"]["f1"] > 0.6


def test_alerts_paged_before_the_stalls_they_match_are_called_out(tmp_path):
    """Alerts of another run scored against this truth file read as pages days before the stalls: said."""
    sim = simulate("steady", items=300, seed=2)
    write(sim, tmp_path, "jsonl")
    truth = Truth(sim.truth)
    with open(tmp_path / "alerts.jsonl", "wb") as f:
        for a in sim.truth["anomalies"]:
            f.write(encode_alert(_alert("stalled", a["workflow"], a["stage"], a["entity_id"], truth.onset(a) - 50 * H)))
            f.write(b"\n")
    ev = evaluate(tmp_path / "truth.json", tmp_path / "alerts.jsonl")
    out = io.StringIO()
    print_evaluation(ev, Console(file=out, width=200))
    assert "the pages came before the stalls they match began (median -50.0 h)" in out.getvalue()


def test_only_pages_of_open_items_count_and_only_stalls_that_began_in_the_stream():
    """A slow_stage ticket comes once the item left its stage: no detection (the oracle and the
    alternatives page open items only); a stall whose onset lies past the stream's end cannot be found
    by anyone and is not in the recall."""
    truth = _truth()
    key = ("w", "e0", "s")
    late = {**truth.anomalies[key], "entity_id": "late-1",
            "entered_at": format_ts(truth.end - 3600)}  # onset 3 medians later: after the end
    truth = Truth({**truth.doc, "anomalies": [truth.anomalies[key], late]})
    assert truth.due == {key}
    ticket = Alert(alert_id("slow_stage", key[0], key[2], key[1]), "slow_stage", "firing", key[0], key[2],
                   key[1], None, format_ts(truth.end - 60), 1.0, 1.0, 1.0, 0.9, "ticket", "slow")
    assert alert_pages([ticket]) == []
    page = Page(key[0], key[1], key[2], truth.end - 60)
    s = score_pages(truth, [page])
    assert (s.recall, s.anomalies) == (1.0, 1)


def test_the_oracle_leaves_the_items_whose_events_were_lost_alone():
    """It cannot see their stage end (the event that would say so was lost): paging them counted false
    pages against the limit the engine is compared with."""
    truth = _truth()  # e3 and e9 lost their events from the start (no silence listed)
    steps = [Step(T0 + i * H, "w", f"e{i}", "s", "x") for i in range(4)]
    assert [p.entity_id for p in replay_pages(truth, steps, Oracle(truth, 2.0))] == ["e0", "e1", "e2"]


@pytest.mark.parametrize("given", ["--truth", "--alerts", "--events"])
def test_evaluate_given_a_directory_says_so_in_one_line(tmp_path, given):
    """A directory as --truth or --alerts ended in an IsADirectoryError traceback."""
    from typer.testing import CliRunner

    from monitor.cli import app

    (tmp_path / "truth.json").write_text("{}")
    (tmp_path / "alerts.jsonl").write_text("")
    files = {"--truth": str(tmp_path / "truth.json"), "--alerts": str(tmp_path / "alerts.jsonl"), given: str(tmp_path)}
    r = CliRunner().invoke(app, ["evaluate", *(x for kv in files.items() for x in kv)])
    assert (r.exit_code, r.output) == (2, f"{tmp_path}: a directory, not a file\n")


def test_events_of_which_none_can_be_read_are_an_error_not_a_zero_score(tmp_path) -> None:
    from monitor.evaluate import load_steps

    path = tmp_path / "events.jsonl"
    path.write_text('{"x": 1}\n{"y": 2}\n')
    with pytest.raises(ValueError, match="not one of the 2 records .* could be read; the first: line 1: workflow"):
        load_steps(path)
    path.write_text("")
    assert load_steps(path) == []  # an empty file is no error
