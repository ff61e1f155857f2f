from __future__ import annotations

import gzip
import json

import pytest

from monitor.events import parse_timestamp
from monitor.readers import (
    CsvMapping,
    MappingError,
    ReadStats,
    XesMapping,
    events_only,
    read_events,
    sort_by_time,
)
from monitor.simulate import simulate, write


def _key(ev):
    return (ev.event_id, ev.workflow, ev.entity_id, ev.stage, round(ev.timestamp, 3), dict(ev.attributes),
            ev.waiting_on)


@pytest.fixture(scope="module")
def sim():
    return simulate("out_of_order", items=300, seed=2)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "xes"])
def test_simulator_output_round_trips_in_every_format(tmp_path, sim, fmt):
    path = write(sim, tmp_path, fmt)
    pairs = list(read_events(path))
    assert all(bad is None for _, bad in pairs)
    got = sorted(_key(ev) for ev, _ in pairs)
    want = sorted(
        (e.event_id, e.workflow, e.entity_id, e.stage, round(e.ts, 3),
         {"segment": e.segment, "region": e.region, "owner": e.owner}, e.waiting_on)
        for e in sim.events
    )
    assert got == want
    assert any(k[6] == "customer" for k in got)  # waiting_on survives every format


def test_jsonl_keeps_bad_lines_with_their_line_number(tmp_path):
    p = tmp_path / "e.jsonl"
    p.write_text(
        '{"workflow":"w","entity_id":"a","stage":"s1","timestamp":"2026-01-01T00:00:00Z"}\n'
        "\n"
        "{not json\n"
        '{"workflow":"w","entity_id":"a","stage":"s2","timestamp":"yesterday"}\n'
        '[{"workflow":"w","entity_id":"b","stage":"s1","timestamp":1767225600}]\n'
    )
    pairs = list(read_events(p))
    good = [e for e, _ in pairs if e]
    bad = [b for _, b in pairs if b]
    assert [(e.entity_id, e.stage) for e in good] == [("a", "s1"), ("b", "s1")]
    assert [b.reason.split(":")[0] for b in bad] == ["line 3", "line 4"]
    assert "timestamp" in bad[1].reason and bad[0].raw == b"{not json"


def test_csv_mapping_names_the_missing_column_and_lists_the_header(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("case,act,when\nc1,A,2026-01-01T09:00:00\n")
    with pytest.raises(MappingError) as err:
        list(read_events(p))  # "case" is a usual name of the entity column, "act" is no stage name
    msg = str(err.value)
    assert "no stage column found" in msg and "--stage-col" in msg and "case, act, when" in msg
    with pytest.raises(MappingError, match="time column 'ts'"):
        list(read_events(p, mapping=CsvMapping(entity_col="case", stage_col="act", time_col="ts")))
    with pytest.raises(MappingError, match="not understood"):
        list(read_events(p, mapping={"entity": "case"}))
    with pytest.raises(MappingError, match="time zone"):
        list(read_events(p, mapping={"tz": "Mars/Olympus"}))


def test_csv_naive_times_are_read_in_the_given_zone_and_workflow_can_be_a_constant(tmp_path):
    p = tmp_path / "orders.csv"
    p.write_text("case,act,when,prio\nc1,A,2026-07-01 09:00:00,high\nc1,B,2026-07-01T10:00:00Z,\nc2,A,oops,low\n")
    mapping = {"entity_col": "case", "stage_col": "act", "time_col": "when", "tz": "Europe/Berlin"}
    pairs = list(read_events(p, mapping=mapping, order="file"))
    (a, _), (b, _), (_, bad) = pairs
    assert a.timestamp == parse_timestamp("2026-07-01T07:00:00Z")  # 09:00 CEST
    assert b.timestamp == parse_timestamp("2026-07-01T10:00:00Z")  # explicit offset wins
    assert (a.utc_offset, b.utc_offset) == (7200.0, 0.0)  # where the source's day is, for the engine
    assert a.workflow == "orders"  # file stem
    assert a.attributes == {"prio": "high"} and b.attributes == {}
    assert bad.reason.startswith("line 4: timestamp")
    const = next(events_only(read_events(p, mapping={**mapping, "workflow": "shop"})))
    assert const.workflow == "shop"
    by_col = next(events_only(read_events(p, mapping={**mapping, "workflow": "prio"})))
    assert by_col.workflow == "high"


def test_process_mining_csv_needs_no_mapping(tmp_path):
    """An export as process-mining tools write it: XES keys as column names, semicolons, a byte-order
    mark, one case after the other, start and complete rows."""
    p = tmp_path / "claims.csv"
    rows = ["case:concept:name;concept:name;lifecycle:transition;time:timestamp;org:resource",
            "c1;Register;complete;2026-03-02 09:00:00+01:00;Ann",
            "c1;Review;start;2026-03-02 09:30:00+01:00;Bob",
            "c1;Review;complete;2026-03-04 11:00:00+01:00;Bob",
            "c2;Register;complete;2026-03-03 10:00:00+01:00;Ann",
            "c2;Review;In Progress;2026-03-03 12:00:00+01:00;Bob"]
    p.write_bytes(("\ufeff" + "\n".join(rows) + "\n").encode())
    got = [(e.entity_id, e.stage, e.attributes.get("lifecycle")) for e in events_only(read_events(p))]
    # time order; "start" is no stage entry, a non-standard status is one
    assert got == [("c1", "Register", None), ("c2", "Register", None), ("c2", "Review", None),
                   ("c1", "Review", None)]
    first = next(events_only(read_events(p)))
    assert first.workflow == "claims" and first.attributes == {"org:resource": "Ann"}
    every = [(e.stage, e.attributes.get("lifecycle"))
             for e in events_only(read_events(p, mapping={"transitions": ("*",)}))]
    assert ("Review", "start") in every and len(every) == 5
    in_file = [e.entity_id for e in events_only(read_events(p, order="file"))]
    assert in_file == ["c1", "c1", "c2", "c2"]
    from monitor.backtest import run_backtest
    from monitor.readers import csv_layout

    said = ("entity = case:concept:name, stage = concept:name, time = time:timestamp, "
            "lifecycle = lifecycle:transition (delimiter ';')")
    assert csv_layout(p) == said and run_backtest(p, None).columns == said  # the summary says what it read
    with pytest.raises(MappingError, match="one column"):  # a wrong delimiter given: one column
        list(read_events(p, mapping={"delimiter": "|"}))


def test_csv_row_with_wrong_field_count_is_a_bad_record(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("case_id,activity,timestamp\nc1,A\nc1,A,2026-01-01T00:00:00Z\n")
    pairs = list(read_events(p))
    assert pairs[0][1].reason == "line 2: 2 fields, the header has 3"
    assert pairs[1][0].stage == "A"


XES = """<?xml version="1.0" encoding="UTF-8" ?>
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <global scope="trace"><string key="concept:name" value="__INVALID__"/></global>
  <global scope="event">
    <string key="concept:name" value="__INVALID__"/>
    <string key="lifecycle:transition" value="complete"/>
  </global>
  <string key="concept:name" value="BPI-like"/>
  <trace>
    <event>
      <string key="concept:name" value="A_SUBMITTED"/>
      <string key="lifecycle:transition" value="start"/>
      <date key="time:timestamp" value="2011-10-01T00:38:44.546+02:00"/>
    </event>
    <event>
      <string key="concept:name" value="A_SUBMITTED"/>
      <date key="time:timestamp" value="2011-10-01T00:39:44.546+02:00"/>
      <string key="org:resource" value="112"/>
      <list key="tags"><string key="tag" value="nested, ignored"/></list>
    </event>
    <event>
      <string key="concept:name" value="W_Afhandelen"/>
      <string key="lifecycle:transition" value="COMPLETE"/>
      <date key="time:timestamp" value="2011-10-01T08:00:00"/>
    </event>
    <string key="concept:name" value="173688"/>
    <float key="AMOUNT_REQ" value="20000"/>
  </trace>
  <trace>
    <string key="concept:name" value="173691"/>
    <event>
      <string key="concept:name" value="A_SUBMITTED"/>
      <date key="time:timestamp" value="not a date"/>
    </event>
  </trace>
</log>
"""


def test_xes_reads_case_attributes_globals_and_lifecycle_like_bpi_logs(tmp_path):
    p = tmp_path / "bpi.xes"
    p.write_text(XES)
    pairs = list(read_events(p))
    good = [e for e, _ in pairs if e]
    bad = [b for _, b in pairs if b]
    assert [(e.entity_id, e.stage) for e in good] == [("173688", "A_SUBMITTED"), ("173688", "W_Afhandelen")]
    assert good[0].workflow == "BPI-like"  # log concept:name
    assert good[0].timestamp == parse_timestamp("2011-09-30T22:39:44.546Z")
    assert good[0].attributes == {"AMOUNT_REQ": "20000", "owner": "112"}
    assert good[1].timestamp == parse_timestamp("2011-10-01T08:00:00Z")  # naive: tz=UTC
    assert len(bad) == 1 and "trace 2" in bad[0].reason and "timestamp" in bad[0].reason
    starts = list(events_only(read_events(p, mapping=XesMapping(transitions=("start",), workflow="loans"))))
    assert [(e.stage, e.workflow) for e in starts] == [("A_SUBMITTED", "loans")]
    everything = list(events_only(read_events(p, mapping={"transitions": ("*",), "tz": "Europe/Amsterdam"})))
    assert len(everything) == 3 and everything[0].attributes["lifecycle"] == "start"
    assert everything[2].timestamp == parse_timestamp("2011-10-01T06:00:00Z")
    assert [e.utc_offset for e in everything] == [7200.0, 7200.0, 7200.0]


def test_events_skipped_for_their_lifecycle_are_counted_said_and_replayed_with_transitions(tmp_path, monkeypatch):
    """A log of only ``start`` events replayed nothing and said "the file holds no events", exit 0: the
    skipped events are counted (CSV and XES), the summary names them and --transitions, which replays
    them, and the CLI exits 1; a CSV option given for an XES file names the flags XES takes."""
    from typer.testing import CliRunner

    from monitor.backtest import run_backtest
    from monitor.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "starts.xes").write_text(XES.replace("<date key", '<string key="lifecycle:transition" value="start"/>'
                                                     '<date key'))
    (tmp_path / "starts.csv").write_text("case_id,activity,timestamp,lifecycle:transition\n"
                                         "c1,a,2026-01-01T00:00:00Z,start\nc1,b,2026-01-01T01:00:00Z,schedule\n")
    assert run_backtest("starts.csv", None).reading.skipped == {"start": 1, "schedule": 1}
    summary = run_backtest("starts.xes", None)
    assert (summary.events_read, summary.reading.skipped) == (0, {"start": 4})
    said = ("4 events skipped: lifecycle transition not complete (start 4); to replay them: --transitions "
            "start,complete, or --transitions all")
    assert summary.reading.not_replayed() == said
    runner = CliRunner()
    r = runner.invoke(app, ["backtest", "starts.xes"], terminal_width=200)
    assert r.exit_code == 1 and said in " ".join(r.output.split()) and "holds no events" not in r.output, r.output
    for given in ("start,complete", "all", " Start "):
        r = runner.invoke(app, ["backtest", "starts.xes", "--transitions", given, "--json"])
        assert r.exit_code == 0 and json.loads(r.stdout)["events_read"] == 3, (given, r.output)
    r = runner.invoke(app, ["backtest", "starts.xes", "--transitions", "strat"])
    assert r.exit_code == 2 and "--transitions 'strat': give all, or XES lifecycle transitions" in r.output
    r = runner.invoke(app, ["backtest", "starts.xes", "--segment-col", "tier", "--time-col", "t"])
    assert r.exit_code == 2, r.output
    assert "--time-col, --segment-col: for CSV files only; an XES file takes --workflow, --tz, --transitions" in \
        " ".join(r.output.split())


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "xes"])
def test_gzipped_files_read_like_the_plain_ones(tmp_path, sim, fmt):
    """Public process-mining logs come as ``.xes.gz``: every format is read through gzip when the
    name ends in ``.gz``, with the same events and the same workflow name (no ``.xes`` left in it)."""
    plain = write(sim, tmp_path, fmt)
    packed = tmp_path / "packed" / (plain.name + ".gz")
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    want = [_key(ev) for ev, _ in read_events(plain)]
    got = [_key(ev) for ev, _ in read_events(packed)]
    assert got == want and len(got) > 100


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "xes"])
def test_a_gzip_cut_short_is_read_up_to_the_break_with_the_reason_kept(tmp_path, sim, fmt):
    """A download cut short: the events before the break are used, and the break is a bad record
    that says where and why, in every format; a ``.gz`` that is not gzip is one such record."""
    plain = write(sim, tmp_path, fmt)
    packed = gzip.compress(plain.read_bytes())
    cut = tmp_path / ("cut" + plain.suffix + ".gz")
    cut.write_bytes(packed[: len(packed) // 2])
    pairs = list(read_events(cut, order="file"))
    good = [e for e, _ in pairs if e is not None]
    bad = [b for _, b in pairs if b is not None]
    assert 20 < len(good) < len(list(read_events(plain)))
    assert len(bad) == 1 and "cut" + plain.suffix + ".gz cannot be read further" in bad[0].reason
    assert bad[0].reason.startswith("after line " if fmt != "xes" else "after trace ")
    if fmt == "jsonl":  # csv reads its header first: the CLI says it cannot read the file
        cut.write_bytes(b"plain text")
        (_e, bad1), = read_events(cut)
        assert bad1.reason.startswith("at its start:") and "Not a gzipped file" in bad1.reason


def test_jsonl_skips_a_byte_order_mark_and_reads_integer_ids(tmp_path):
    p = tmp_path / "e.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"workflow":"w","entity_id":42,"stage":"s","timestamp":1767225600}\r\n'
                  b'{"workflow":"w","entity_id":42,"stage":"t","timestamp":1767229200}\r\n')
    got = [(e.entity_id, e.stage) for e, _ in read_events(p)]
    assert got == [("42", "s"), ("42", "t")]


def test_a_csv_field_over_the_csv_module_limit_is_a_bad_row_not_the_end(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text(f'case,activity,timestamp\n1,a,2026-01-01 10:00\n1,"{"x" * 200_000}",2026-01-01 11:00\n'
                 "1,c,2026-01-01 12:00\n")
    pairs = list(read_events(p, order="file"))
    assert [e.stage for e, _ in pairs if e is not None] == ["a", "c"]
    (bad,) = [b for _, b in pairs if b is not None]
    assert bad.reason.startswith("line 3: not a CSV row (field larger than field limit")
    assert bad.raw == f'1,"{"x" * 200_000}",2026-01-01 11:00'.encode()  # kept for the DLQ, not b""


@pytest.mark.parametrize("after", [5, 1200])
def test_a_stray_quote_costs_its_line_not_the_rest_of_the_file(tmp_path, after):
    """An unterminated quote would take every line after it into one field (to the end of the file, or
    up to the next quote): its line is the bad record, with the reason, and the lines after it are read."""
    rows = [f"c{i},s0,2026-03-01T{i % 24:02d}:00:00Z,fine" for i in range(3 + after)]
    rows[2] = rows[2].replace("fine", '"oops')
    p = tmp_path / "x.csv"
    p.write_text("case_id,activity,timestamp,note\n" + "\n".join(rows) + "\n")
    pairs = list(read_events(p, order="file"))
    (bad,) = [b for _, b in pairs if b is not None]
    said = "the record runs over 1000 lines" if after > 1000 else f"the record runs over {after + 1} lines"
    assert bad.reason == f"line 4: unterminated quote ({said})"
    assert bad.raw == b'c2,s0,2026-03-01T02:00:00Z,"oops'
    assert len([e for e, _ in pairs if e is not None]) == len(rows) - 1
    q = tmp_path / "last.csv"  # on the last line: the quote is open at the end of the file
    q.write_text('case_id,activity,timestamp,note\nc1,a,2026-03-01T00:00:00Z,"oops\n')
    ((_ev, bad),) = read_events(q)
    assert bad.reason == "line 2: unterminated quote (at the end of the file)"


def test_blank_lines_before_the_header_are_skipped(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("\n \r\ncase_id,activity,timestamp\nc1,A,2026-01-01T00:00:00Z\nc1,B,bad\n")
    pairs = list(read_events(p, order="file"))
    assert pairs[0][0].stage == "A" and pairs[1][1].reason.startswith("line 5: timestamp")
    (tmp_path / "blank.csv").write_text("\n\n")
    with pytest.raises(MappingError, match="empty file"):
        list(read_events(tmp_path / "blank.csv"))


def test_xes_without_namespace_falls_back_to_the_file_stem(tmp_path):
    p = tmp_path / "claims.xes"
    p.write_text('<log><trace><string key="concept:name" value="c1"/><event>'
                 '<string key="concept:name" value="open"/><date key="time:timestamp" value="2026-01-01T00:00:00Z"/>'
                 "</event></trace></log>")
    (ev,) = events_only(read_events(p))
    assert (ev.workflow, ev.entity_id, ev.stage) == ("claims", "c1", "open")
    gz = tmp_path / "claims.xes.gz"
    gz.write_bytes(gzip.compress(p.read_bytes()))
    (ev,) = events_only(read_events(gz))
    assert ev.workflow == "claims"


def test_xes_events_outside_a_trace_are_bad_records_not_dropped_unseen(tmp_path):
    p = tmp_path / "claims.xes"
    event = '<event><string key="concept:name" value="{}"/><date key="time:timestamp" value="2026-01-01T00:00:00Z"/></event>'
    p.write_text('<log><trace><string key="concept:name" value="c1"/>' + event.format("open")
                 + '<trace><string key="concept:name" value="c2"/>' + event.format("nested") + "</trace></trace>"
                 + event.format("loose") + "</log>")
    pairs = list(read_events(p))
    assert [ev.stage for ev, _ in pairs if ev is not None] == ["open"]
    bad = [b for _, b in pairs if b is not None]
    assert [b.reason.split(",")[0] for b in bad] == ["an event in log/trace/trace", "an event in log"]
    assert b'value="nested"' in bad[0].raw and b'value="loose"' in bad[1].raw


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_sort_by_time_spills_chunks_and_merges_stably(tmp_path, sim, chunk):
    events = list(events_only(read_events(write(sim, tmp_path, "xes"))))[:400]
    out = list(sort_by_time(events, chunk_size=chunk, tmp_dir=tmp_path))
    assert sorted(_key(e) for e in out) == sorted(_key(e) for e in events)
    assert [e.timestamp for e in out] == sorted(e.timestamp for e in events)
    # ties keep input order (duplicates share a timestamp)
    expect = [e.event_id for e in sorted(events, key=lambda e: e.timestamp)]
    assert [e.event_id for e in out] == expect
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("stagewatch-sort-")]  # spill files removed


def test_xes_is_replayed_in_time_order_by_default_and_in_file_order_on_request(tmp_path):
    """XES logs are grouped by trace: ``order="auto"`` sorts them, so a replay's event clock never
    runs ahead on one trace; ``file`` keeps the file's order; a bad record is passed on either way."""
    p = tmp_path / "two.xes"
    p.write_text(
        '<log><trace><string key="concept:name" value="late-case"/>'
        '<event><string key="concept:name" value="a"/><date key="time:timestamp" value="2026-03-01T00:00:00Z"/></event>'
        '<event><string key="concept:name" value="b"/><date key="time:timestamp" value="2026-03-05T00:00:00Z"/></event>'
        '</trace><trace><string key="concept:name" value="early-case"/>'
        '<event><string key="concept:name" value="a"/><date key="time:timestamp" value="2026-01-01T00:00:00Z"/></event>'
        '<event><string key="concept:name" value="b"/><date key="time:timestamp" value="bad"/></event>'
        "</trace></log>"
    )
    pairs = list(read_events(p))
    assert [(e.entity_id, e.stage) for e, _ in pairs if e] == [("early-case", "a"), ("late-case", "a"), ("late-case", "b")]
    assert len([b for _, b in pairs if b]) == 1
    as_written = [(e.entity_id, e.stage) for e in events_only(read_events(p, order="file"))]
    assert as_written == [("late-case", "a"), ("late-case", "b"), ("early-case", "a")]
    with pytest.raises(MappingError, match="unknown order"):
        read_events(p, order="sideways")


def test_csv_times_in_year_slash_form_or_a_given_format_are_read(tmp_path):
    p = tmp_path / "export.csv"
    p.write_text("case_id,activity,timestamp\nc1,open,2011/10/01 00:38:44.546\nc1,done,2011/10/02 08:00:00\n")
    got = [e.timestamp for e in events_only(read_events(p))]
    assert got == [parse_timestamp("2011-10-01T00:38:44.546Z"), parse_timestamp("2011-10-02T08:00:00Z")]
    q = tmp_path / "dayfirst.csv"
    q.write_text("case_id,activity,timestamp\nc1,open,05.01.2016 09:51\nc1,done,13.01.2016 9:51\n")
    pairs = list(read_events(q))
    assert all(ev is None for ev, _ in pairs) and "--time-format" in pairs[0][1].reason
    got = [e.timestamp for e in events_only(read_events(q, mapping={"time_format": "%d.%m.%Y %H:%M", "tz": "Europe/Berlin"}))]
    assert got == [parse_timestamp("2016-01-05T08:51:00Z"), parse_timestamp("2016-01-13T08:51:00Z")]
    bad = list(read_events(q, mapping={"time_format": "%Y-%m-%d"}))
    assert all(ev is None for ev, _ in bad) and "does not match the format" in bad[0][1].reason


def test_wide_or_free_text_csv_and_xes_records_keep_their_events(tmp_path, capsys):
    """A log's incidental columns must not cost the event: a value over 512 characters and the columns past
    the 64th are left out (the mapped segment kept first) and counted once in the summary; JSONL, the
    event contract itself, still rejects such an event."""
    from monitor.backtest import print_summary, run_backtest

    extra = [f"c{i}" for i in range(70)]
    p = tmp_path / "wide.csv"
    p.write_text(",".join(["case_id", "activity", "timestamp", *extra, "segment", "comment"]) + "\n"
                 + ",".join(["k1", "a", "2026-03-02T14:00:00Z", *["v"] * 70, "gold", "x" * 600]) + "\n"
                 + ",".join(["k2", "a", "2026-03-02T15:00:00Z", *["v"] * 70, "gold", "short"]) + "\n")
    summary = run_backtest(p, None)
    assert (summary.events_read, summary.invalid) == (2, 0)
    ev = next(events_only(read_events(p)))
    assert len(ev.attributes) == 64 and ev.attributes["segment"] == "gold" and "c62" in ev.attributes
    assert "c63" not in ev.attributes and "comment" not in ev.attributes
    print_summary(summary)
    said = " ".join(capsys.readouterr().err.split())
    assert "1 attribute value over 512 characters and 8 columns past the 64th were not kept" in said
    assert summary.as_dict()["not_kept"] == {"long_values": 1, "past_cap": 8}  # c63..c69, and k2's comment

    attrs = "".join(f'<string key="t{i}" value="v"/>' for i in range(70))
    x = tmp_path / "wide.xes"
    x.write_text(f'<log><trace><string key="concept:name" value="k1"/><string key="segment" value="gold"/>{attrs}'
                 '<event><string key="concept:name" value="a"/><date key="time:timestamp" value="2026-03-02T14:00:00Z"/>'
                 f'<string key="org:resource" value="ann"/><string key="note" value="{"x" * 600}"/></event></trace></log>')
    stats = ReadStats()
    (ev,) = events_only(read_events(x, stats=stats))
    assert len(ev.attributes) == 64 and (ev.attributes["segment"], ev.attributes["owner"]) == ("gold", "ann")
    assert stats.not_kept() == "1 attribute value over 512 characters and 8 attributes past the 64th were not kept " \
                               "(the events were)"
    j = tmp_path / "wide.jsonl"
    j.write_text(json.dumps({"workflow": "w", "entity_id": "k1", "stage": "a", "timestamp": "2026-03-02T14:00:00Z",
                             "attributes": {"note": "x" * 600}}) + "\n")
    ((_ev, bad),) = read_events(j)
    assert bad.reason == "line 1: attributes.note: longer than 512 characters"


def test_a_segment_by_column_past_the_64th_is_kept(tmp_path):
    """A CRM export of 100 columns whose region is the 90th: the replay keeps what ``segment_by`` names
    (it was left out with the other columns past the 64th, and every item was of segment "-")."""
    from monitor.backtest import run_backtest
    from monitor.config import load_settings
    from monitor.engine import Engine

    extra = [f"c{i}" for i in range(100)]
    p = tmp_path / "crm.csv"
    p.write_text(",".join(["case_id", "activity", "timestamp", *extra]) + "\n" + "".join(
        ",".join([f"k{n}", "a", f"2026-03-02T14:{n:02d}:00Z", *[f"r{n % 2}" if i == 90 else "v" for i in range(100)]])
        + "\n" for n in range(4)))
    settings = load_settings(None, workflows={"*": {"segment_by": ["c90"]}})
    ev = next(events_only(read_events(p, keep=settings.segment_keys())))
    assert len(ev.attributes) == 64 and ev.attributes["c90"] == "r0" and "c63" not in ev.attributes
    engine = Engine(settings)
    run_backtest(p, None, engine=engine)
    assert sorted(item.segment for item in engine.items.values()) == ["r0", "r0", "r1", "r1"]
    # kept past the cap, not past the contract: a kept value over 512 characters is left out, the event kept
    q = tmp_path / "long.csv"
    q.write_text("case_id,activity,timestamp," + ",".join(extra) + "\n"
                 + ",".join(["k0", "a", "2026-03-02T14:00:00Z", *["x" * 600 if i == 90 else "v" for i in range(100)]]) + "\n")
    stats = ReadStats()
    ((ev, bad),) = read_events(q, keep=settings.segment_keys(), stats=stats)
    assert bad is None and "c90" not in ev.attributes and stats.long_values == 1


def test_csv_compact_dates_are_dates_and_small_numbers_are_no_epoch_time(tmp_path):
    """``20260302`` (and ``202603021430``, ``20260302143015``) is a date (ISO-8601's compact form), not epoch
    seconds in August 1970 (milliseconds in 1976); a number that
    would be a time before 1973 (a spreadsheet's day number) is a bad record naming it, not 1970-01-01."""
    p = tmp_path / "x.csv"
    p.write_text("case_id,activity,date\nc1,a,20260302\nc1,b,45353.5\nc1,c,1772460300\nc1,d,1772460300000\n"
                 "c1,e,1234567\nc1,f,202603021430\nc1,g,20260302143015\n")
    pairs = list(read_events(p, order="file"))
    good = [e.timestamp for e, _ in pairs if e is not None]
    assert good == [parse_timestamp("2026-03-02T00:00:00Z")] + [parse_timestamp("2026-03-02T14:05:00Z")] * 2 + [
        parse_timestamp("2026-03-02T14:30:00Z"), parse_timestamp("2026-03-02T14:30:15Z")]  # not 1976, not 2612
    bad = [b.reason for _, b in pairs if b is not None]
    assert bad == [f"line {n}: timestamp: {v!r} is not a time: as epoch seconds or milliseconds it would be before "
                   "1973 (a spreadsheet's day number? export the column as a date)"
                   for n, v in ((3, "45353.5"), (6, "1234567"))]


def test_a_backtest_says_in_which_zone_each_workflow_was_measured(tmp_path):
    """A CSV read in a given zone carries that zone's offsets: the replay measures the workflow in
    its local hours and the summary says so (and why)."""
    from monitor.backtest import run_backtest

    p = tmp_path / "orders.csv"
    p.write_text("case,act,when\nc0,open,2026-01-12 10:00:00\nc1,open,2026-07-13 11:00:00\n")  # CST, CDT
    summary = run_backtest(p, None, mapping={"entity_col": "case", "stage_col": "act", "time_col": "when",
                                             "tz": "America/Chicago"})
    assert summary.time_basis == {"orders": "wall time, local hours of America/Chicago (a guess: the first common "
                                            "zone that fits the timestamps' offsets, e.g. UTC-06:00)"}
    assert summary.as_dict()["time_basis"] == summary.time_basis


def test_the_zone_given_with_tz_is_the_zone_the_summary_names(tmp_path, monkeypatch):
    """Europe/Berlin and Europe/Paris share their offsets: from the timestamps alone the engine can
    only guess; `--tz` names the log's local time, and its workflows are measured in that zone."""
    import json

    from typer.testing import CliRunner

    from monitor.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "orders.csv").write_text("case,act,when\nc0,open,2026-01-12 10:00:00\nc1,open,2026-07-13 11:00:00\n")
    r = CliRunner().invoke(app, ["backtest", "orders.csv", "--stage-col", "act", "--time-col", "when", "--tz",
                                "Europe/Berlin", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["time_basis"] == {"orders": "wall time, local hours of Europe/Berlin (as configured)"}


def test_a_replay_of_a_file_grouped_by_item_says_so_and_time_order_fixes_it(tmp_path, capsys):
    """JSONL is replayed as written; one item's whole history after the other runs the clock ahead of
    the next item's events, and the summary counts them and points to --order time."""
    from monitor.backtest import print_summary, run_backtest

    lines = []
    for i in range(30):
        for k, stage in enumerate(("open", "work", "done")):
            lines.append(f'{{"workflow":"w","entity_id":"i{i}","stage":"{stage}",'
                         f'"timestamp":{1_767_225_600 + 3600 * i + 86400 * k}}}')
    p = tmp_path / "grouped.jsonl"
    p.write_text("\n".join(lines) + "\n")
    grouped = run_backtest(p, None)
    assert grouped.behind == 29 * 2  # every item's first two events lie behind the previous item's end
    print_summary(grouped)
    assert "--order time" in capsys.readouterr().err
    assert run_backtest(p, None, order="time").behind == 0


def test_a_day_first_time_is_a_bad_record_that_names_its_format(tmp_path, capsys):
    from monitor.backtest import print_summary, run_backtest

    p = tmp_path / "export.csv"
    p.write_text("Case ID;Activity;End Time\n1;A;05.03.2026 14:22\n1;B;03/05/2026 2:22 PM\n")
    bad = [b.reason for _, b in read_events(p) if b is not None]
    assert "it reads as '%d.%m.%Y %H:%M'" in bad[0]
    assert "'%d/%m/%Y %I:%M %p' or as '%m/%d/%Y %I:%M %p'" in bad[1]  # ambiguous: both named
    ok = list(events_only(read_events(p, mapping={"time_format": "%d.%m.%Y %H:%M"})))
    assert [e.stage for e in ok] == ["A"]
    summary = run_backtest(p, None)
    assert summary.invalid == 2 and summary.first_invalid == bad[0]
    print_summary(summary)
    assert "2 of 2 records were invalid" in capsys.readouterr().err


def test_a_line_in_another_encoding_is_a_bad_record_and_encoding_reads_it(tmp_path):
    p = tmp_path / "export.csv"
    p.write_bytes("case_id;activity;timestamp\n1;Prüfung;2026-01-01T00:00:00Z\n2;A;2026-01-01T01:00:00Z\n"
                  .encode("cp1252"))
    pairs = list(read_events(p, order="file"))
    assert pairs[0][1].reason == "line 2: not UTF-8 text (a Windows export? pass --encoding cp1252)"
    assert pairs[0][1].raw == "1;Prüfung;2026-01-01T00:00:00Z".encode("cp1252")  # the bytes as they were
    assert pairs[1][0].stage == "A"
    assert [e.stage for e in events_only(read_events(p, mapping={"encoding": "cp1252"}))] == ["Prüfung", "A"]


def test_a_truncated_xes_log_is_read_up_to_the_break(tmp_path):
    whole = tmp_path / "whole.xes"
    whole.write_text(XES)
    complete = list(events_only(read_events(whole)))
    cut = tmp_path / "cut.xes"
    cut.write_text(XES[: XES.rindex("</trace>") - 20])  # the last trace is cut off mid-way
    pairs = list(read_events(cut))
    got = [e for e, _ in pairs if e is not None]
    bad = [b for _, b in pairs if b is not None]
    assert [e.event_id for e in got] == [e.event_id for e in complete]  # the first trace, whole
    assert len(bad) == 1 and bad[0].reason.startswith("not well-formed XML")  # the cut, not the second trace


def test_a_bad_csv_row_is_kept_as_a_csv_line_that_reads_back_as_the_same_fields(tmp_path):
    import csv

    p = tmp_path / "x.csv"
    p.write_text('case_id,activity,timestamp,note\nc2,A,bad-time,"has, comma and ""quotes"""\n')
    (_ev, bad), = read_events(p)
    assert bad.raw == b'c2,A,bad-time,"has, comma and ""quotes"""'
    assert next(csv.reader([bad.raw.decode()])) == ["c2", "A", "bad-time", 'has, comma and "quotes"']


def test_backtest_keeps_bad_input_without_o_and_never_writes_over_its_input(tmp_path, monkeypatch):
    import base64
    import json

    from typer.testing import CliRunner

    from monitor.cli import app

    monkeypatch.chdir(tmp_path)
    good = b'{"workflow":"w","entity_id":"a","stage":"s","timestamp":"2026-01-01T00:00:00Z"}\n'
    (tmp_path / "in.jsonl").write_bytes(good + b"garbage\n\xff\xfe not text\n")
    runner = CliRunner()
    r = runner.invoke(app, ["backtest", "in.jsonl"])
    assert r.exit_code == 0, r.output
    kept = [json.loads(line) for line in (tmp_path / "in.jsonl.dlq.jsonl").read_text().splitlines()]
    assert kept[0]["raw"] == "garbage" and kept[0]["reason"].startswith("line 2: invalid JSON")
    assert base64.b64decode(kept[1]["raw_base64"]) == b"\xff\xfe not text"  # the bytes, not U+FFFD
    before = (tmp_path / "in.jsonl").read_bytes()
    for args in (["-o", "in.jsonl"], ["-o", "a.jsonl", "--dlq-out", "./in.jsonl"]):
        r = runner.invoke(app, ["backtest", "in.jsonl", *args])
        assert r.exit_code == 2 and "over the events file itself" in r.output
    assert (tmp_path / "in.jsonl").read_bytes() == before
    r = runner.invoke(app, ["backtest", "in.jsonl", "--tick", "0"])
    assert r.exit_code == 2 and "--tick" in r.output
    r = runner.invoke(app, ["backtest", "in.jsonl", "-o", "new/dir/alerts.jsonl"])  # made when missing
    assert r.exit_code == 0 and (tmp_path / "new/dir/alerts.jsonl.dlq.jsonl").exists(), r.output
    r = runner.invoke(app, ["backtest", "in.jsonl", "-o", "new"])  # a directory: said, not a traceback
    assert r.exit_code == 2 and "cannot read or write new: Is a directory" in r.output, r.output
    (tmp_path / "not.csv.gz").write_bytes(b"case,activity,timestamp\n")
    r = runner.invoke(app, ["backtest", "not.csv.gz"])
    assert r.exit_code == 2 and "cannot read not.csv.gz: Not a gzipped file" in r.output, r.output


def test_backtest_reads_standard_input_once_in_every_format(tmp_path, monkeypatch):
    """``-`` is standard input, and a CSV file is opened once (its header read by the reader itself), so a
    pipe works: ``cat events.csv | stagewatch backtest /dev/stdin --format csv`` read the header twice."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from typer.testing import CliRunner

    import monitor
    from monitor.cli import app

    monkeypatch.chdir(tmp_path)
    csv_text = "case_id,activity,timestamp\nc1,a,2026-01-01T00:00:00Z\nc1,b,2026-01-01T01:00:00Z\nc2,a,bad\n"
    jsonl = '{"workflow":"w","entity_id":"a","stage":"s","timestamp":"2026-01-01T00:00:00Z"}\ngarbage\n'
    runner = CliRunner()
    for fmt, text in (("csv", csv_text), ("jsonl", jsonl)):
        r = runner.invoke(app, ["backtest", "-", "--format", fmt, "--json"], input=text)
        assert r.exit_code == 0, r.output
        summary = json.loads(r.stdout)
        assert (summary["events_read"], summary["invalid"]) == ((2, 1) if fmt == "csv" else (1, 1))
        assert summary["dlq_path"] == "stdin.dlq.jsonl" and (fmt == "jsonl") == (summary["columns"] is None)
    r = runner.invoke(app, ["backtest", "-"], input=jsonl)
    assert r.exit_code == 2 and "pass --format" in r.output, r.output
    here = {**os.environ, "PYTHONPATH": str(Path(monitor.__file__).parents[1])}  # this tree's monitor
    r = subprocess.run([sys.executable, "-m", "monitor.cli", "backtest", "/dev/stdin", "--format", "csv", "--json"],
                       input=csv_text, capture_output=True, text=True, timeout=60, env=here)
    assert r.returncode == 0 and json.loads(r.stdout)["events_read"] == 2, r.stderr


def test_backtest_keeps_events_too_late_to_apply_with_the_reason(tmp_path):
    import json

    from monitor.backtest import run_backtest

    lines = [
        '{"workflow":"w","entity_id":"a","stage":"s1","timestamp":"2026-01-01T00:00:00Z"}',
        '{"workflow":"w","entity_id":"a","stage":"s2","timestamp":"2026-01-01T02:00:00Z"}',
        '{"workflow":"w","entity_id":"b","stage":"s1","timestamp":"2026-01-01T03:00:00Z"}',  # s2 is applied
        '{"workflow":"w","entity_id":"a","stage":"s0","timestamp":"2026-01-01T00:01:00Z"}',  # 2 h late
    ]
    p = tmp_path / "e.jsonl"
    p.write_text("\n".join(lines) + "\n")
    s = run_backtest(p, tmp_path / "alerts.jsonl")
    assert s.outcomes["late"] == 1 and s.dlq_path == str(tmp_path / "alerts.jsonl.dlq.jsonl")
    (kept,) = [json.loads(line) for line in open(s.dlq_path)]
    assert json.loads(kept["raw"])["stage"] == "s0"
    assert kept["reason"].startswith("late: a entered s2 at 2026-01-01T02:00:00")


def test_backtest_checks_its_options_first_and_a_run_that_fails_keeps_the_last_output(tmp_path, monkeypatch):
    """What a user types wrong is said before anything is read or written (no traceback), a replay that
    stops on an error leaves the alerts of the previous run in place, a file of which nothing could be
    read exits non-zero, and one event that moves the replay's clock decades ahead (a mistyped year) is
    named in the summary."""
    import json

    from typer.testing import CliRunner

    from monitor.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    rows = "\n".join(f"deal-{i}\tlead\t2026-01-0{1 + i % 5} 09:00\tEnterprise\tsales" for i in range(20))
    (tmp_path / "crm.tsv.csv").write_text("Deal ID\tStage\tChanged At\tSegment\tWorkflow\n" + rows + "\n")
    args = ["backtest", "crm.tsv.csv", "--entity-col", "Deal ID", "--stage-col", "Stage", "--time-col", "Changed At"]
    r = runner.invoke(app, [*args, "--delimiter", "tab", "-o", "alerts.jsonl", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["events_read"] == 20 and summary["alerts_path"] == "alerts.jsonl"
    assert (summary["stages"], summary["warm_stages"]) == (1, 0)  # "no alerts" from a stage that never learned
    r = runner.invoke(app, ["backtest", "."])
    assert r.exit_code == 2 and "a directory, not a file" in r.output, r.output
    (tmp_path / "alerts.jsonl").write_text("the last run's alerts\n")
    for bad, said in ((["--delimiter", "ab"], "give one character, or 'tab'"),
                      (["--encoding", "latin9x"], "not a text encoding"),
                      (["--encoding", "rot13"], "not a text encoding"),
                      (["--tz", "Mars/Base"], "not a time zone name"),
                      (["--partitions", "0"], "--partitions")):
        r = runner.invoke(app, [*args, *bad, "-o", "alerts.jsonl"])
        assert r.exit_code == 2 and said in r.output and "Traceback" not in r.output, (bad, r.output)
    r = runner.invoke(app, ["backtest", "crm.tsv.csv", "-o", "alerts.jsonl"])  # no such columns: stops on reading
    assert r.exit_code == 2 and "no entity column found" in r.output, r.output
    assert (tmp_path / "alerts.jsonl").read_text() == "the last run's alerts\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.jsonl", "crm.tsv.csv"]  # nothing half-written
    # the header's Segment and Workflow (capitalised, as CRMs export them) are read without naming them
    from monitor.readers import csv_layout

    layout = csv_layout(tmp_path / "crm.tsv.csv", {"entity_col": "Deal ID", "stage_col": "Stage",
                                                   "time_col": "Changed At", "delimiter": "\t"})
    assert "segment = Segment" in layout and "workflow = Workflow" in layout, layout
    (tmp_path / "bad.jsonl").write_text("garbage\n{}\n")
    r = runner.invoke(app, ["backtest", "bad.jsonl"])
    assert r.exit_code == 1, r.output
    lines = [f'{{"workflow":"w","entity_id":"a{i}","stage":"s","timestamp":"2026-01-0{1 + i}T00:00:00Z"}}'
             for i in range(3)]
    lines.insert(1, '{"workflow":"w","entity_id":"x","stage":"s","timestamp":"2062-01-02T00:00:00Z"}')
    (tmp_path / "typo.jsonl").write_text("\n".join(lines) + "\n")
    r = runner.invoke(app, ["backtest", "typo.jsonl", "-o", "t.jsonl"])
    assert r.exit_code == 0 and "moved the replay's clock 13150.0 days ahead" in " ".join(r.output.split()), r.output
    assert "2062-01-02T00:00:00Z (x)" in " ".join(r.output.split())
    assert not (tmp_path / "t.jsonl.dlq.jsonl").exists()
    (tmp_path / "t.jsonl.dlq.jsonl").write_text("an earlier run's bad record\n")
    r = runner.invoke(app, ["backtest", "typo.jsonl", "-o", "t.jsonl"])  # this run's files only
    assert r.exit_code == 0 and not (tmp_path / "t.jsonl.dlq.jsonl").exists()
