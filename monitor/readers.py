"""Streaming readers for event files: JSONL (the event contract), CSV with a column mapping, XES.

``read_events`` yields ``(event, None)`` or ``(None, bad)`` pairs one at a time and never loads the
whole file, so a bad line is reported (with its line number) instead of stopping the read.

XES (IEEE 1849) logs are grouped by trace, not ordered by time, and so are most CSV exports of
process-mining tools (one case after the other); :func:`sort_by_time` restores time order in bounded
memory (sorted chunks spilled to temporary files, merged with ``heapq.merge``), and
:func:`read_events` applies it to XES and CSV by default (``order="auto"``): a replay in file order
would run the event-time clock forward on one case and then feed the next case's events behind it.
JSONL is kept in file order: it is what a stream delivered, disorder and all.

CSV columns need no mapping when they carry a usual name (``case_id``, ``case:concept:name``,
``Case ID``; ``activity``, ``concept:name``, ``stage``; ``timestamp``, ``time:timestamp``, ...), the
delimiter is read off the header line (``,``, ``;``, tab or ``|``), a UTF-8 byte-order mark and blank
lines before the header are skipped, and a ``lifecycle:transition`` column is applied like XES's: only
completions (and non-standard transitions) are stage entries. A bad CSV record is kept as its lines were
written; a stray quote costs its own line, not every line after it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import heapq
import io
import itertools
import os
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from monitor.events import (
    MAX_ATTR_VALUE_LEN,
    MAX_ATTRIBUTES,
    BadRecord,
    Event,
    ValidationError,
    WireEvent,
    compact_date,
    decode_event,
    decode_record,
    epoch_text,
    validate,
    validate_common,
)

Pair = tuple[Event | None, BadRecord | None]
FileFormat = Literal["auto", "jsonl", "csv", "xes"]
ORDERS = ("auto", "time", "file")  # auto: sort XES and CSV by time, keep JSONL in file order


class MappingError(ValueError):
    """The mapping does not fit the file (e.g. a named column is missing)."""


@dataclass(frozen=True)
class CsvMapping:
    """Which CSV column holds what. Columns not mapped become event attributes (empty cells skipped).

    A role left at None takes the first column whose name is one of its usual names
    (:data:`CSV_COLUMN_NAMES`; compared without case, spaces, ``_`` or ``-``)."""

    entity_col: str | None = None
    stage_col: str | None = None
    time_col: str | None = None
    workflow_col: str | None = None  # None: the column "workflow" if present, else ``workflow``
    workflow: str | None = None  # a column name or a constant; None: column "workflow", else the file stem
    segment_col: str | None = None  # None: the column "segment" if present
    event_id_col: str | None = None  # None: the column "event_id" if present, else derived
    waiting_on_col: str | None = None  # None: the column "waiting_on" if present
    tz: str = "UTC"  # for timestamps without an offset
    time_format: str | None = None  # strptime format (e.g. "%d.%m.%Y %H:%M"); None: ISO-8601, Y/M/D, YYYYMMDD or epoch
    delimiter: str | None = None  # None: the one of , ; tab | found most often in the header line
    encoding: str = "utf-8-sig"  # a UTF-8 byte-order mark is skipped; a line not in it is a bad record
    extra_attributes: bool = True  # keep the other columns as attributes
    lifecycle_col: str | None = None  # None: the column "lifecycle:transition" (or "lifecycle") if present
    transitions: tuple[str, ...] = ("complete",)  # lifecycle values kept, as for XES ("*": all)
    keep: tuple[str, ...] = ()  # attributes kept past the cap, as the mapped ones (see read_events)


# usual names of the CSV columns, in order of preference (process-mining exports use the XES keys)
CSV_COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "entity": ("case_id", "entity_id", "case:concept:name", "case", "case_key", "entity"),
    "stage": ("activity", "stage", "concept:name", "activity_name", "event", "event_name", "task",
              "step", "status", "state"),
    "time": ("timestamp", "time:timestamp", "time", "complete_timestamp", "end_timestamp", "end_time",
             "completion_time", "event_time", "datetime", "date", "start_timestamp", "start_time"),
    "lifecycle": ("lifecycle:transition", "lifecycle"),
}
_DELIMITERS = (",", ";", "\t", "|")


# the XES standard lifecycle extension's transitions: all but the kept ones (default "complete") are dropped
XES_STANDARD_TRANSITIONS = frozenset({
    "schedule", "assign", "reassign", "start", "resume", "suspend", "autoskip", "manualskip",
    "withdraw", "ate_abort", "pi_abort", "complete", "unknown",
})


class _Lifecycle:
    """Which ``lifecycle:transition`` values are stage entries: the kept ones (default ``complete``;
    ``*``: all) and any value outside the XES standard lifecycle model (e.g. BPI 2013's
    "In Progress", "Awaiting Assignment": status changes of their own). A missing value is a
    completion. The events not kept are counted in ``stats``, for the summary to say."""

    def __init__(self, transitions: tuple[str, ...], stats: ReadStats) -> None:
        self.keep_all = "*" in transitions
        self.keep = {t.lower() for t in transitions}
        self.skipped = stats.skipped
        stats.transitions = transitions

    def keeps(self, transition: str) -> bool:
        if self.keep_all or transition in self.keep or transition not in XES_STANDARD_TRANSITIONS:
            return True
        self.skipped[transition] += 1
        return False

    def attribute(self, transition: str, attrs: dict[str, str]) -> None:
        """With every transition kept, a non-completion says so in the event's ``lifecycle``."""
        if self.keep_all and transition != "complete":
            attrs["lifecycle"] = transition


@dataclass(frozen=True)
class XesMapping:
    """How XES attributes become events. Trace ``concept:name`` is the entity, event ``concept:name`` the stage."""

    # lifecycle:transition values kept ("*": all): see _Lifecycle
    transitions: tuple[str, ...] = ("complete",)
    workflow: str | None = None  # constant; None: trace attribute ``workflow_attr``, else log name, else file stem
    workflow_attr: str = "workflow"
    tz: str = "UTC"  # for timestamps without an offset
    rename: dict[str, str] = field(default_factory=lambda: {"org:resource": "owner", "identity:id": "event_id"})
    keep: tuple[str, ...] = ()  # attributes kept past the cap, as the mapped ones (see read_events)


STDIN = "-"  # the path that reads standard input (once: a pipe cannot be opened again)


def _unzipped_name(path: Path) -> str:
    """The file's name without a ``.gz`` suffix (any case): the name of what it holds (``stdin`` for ``-``)."""
    if str(path) == STDIN:
        return "stdin"
    return path.name[:-3] if path.name.lower().endswith(".gz") else path.name


def _stem(path: Path) -> str:
    """The file's name without its format suffix, nor ``.gz``: ``bpic2012.xes.gz`` -> ``bpic2012``."""
    return Path(_unzipped_name(path)).stem


def _open(path: Path, mode: str, **kwargs: Any) -> IO[Any]:
    """Open a file, gunzipping it on the fly when its name ends in ``.gz`` (public process-mining
    logs are mostly published as ``.xes.gz``); ``-`` is standard input."""
    if str(path) == STDIN:
        return sys.stdin.buffer if "b" in mode else io.TextIOWrapper(sys.stdin.buffer, **kwargs)
    if _unzipped_name(path) != path.name:
        return gzip.open(path, mode if "b" in mode else mode + "t", **kwargs)  # type: ignore[return-value]
    return open(path, mode, **kwargs)  # noqa: SIM115 - the caller closes it


def detect_format(path: Path, fmt: str = "auto") -> str:
    """``fmt``, or for ``auto`` the format the file's name tells."""
    if fmt != "auto":
        return fmt
    name = _unzipped_name(path).lower()
    for suffix, kind in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl"), (".csv", "csv"),
                         (".xes", "xes"), (".xml", "xes")):
        if name.endswith(suffix):
            return kind
    if str(path) == STDIN:
        raise MappingError("standard input has no name to tell its format by: pass --format jsonl, csv or xes")
    raise MappingError(f"{path}: cannot tell the format from the name (.jsonl, .csv or .xes, each "
                       "optionally .gz); pass --format jsonl, csv or xes")


@dataclass
class ReadStats:
    """What a read tells besides its pairs (for the replay summary), filled in as the file is read."""

    columns: str | None = None  # CSV: which column is read as what, once the header is read
    long_values: int = 0  # CSV/XES attribute values over MAX_ATTR_VALUE_LEN characters, left out
    past_cap: set[str] = field(default_factory=set)  # CSV/XES attributes past the MAX_ATTRIBUTES-th, left out
    skipped: Counter[str] = field(default_factory=Counter)  # lifecycle transition -> events not replayed
    transitions: tuple[str, ...] = ("complete",)  # the lifecycle transitions replayed (see _Lifecycle)

    def not_replayed(self) -> str | None:
        """The events skipped for their lifecycle transition, in one sentence (None: none were)."""
        if not self.skipped:
            return None
        which = ", ".join(f"{t} {n:,}" for t, n in self.skipped.most_common())
        name = ",".join(dict.fromkeys([*self.skipped, *self.transitions]))
        return (f"{_many(sum(self.skipped.values()), 'event')} skipped: lifecycle transition not "
                f"{' or '.join(self.transitions)} ({which}); to replay them: --transitions {name}, or "
                f"--transitions all")

    def not_kept(self) -> str | None:
        """What :func:`_fit_attributes` left out of the events, in one sentence (None: nothing)."""
        said = []
        if self.long_values:
            said.append(f"{_many(self.long_values, 'attribute value')} over {MAX_ATTR_VALUE_LEN} characters")
        if self.past_cap:
            said.append(f"{_many(len(self.past_cap), 'column' if self.columns is not None else 'attribute')} past "
                        f"the {MAX_ATTRIBUTES}th")
        one = self.long_values + len(self.past_cap) == 1
        return f"{' and '.join(said)} {'was' if one else 'were'} not kept (the events were)" if said else None


def _many(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


def read_events(
    path: str | Path,
    fmt: FileFormat | str = "auto",  # CLI strings too: an unknown one raises MappingError below
    mapping: CsvMapping | XesMapping | dict[str, Any] | None = None,  # a dict of field names: see _mapping
    order: str = "auto",
    stats: ReadStats | None = None,
    keep: Iterable[str] = (),
) -> Iterator[Pair]:
    """Stream ``(Event, None)`` / ``(None, BadRecord)`` pairs from a file (``-``: standard input), opened once.

    ``order``: ``file`` keeps the file's order; ``time`` sorts events by timestamp (bad records
    pass through unsorted); ``auto`` sorts XES and CSV logs (exports of process-mining tools are
    grouped by case) and keeps JSONL as it is (a capture of a stream: near time order already, and
    the engine's allowed lateness absorbs small disorder). ``keep``: attributes kept whatever their
    column (the settings' ``segment_by`` keys: :meth:`monitor.config.Settings.segment_keys`); of a
    log's other columns only the first ``MAX_ATTRIBUTES`` are."""
    if order not in ORDERS:
        raise MappingError(f"unknown order {order!r}; known: {', '.join(ORDERS)}")
    p = Path(path)
    kind = detect_format(p, fmt)
    stats = stats if stats is not None else ReadStats()
    if kind == "jsonl":
        pairs = _read_jsonl(p)
    elif kind == "csv":
        pairs = _read_csv(p, _keeping(_mapping(CsvMapping, mapping, "CSV"), keep), stats)
    elif kind == "xes":
        pairs = _read_xes(p, _keeping(_mapping(XesMapping, mapping, "XES"), keep), stats)
    else:
        raise MappingError(f"unknown format {fmt!r}; known: jsonl, csv, xes")
    if order == "time" or (order == "auto" and kind in ("xes", "csv")):
        return _time_ordered(pairs)
    return pairs


def _time_ordered(pairs: Iterable[Pair]) -> Iterator[Pair]:
    """``pairs`` with the events in timestamp order; bad records are passed on as they are met."""
    bad: deque[BadRecord] = deque()

    def events() -> Iterator[Event]:
        for ev, b in pairs:
            if ev is not None:
                yield ev
            elif b is not None:
                bad.append(b)

    for ev in sort_by_time(events()):
        while bad:
            yield None, bad.popleft()
        yield ev, None
    while bad:
        yield None, bad.popleft()


def _mapping(cls: type[Any], mapping: Any, what: str) -> Any:
    """A mapping object from an instance, ``None`` (defaults) or a dict of its field names."""
    if mapping is None:
        return cls()
    if isinstance(mapping, cls):
        return mapping
    if isinstance(mapping, dict):
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - names)
        if unknown:
            raise MappingError(f"{what} mapping: {', '.join(unknown)} not understood; options: {', '.join(sorted(names))}")
        if "tz" in mapping:
            try:
                ZoneInfo(mapping["tz"])
            except Exception:  # noqa: BLE001 - zoneinfo raises several types
                raise MappingError(f"unknown time zone {mapping['tz']!r}") from None
        return cls(**mapping)
    raise MappingError(f"a {what} file needs a {cls.__name__} or a dict, got {type(mapping).__name__}")


def _keeping(m: Any, keep: Iterable[str]) -> Any:
    more = tuple(k for k in keep if k not in m.keep)
    return replace(m, keep=(*m.keep, *more)) if more else m


def events_only(pairs: Iterable[Pair]) -> Iterator[Event]:
    for ev, _bad in pairs:
        if ev is not None:
            yield ev


# --------------------------------------------------------------------------- JSONL


# what reading a damaged file raises (a download cut short, a .gz that is not gzip, a bad disk): the file is
# read up to there, and the reason kept with the bad records
READ_ERRORS = (OSError, EOFError, zlib.error)


def _unreadable(path: Path, exc: BaseException, unit: str, done: int) -> BadRecord:
    """The reason kept when ``path`` breaks off after ``done`` lines (or traces) were read."""
    said = str(exc) or type(exc).__name__
    where = f"after {unit} {done}" if done else "at its start"
    return BadRecord(b"", f"{where}: {path.name} cannot be read further ({said}); what came before it is used")


def _read_jsonl(path: Path) -> Iterator[Pair]:
    lineno = 0
    with _open(path, "rb") as f:
        try:
            for lineno, line in enumerate(f, 1):
                ev = decode_event(line)
                if ev is not None:
                    yield ev, None
                    continue
                if lineno == 1 and line.startswith(codecs.BOM_UTF8):
                    line = line[len(codecs.BOM_UTF8):]  # a Windows editor's byte-order mark
                if not line.strip():
                    continue
                good, bad = decode_record(line.rstrip(b"\r\n"))
                for ev in good:
                    yield ev, None
                for b in bad:
                    yield None, BadRecord(b.raw, f"line {lineno}: {b.reason}")
        except READ_ERRORS as exc:
            yield None, _unreadable(path, exc, "line", lineno)


# --------------------------------------------------------------------------- time parsing


def _local_time(text: str, tz: ZoneInfo, fmt: str | None = None) -> datetime | float:
    """ISO-8601 (also ``2011/10/01 00:38:44.546``, as process-mining tools export it, and ``20260302``,
    ``202603021430``, ``20260302143015``) or
    epoch text (seconds or milliseconds, from 1973 on), or ``fmt`` (strptime) when given; a time without an offset is read in ``tz``. An aware datetime
    (its offset tells the engine where the source's day is), or epoch seconds for epoch text."""
    s = text.strip()
    if not s:
        raise ValidationError("timestamp: empty")
    if fmt is not None:
        try:
            dt = datetime.strptime(s, fmt)
        except ValueError:
            raise ValidationError(f"timestamp: {s[:64]!r} does not match the format {fmt!r}") from None
        return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)
    compact = compact_date(s)
    if compact is not None:
        return compact.replace(tzinfo=tz)
    try:
        number = float(s)
    except ValueError:
        number = None
    if number is not None:
        return epoch_text(s, number)
    if len(s) >= 10 and s[4] == "/" and s[7] == "/":  # year first: unambiguous
        s = s[:10].replace("/", "-") + s[10:]
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        fits = [f for f in _USUAL_FORMATS if _parses(s, f)]
        hint = (f"it reads as {' or as '.join(repr(f) for f in fits)}: pass that with --time-format" if fits
                else "CSV: give its format with --time-format")
        raise ValidationError(f"timestamp: {s[:64]!r} is not ISO-8601 or epoch seconds/milliseconds ({hint})") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)


# day-first and month-first layouts seen in spreadsheet exports: named in the error when one fits
_USUAL_FORMATS = tuple(
    f"{date} {clock}".strip()
    for date in ("%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y")
    for clock in ("%H:%M:%S", "%H:%M", "%I:%M:%S %p", "%I:%M %p", "")
)


def _parses(text: str, fmt: str) -> bool:
    try:
        datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True


MAPPED_ATTRIBUTES = ("segment", "lifecycle")  # attributes a reader sets from its mapping: kept first, as they are


def _fit_attributes(attrs: dict[str, str], first: Iterable[str], stats: ReadStats,
                    keep: Iterable[str] = ()) -> dict[str, str]:
    """A CSV row's or an XES event's attributes within the event contract's bounds. Most are incidental (a
    log's other columns, a free-text comment): one over ``MAX_ATTR_VALUE_LEN`` characters, and the ones past
    the ``MAX_ATTRIBUTES``-th, are left out and counted in ``stats``, not a reason to lose the event. The
    ones named in ``first`` (what the mapping put there) come first and are kept as they are, for
    :func:`validate` to judge; then those in ``keep`` (the settings' segment keys), past the cap too.
    (JSONL is the contract itself: there, validation rejects what does not fit.)"""
    if len(attrs) <= MAX_ATTRIBUTES and max(map(len, attrs.values()), default=0) <= MAX_ATTR_VALUE_LEN:
        return attrs
    fitted = {k: attrs[k] for k in first if k in attrs}
    # then the kept ones, wherever their column (a long value is left out below, as any other)
    fitted.update((k, attrs[k]) for k in keep if k in attrs and k not in fitted and len(attrs[k]) <= MAX_ATTR_VALUE_LEN)
    for k, v in attrs.items():
        if k in fitted:
            continue
        if len(v) > MAX_ATTR_VALUE_LEN:
            stats.long_values += 1
        elif len(fitted) >= MAX_ATTRIBUTES:
            stats.past_cap.add(k)
        else:
            fitted[k] = v
    return fitted


def _to_event(fields: dict[str, Any], raw: Callable[[], bytes], where: str) -> Pair:
    """Validate one record's fields; when they are invalid, ``raw()`` gives the record as read, for the DLQ."""
    try:
        return validate(fields), None
    except (ValidationError, ValueError, OverflowError) as exc:
        return None, BadRecord(raw(), f"{where}: {exc}")


# --------------------------------------------------------------------------- CSV


def _column_key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch not in " _-\t")


def _sniff_delimiter(header_line: str) -> str:
    """The delimiter found most often in the header line (``,`` when none is)."""
    return max(_DELIMITERS, key=header_line.count) if any(d in header_line for d in _DELIMITERS) else ","


@dataclass
class _CsvLayout:
    """Where each role is in a CSV file, as read off its header line."""

    delimiter: str
    header: list[str]
    columns: dict[str, int]  # header name -> index (a repeated name: its last column)
    entity: int
    stage: int
    time: int
    lifecycle: int | None
    workflow: int | None
    segment: int | None
    event_id: int | None
    waiting_on: int | None

    def describe(self) -> str:
        roles = [("entity", self.entity), ("stage", self.stage), ("time", self.time),
                 ("lifecycle", self.lifecycle), ("workflow", self.workflow), ("segment", self.segment)]
        cols = ", ".join(f"{role} = {self.header[i]}" for role, i in roles if i is not None)
        return f"{cols} (delimiter {self.delimiter!r})"


def _csv_layout(path: Path, header: list[str], delimiter: str, m: CsvMapping) -> _CsvLayout:
    idx = {h: i for i, h in enumerate(header)}
    by_key: dict[str, int] = {}
    for h, i in idx.items():
        by_key.setdefault(_column_key(h), i)

    def usual(role: str) -> int | None:
        """The column with the first usual name of ``role`` that the header has."""
        return next((by_key[k] for k in map(_column_key, CSV_COLUMN_NAMES[role]) if k in by_key), None)

    def need(role: str, col: str | None) -> int:
        if col is None:
            found = usual(role)
            if found is not None:
                return found
            raise MappingError(
                f"{path}: no {role} column found (looked for {', '.join(CSV_COLUMN_NAMES[role])}); "
                f"name it with --{role}-col. Columns are: {', '.join(header)}"
                + ("" if len(header) > 1 else f" (one column: is the delimiter {delimiter!r} right?)")
            )
        if col not in idx:
            raise MappingError(
                f"{path}: {role} column {col!r} is not in the header; columns are: {', '.join(header)}"
            )
        return idx[col]

    def optional(col: str | None, default: str) -> int | None:
        """The column named, else the one called ``default`` (as ``usual`` compares: ``Segment``, ``SEGMENT``)."""
        if col is not None:
            return need(default, col)
        return by_key.get(_column_key(default))

    if m.workflow_col is not None:
        i_wf: int | None = need("workflow", m.workflow_col)
    elif m.workflow is not None:
        i_wf = idx.get(m.workflow)  # the name of a column, else a constant
    else:
        i_wf = optional(None, "workflow")
    return _CsvLayout(
        delimiter=delimiter,
        header=header,
        columns=idx,
        entity=need("entity", m.entity_col),
        stage=need("stage", m.stage_col),
        time=need("time", m.time_col),
        lifecycle=need("lifecycle", m.lifecycle_col) if m.lifecycle_col is not None else usual("lifecycle"),
        workflow=i_wf,
        segment=optional(m.segment_col, "segment"),
        event_id=optional(m.event_id_col, "event_id"),
        waiting_on=optional(m.waiting_on_col, "waiting_on"),
    )


MAX_RECORD_LINES = 1000  # a CSV record running over more physical lines is taken for an unterminated quote


class _UnterminatedQuote(Exception):
    """Raised through ``csv.reader`` by :class:`_Lines`: the record runs on past ``MAX_RECORD_LINES`` lines, or
    its quoted field is still open at the end of the file."""


class _Lines:
    """A CSV file's physical lines as ``csv.reader`` takes them, numbered, with the current record's lines
    kept: a bad record goes to the DLQ as it was written, and after a stray quote the reading starts again
    at the line after the quote's (:meth:`again`)."""

    def __init__(self, f: IO[str]) -> None:
        self.f = f
        self.back: list[str] = []  # lines to read again, the next one last
        self.record: list[str] = []  # the current record's lines
        self.lineno = 0  # the number of the last line handed out

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if len(self.record) >= MAX_RECORD_LINES:
            raise _UnterminatedQuote
        line = self.back.pop() if self.back else next(self.f, None)
        if line is None:
            # csv asks for a line after a line end only inside a quoted field
            if self.record and self.record[-1].endswith(("\n", "\r")):
                raise _UnterminatedQuote
            raise StopIteration
        self.lineno += 1
        self.record.append(line)
        return line

    def start(self) -> int:
        """Begin a record; the number of its first line."""
        self.record = []
        return self.lineno + 1

    def raw(self, lines: int | None = None) -> bytes:
        """The current record (or its first ``lines``) as read, without its line end, in the bytes it was
        read from: undecodable bytes come back as themselves."""
        return "".join(self.record[:lines]).rstrip("\r\n").encode("utf-8", "surrogateescape")

    def again(self) -> None:
        """Read the current record's lines after its first again: a stray quote took them into it."""
        self.back.extend(reversed(self.record[1:]))
        self.lineno -= len(self.record) - 1
        self.record = self.record[:1]


def _unterminated(first: int, lines: int) -> str:
    said = f"the record runs over {lines} lines" if lines > 1 else "at the end of the file"
    return f"line {first}: unterminated quote ({said})"


def _open_csv(path: Path, m: CsvMapping) -> tuple[IO[str], _Lines, Any, _CsvLayout]:
    """Open a CSV file, read its header (after any blank lines): (the file, its lines, a csv reader
    positioned after the header, layout)."""
    f = _open(path, "r", encoding=m.encoding, errors="surrogateescape", newline="")
    try:
        lines = _Lines(f)
        for first in f:
            if first.strip():
                break
            lines.lineno += 1
        else:
            raise MappingError(f"{path}: empty file, expected a header row")
        lines.back.append(first)
        delimiter = m.delimiter or _sniff_delimiter(first)
        reader = csv.reader(lines, delimiter=delimiter)
        at = lines.start()
        try:
            header = [h.strip() for h in next(reader)]
        except (_UnterminatedQuote, csv.Error) as exc:
            said = _unterminated(at, len(lines.record)) if isinstance(exc, _UnterminatedQuote) else f"line {at}: {exc}"
            raise MappingError(f"{path}: the header is not a CSV row ({said})") from None
        return f, lines, reader, _csv_layout(path, header, delimiter, m)
    except BaseException:
        f.close()
        raise


def csv_layout(path: str | Path, mapping: CsvMapping | dict[str, Any] | None = None) -> str:
    """Which column of a CSV file holds what, in words (for the replay summary)."""
    f, _lines, _reader, layout = _open_csv(Path(path), _mapping(CsvMapping, mapping, "CSV"))
    f.close()
    return layout.describe()


def _read_csv(path: Path, m: CsvMapping, stats: ReadStats) -> Iterator[Pair]:
    tz = ZoneInfo(m.tz)
    f, lines, reader, lay = _open_csv(path, m)
    stats.columns = lay.describe()
    with f:
        encoding = "UTF-8" if m.encoding.lower().replace("_", "-") in ("utf-8-sig", "utf-8", "utf8") else m.encoding
        width = len(lay.header)
        i_entity, i_stage, i_time, i_life = lay.entity, lay.stage, lay.time, lay.lifecycle
        i_wf, i_seg, i_id, i_wait = lay.workflow, lay.segment, lay.event_id, lay.waiting_on
        lifecycle = _Lifecycle(m.transitions, stats)
        constant_wf = m.workflow if m.workflow is not None and i_wf is None else _stem(path)
        used = {i_entity, i_stage, i_time, i_wf, i_seg, i_id, i_wait, i_life}
        extra = [(h, i) for h, i in lay.columns.items() if i not in used] if m.extra_attributes else []
        while True:
            lineno = lines.start()
            try:
                row = next(reader)
            except StopIteration:
                break
            except (_UnterminatedQuote, csv.Error) as exc:  # a stray quote; a field over the csv module's limit
                if isinstance(exc, csv.Error) and len(lines.record) == 1:
                    yield None, BadRecord(lines.raw(), f"line {lineno}: not a CSV row ({exc})")
                    continue
                # a quote left open took the lines after it: this line is set aside, the next ones read again
                yield None, BadRecord(lines.raw(1), _unterminated(lineno, len(lines.record)))
                lines.again()
                continue
            except READ_ERRORS as exc:  # a file that breaks off: read up to there
                yield None, _unreadable(path, exc, "line", lineno - 1)
                break
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            try:
                "".join(row).encode()
            except UnicodeEncodeError:  # bytes the encoding could not read, kept as they were
                yield None, BadRecord(lines.raw(), f"line {lineno}: not {encoding} "
                                      "text (a Windows export? pass --encoding cp1252)")
                continue
            if len(row) != width:
                yield None, BadRecord(lines.raw(), f"line {lineno}: {len(row)} fields, the header "
                                      f"has {width}")
                continue
            transition = "complete"
            if i_life is not None:
                transition = row[i_life].strip().lower() or "complete"
                if not lifecycle.keeps(transition):
                    continue
            try:
                ts = _local_time(row[i_time], tz, m.time_format)
            except ValidationError as exc:
                yield None, BadRecord(lines.raw(), f"line {lineno}: {exc}")
                continue
            attrs = {h: row[i] for h, i in extra if row[i] != ""}
            lifecycle.attribute(transition, attrs)
            if i_seg is not None and row[i_seg] != "":
                attrs["segment"] = row[i_seg]
            fields = {
                "workflow": (row[i_wf] if i_wf is not None else constant_wf) or constant_wf,
                "entity_id": row[i_entity],
                "stage": row[i_stage],
                "timestamp": ts,
                "event_id": row[i_id] if i_id is not None and row[i_id] else None,
                "attributes": _fit_attributes(attrs, MAPPED_ATTRIBUTES, stats, m.keep),
                "waiting_on": row[i_wait] if i_wait is not None and row[i_wait] else None,
            }
            yield _to_event(fields, lines.raw, f"line {lineno}")


# --------------------------------------------------------------------------- XES


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_XES_TYPES = {"string", "date", "int", "float", "boolean", "id"}


def _read_xes(path: Path, m: XesMapping, stats: ReadStats) -> Iterator[Pair]:
    with _open(path, "rb") as source:
        yield from _parse_xes(path, source, m, stats)


def _parse_xes(path: Path, source: IO[bytes], m: XesMapping, stats: ReadStats) -> Iterator[Pair]:
    """Stream an XES log with ``iterparse``; each trace is buffered (one case), elements are cleared."""
    tz = ZoneInfo(m.tz)
    lifecycle = _Lifecycle(m.transitions, stats)
    log_name: str | None = None
    event_defaults: dict[str, str] = {}
    stack: list[str] = []  # local tag names of open elements
    trace_attrs: dict[str, str] = {}
    trace_events: list[dict[str, str]] = []
    trace_no = 0
    root: ET.Element | None = None
    local: dict[str, str] = {}  # element tag -> its local name (a log uses a handful of tags)
    # read until the XML stops being well-formed (a truncated download, a stray byte): the log is read up
    # to there instead of not at all
    try:
        for action, elem in ET.iterparse(source, events=("start", "end")):
            tag = local.get(elem.tag)
            if tag is None:
                tag = local[elem.tag] = _local(elem.tag)
            if action == "start":
                if root is None:
                    root = elem
                stack.append(tag)
                if tag == "trace" and len(stack) == 2:
                    trace_attrs = {}
                    trace_events = []
                    trace_no += 1
                elif tag == "event" and len(stack) == 3 and stack[1] == "trace":
                    trace_events.append({})
                continue
            stack.pop()
            depth = len(stack)  # depth of the parent
            parent = stack[-1] if stack else None
            key = elem.attrib.get("key") if tag in _XES_TYPES else None
            if key is not None:
                value = elem.attrib.get("value", "")
                if parent == "event" and depth == 3 and stack[1] == "trace":
                    trace_events[-1][key] = value
                elif parent == "trace" and depth == 2:
                    trace_attrs[key] = value
                elif parent == "global" and depth == 2 and _scope_is_event(root, elem):
                    event_defaults[key] = value
                elif parent == "log" and depth == 1 and key == "concept:name":
                    log_name = value
                if depth >= 2:
                    continue  # cleared with its parent
            elif tag == "event" and not (depth == 2 and stack[1] == "trace"):
                # XES lists a case's events in its trace: one elsewhere (a trace in a trace, the log) is
                # kept as bad input, not dropped unseen
                yield None, BadRecord(ET.tostring(elem).strip()[:4096], f"an event in {'/'.join(stack)}, not in a trace of "
                                                                 "the log (XES lists a case's events in its trace)")
            elif tag == "event" and parent == "trace":
                pass  # attributes already collected
            elif tag == "trace" and depth == 1:
                yield from _emit_trace(path, m, tz, lifecycle, log_name, event_defaults, trace_attrs,
                                       trace_events, trace_no, stats)
                elem.clear()
                if root is not None:
                    root.clear()  # drop finished traces from the tree
                continue
            if tag == "event" and depth == 2 and stack[1] == "trace":
                elem.clear()
    except ET.ParseError as exc:
        yield None, BadRecord(b"", f"not well-formed XML ({exc}): the log is read up to there, its "
                                   "unfinished trace is not used")
    except READ_ERRORS as exc:
        inside = len(stack) >= 2 and stack[1] == "trace"  # its unfinished trace is not used
        yield None, _unreadable(path, exc, "trace", trace_no - inside)


def _scope_is_event(root: ET.Element | None, attr_elem: ET.Element) -> bool:
    if root is None:
        return False
    for g in root:
        if _local(g.tag) == "global" and any(child is attr_elem for child in g):
            return g.attrib.get("scope", "event") == "event"
    return False


def _emit_trace(
    path: Path,
    m: XesMapping,
    tz: ZoneInfo,
    lifecycle: _Lifecycle,
    log_name: str | None,
    defaults: dict[str, str],
    trace_attrs: dict[str, str],
    events: list[dict[str, str]],
    trace_no: int,
    stats: ReadStats,
) -> Iterator[Pair]:
    entity = trace_attrs.get("concept:name", "")
    workflow = m.workflow or trace_attrs.get(m.workflow_attr) or log_name or _stem(path)
    case_attrs = {
        m.rename.get(k, k): v for k, v in trace_attrs.items() if k not in ("concept:name", m.workflow_attr)
    }
    mapped = (*MAPPED_ATTRIBUTES, *m.rename.values())
    for n, raw_ev in enumerate(events, 1):
        ev = {**defaults, **raw_ev}
        transition = ev.get("lifecycle:transition", "complete").lower()
        if not lifecycle.keeps(transition):
            continue
        attrs = dict(case_attrs)
        event_id = None
        waiting_on = None
        for k, v in ev.items():
            if k in ("concept:name", "time:timestamp", "lifecycle:transition"):
                continue
            name = m.rename.get(k, k)
            if name == "event_id":
                event_id = v
            elif name == "waiting_on":
                waiting_on = v or None
            else:
                attrs[name] = v
        lifecycle.attribute(transition, attrs)
        stage = raw_ev.get("concept:name", "")
        text = raw_ev.get("time:timestamp", "")
        # most events: a time written with its offset, clean names (the compiled common case); the
        # rest (a time without offset is in the mapping's zone) as ``validate`` reads them
        event = validate_common(WireEvent(workflow, entity, stage, text, event_id, attrs, waiting_on))
        if event is not None:
            yield event, None
            continue
        attrs = _fit_attributes(attrs, mapped, stats, m.keep)
        where = f"trace {trace_no} ({entity[:64]!r}) event {n}"
        raw = msgspec.json.encode({"trace": entity, "event": raw_ev})
        try:
            ts = _local_time(text, tz)
        except ValidationError as exc:
            yield None, BadRecord(raw, f"{where}: {exc}")
            continue
        fields = {
            "workflow": workflow,
            "entity_id": entity,
            "stage": stage,
            "timestamp": ts,
            "event_id": event_id,
            "attributes": attrs,
            "waiting_on": waiting_on,
        }
        yield _to_event(fields, partial(bytes, raw), where)


# --------------------------------------------------------------------------- time order


_spill_decoder = msgspec.json.Decoder(tuple[float, int, Event])
_spill_encoder = msgspec.json.Encoder()


def sort_by_time(
    events: Iterable[Event], chunk_size: int = 200_000, tmp_dir: str | Path | None = None
) -> Iterator[Event]:
    """Yield ``events`` in timestamp order (ties keep input order), in bounded memory.

    Up to ``chunk_size`` events are sorted in memory; beyond that each sorted chunk is spilled to a
    temporary JSONL file and the chunks are merged lazily. Temporary files are removed at the end.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    seq = itertools.count()
    it = iter(events)
    # (time, arrival, event) rows sort as tuples: the arrival numbers are unique, so ties keep the
    # input order and the events themselves are never compared (validated times are never NaN)
    first = [(ev.timestamp, next(seq), ev) for ev in itertools.islice(it, chunk_size)]
    first.sort()
    nxt = list(itertools.islice(it, 1))
    if not nxt:
        for _, _, ev in first:
            yield ev
        return
    with tempfile.TemporaryDirectory(prefix="stagewatch-sort-", dir=tmp_dir) as d:
        files: list[str] = []

        def spill(chunk: list[tuple[float, int, Event]]) -> None:
            name = os.path.join(d, f"chunk-{len(files):05d}.jsonl")
            with open(name, "wb") as f:
                for row in chunk:
                    f.write(_spill_encoder.encode(row))
                    f.write(b"\n")
            files.append(name)

        spill(first)
        del first
        rest = itertools.chain(nxt, it)
        while True:  # bounded by the input length
            chunk = [(ev.timestamp, next(seq), ev) for ev in itertools.islice(rest, chunk_size)]
            if not chunk:
                break
            chunk.sort()
            spill(chunk)

        handles = [open(name, "rb") for name in files]  # noqa: SIM115 - closed below
        try:
            streams = [(_spill_decoder.decode(line) for line in h) for h in handles]
            for _, _, ev in heapq.merge(*streams):
                yield ev
        finally:
            for h in handles:
                h.close()
