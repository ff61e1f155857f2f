"""Replay history through the engine: ``stagewatch backtest``.

The clock is event time: between two events the engine is ticked in fixed event-time steps,
exactly as the live worker's timer would tick it, so the alerts written here are the alerts the
live system would have sent for the same events.
"""

from __future__ import annotations

import base64
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from monitor.config import Settings
from monitor.engine import Engine, EventClock, EventRejected, check_step
from monitor.events import Alert, BadRecord, Event, encode, encode_alert, format_ts, human_duration
from monitor.outputs import OutputFiles
from monitor.readers import ReadStats

DEFAULT_TICK = 60.0
JUMP_SAID = 365 * 86400.0  # one event moving the replay's clock further ahead is named in the summary


def partition_scope(partition: int, partitions: int) -> str | None:
    """The engine scope of one partition: None when there is only one (the identities stay plain)."""
    return f"partition-{partition}" if partitions > 1 else None


def partition_engines(settings: Settings | None, partitions: int) -> list[Engine]:
    """One engine per Kafka partition, as a worker on a topic of ``partitions`` partitions has them."""
    return [Engine(settings, scope=partition_scope(p, partitions)) for p in range(max(1, partitions))]


@dataclass
class BacktestSummary:
    events_read: int = 0
    invalid: int = 0
    rejected: int = 0
    behind: int = 0  # events older than the replay clock by more than the allowed lateness
    first_invalid: str | None = None  # the reason of the first invalid record
    dlq_path: str | None = None  # where the invalid and rejected records were written (None: there were none)
    alerts_path: str | None = None  # where the alert changes were written (None: nowhere, no -o)
    reading: ReadStats = field(default_factory=ReadStats)  # what the reader said besides the records
    items: int = 0
    open_items: int = 0
    alert_changes: int = 0
    firing: Counter[str] = field(default_factory=Counter)  # kind -> n
    firing_by_stage: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (workflow, stage, kind)
    outcomes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    first_ts: float | None = None
    last_ts: float | None = None
    time_basis: dict[str, str] = field(default_factory=dict)  # workflow -> how it is measured, in words
    stages: int = 0  # stages items pass through (not where they end) ...
    warm_stages: int = 0  # ... of which had completed ``warmup`` times in every partition, enough to page
    warmup: int = 0
    # the largest step of the replay's clock: (newest event time before, the event's time, its item)
    jump: tuple[float, float, str] = (0.0, 0.0, "")

    @property
    def columns(self) -> str | None:
        """CSV: which column was read as what."""
        return self.reading.columns

    @property
    def events_per_second(self) -> float:
        return self.events_read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_read": self.events_read,
            "invalid": self.invalid,
            "rejected": self.rejected,
            "behind_clock": self.behind,
            "items": self.items,
            "open_items": self.open_items,
            "alert_changes": self.alert_changes,
            "firing": dict(self.firing),
            "outcomes": dict(self.outcomes),
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
            "time_basis": dict(self.time_basis),
            "columns": self.columns,
            "not_kept": {"long_values": self.reading.long_values, "past_cap": len(self.reading.past_cap)},
            "lifecycle_skipped": dict(self.reading.skipped),
            "dlq_path": self.dlq_path,
            "alerts_path": self.alerts_path,
            "stages": self.stages,
            "warm_stages": self.warm_stages,
        }


def replay(
    engines: Engine | list[Engine],
    records: Iterable[tuple[Event | None, BadRecord | None]],
    step: float = DEFAULT_TICK,
    on_bad: Any = None,
    summary: BacktestSummary | None = None,
    finish: bool = True,
) -> Iterator[Alert]:
    """Drive engines over records in event time. Bad records go to ``on_bad(bad)``.

    With several engines, each is one Kafka partition: events are routed by Kafka's default
    partitioner on ``entity_id`` and each partition keeps its own event-time clock, exactly like
    the worker with ``--clock event``.
    """
    engines = engines if isinstance(engines, list) else [engines]
    n = len(engines)
    s = summary if summary is not None else BacktestSummary()
    newest = -math.inf  # the newest event time so far: how far one event moved the replay's clock (s.jump)
    clocks = [EventClock(step) for _ in engines]
    seen: set[str] | None = set()
    cache: dict[str, int] = {}
    if n > 1:
        from streams.app import partition_for
        from streams.group import EngineGroup

        group = EngineGroup()  # as the worker: a partition asks the others before calling a source silent
        for p, engine in enumerate(engines):
            group.join(p, engine)
    for ev, bad in records:
        if ev is None:
            s.invalid += 1
            if bad is not None:
                if s.first_invalid is None:
                    s.first_invalid = bad.reason
                if on_bad is not None:
                    on_bad(bad)
            continue
        s.events_read += 1
        ts = ev.timestamp
        if ts > newest:
            if ts - newest > s.jump[1] - s.jump[0] and newest > -math.inf:
                s.jump = (newest, ts, ev.entity_id)
            newest = ts
        if s.first_ts is None:
            s.first_ts = ts
        p = 0
        if n > 1:
            p = cache.get(ev.entity_id, -1)
            if p < 0:
                p = partition_for(ev.entity_id.encode(), n)
                if len(cache) < 1_000_000:
                    cache[ev.entity_id] = p
        engine = engines[p]
        clock = clocks[p]
        if clock.last_ts is not None and ts < clock.last_ts - engine.lateness:
            s.behind += 1
        yield from clock.advance(engine, ts)
        if seen is not None:
            seen.add(ev.entity_id)
            if len(seen) > 5_000_000:  # stop counting distinct items rather than grow without bound
                seen = None
        try:
            yield from engine.process(ev)
        except EventRejected as exc:
            s.rejected += 1
            if on_bad is not None:
                on_bad(BadRecord(encode(ev.to_wire()), str(exc)))
    for engine, clock in zip(engines, clocks, strict=True):
        if finish:
            yield from clock.finish(engine)
        if clock.last_ts is not None and (s.last_ts is None or clock.last_ts > s.last_ts):
            s.last_ts = clock.last_ts
    s.items = len(seen) if seen is not None else -1
    s.open_items = sum(e.open_items for e in engines)
    for engine in engines:
        for (_wf, outcome), k in engine.counters.events.items():
            s.outcomes[outcome] += k
        for wf in engine.workflows.values():
            s.time_basis.setdefault(wf.name, wf.time_basis())
    # how many stages learned enough to page (with few items, none may have: "no alerts" is then no verdict)
    warm: dict[tuple[str, str], bool] = {}
    for engine in engines:
        for wf in engine.workflows.values():
            for st in wf.states.values():
                if not st.terminal:
                    b = st.all.baseline
                    warm[(wf.name, st.name)] = warm.get((wf.name, st.name), True) and b.n >= b.warmup
    s.stages = len(warm)
    s.warm_stages = sum(warm.values())
    s.warmup = engines[0].ec.warmup


def same_file(a: str | Path, b: str | Path) -> bool:
    pa, pb = Path(a), Path(b)
    try:
        return pa.resolve() == pb.resolve() or (pa.exists() and pb.exists() and pa.samefile(pb))
    except OSError:
        return False


def dlq_entry(bad: BadRecord) -> dict[str, str]:
    """One line of a DLQ file: the reason and the record exactly as it was read (``raw`` when it is
    UTF-8 text, else ``raw_base64``: a Windows-1252 byte must come back as that byte, not as U+FFFD)."""
    try:
        return {"reason": bad.reason, "raw": bad.raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"reason": bad.reason, "raw_base64": base64.b64encode(bad.raw).decode("ascii")}


def run_backtest(
    events_path: str | Path,
    alerts_out: str | Path | None,
    settings: Settings | None = None,
    *,
    fmt: str = "auto",
    mapping: dict[str, Any] | None = None,
    step: float = DEFAULT_TICK,
    dlq_out: str | Path | None = None,
    progress: Any = None,
    engine: Engine | None = None,
    partitions: int = 1,
    finish: bool = True,
    order: str = "auto",
) -> BacktestSummary:
    """Replay a file (``-``: standard input); write every alert change as JSONL. Returns the summary.

    ``order``: see :func:`monitor.readers.read_events` (``auto`` sorts XES and CSV logs by time)."""
    from monitor.readers import read_events

    dlq_path = Path(dlq_out) if dlq_out else (Path(str(alerts_out) + ".dlq.jsonl") if alerts_out else None)
    for target, what in ((alerts_out, "alerts"), (dlq_path, "bad records")):
        if target is not None and same_file(target, events_path):
            raise ValueError(f"the {what} would be written over the events file itself ({target}): "
                             f"choose another path")
    if alerts_out is not None and dlq_path is not None and same_file(alerts_out, dlq_path):
        raise ValueError(f"the alerts and the bad records would go to one file ({dlq_path}): choose another --dlq-out")
    check_step(step)  # before any file is opened
    engines = [engine] if engine is not None else partition_engines(settings, partitions)
    summary = BacktestSummary()
    started = time.perf_counter()
    files = OutputFiles()  # in place when the replay ends (``monitor.outputs``)
    out: IO[bytes] | None = None
    dlq: IO[bytes] | None = None

    def on_bad(bad: BadRecord) -> None:
        nonlocal dlq
        if dlq_path is None:
            return
        if dlq is None:
            dlq = files.open(dlq_path)
            summary.dlq_path = str(dlq_path)
        dlq.write(encode(dlq_entry(bad)) + b"\n")

    for eng in engines:  # events too late to apply are kept as well, with the reason
        eng.on_late = lambda ev, why: on_bad(BadRecord(encode(ev.to_wire()),
                                                       f"{why} (is the input in time order? --order time)"))
    records = read_events(events_path, fmt=fmt, mapping=mapping or {}, order=order, stats=summary.reading,
                          keep=engines[0].settings.segment_keys())
    if progress is not None:
        records = progress(records, summary)
    with files:
        if alerts_out:
            out = files.open(alerts_out)
            summary.alerts_path = str(alerts_out)
        for alert in replay(engines, records, step=step, on_bad=on_bad, summary=summary, finish=finish):
            summary.alert_changes += 1
            if alert.status == "firing":
                summary.firing[alert.kind] += 1
                summary.firing_by_stage[(alert.workflow, alert.stage or "-", alert.kind)] += 1
            if out is not None:
                out.write(encode_alert(alert))
                out.write(b"\n")
    if dlq is None and dlq_path is not None and dlq_path.is_file():
        dlq_path.unlink()  # an earlier run's bad records: this run had none
    summary.seconds = time.perf_counter() - started
    return summary


def print_summary(summary: BacktestSummary, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(stderr=True)
    t = Table(title="backtest summary", show_header=False)
    if summary.columns:
        t.add_row("columns (CSV)", summary.columns)
    t.add_row("valid events", f"{summary.events_read:,}")
    for outcome, n in sorted(summary.outcomes.items()):
        t.add_row(f"  {outcome}", f"{n:,}")
    t.add_row("invalid", f"{summary.invalid:,}")
    t.add_row("rejected", f"{summary.rejected:,}")
    if summary.reading.skipped:
        t.add_row("skipped (lifecycle)", f"{sum(summary.reading.skipped.values()):,}")
    if summary.dlq_path:
        t.add_row("kept (invalid, rejected, late)", summary.dlq_path)
    if summary.behind:
        t.add_row("behind the replay clock", f"{summary.behind:,}")
    t.add_row("distinct items", f"{summary.items:,}")
    t.add_row("open at end", f"{summary.open_items:,}")
    t.add_row("alert changes", f"{summary.alert_changes:,}")
    t.add_row("  written to", summary.alerts_path or "nowhere (-o ALERTS.jsonl keeps them)")
    t.add_row("speed", f"{summary.events_per_second:,.0f} events/s in {summary.seconds:.1f} s")
    for wf, basis in sorted(summary.time_basis.items()):
        t.add_row(f"measured ({wf})", basis)
    console.print(t)
    not_kept = summary.reading.not_kept()
    if not_kept:
        console.print(not_kept)
    not_replayed = summary.reading.not_replayed()
    if not_replayed:
        console.print(not_replayed if summary.events_read else f"[yellow]{not_replayed}[/yellow]")
    if summary.firing_by_stage:
        k = Table(title="alerts fired by stage")
        for col in ("workflow", "stage", "kind", "alerts"):
            k.add_column(col, justify="right" if col == "alerts" else "left")
        for (wf, stage, kind), n in sorted(summary.firing_by_stage.items()):
            k.add_row(wf, stage, kind, str(n))
        console.print(k)
    else:
        console.print("no alerts fired")
    before, after, entity = summary.jump
    if after - before > JUMP_SAID:
        console.print(f"[yellow]one event moved the replay's clock {human_duration(after - before)} ahead, from "
                      f"{format_ts(before)} to {format_ts(after)} ({entity}): if that timestamp is a typo, the "
                      f"alerts after {format_ts(before)} and the events counted late are its doing[/yellow]")
    if summary.warm_stages < summary.stages:
        console.print(f"{summary.stages - summary.warm_stages} of {summary.stages} stages did not complete the "
                      f"{summary.warmup} times a stage needs before it may page (engine.warmup; in every partition): "
                      f"their items were not judged everywhere")
    if summary.invalid and summary.invalid >= summary.events_read:
        kept = f"all are in {summary.dlq_path}" if summary.dlq_path else "give --dlq-out to keep them"
        console.print(f"[yellow]{summary.invalid:,} of {summary.invalid + summary.events_read:,} records were "
                      f"invalid ({kept}); the first: {summary.first_invalid}[/yellow]")
        if summary.invalid > 1 and "truncated" in (summary.first_invalid or ""):
            console.print("[yellow]JSONL holds one event object per line: is this one JSON document written over "
                          "several lines?[/yellow]")
    elif not summary.events_read and not summary.invalid and not not_replayed:
        console.print("[yellow]the file holds no events (empty, or only blank lines)[/yellow]")
    late = summary.outcomes.get("late", 0)
    if late > max(10, 0.01 * summary.events_read):
        console.print(
            f"[yellow]{late:,} events came later than the allowed lateness and were not used: is the "
            f"file in time order? Replay it with --order time.[/yellow]"
        )
    if summary.behind > max(10, 0.01 * summary.events_read):
        console.print(
            f"[yellow]{summary.behind:,} events were older than the replay clock by more than the allowed "
            f"lateness (is the file grouped by item?): their items were judged on a clock already past "
            f"them. Replay it with --order time.[/yellow]"
        )
