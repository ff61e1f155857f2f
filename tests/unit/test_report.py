"""The replay report: durations computed from events, samples of the engine, tables and the HTML."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from monitor.config import Settings
from monitor.events import Event, format_ts, parse_timestamp
from monitor.report import (
    Transitions,
    collect,
    flow_rows,
    render_html,
    report_command,
    top_stalled,
    write_report,
)

T0 = parse_timestamp("2026-01-05T00:00:00Z")
H = 3600.0
STUCK = "deal-<stuck>"  # an id that needs HTML escaping


def tiny_events(path: Path, items: int = 120, seed: int = 3) -> Path:
    """Items enter `a` every 15 min, spend ~1 h there and ~30 min in `b`, then `done`; one stays in `a`.

    Also one duplicate event and one invalid line. Returns ``path``.
    """
    rng = random.Random(seed)
    rows: list[dict] = []
    for i in range(items):
        entity = STUCK if i == 60 else f"deal-{i}"
        t = T0 + i * 900.0
        rows.append({"event_id": f"{entity}-a", "workflow": "w", "entity_id": entity, "stage": "a",
                     "timestamp": format_ts(t), "attributes": {"segment": "x"}})
        if entity == STUCK:
            continue
        t += H * rng.uniform(0.8, 1.2)
        rows.append({"event_id": f"{entity}-b", "workflow": "w", "entity_id": entity, "stage": "b",
                     "timestamp": format_ts(t)})
        t += 0.5 * H * rng.uniform(0.8, 1.2)
        rows.append({"event_id": f"{entity}-d", "workflow": "w", "entity_id": entity, "stage": "done",
                     "timestamp": format_ts(t)})
    rows.sort(key=lambda r: r["timestamp"])
    rows.append(rows[10])  # a duplicate delivery
    lines = [json.dumps(r) for r in rows] + ['{"workflow": "w", "stage": "a"}']  # invalid: no entity, no time
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


SETTINGS = Settings(engine={"warmup": 20}, workflows={"w": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    events = tiny_events(tmp_path_factory.mktemp("report") / "events.jsonl")
    return collect(events, SETTINGS, sample_hours=1.0)


def ev(entity: str, stage: str, ts: float, eid: str, waiting_on: str | None = None) -> Event:
    return Event(eid, "w", entity, stage, ts, {}, waiting_on)


def test_transitions_learn_durations_and_ignore_duplicates_late_events_and_heartbeats():
    tr = Transitions()
    tr.see(ev("e", "a", 100.0, "1"))
    tr.see(ev("e", "a", 150.0, "2"))  # heartbeat: same stage
    tr.see(ev("e", "a", 100.0, "1"))  # duplicate
    tr.see(ev("e", "b", 400.0, "3"))
    tr.see(ev("e", "a", 300.0, "4"))  # late: older than the entry into b
    tr.see(ev("e", "c", 1000.0, "5", waiting_on="legal"))
    tr.see(ev("e", "d", 1600.0, "6"))
    assert tr.spans[("w", "a")] == [(100.0, 400.0)]
    assert tr.spans[("w", "b")] == [(400.0, 1000.0)]
    assert tr.spans[("w", "c (waiting on legal)")] == [(1000.0, 1600.0)]


def test_transitions_forget_items_in_terminal_stages():
    tr = Transitions()
    tr.terminal.add(("w", "done"))
    tr.see(ev("e", "a", 0.0, "1"))
    tr.see(ev("e", "done", 10.0, "2"))
    assert "e" not in tr.open and tr.spans[("w", "a")] == [(0.0, 10.0)]


def test_collect_counts_durations_health_and_the_stuck_item(data):
    assert len(data.durations[("w", "a")]) == 119
    assert len(data.durations[("w", "b")]) == 119
    assert all(0.8 * H <= d <= 1.2 * H for d in data.durations[("w", "a")])
    assert data.summary.outcomes["duplicate"] == 1
    assert data.summary.invalid == 1
    assert sum(data.bad_reasons.values()) == 1
    assert not any(r.startswith("line ") for r in data.bad_reasons)  # grouped by reason, not position
    stalled = [a for a in data.alerts if a.kind == "stalled" and a.status == "firing"]
    assert [a.entity_id for a in stalled] == [STUCK]
    assert len(data.samples) > 20
    # the threshold is learned after warm-up and the samples show it appearing
    thresholds = [b.threshold_seconds for s in data.samples for b in s.baselines
                  if b.stage == "a" and b.segment == "*"]
    assert thresholds[0] is None and thresholds[-1] is not None and H < thresholds[-1] < 10 * H


def test_top_stalled_measures_time_stuck_to_the_end(data):
    end = data.samples[-1].at
    rows = top_stalled(data.alerts, end)
    assert [r.entity_id for r in rows] == [STUCK]
    entered = T0 + 60 * 900.0
    assert rows[0].still_open and rows[0].stuck_seconds == pytest.approx(end - entered)


def test_flow_rows_agree_with_littles_law_on_a_steady_stage(data):
    rows = {r.stage: r for r in flow_rows(data)}
    assert set(rows) == {"a", "b"}  # the terminal stage is not a queue
    a = rows["a"]
    assert a.arrivals == 120 and a.departures == 119
    assert a.mean_wall_seconds == pytest.approx(H, rel=0.1)
    # 4 arrivals/hour x ~1 hour: about 4 items in `a` on average, plus the stuck one
    assert a.little_wip == pytest.approx(4.0, rel=0.2)
    assert a.observed_wip == pytest.approx(a.little_wip + 1, rel=0.35)


def test_html_is_self_contained_escaped_and_has_the_plots(data, tmp_path: Path):
    page = render_html(data)
    assert page.count("<svg") == 2 + 1 + 1  # 2 stages (histogram + threshold), timeline, WIP
    assert "<script" not in page and "<link" not in page and "src=" not in page  # nothing to fetch
    assert "deal-&lt;stuck&gt;" in page and STUCK not in page
    for section in ("Data health", "Top 20 stalled items", "Little", "threshold over time", "duplicate"):
        assert section in page
    out = write_report(data, tmp_path / "sub" / "r.html")
    written = out.read_text(encoding="utf-8")
    assert written.startswith("<!DOCTYPE html>") and written.count("<svg") == 4


def test_names_with_dollar_signs_are_drawn_as_they_are_not_as_math(tmp_path: Path):
    """matplotlib read '$...$' in a workflow, stage or segment name as mathtext: '$x^$' stopped the report
    with a ParseSyntaxException after the whole replay, and 'a $5 and $10' came out in italics."""
    names = {"w": "pay $x^$", "a": r"a $\frac$", "b": "b $5 and $10", "done": "done"}
    rows = [json.loads(line) for line in tiny_events(tmp_path / "events.jsonl").read_text().splitlines()[:-1]]
    for r in rows:
        r["workflow"], r["stage"] = names["w"], names[r["stage"]]
        r.setdefault("attributes", {})["segment"] = "$k_$"
    (tmp_path / "dollars.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    settings = Settings(engine={"warmup": 20},
                        workflows={names["w"]: {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    page = render_html(collect(tmp_path / "dollars.jsonl", settings, sample_hours=1.0))
    assert page.count("<svg") == 4
    svgs = "".join(re.findall(r"<svg.*?</svg>", page, flags=re.S))
    for name in ("pay $x^$", r"a $\frac$", "b $5 and $10", "$k_$"):  # titles, legends: the names as text
        assert name in svgs, name


def test_the_header_and_the_alert_timeline_start_at_the_first_event(data, monkeypatch):
    """They started at the first sample, one --sample-hours after the first event."""
    import monitor.report as report_mod

    spans: list[tuple[float, float]] = []
    monkeypatch.setattr(report_mod, "timeline_figure", lambda _a, _wf, start, end: spans.append((start, end)) or "")
    page = render_html(data)
    assert f"event time {format_ts(T0)} → {format_ts(data.samples[-1].at)}" in page
    assert spans == [(T0, data.samples[-1].at)]


def test_an_empty_file_reports_no_events_not_1970(tmp_path: Path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert report_command(empty, tmp_path / "r.html", SETTINGS) == 0  # as backtest: no error, nothing to say
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "no events" in page and "1970" not in page


def test_a_file_of_which_no_record_could_be_read_exits_1_as_backtest_does(tmp_path: Path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\nnot json\n')
    assert report_command(bad, tmp_path / "r.html", SETTINGS) == 1
    assert "not one of the 2 records" in capsys.readouterr().err
    assert "Why records were invalid" in (tmp_path / "r.html").read_text(encoding="utf-8")  # written: it says why
    starts = tmp_path / "starts.csv"  # every event a lifecycle "start": read, and not one replayed
    starts.write_text("case_id,activity,timestamp,lifecycle:transition\n"
                      "c1,a,2026-01-01T00:00:00Z,start\nc1,b,2026-01-01T01:00:00Z,start\n")
    assert report_command(starts, tmp_path / "s.html", SETTINGS) == 1
    assert "not one event of" in capsys.readouterr().err  # as backtest (it exited 0 before)


def test_what_report_could_not_write_or_read_is_said_in_one_line_before_the_replay(tmp_path: Path, capsys,
                                                                                   monkeypatch):
    """--out alerts.jsonl/r.html failed with a traceback after the whole replay; --truth DIR with one too."""
    import monitor.report as report_mod

    monkeypatch.setattr(report_mod, "collect", lambda *_a, **_k: pytest.fail("replayed"))
    events = tiny_events(tmp_path / "events.jsonl")
    (tmp_path / "alerts.jsonl").write_text("")
    assert report_command(events, tmp_path / "alerts.jsonl" / "r.html", SETTINGS) == 2
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and "alerts.jsonl: Not a directory" in said
    assert report_command(events, tmp_path / "r.html", SETTINGS, truth=tmp_path) == 2
    assert capsys.readouterr().err == f"{tmp_path}: a directory, not a file\n"
