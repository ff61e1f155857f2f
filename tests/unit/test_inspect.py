"""Rendering of the worker's JSON documents (recorded from /items, /baselines, /stages, /alerts)."""

from __future__ import annotations

import pytest
from rich.console import Console

from monitor.inspect import NotFound, alerts_table, item_table, select_alerts, select_stage, stage_tables

ITEM = {
    "entity_id": "deal-42", "workflow": "sales", "stage": "contract", "segment": "enterprise",
    "entered_at": 1767225600.0, "age_seconds": 912000.0, "expected_seconds": 302000.0,
    "threshold_seconds": 700000.0, "deadline": 1767925600.0, "waiting_on": None, "stalled": True,
    "why": "stalled: 10.6 days in contract, past the limit of 8.1 days (segment baseline)",
}
BASELINES = [
    {"workflow": "sales", "stage": "contract", "segment": "*", "n": 1500, "typical_seconds": 107000.0,
     "p95_seconds": 330000.0, "threshold_seconds": 420000.0, "source": "stage", "time_basis": "wall"},
    {"workflow": "sales", "stage": "contract", "segment": "smb", "n": 1065, "typical_seconds": 88000.0,
     "p95_seconds": 190000.0, "threshold_seconds": 354000.0, "source": "segment", "time_basis": "business",
     "time_zone": "Europe/Paris"},
    {"workflow": "sales", "stage": "contract (waiting on legal)", "segment": "enterprise", "n": 4,
     "typical_seconds": None, "p95_seconds": None, "threshold_seconds": None, "source": "warming",
     "time_basis": "wall"},
    {"workflow": "sales", "stage": "lead", "segment": "*", "n": 2346, "typical_seconds": 53000.0,
     "p95_seconds": 132000.0, "threshold_seconds": 224000.0, "source": "stage", "time_basis": "wall"},
]
STAGES = [
    {"workflow": "sales", "stage": "contract", "wip": 37, "stalled": 2, "oldest_age_seconds": 1200000.0,
     "due_next_hour": 1, "arrivals_total": 1961, "departures_total": 1924, "bottleneck_score": 0.41,
     "terminal": False},
    {"workflow": "sales", "stage": "lead", "wip": 12, "stalled": 0, "oldest_age_seconds": 3600.0,
     "due_next_hour": 0, "arrivals_total": 2400, "departures_total": 2388, "bottleneck_score": 0.1,
     "terminal": False},
]
ALERTS = [
    {"alert_id": "a1", "kind": "slow_stage", "status": "firing", "workflow": "sales", "stage": "lead",
     "entity_id": "deal-7", "segment": "smb", "at": "2026-03-01T10:00:00Z", "observed_seconds": 400000.0,
     "expected_seconds": 53000.0, "threshold_seconds": 224000.0, "score": 0.99, "severity": "ticket",
     "summary": "deal-7 spent 4.6 days in lead", "waiting_on": None, "details": {"time_basis": "wall"}},
    {"alert_id": "a2", "kind": "stalled", "status": "firing", "workflow": "sales", "stage": "contract",
     "entity_id": "deal-42", "segment": "enterprise", "at": "2026-03-09T10:00:00Z", "observed_seconds": 912000.0,
     "expected_seconds": 302000.0, "threshold_seconds": 700000.0, "score": 0.998, "severity": "page",
     "summary": "deal-42 has been in contract 10.6 days", "waiting_on": None, "details": {"time_basis": "wall"}},
    {"alert_id": "a3", "kind": "source_silent", "status": "firing", "workflow": "support", "stage": None,
     "entity_id": None, "segment": None, "at": "2026-03-09T11:00:00Z", "observed_seconds": 20000.0,
     "expected_seconds": 600.0, "threshold_seconds": 7200.0, "score": 0.999, "severity": "page",
     "summary": "no support events for 5.6 hours", "details": {}},
]


def text(renderable) -> str:
    console = Console(record=True, width=220, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_item_table_says_stalled_why_and_durations_in_words():
    out = text(item_table(ITEM))
    assert "STALLED" in out
    assert "past the limit of 8.1 days" in out
    assert "10.6 days" in out  # age 912000 s
    assert "8.1 days" in out  # threshold 700000 s
    assert "2026-01-01 00:00:00 UTC" in out  # entered_at


def test_item_table_on_track_item_has_no_stalled_verdict():
    out = text(item_table({**ITEM, "stalled": False, "why": "on track", "deadline": None, "threshold_seconds": None}))
    assert "not stalled" in out and "STALLED" not in out


def test_stage_tables_show_every_segment_and_waiting_state_but_not_other_stages():
    out = "".join(text(t) for t in stage_tables("sales", "contract", BASELINES, STAGES))
    assert "* (stage)" in out and "smb" in out
    assert "contract (waiting on legal)" in out and "warming" in out
    assert "lead" not in out
    assert "1065" in out and "98.3 working hours" in out  # smb n and threshold 354000 s, in working time
    assert "business (Europe/Paris)" in out  # the zone of its working hours
    assert "37" in out and "0.41" in out  # WIP and bottleneck score


def test_unknown_stage_raises_not_found_listing_known_stages():
    with pytest.raises(NotFound, match="contract, lead"):
        stage_tables("sales", "nope", BASELINES, STAGES)
    with pytest.raises(NotFound, match="no workflow"):
        stage_tables("claims", "intake", BASELINES, STAGES)


def test_select_stage_keeps_waiting_states_only_of_that_stage():
    doc = select_stage("sales", "contract", BASELINES, STAGES)
    assert [b["stage"] for b in doc["baselines"]] == ["contract", "contract", "contract (waiting on legal)"]
    assert [s["stage"] for s in doc["stages"]] == ["contract"]


def test_alerts_table_orders_pages_first_and_filters():
    out = text(alerts_table(ALERTS))
    assert "firing alerts: 3" in out
    assert out.index("deal-42") < out.index("deal-7")  # page before ticket
    assert out.index("no support events") < out.index("deal-7")
    only = text(alerts_table(ALERTS, workflow="sales", kind="stalled"))
    assert "firing alerts: 1" in only and "deal-7" not in only
    assert [a["alert_id"] for a in select_alerts(ALERTS, workflow="support")] == ["a3"]


def test_alerts_table_empty_says_nothing_is_firing():
    assert "nothing is firing" in text(alerts_table([]))


def test_an_item_on_working_hours_is_shown_in_working_time_as_its_why_says():
    """The table said "age in stage 10.0 days, threshold 2.2 days" of an item whose why-line measured
    "239.3 working hours ... limit of 53.8 working hours": the view now says which time it is in."""
    import msgspec

    from monitor.events import human_duration
    from tests.unit.test_engine import _in_contract, _reload_settings, _ticks, _warm

    hours = {"mode": "business", "timezone": "Europe/Berlin", "workdays": [0, 1, 2, 3, 4], "start_hour": 9,
             "end_hour": 17}
    eng, t = _warm(_reload_settings(calendar=hours, stages={"contract": {"max_threshold_seconds": 193680}}))
    assert _in_contract(eng, t) == 193680  # 53.8 working hours
    now = t + 30 * 24 * 3600
    assert _ticks(eng, t, 30 * 24, "deal-42")  # paged
    view = eng.item_view("deal-42", now)
    assert view is not None and view.stalled
    assert (view.time_basis, view.time_zone) == ("business", "Europe/Berlin")
    age, limit = human_duration(view.age_seconds, True), human_duration(view.threshold_seconds, True)
    assert f"stalled: {age} in contract, past the limit of {limit}" in view.why
    out = text(item_table(msgspec.to_builtins(view)))  # the worker's /items/{id} document
    assert out.count(age) == 2 and out.count(limit) == 2  # the why-line and the age / threshold rows
    assert "days" not in out and "business (Europe/Berlin)" in out
    before = {k: v for k, v in msgspec.to_builtins(view).items() if k not in ("time_basis", "time_zone")}
    assert "days" in text(item_table(before))  # a worker from before the field: wall time, as it was


def test_inspect_item_asks_the_worker_for_exactly_that_id_whatever_characters_it_holds(capsys):
    """The id went into the URL as it was: 'deal-1#B' showed deal-1, 'acme/42' and 'q?x' were not found.
    Asked here of the real worker's route (aiohttp, as Faust serves it), no broker needed."""
    import asyncio
    import json

    from aiohttp.test_utils import TestServer

    from monitor.inspect import run
    from tests.unit.test_engine import T0, ev
    from tests.unit.test_worker_partitions import worker

    w = worker([])
    ids = ["deal-1", "deal-1#B", "acme/42", "q?x", "50% off", "a%2Fb", "ü", "..", ".", "a/../b", "x/"]
    for entity in ids:
        w.engine_for(0).process(ev(entity, "lead", T0))

    async def ask() -> list[tuple[int, str | None]]:
        server = TestServer(w.app.web.web_app)
        await server.start_server()
        answers = []
        try:
            for entity in ids:
                code = await asyncio.to_thread(run, "item", str(server.make_url("/")), True, entity_id=entity)
                out = capsys.readouterr().out
                answers.append((code, json.loads(out)["entity_id"] if code == 0 else None))
        finally:
            await server.close()
        return answers

    assert asyncio.run(ask()) == [(0, entity) for entity in ids]


def test_inspect_of_something_that_is_not_a_worker_is_a_clear_error_not_a_traceback(capsys):
    """A --worker that answers HTML (Prometheus), JSON of another shape, or is no URL at all."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from monitor.inspect import run

    answers = {"/html": (200, b"<html>Prometheus</html>"), "/list": (404, b"[1, 2]"), "/shape": (200, b'{"x": 1}')}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            code, body = answers[self.path.split("/items")[0]]
            self.send_response(code)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert run("item", base + "/html", False, entity_id="d") == 2
        assert "not JSON" in capsys.readouterr().err
        assert run("item", base + "/list", False, entity_id="d") == 1  # a 404 of a JSON list: not found
        assert run("item", base + "/shape", False, entity_id="d") == 2
        assert "not a Stagewatch worker's" in capsys.readouterr().err
        assert run("item", "http://[::1", False, entity_id="d") == 2
        assert "cannot reach the worker" in capsys.readouterr().err
    finally:
        server.shutdown()
