"""The event decoder: contract formats, batches of mixed validity, and clear reasons."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.events import ValidationError, alert_id, decode_record, format_ts, parse_timestamp, validate

GOOD = {"event_id": "ev-1", "workflow": "sales", "entity_id": "deal-42", "stage": "contract",
        "timestamp": "2026-03-02T14:05:00Z", "attributes": {"segment": "enterprise", "owner": "rep-07"},
        "waiting_on": None}


def test_contract_example_decodes():
    events, bad = decode_record(json.dumps(GOOD).encode())
    assert bad == [] and len(events) == 1
    e = events[0]
    assert (e.workflow, e.entity_id, e.stage, e.attributes["segment"]) == ("sales", "deal-42", "contract", "enterprise")
    assert format_ts(e.timestamp) == "2026-03-02T14:05:00Z"


def test_timestamps_iso_offset_epoch_seconds_and_milliseconds_agree():
    iso = parse_timestamp("2026-03-02T15:05:00+01:00")
    assert iso == parse_timestamp(1772460300) == parse_timestamp(1772460300000) == parse_timestamp("1772460300")


def test_events_keep_the_utc_offset_their_time_was_written_with():
    def offset(ts, fast=True):
        raw = json.dumps({**GOOD, "timestamp": ts} if fast else {**GOOD, "timestamp": ts, "stage": " padded "})
        (event,), bad = decode_record(raw.encode())
        assert not bad
        return event.utc_offset

    for fast in (True, False):  # the typed fast path and the validating slow one agree
        assert offset("2026-03-02T15:05:00+01:00", fast) == 3600.0
        assert offset("2026-03-02T15:05:00-05:30", fast) == -19800.0
        assert offset("2026-03-02T14:05:00Z", fast) == 0.0
        assert offset(1772460300, fast) is None  # an epoch number says nothing of a zone


def test_batch_of_mixed_validity_keeps_the_good_and_explains_each_bad():
    batch = [GOOD, {**GOOD, "event_id": "ev-2", "timestamp": "yesterday"}, {**GOOD, "stage": ""}, 7]
    events, bad = decode_record(json.dumps(batch).encode())
    assert [e.event_id for e in events] == ["ev-1"]
    reasons = [b.reason for b in bad]
    assert reasons[0].startswith("batch element 1: timestamp")
    assert "stage: must not be empty" in reasons[1]
    assert "must be a JSON object" in reasons[2]
    assert json.loads(bad[0].raw)["event_id"] == "ev-2"  # the bad element itself is kept


def test_naive_timestamp_is_rejected_with_the_fix_in_the_message():
    _, bad = decode_record(json.dumps({**GOOD, "timestamp": "2026-03-02T14:05:00"}).encode())
    assert "needs an offset" in bad[0].reason


def test_missing_event_id_gets_a_stable_derived_id():
    raw = {k: v for k, v in GOOD.items() if k != "event_id"}
    a, _ = decode_record(json.dumps(raw).encode())
    b, _ = decode_record(json.dumps(raw).encode())
    assert a[0].event_id == b[0].event_id and a[0].event_id.startswith("h-")


def test_invalid_utf8_and_out_of_range_times_are_named():
    assert decode_record(b"\xff\xfe{")[1][0].reason == "invalid UTF-8"
    _, bad = decode_record(json.dumps({**GOOD, "timestamp": -5}).encode())
    assert "outside 1970..2200" in bad[0].reason


def test_alert_id_is_stable_and_distinct_per_identity():
    assert alert_id("stalled", "sales", "contract", "deal-42") == alert_id("stalled", "sales", "contract", "deal-42")
    assert alert_id("stalled", "sales", "contract", "deal-42") != alert_id("stalled", "sales", "payment", "deal-42")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=30),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4), max_leaves=20,
).map(lambda v: json.dumps(v).encode())))
def test_decoder_never_raises_and_every_input_is_accounted_for(raw):
    events, bad = decode_record(raw)
    assert events or bad
    for b in bad:
        assert b.reason


def test_business_durations_read_in_working_hours_only_where_hours_are_the_unit():
    from monitor.events import human_duration

    assert human_duration(34.0, business=True) == "34 s"
    assert human_duration(720.0, business=True) == "12 min"
    assert human_duration(14 * 3600.0, business=True) == "14.0 working hours"
    assert human_duration(14 * 3600.0) == "14.0 hours"


def test_validation_messages_speak_json_and_point_at_an_invisible_character():
    base = {"workflow": "w", "entity_id": "a", "stage": "s", "timestamp": 1767225600}
    with pytest.raises(ValidationError, match="an event must be a JSON object, got an array"):
        validate([base])
    with pytest.raises(ValidationError, match="entity_id: expected a string, got a number"):
        validate({**base, "entity_id": 42.0})
    with pytest.raises(ValidationError, match="entity_id: expected a string, got true/false"):
        validate({**base, "entity_id": True})
    with pytest.raises(ValidationError, match=r"U\+200B at position 9 \('contract' before it\)"):
        validate({**base, "stage": "contract\u200b"})


def test_an_integer_id_is_its_decimal_text_as_its_kafka_key_is():
    # database keys often travel as JSON numbers; the producer's key for entity 42 is b"42"
    ev = validate({"workflow": "w", "entity_id": 42, "stage": "s", "timestamp": 1767225600, "event_id": 7})
    assert (ev.entity_id, ev.event_id) == ("42", "7")
    good, bad = decode_record(b'{"workflow":"w","entity_id":42,"stage":"s","timestamp":1767225600}')
    assert [e.entity_id for e in good] == ["42"] and bad == []


def _wire_text() -> st.SearchStrategy[str]:
    """Text where the compiled fast path and Python may part: ASCII, spaces at the ends, control and
    non-ASCII characters, empty, around the length limits."""
    ascii_ = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20)
    return st.one_of(
        ascii_.filter(lambda t: t.strip() == t), ascii_, ascii_.filter(lambda t: t.strip() == t),
        st.text(max_size=8),
        st.sampled_from(["", " ", "a ", " a", "é", "a\tb", "\u200b", "x" * 128, "x" * 129, "x" * 256, "x" * 257]),
    )


_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)),
                          timezone(timedelta(hours=-3, minutes=-30)), timezone(timedelta(hours=14))])


@st.composite
def _rfc3339(draw: st.DrawFn) -> str:
    """Times as sources write them: msgspec's RFC 3339 and what it also takes or refuses around it
    (lower case, a space, 0-9 fraction digits, offsets with and without a colon, -00:00, leap and
    out-of-range fields, dates before 1970 and after 2200)."""
    dt = draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2300, 1, 1)))
    text = dt.strftime("%Y-%m-%d") + draw(st.sampled_from("TTTt ")) + dt.strftime("%H:%M:%S")
    digits = draw(st.integers(0, 9))
    if digits:
        text += "." + draw(st.text(alphabet="0123456789", min_size=digits, max_size=digits))
    zone = draw(st.sampled_from(["Z", "Z", "z", "+00:00", "-00:00", "+05:30", "-08:00", "+14:00", "-03:30",
                                 "+0100", "+24:00", "+01:60", "", "+1:00"]))
    text += zone
    if draw(st.booleans()) and draw(st.booleans()):  # a field out of range, or a leap second
        i, c = draw(st.sampled_from([(5, "1"), (6, "3"), (8, "3"), (9, "2"), (11, "2"), (12, "4"), (17, "6")]))
        text = text[:i] + c + text[i + 1:]
    return text


_TIMESTAMPS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=8e9),
    st.floats(min_value=1e11, max_value=8e12),
    _rfc3339(), _rfc3339(),
    st.datetimes(timezones=st.none() | _ZONES).map(lambda d: d.isoformat()),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2199, 12, 30), timezones=_ZONES)
    .map(lambda d: d.isoformat().replace("+00:00", "Z")),
)
_ATTR_VALUES = st.one_of(_wire_text(), _wire_text(), st.none(), st.booleans(), st.integers(), st.floats(),
                         st.just([1]), st.just({"a": 1}), st.just("v" * 513))


@settings(max_examples=3000, deadline=None)
@given(workflow=_wire_text(), entity_id=_wire_text(), stage=_wire_text(), ts=_TIMESTAMPS,
       event_id=st.none() | _wire_text(), waiting_on=st.none() | _wire_text(),
       attributes=st.none() | st.dictionaries(_wire_text(), _ATTR_VALUES, max_size=3) | st.none()
       | st.just({f"k{i}": "v" for i in range(65)}))
def test_the_compiled_common_case_decides_as_python_does(workflow, entity_id, stage, ts, event_id, waiting_on,
                                                          attributes):
    """``_fast_event`` (core/src/events.rs) either gives exactly the Event the Python validation gives
    (every field, the float bits too) or leaves the case to it."""
    from monitor.events import WireEvent, _fast_event, _validate_wire_py

    def wire() -> WireEvent:  # the Python path converts the timestamp text in place: one each
        return WireEvent(workflow, entity_id, stage, ts, event_id, attributes, waiting_on)

    fast = _fast_event(wire())
    if fast is None:
        return
    slow = _validate_wire_py(wire())
    assert fast == slow
    assert math.copysign(1.0, fast.timestamp) == math.copysign(1.0, slow.timestamp)
    assert type(fast.attributes) is dict and fast.utc_offset == slow.utc_offset


_LINE_ENDS = st.sampled_from([b"", b"\n", b"\r\n", b" \n", b"\t\r\n"])


@settings(max_examples=1500, deadline=None)
@given(obj=st.fixed_dictionaries(
    {"workflow": _wire_text(), "entity_id": _wire_text(), "stage": _wire_text(), "timestamp": _TIMESTAMPS},
    optional={"event_id": st.none() | _wire_text(), "waiting_on": st.none() | _wire_text(),
              "attributes": st.none() | st.dictionaries(_wire_text(), _ATTR_VALUES, max_size=3),
              "extra": _ATTR_VALUES}),
    lead=st.sampled_from([b"", b" ", b"\t"]), end=_LINE_ENDS, batch=st.booleans())
def test_a_line_read_by_the_common_case_decodes_as_the_record_would(obj, lead, end, batch):
    """``decode_event`` (what the JSONL reader tries first, on the raw line) gives the one event
    ``decode_record`` gives for the line without its newline, or leaves the line to it."""
    import msgspec

    from monitor.events import decode_event

    try:
        body = msgspec.json.encode([obj] if batch else obj)
    except (OverflowError, ValueError, TypeError):  # not JSON (NaN is, as null; huge ints are not)
        return
    line = lead + body + end
    fast = decode_event(line)
    if fast is None:
        return
    good, bad = decode_record(line.rstrip(b"\r\n"))
    assert not batch and good == [fast] and bad == []
    assert fast.timestamp.hex() == good[0].timestamp.hex() and fast.utc_offset == good[0].utc_offset


@settings(max_examples=4000, deadline=None)
@given(ts=_TIMESTAMPS)
def test_the_compiled_time_parser_reads_a_time_as_msgspec_does(ts):
    """Only the timestamp varies: the compiled parser's (epoch seconds, offset) are msgspec's datetime
    read by Python, float bits too, or it leaves the text to msgspec (which may refuse it)."""
    import msgspec

    from monitor.events import WireEvent, _fast_event, _validate_wire_py

    fast = _fast_event(WireEvent("sales", "deal-1", "lead", ts, "ev-1"))
    try:
        slow = _validate_wire_py(WireEvent("sales", "deal-1", "lead", ts, "ev-1"))
    except (msgspec.ValidationError, ValueError):  # refused: the record takes the slow path
        slow = None
    if fast is not None:
        assert slow is not None and fast.timestamp.hex() == slow.timestamp.hex()
        assert fast.utc_offset == slow.utc_offset and repr(fast.utc_offset) == repr(slow.utc_offset)


@pytest.mark.parametrize("text", ["2026-03-02T14:05:00Z", "2026-03-02T14:05:00.1Z", "1970-01-01T00:00:00Z",
                                  "2026-03-02T14:05:00.123456+05:30", "2024-02-29T23:59:59-00:00",
                                  "2199-12-31T23:59:59.999999+03:30"])
def test_plain_rfc3339_times_take_the_compiled_path(text):
    from monitor.events import WireEvent, _fast_event, _validate_wire_py

    fast = _fast_event(WireEvent("sales", "deal-1", "lead", text, "ev-1"))
    assert fast is not None and fast == _validate_wire_py(WireEvent("sales", "deal-1", "lead", text, "ev-1"))


def test_a_record_nested_deeper_than_the_decoder_recurses_is_a_bad_record_not_a_crash() -> None:
    from monitor.events import decode_event

    deep = json.dumps(GOOD)[:-1] + ', "extra": ' + "[" * 5000 + "]" * 5000 + "}"
    head = '{"workflow": "w", "entity_id": "d", "stage": "a", "timestamp": "2026-01-01T00:00:00Z", "attributes": '
    nested_attributes = head + '{"a": ' + "[" * 5000 + "]" * 5000 + "}}"
    for raw in (deep, nested_attributes, "[" + nested_attributes + "]"):
        assert decode_event(raw.encode()) is None
        events, bad = decode_record(raw.encode())
        assert events == [] and len(bad) == 1 and "nested too deeply" in bad[0].reason


@pytest.mark.parametrize("text, why", [
    ("20260101", "a date without separators or an offset"),
    ("202601011430", "a date without separators or an offset"),
    ("45353.5", "before 1973"),  # a spreadsheet's day number
    ("0", "before 1973"),
])
def test_a_timestamp_string_of_digits_that_is_no_epoch_time_is_refused_as_csv_refuses_it(text: str, why: str) -> None:
    """JSON text "20260101" was read as epoch seconds (1970-08-23; a stage learnt a 55-year duration), where
    a CSV column reads it as a date; epoch text from 1973 on stays a time, a JSON number stays epoch."""
    with pytest.raises(ValidationError, match=why):
        parse_timestamp(text)
    events, bad = decode_record(json.dumps({**GOOD, "timestamp": text}).encode())
    assert events == [] and why in bad[0].reason
    assert parse_timestamp(20260101) == 20260101.0  # a number: epoch seconds, as the contract says
    assert parse_timestamp("1772460300") == parse_timestamp("1772460300000") == 1772460300.0


def test_half_a_utf16_pair_is_named_not_called_truncated() -> None:
    head = '{"workflow": "w", "entity_id": "e", "stage": "a", "timestamp": "2026-01-01T00:00:00Z", "attributes": '
    _, bad = decode_record((head + '{"n": "\\ud83d"}}').encode())
    assert "\\ud83d is half of a UTF-16 pair" in bad[0].reason and "truncated" not in bad[0].reason
    events, bad = decode_record((head + '{"n": "\\ud83d\\ude00"}}').encode())  # a whole pair: an emoji
    assert bad == [] and events[0].attributes["n"] == "\U0001F600"


def test_lines_ended_by_a_bare_cr_are_said_to_be() -> None:
    one = '{"workflow": "w", "entity_id": "e", "stage": "a", "timestamp": "2026-01-01T00:00:00Z"}'
    _, bad = decode_record((one + "\r" + one + "\r").encode())
    assert "bare CR" in bad[0].reason
    _, bad = decode_record((one + " x").encode())
    assert "bare CR" not in bad[0].reason
