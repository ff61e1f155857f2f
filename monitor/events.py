"""Event and alert models, and the decoder every driver uses.

The event contract (``shared/DESIGN.md``): one JSON object per event, or a JSON array of them
in one Kafka record. ``decode_record`` never raises on bad input: it returns the good events and,
for every bad part, the original bytes with a reason, so the caller can send them to the DLQ.

Fast path: msgspec decodes straight into :class:`WireEvent`. Only when that fails do we take the
slow path, which decodes generically and validates each element so a batch of mixed validity keeps
its good events and every bad one gets its own, specific reason.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from detectors._core import FastEvent

# Bounds that keep one event from costing unbounded memory or producing absurd clocks.
MAX_ID_LEN = 256
MAX_NAME_LEN = 128
MAX_ATTRIBUTES = 64
MAX_ATTR_VALUE_LEN = 512
MIN_TIMESTAMP = 0.0  # 1970-01-01
MAX_TIMESTAMP = 7258118400.0  # 2200-01-01
EPOCH_MS_THRESHOLD = 1e11  # numbers above this are epoch milliseconds (year 5138 in seconds)


class WireEvent(msgspec.Struct, forbid_unknown_fields=False):
    """The event as it travels (JSON). ``timestamp`` is ISO-8601 text or epoch s/ms: kept as text here,
    parsed by the compiled common case (``FastEvent``) or by msgspec as a datetime (``_validate_wire_py``)."""

    workflow: str
    entity_id: str
    stage: str
    timestamp: str | float
    event_id: str | None = None
    attributes: dict[str, Any] | None = None
    waiting_on: str | None = None


class Event(msgspec.Struct, frozen=True, gc=False):
    """A validated event; ``timestamp`` is epoch seconds (float, UTC)."""

    event_id: str
    workflow: str
    entity_id: str
    stage: str
    timestamp: float
    attributes: dict[str, str] = {}
    waiting_on: str | None = None
    # the UTC offset (seconds) the timestamp was written with, None for epoch numbers: where the
    # source's working day is (see detectors.calendar.ZoneFinder); not part of the wire form
    utc_offset: float | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "workflow": self.workflow,
            "entity_id": self.entity_id,
            "stage": self.stage,
            "timestamp": format_ts(self.timestamp),
            "attributes": dict(self.attributes),
            "waiting_on": self.waiting_on,
        }


class Alert(msgspec.Struct, omit_defaults=False):
    """The alert contract. ``alert_id`` is stable for (kind, workflow, stage, entity)."""

    alert_id: str
    kind: str
    status: str
    workflow: str
    stage: str | None
    entity_id: str | None
    segment: str | None
    at: str
    observed_seconds: float
    expected_seconds: float
    threshold_seconds: float
    score: float
    severity: str
    summary: str
    waiting_on: str | None = None
    details: dict[str, Any] = {}


class BadRecord(msgspec.Struct):
    """One undecodable or invalid part of a record, kept with its original bytes."""

    raw: bytes
    reason: str


class ValidationError(ValueError):
    pass


_encoder = msgspec.json.Encoder()
_wire_decoder = msgspec.json.Decoder(WireEvent)
_wire_batch_decoder = msgspec.json.Decoder(list[WireEvent])
_any_decoder = msgspec.json.Decoder()


def alert_id(kind: str, workflow: str, stage: str | None, entity_id: str | None, scope: str | None = None) -> str:
    """Stable identity of an alert. ``scope`` separates stage-level alerts of different Kafka
    partitions (each partition's engine judges its own share of a stage); None with one partition."""
    parts = (kind, workflow, stage or "", entity_id or "") + ((scope,) if scope else ())
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()


def human_duration(seconds: float, business: bool = False) -> str:
    """Seconds in the words a person would use: ``40 ms``, ``0.4 s``, ``45 s``, ``12 min``, ``5.2 hours``,
    ``10.6 days``; in business time from two hours on, ``14.0 working hours`` (a minute of working
    time reads as a minute: ``34 s``, not ``0.0 working hours``)."""
    if not math.isfinite(seconds):
        return "unknown"
    s = abs(seconds)
    if business and s >= 7200:
        return f"{seconds / 3600:.1f} working hours"
    if s == 0:
        return "0 s"
    if s < 0.1:  # an instant step (a form's two clicks, a job's two writes): "0.0 s" would read as none
        return f"{seconds * 1000:.0f} ms" if s >= 0.001 else "under 1 ms"
    if s < 10:
        return f"{seconds:.1f} s"
    if s < 120:
        return f"{seconds:.0f} s"
    if s < 7200:
        return f"{seconds / 60:.0f} min"
    if s < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def format_ts(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, tz=UTC)
    if dt.microsecond:
        return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_timestamp(value: Any) -> float:
    """ISO-8601 text with offset or ``Z``, or epoch seconds / milliseconds as a number."""
    return parse_instant(value)[0]


def parse_instant(value: Any) -> tuple[float, float | None]:
    """:func:`parse_timestamp`, and the UTC offset in seconds the time was written with (None for
    an epoch number)."""
    if isinstance(value, bool):
        raise ValidationError("timestamp: a boolean is not a time")
    offset = None
    if isinstance(value, datetime):
        delta = value.utcoffset()
        if delta is None:
            raise ValidationError("timestamp: ISO-8601 text needs an offset or 'Z' (e.g. 2026-03-02T14:05:00Z)")
        ts = value.timestamp()
        offset = delta.total_seconds()
    elif isinstance(value, int | float):
        ts = float(value)
        if ts != ts:  # NaN
            raise ValidationError("timestamp: NaN is not a time")
        ts = epoch_seconds(ts)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None:
            if compact_date(text) is not None:
                raise ValidationError(f"timestamp: {text[:64]!r} is a date without separators or an offset: write "
                                      "ISO-8601 with its offset (2026-03-02T14:05:00Z)")
            return epoch_text(text, number), None
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValidationError(f"timestamp: {text[:64]!r} is not ISO-8601 or epoch seconds/milliseconds") from None
        return parse_instant(dt)
    else:
        raise ValidationError(f"timestamp: expected ISO-8601 text or a number, got {_json_type(value)}")
    if not (MIN_TIMESTAMP <= ts < MAX_TIMESTAMP):
        raise ValidationError(f"timestamp: {value!s:.64} is outside 1970..2200 (as epoch seconds or milliseconds)")
    return ts, offset


MIN_EPOCH_TEXT = 1e8  # 1973-03-03: a number written as text below it is no epoch time (20260302, Excel's 45353.5)
_COMPACT = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}  # digits only, by length


def compact_date(text: str) -> datetime | None:
    """``text`` as a date written compactly (``20260302``, ``202603021430``, ``20260302143015``), naive;
    None when it is not one. Such digits are a date, not seconds in 1970 or milliseconds in 1976."""
    fmt = _COMPACT.get(len(text)) if text[:2] in ("19", "20") and text.isdigit() else None
    if fmt is None:
        return None
    try:
        return datetime.strptime(text, fmt)
    except ValueError:
        return None


def epoch_text(text: str, number: float) -> float:
    """Epoch text (``number`` read from ``text``) as epoch seconds; before 1973 it is no time."""
    ts = epoch_seconds(number)
    if not ts >= MIN_EPOCH_TEXT:  # NaN too
        raise ValidationError(f"timestamp: {text[:64]!r} is not a time: as epoch seconds or milliseconds it would be "
                              "before 1973 (a spreadsheet's day number? export the column as a date)")
    return ts


def epoch_seconds(number: float) -> float:
    """An epoch number in seconds: one of ``EPOCH_MS_THRESHOLD`` or more is milliseconds."""
    return number / 1000.0 if abs(number) >= EPOCH_MS_THRESHOLD else number


_JSON_TYPES = {"NoneType": "null", "bool": "true/false", "int": "a number", "float": "a number", "str": "a string",
               "list": "an array", "dict": "an object"}


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages ("got an array", not "got list")."""
    return _JSON_TYPES.get(type(value).__name__, type(value).__name__)


def _text(field: str, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{field}: expected a string, got {_json_type(value)}")
    value = value.strip()
    if not value:
        raise ValidationError(f"{field}: must not be empty")
    if len(value) > limit:
        raise ValidationError(f"{field}: longer than {limit} characters")
    if not value.isprintable():
        at = next(i for i, ch in enumerate(value) if not ch.isprintable())
        raise ValidationError(f"{field}: contains the invisible or control character U+{ord(value[at]):04X} at "
                              f"position {at + 1} ({value[:at][-24:]!r} before it)")
    return value


def _id_text(value: Any) -> Any:
    """An integer id (a database key: ``"entity_id": 42``) as its decimal text, what a Kafka key of it
    holds; anything else as it is, for :func:`_text` to judge (``42.0`` or ``true`` is not an id)."""
    return str(value) if type(value) is int else value


def _attributes(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"attributes: expected an object, got {_json_type(value)}")
    if len(value) > MAX_ATTRIBUTES:
        raise ValidationError(f"attributes: more than {MAX_ATTRIBUTES} keys")
    out: dict[str, str] = {}
    for k, v in value.items():
        if v is None:
            continue
        if isinstance(v, dict | list):
            raise ValidationError(f"attributes.{str(k)[:32]}: nested values are not allowed")
        text = v if isinstance(v, str) else (str(v).lower() if isinstance(v, bool) else str(v))
        if len(text) > MAX_ATTR_VALUE_LEN:
            raise ValidationError(f"attributes.{str(k)[:32]}: longer than {MAX_ATTR_VALUE_LEN} characters")
        out[str(k)[:MAX_NAME_LEN]] = text
    return out


def derive_event_id(workflow: str, entity_id: str, stage: str, ts: float) -> str:
    """An id for sources that send none: the same transition always gets the same id."""
    key = f"{workflow}\x1f{entity_id}\x1f{stage}\x1f{ts!r}"
    return "h-" + hashlib.blake2b(key.encode(), digest_size=10).hexdigest()


def validate(obj: Any) -> Event:
    """Validate one decoded JSON value (dict or WireEvent) into an :class:`Event`."""
    if isinstance(obj, WireEvent):
        get = obj.__getattribute__
        d = None
    elif isinstance(obj, dict):
        d = obj
        get = None
    else:
        raise ValidationError(f"an event must be a JSON object, got {_json_type(obj)}")

    def field(name: str, required: bool = True) -> Any:
        value = get(name) if get is not None else d.get(name)  # type: ignore[union-attr]
        if value is None and required:
            raise ValidationError(f"{name}: missing")
        return value

    workflow = _text("workflow", field("workflow"), MAX_NAME_LEN)
    entity_id = _text("entity_id", _id_text(field("entity_id")), MAX_ID_LEN)
    stage = _text("stage", field("stage"), MAX_NAME_LEN)
    ts, offset = parse_instant(field("timestamp"))
    raw_id = field("event_id", required=False)
    event_id = (
        _text("event_id", raw_id if isinstance(raw_id, str) else str(raw_id), MAX_ID_LEN)
        if raw_id is not None
        else derive_event_id(workflow, entity_id, stage, ts)
    )
    waiting = field("waiting_on", required=False)
    waiting_on = _text("waiting_on", waiting, MAX_NAME_LEN) if waiting not in (None, "") else None
    return Event(event_id, workflow, entity_id, stage, ts, _attributes(field("attributes", False)), waiting_on, offset)


def _clean(value: str, limit: int) -> bool:
    """Already what ``_text`` would return: non-empty, within ``limit``, printable, nothing to strip.
    (Printable text can only carry ' ' as leading/trailing whitespace: other spaces are not printable.)"""
    return 0 < len(value) <= limit and value[0] != " " and value[-1] != " " and value.isprintable()


# the common case below compiled (core/src/events.rs): plain printable ASCII text, plain RFC 3339 text or
# a float timestamp, string attributes, all in bounds; it answers None for anything else
_fast_event = FastEvent(Event, derive_event_id, MAX_ID_LEN, MAX_NAME_LEN, MAX_ATTRIBUTES,
                        MAX_ATTR_VALUE_LEN, MIN_TIMESTAMP, MAX_TIMESTAMP, EPOCH_MS_THRESHOLD)


def validate_common(w: WireEvent) -> Event | None:
    """The Event of a :class:`WireEvent` that needs no repair (plain printable names, an RFC 3339
    time with its offset or an epoch number, text attributes, all within bounds), else None: then
    :func:`validate` decides, with its reasons. Compiled; readers that build events call this first."""
    return _fast_event(w)


def _validate_wire(w: WireEvent) -> Event:
    """:func:`validate` for a typed :class:`WireEvent` whose fields need no repair (the common case),
    without re-checking what msgspec already checked; anything unusual takes :func:`validate`."""
    event: Event | None = _fast_event(w)
    return _validate_wire_py(w) if event is None else event


def _validate_wire_py(w: WireEvent) -> Event:
    """:func:`_validate_wire` in Python: what the compiled common case must agree with."""
    if type(w.timestamp) is str:
        # RFC 3339 as msgspec reads it (as when it decoded into a datetime); not such text: the record
        # takes the slow path (``decode_record``), whose reason names what a time must look like
        w.timestamp = msgspec.convert(w.timestamp, datetime)  # type: ignore[assignment]
    workflow, entity_id, stage, ts = w.workflow, w.entity_id, w.stage, w.timestamp
    if not (_clean(workflow, MAX_NAME_LEN) and _clean(entity_id, MAX_ID_LEN) and _clean(stage, MAX_NAME_LEN)):
        return validate(w)
    if type(ts) is datetime and ts.tzinfo is not None:
        t = ts.timestamp()
        if not MIN_TIMESTAMP <= t < MAX_TIMESTAMP:
            return validate(w)
        offset = ts.utcoffset().total_seconds()  # type: ignore[union-attr]  # aware: never None
    else:
        t, offset = parse_instant(ts)
    event_id = w.event_id
    if event_id is None:
        event_id = derive_event_id(workflow, entity_id, stage, t)
    elif not _clean(event_id, MAX_ID_LEN):
        return validate(w)
    waiting_on = w.waiting_on
    if waiting_on == "":
        waiting_on = None
    elif waiting_on is not None and not _clean(waiting_on, MAX_NAME_LEN):
        return validate(w)
    attrs = w.attributes
    if attrs is None:
        attrs = {}
    elif len(attrs) <= MAX_ATTRIBUTES:
        for k, v in attrs.items():
            if type(v) is not str or len(v) > MAX_ATTR_VALUE_LEN or len(k) > MAX_NAME_LEN:
                attrs = _attributes(attrs)  # values to convert or drop, or a reason to reject
                break
    else:
        return validate(w)
    return Event(event_id, workflow, entity_id, stage, t, attrs, waiting_on, offset)


# what decoding a record may raise on bad input (UnicodeDecodeError is a ValueError too)
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, ValidationError, ValueError, OverflowError,
                  RecursionError)  # a record nested deeper than the decoder recurses


def decode_event(data: bytes) -> Event | None:
    """:func:`decode_record`'s common case alone: ``data`` is one event object that needs no repair
    (JSON whitespace around it, a line's own newline, is allowed). None for anything else, and then
    :func:`decode_record` decides, with its reasons. Readers of many small records call this first:
    it skips the lists and the checks the general case needs."""
    try:
        return _fast_event(_wire_decoder.decode(data))
    except _DECODE_ERRORS:
        return None


def decode_record(raw: bytes | bytearray | memoryview | str) -> tuple[list[Event], list[BadRecord]]:
    """Decode one record value: an event object or an array of them. Never raises."""
    if isinstance(raw, str):
        data = raw.encode("utf-8", "surrogateescape")
    else:
        data = raw if isinstance(raw, bytes) else bytes(raw)
    head = data.lstrip()[:1]
    try:
        if head == b"[":
            events = [_validate_wire(w) for w in _wire_batch_decoder.decode(data)]
            if not events:
                return [], [BadRecord(data, "empty batch: a JSON array must hold at least one event")]
        else:
            events = [_validate_wire(_wire_decoder.decode(data))]
        return events, []
    except _DECODE_ERRORS:
        pass
    return _decode_slow(data)


# a \uD800-\uDFFF escape not in a high-low pair
_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<![0-9a-fA-F]{4})\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _decode_slow(data: bytes) -> tuple[list[Event], list[BadRecord]]:
    try:
        value = _any_decoder.decode(data)
    except UnicodeDecodeError:
        return [], [BadRecord(data, "invalid UTF-8")]
    except msgspec.DecodeError as exc:
        lone = _SURROGATE.search(data)  # msgspec calls a lone surrogate escape "truncated"
        reason = ("invalid UTF-8" if _bad_utf8(data) else
                  f"invalid JSON: {lone.group().decode()} is half of a UTF-16 pair (an emoji cut in two?), no "
                  "character" if lone is not None else f"invalid JSON: {exc}")
        if b"\r" in data and b"\n" not in data and "trailing characters" in str(exc):
            reason += " (lines ended by a bare CR? JSONL lines end with LF or CRLF)"
        return [], [BadRecord(data, reason)]
    except RecursionError:
        return [], [BadRecord(data, "invalid JSON: nested too deeply")]
    if isinstance(value, list):
        if not value:
            return [], [BadRecord(data, "empty batch: a JSON array must hold at least one event")]
        good: list[Event] = []
        bad: list[BadRecord] = []
        for i, item in enumerate(value):
            try:
                good.append(validate(item))
            except (ValidationError, ValueError, OverflowError) as exc:
                bad.append(BadRecord(_encoder.encode(item), f"batch element {i}: {exc}"))
        return good, bad
    try:
        return [validate(value)], []
    except (ValidationError, ValueError, OverflowError) as exc:
        return [], [BadRecord(data, str(exc))]


def _bad_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def encode_alert(alert: Alert) -> bytes:
    return _encoder.encode(alert)


def decode_alert(raw: bytes) -> Alert:
    return msgspec.json.decode(raw, type=Alert)
