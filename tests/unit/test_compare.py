"""Two configurations on the same events: counts, identity difference, scores against a truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from monitor.compare import compare, tables
from monitor.config import Settings
from monitor.events import format_ts
from tests.unit.test_report import SETTINGS, STUCK, T0, tiny_events

# B mutes stage `a`: the stuck item's page exists only under A
MUTED = Settings(engine={"warmup": 20},
                 workflows={"w": {"terminal_stages": ["done"], "calendar": {"mode": "wall"},
                                  "stages": {"a": {"mute": True}}}})


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("compare")
    events = tiny_events(d / "events.jsonl")
    truth = {
        "scenario": "tiny", "seed": 0, "items": 120, "start": format_ts(T0), "end": format_ts(T0 + 40 * 3600),
        "workflows": {"w": {"stages": ["a", "b", "done"], "terminal": ["done"], "segments": ["x"], "calendar": None}},
        "medians": [{"workflow": "w", "stage": "a", "segment": "x", "median_seconds": 3600.0,
                     "valid_from": format_ts(T0), "valid_to": format_ts(T0 + 40 * 3600)}],
        "anomalies": [{"workflow": "w", "entity_id": STUCK, "stage": "a", "segment": "x",
                       "entered_at": format_ts(T0 + 60 * 900.0), "duration_seconds": None, "factor": 20.0,
                       "normal_median_seconds": 3600.0}],
        "shifts": [], "silences": [], "lost_event_entities": [], "duplicates": 1, "max_delay_seconds": 0,
    }
    (d / "truth.json").write_text(json.dumps(truth), encoding="utf-8")
    return events, d / "truth.json"


@pytest.fixture(scope="module")
def result(files):
    events, truth = files
    return compare(SETTINGS, MUTED, events, names=("base.yaml", "muted.yaml"), truth_path=truth)


def test_identities_only_in_a_are_the_muted_stage_pages(result):
    diff = result.difference()
    assert [(a.kind, a.entity_id) for a in diff["only_a"] if a.kind == "stalled"] == [("stalled", STUCK)]
    assert all(a.stage == "a" for a in diff["only_a"])
    assert diff["only_b"] == []
    assert {a.alert_id for a in diff["both"]} == set(result.a.firing) - {a.alert_id for a in diff["only_a"]}


def test_rows_count_alerts_per_stage_segment_and_kind(result):
    rows = {(wf, st, seg, kind): (na, nb) for wf, st, seg, kind, na, nb in result.rows()}
    assert rows[("w", "a", "x", "stalled")] == (1, 0)
    assert sum(na for na, _ in rows.values()) == sum(result.a.summary.firing.values())


def test_scores_reuse_the_evaluate_matching(result):
    assert result.a.scores["pages"]["detected"] == 1 and result.a.scores["pages"]["recall"] == 1.0
    assert result.b.scores["pages"]["detected"] == 0 and result.b.scores["pages"]["recall"] == 0.0


def test_json_and_tables_render(result):
    doc = json.loads(json.dumps(result.as_dict()))
    assert doc["configs"] == {"A": "base.yaml", "B": "muted.yaml"}
    assert doc["difference"]["only_b"]["count"] == 0
    assert doc["difference"]["only_a"]["by_kind"].get("stalled") == 1
    assert doc["scores"]["A"]["f1"] > doc["scores"]["B"]["f1"]
    console = Console(record=True, width=200, color_system=None)
    for t in tables(result):
        console.print(t)
    out = console.export_text()
    assert "only in A" in out and "fired only in A" in out and "item pages against the truth" in out
    assert STUCK in out


def cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from monitor.cli import app

    r = CliRunner().invoke(app, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception  # no traceback
    return r


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("configs")
    # `w` not listed: --tz gives its local hours; 70 completions: warm on one partition, not on two
    (d / "a.yaml").write_text("engine: {warmup: 70}\n")
    (d / "b.yaml").write_text("engine: {warmup: 25}\n")
    return d / "a.yaml", d / "b.yaml"


def test_compare_replays_each_config_as_backtest_does_with_tz_partitions_and_order(files, configs, tmp_path):
    """--compare ignored --tz (the settings were read without it), --partitions and --order."""
    events, _truth = files
    given = ["--tz", "Europe/Berlin", "--partitions", "2", "--order", "time", "--json"]
    r = cli("backtest", "--compare", str(configs[0]), str(configs[1]), str(events), *given)
    assert r.exit_code == 0, r.output
    compared = json.loads(r.stdout)["summary"]
    for side, config in zip("AB", configs, strict=True):
        r = cli("backtest", str(events), "-c", str(config), "-o", str(tmp_path / f"{side}.jsonl"), *given)
        alone = json.loads(r.stdout)
        for key in ("events_read", "behind_clock", "outcomes", "firing", "time_basis", "stages", "warm_stages"):
            assert compared[side][key] == alone[key], (side, key)
    assert "local hours of Europe/Berlin" in compared["A"]["time_basis"]["w"]
    assert compared["A"]["behind_clock"] == 0  # the duplicate at the file's end is sorted into its place
    assert compared["A"]["warm_stages"] == 0  # each of the 2 partitions saw ~60 completions of a stage


@pytest.mark.parametrize("option", [["-o", "alerts.jsonl"], ["--dlq-out", "bad.jsonl"], ["-c", "a.yaml"]])
def test_compare_refuses_the_options_it_cannot_honour(files, configs, option, tmp_path, monkeypatch):
    monkeypatch.chdir(configs[0].parent)
    r = cli("backtest", "--compare", "a.yaml", "b.yaml", str(files[0]), *option)
    assert r.exit_code == 2 and option[0] in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert sorted(p.name for p in configs[0].parent.iterdir()) == ["a.yaml", "b.yaml"]  # nothing written


def test_compare_on_unreadable_input_says_so_in_one_line(configs, tmp_path):
    a, b = str(configs[0]), str(configs[1])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\nnot json\n')
    r = cli("backtest", "--compare", a, b, str(bad))
    assert r.exit_code == 1 and "not one of the 2 records" in " ".join(r.output.split())  # as backtest
    starts = tmp_path / "starts.csv"  # every event a lifecycle "start": read, and not one replayed
    starts.write_text("case_id,activity,timestamp,lifecycle:transition\n"
                      "c1,a,2026-01-01T00:00:00Z,start\nc1,b,2026-01-01T01:00:00Z,start\n")
    for args in (("backtest", "--compare", a, b, str(starts)), ("backtest", str(starts))):
        r = cli(*args)
        assert r.exit_code == 1 and "not one event of" in " ".join(r.output.split()), r.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert cli("backtest", "--compare", a, b, str(empty)).exit_code == 0  # as backtest: no error, no alerts
    r = cli("backtest", "--compare", a, b, str(empty), "--feedback", str(tmp_path))
    assert r.exit_code == 2 and f"{tmp_path}: a directory, not a file" in " ".join(r.output.split())


@pytest.mark.parametrize("tick", ["inf", "nan"])
def test_a_tick_that_is_no_step_is_an_option_error_not_a_reading_one(tmp_path: Path, tick: str) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text('{"workflow": "w", "entity_id": "a", "stage": "s", "timestamp": 1772460300}\n')
    r = cli("backtest", str(events), "--tick", tick, "--alerts-out", str(tmp_path / "a.jsonl"))
    assert r.exit_code == 2 and "Invalid value for '--tick'" in r.output and "cannot read" not in r.output


def test_a_write_that_fails_names_the_outputs_not_only_the_input() -> None:
    from monitor.inputs import read_problem

    said = read_problem(OSError(28, "No space left on device"), "in.jsonl")
    assert said == "cannot read in.jsonl or write the outputs: No space left on device"
