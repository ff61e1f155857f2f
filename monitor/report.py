"""Replay report for tuning: ``stagewatch report EVENTS --out report.html``.

Runs the backtest in-process (:func:`monitor.backtest.replay`, one engine, event time) and, alongside it,
collects what the alerts cannot tell: every completed stage duration (from the events themselves), and
every ``sample_hours`` of event time a sample of the engine's baselines and stage views, to draw how the
thresholds moved. The result is one self-contained HTML file with inline SVG plots (matplotlib), no
script and no network access needed to view it:

- per workflow and stage: the duration distribution (log-x) with the typical / p95 / threshold lines,
  and the threshold over time per segment with the bottleneck shifts marked;
- the alerts on a timeline by kind, the top stalled items with their summaries;
- WIP over time and flow in/out per stage, checked against Little's law (WIP = arrival rate x mean time);
- data health: engine outcomes (accepted / duplicate / late / rejected), invalid records and their reasons;
- with ``truth``: the scores of :func:`monitor.evaluate.score_alerts`.
"""

from __future__ import annotations

import functools
import html
import io
import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.backtest import DEFAULT_TICK, BacktestSummary, replay, same_file
from monitor.config import Settings
from monitor.engine import Engine
from monitor.events import Alert, BadRecord, Event, format_ts, human_duration, parse_timestamp
from monitor.views import BaselineView, StageView

DEFAULT_SAMPLE_HOURS = 12.0
TOP_STALLED = 20
MAX_BAD_REASONS = 10
KIND_COLORS = {
    "stalled": "#d62728",
    "slow_stage": "#ff7f0e",
    "bottleneck_shift": "#9467bd",
    "backlog_growth": "#8c564b",
    "source_silent": "#1f77b4",
}
StageKey = tuple[str, str]  # (workflow, stage-state name as the engine names it)


OTHER_REASONS = "(other reasons)"


def _legend(ax: Any, **kw: Any) -> None:
    """A legend when the plot has labelled lines (an empty replay has none: no matplotlib warning)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, **kw)


def stage_name(stage: str, waiting_on: str | None) -> str:
    """The engine's name of a stage-state (a stage, or a stage while waiting on someone)."""
    return stage if waiting_on is None else f"{stage} (waiting on {waiting_on})"


class Transitions:
    """Completed stage durations computed from the events, per (workflow, stage-state).

    Mirrors the engine's intake rules closely enough for a report: a repeated ``event_id`` is a
    duplicate, an event older than the item's current stage entry is late (ignored), the same
    stage-state again is a heartbeat. Items entering a stage known to be terminal are forgotten.
    """

    def __init__(self) -> None:
        self.open: dict[str, tuple[str, str, float, tuple[str, ...]]] = {}
        self.spans: dict[StageKey, list[tuple[float, float]]] = defaultdict(list)
        self.terminal: set[StageKey] = set()

    def see(self, ev: Event) -> None:
        name = stage_name(ev.stage, ev.waiting_on)
        cur = self.open.get(ev.entity_id)
        ids: tuple[str, ...] = ()
        if cur is not None:
            wf, st, entered, ids = cur
            if ev.event_id in ids or ev.timestamp < entered:
                return
            if wf == ev.workflow and st == name:
                self.open[ev.entity_id] = (wf, st, entered, (ids + (ev.event_id,))[-4:])
                return
            if wf == ev.workflow:
                self.spans[(wf, st)].append((entered, ev.timestamp))
            else:
                ids = ()
        if (ev.workflow, name) in self.terminal:
            self.open.pop(ev.entity_id, None)
            return
        self.open[ev.entity_id] = (ev.workflow, name, ev.timestamp, (ids + (ev.event_id,))[-4:])


@dataclass
class Sample:
    at: float
    baselines: list[BaselineView]
    stages: list[StageView]


@dataclass
class ReportData:
    """Everything the report draws, collected in one replay."""

    source: str
    summary: BacktestSummary
    alerts: list[Alert]
    durations: dict[StageKey, list[float]]  # in the workflow's time basis (business seconds with a calendar)
    wall_mean: dict[StageKey, float]  # mean wall seconds in stage (Little's law runs on wall time)
    samples: list[Sample]
    baselines: list[BaselineView]  # at the end of the replay
    stages: list[StageView]
    overflow: dict[str, int]
    bad_reasons: Counter[str] = field(default_factory=Counter)
    truth_scores: dict[str, Any] | None = None
    collect_seconds: float = 0.0

    @property
    def workflows(self) -> list[str]:
        return sorted({v.workflow for v in self.stages})


def collect(
    events_path: str | Path,
    settings: Settings | None = None,
    *,
    fmt: str = "auto",
    mapping: dict[str, Any] | None = None,
    step: float = DEFAULT_TICK,
    sample_hours: float = DEFAULT_SAMPLE_HOURS,
    truth_path: str | Path | None = None,
) -> ReportData:
    """Replay ``events_path`` through a fresh engine and collect the report's data."""
    from monitor.readers import read_events

    started = time.perf_counter()
    engine = Engine(settings)
    summary = BacktestSummary()
    transitions = Transitions()
    samples: list[Sample] = []
    bad_reasons: Counter[str] = Counter()
    every = max(sample_hours, 1e-3) * 3600.0
    next_sample: list[float | None] = [None]

    def on_bad(bad: BadRecord) -> None:
        # group by the reason without its position ("line 12: entity_id: missing" -> "entity_id: missing")
        reason = re.sub(r"^(line|record|row|trace|event) \d+[^:]*: ", "", bad.reason)[:120]
        if reason in bad_reasons or len(bad_reasons) < MAX_BAD_REASONS:
            bad_reasons[reason] += 1
        else:
            bad_reasons[OTHER_REASONS] += 1

    def take(now: float) -> None:
        stages = list(engine.stage_views(now))
        transitions.terminal.update((v.workflow, v.stage) for v in stages if v.terminal)
        samples.append(Sample(now, list(engine.baseline_views()), stages))

    def watched(records: Iterable[tuple[Event | None, BadRecord | None]]) -> Iterator[tuple[Event | None, BadRecord | None]]:
        # the generator resumes only after replay has fully handled the previous record,
        # so a sample taken here sees the engine exactly as of event time `ts`
        for ev, bad in records:
            if ev is not None:
                ts = ev.timestamp
                nxt = next_sample[0]
                if nxt is None:
                    next_sample[0] = ts + every
                elif ts >= nxt:
                    take(nxt)
                    next_sample[0] = nxt + every * (math.floor((ts - nxt) / every) + 1)
                transitions.see(ev)
            yield ev, bad

    records = read_events(events_path, fmt=fmt, mapping=mapping or {}, stats=summary.reading,
                          keep=engine.settings.segment_keys())
    alerts = list(replay(engine, watched(records), step=step, on_bad=on_bad, summary=summary))
    end = summary.last_ts if summary.last_ts is not None else (samples[-1].at if samples else 0.0)
    take(end)
    summary.alert_changes = len(alerts)
    for a in alerts:
        if a.status == "firing":
            summary.firing[a.kind] += 1
            summary.firing_by_stage[(a.workflow, a.stage or "-", a.kind)] += 1

    durations: dict[StageKey, list[float]] = {}
    wall_mean: dict[StageKey, float] = {}
    for key, spans in transitions.spans.items():
        clock = _clock(engine, key[0])
        if clock is None:
            durations[key] = [b - a for a, b in spans]
        else:
            durations[key] = [clock.business_seconds(a, b) for a, b in spans]
        wall_mean[key] = sum(b - a for a, b in spans) / len(spans)

    truth_scores = None
    if truth_path is not None:
        from monitor.evaluate import Truth, score_alerts

        truth_scores = score_alerts(Truth.load(truth_path), alerts)
    final = samples[-1]
    return ReportData(
        source=str(events_path),
        summary=summary,
        alerts=alerts,
        durations=durations,
        wall_mean=wall_mean,
        samples=samples,
        baselines=final.baselines,
        stages=final.stages,
        overflow=dict(engine.counters.overflow),
        bad_reasons=bad_reasons,
        truth_scores=truth_scores,
        collect_seconds=time.perf_counter() - started,
    )


def _clock(engine: Engine, workflow: str) -> Any:
    """The workflow's duration clock when it measures business time, else None (wall time).

    The one place the report reads engine state beyond its views: durations must be drawn in the
    same time basis as the thresholds they are compared with.
    """
    wf = engine.workflows.get(workflow)
    return wf.clock if wf is not None and wf.business else None


# --------------------------------------------------------------------------- derived tables


@dataclass(frozen=True)
class StalledRow:
    workflow: str
    stage: str
    entity_id: str
    segment: str
    fired_at: float
    stuck_seconds: float  # from entering the stage to resolution, or to the end of the replay
    still_open: bool
    summary: str


def top_stalled(alerts: list[Alert], end: float, n: int = TOP_STALLED) -> list[StalledRow]:
    """The ``n`` stalled items that were stuck longest (wall time in stage), with their summaries."""
    fired: dict[str, Alert] = {}
    resolved: dict[str, float] = {}
    for a in alerts:
        if a.kind != "stalled":
            continue
        if a.status == "firing":
            fired[a.alert_id] = a
            resolved.pop(a.alert_id, None)
        elif a.alert_id in fired:
            resolved[a.alert_id] = parse_timestamp(a.at)
    rows = []
    for aid, a in fired.items():
        at = parse_timestamp(a.at)
        entered = a.details.get("entered_at")
        start = parse_timestamp(entered) if entered else at - a.observed_seconds
        stop = resolved.get(aid, end)
        rows.append(
            StalledRow(a.workflow, a.stage or "-", a.entity_id or "-", a.segment or "-", at,
                       max(stop - start, 0.0), aid not in resolved, a.summary)
        )
    rows.sort(key=lambda r: r.stuck_seconds, reverse=True)
    return rows[:n]


@dataclass(frozen=True)
class FlowRow:
    workflow: str
    stage: str
    arrivals: int
    departures: int
    arrival_rate_per_day: float
    mean_wall_seconds: float | None
    little_wip: float | None  # arrival rate x mean time in stage
    observed_wip: float  # time-average of the sampled WIP


def flow_rows(data: ReportData) -> list[FlowRow]:
    """Flow in/out per stage and Little's law: WIP vs arrival rate x mean time in stage."""
    if not data.samples:
        return []
    span = max(data.samples[-1].at - data.samples[0].at, 1.0)
    # time-weighted average: a sample holds until the next one (a quiet source leaves gaps between samples)
    wip_sum: dict[StageKey, float] = defaultdict(float)
    for s, nxt in zip(data.samples, data.samples[1:], strict=False):
        for v in s.stages:
            wip_sum[(v.workflow, v.stage)] += v.wip * (nxt.at - s.at)
    first = data.summary.first_ts if data.summary.first_ts is not None else data.samples[0].at
    stream = max(data.samples[-1].at - first, 1.0)
    rows = []
    for v in sorted(data.stages, key=lambda v: (v.workflow, v.stage)):
        if v.terminal:
            continue
        key = (v.workflow, v.stage)
        rate = v.arrivals_total / stream
        mean = data.wall_mean.get(key)
        rows.append(
            FlowRow(v.workflow, v.stage, v.arrivals_total, v.departures_total, rate * 86400.0, mean,
                    rate * mean if mean is not None else None, wip_sum[key] / span)
        )
    return rows


def shift_alerts(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.kind == "bottleneck_shift" and a.status == "firing"]


# --------------------------------------------------------------------------- plots


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    # fixed margins: constrained layout measures every tick label and costs most of the render time
    fig = Figure(figsize=(width, height), dpi=72)
    fig.subplots_adjust(left=0.07, right=0.985, top=0.9, bottom=0.2, wspace=0.16)
    return fig


def _plain_text(draw: Callable[..., str]) -> Callable[..., str]:
    """A figure whose texts are text: a ``$`` in a workflow, stage or segment name (``$x^$``, ``cost $5-$10``)
    is not matplotlib mathtext, which failed on it (the report stopped) or set it in italics."""

    @functools.wraps(draw)
    def plain(*args: Any, **kwargs: Any) -> str:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):  # read as each text is made, and drawn
            return draw(*args, **kwargs)

    return plain


def _date_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


_svg_counter = [0]


def svg(fig: Any) -> str:
    """A figure as an inline ``<svg>`` element (text kept as text, ids unique within the page)."""
    import matplotlib

    _svg_counter[0] += 1
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"sw{_svg_counter[0]}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _dates(ts: Iterable[float]) -> list[Any]:
    from datetime import UTC, datetime

    return [datetime.fromtimestamp(t, tz=UTC) for t in ts]


def _hours_axis(ax: Any) -> None:
    """Log-x axis in hours, labelled in plain numbers (no mathtext: faster and easier to read)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, numticks=8))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


@_plain_text
def stage_figure(data: ReportData, workflow: str, stage: str, shifts: list[Alert]) -> str:
    """Duration histogram (log-x) with typical/p95/threshold, and the threshold over time per segment."""
    import numpy as np

    fig = _figure(13.5, 3.4)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.4])
    values = np.asarray(data.durations.get((workflow, stage), []), dtype=float)
    final = {b.segment: b for b in data.baselines if b.workflow == workflow and b.stage == stage}
    stage_base = final.get("*")
    basis = stage_base.time_basis if stage_base else "wall"
    unit = "working hours" if basis == "business" else "hours"
    if values.size:
        v = np.clip(values, 1.0, None) / 3600.0
        lo, hi = float(v.min()), float(v.max())
        bins = np.logspace(math.log10(lo), math.log10(hi * 1.0001 if hi > lo else lo * 10), 40)
        ax1.hist(v, bins=bins, color="#9ecae1", edgecolor="#6baed6", linewidth=0.5)
        ax1.set_xscale("log")
        _hours_axis(ax1)
    else:
        ax1.text(0.5, 0.5, "no completed durations", ha="center", va="center", transform=ax1.transAxes)
    if stage_base is not None:
        for value, label, color, style in (
            (stage_base.typical_seconds, "typical", "#2ca02c", "-"),
            (stage_base.p95_seconds, "p95", "#ff7f0e", "--"),
            (stage_base.threshold_seconds, "threshold", "#d62728", "-"),
        ):
            if value:
                ax1.axvline(value / 3600.0, color=color, linestyle=style, linewidth=1.5,
                            label=f"{label} {human_duration(value, basis == 'business')}")
        _legend(ax1, loc="upper right")
    ax1.set_xlabel(f"time in stage ({unit}, log)")
    ax1.set_ylabel("completed items")
    ax1.set_title(f"{stage}: {values.size:,} completed", fontsize=10)

    series: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for s in data.samples:
        for b in s.baselines:
            if b.workflow == workflow and b.stage == stage and b.threshold_seconds:
                xs, ys = series[b.segment]
                xs.append(s.at)
                ys.append(b.threshold_seconds / 3600.0)
    for segment, (xs, ys) in sorted(series.items()):
        label = "stage (all segments)" if segment == "*" else segment
        ax2.plot(_dates(xs), ys, linewidth=1.8 if segment == "*" else 1.2,
                 linestyle="--" if segment == "*" else "-", label=label)
    for i, a in enumerate(shifts):
        ax2.axvline(_dates([parse_timestamp(a.at)])[0], color=KIND_COLORS["bottleneck_shift"], linewidth=2,
                    alpha=0.8, label="bottleneck shift" if i == 0 else None)
    if series or shifts:
        _legend(ax2, loc="upper left")
    else:
        ax2.text(0.5, 0.5, "no threshold yet (warming up)", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_ylabel(f"stall threshold ({unit})")
    ax2.set_title("threshold over time", fontsize=10)
    _date_axis(ax2)
    return svg(fig)


@_plain_text
def timeline_figure(alerts: list[Alert], workflow: str, start: float, end: float) -> str:
    """Firing alerts of one workflow over event time, one row per kind."""
    fig = _figure(13.5, 2.6)
    fig.subplots_adjust(left=0.13)
    ax = fig.subplots()
    kinds = list(KIND_COLORS)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for a in alerts:
        if a.workflow == workflow and a.status == "firing":
            by_kind[a.kind].append(parse_timestamp(a.at))
    for i, kind in enumerate(kinds):
        ts = by_kind.get(kind, [])
        if ts:
            ax.scatter(_dates(ts), [i] * len(ts), s=14, marker="|" if kind == "stalled" else "o",
                       color=KIND_COLORS[kind], linewidths=1.2)
    ax.set_yticks(range(len(kinds)), [f"{k} ({len(by_kind.get(k, []))})" for k in kinds], fontsize=9)
    ax.set_ylim(-0.6, len(kinds) - 0.4)
    ax.set_xlim(*_dates([start, max(end, start + 1)]))
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{workflow}: alerts fired over time", fontsize=10)
    _date_axis(ax)
    return svg(fig)


@_plain_text
def wip_figure(data: ReportData, workflow: str, shifts: list[Alert]) -> str:
    """WIP per stage over event time (sampled), bottleneck shifts marked."""
    fig = _figure(13.5, 3.0)
    ax = fig.subplots()
    terminal = {v.stage for v in data.stages if v.workflow == workflow and v.terminal}  # as known at the end
    series: dict[str, tuple[list[float], list[int]]] = defaultdict(lambda: ([], []))
    for s in data.samples:
        for v in s.stages:
            if v.workflow == workflow and v.stage not in terminal:
                xs, ys = series[v.stage]
                xs.append(s.at)
                ys.append(v.wip)
    for stage, (xs, ys) in sorted(series.items()):
        ax.plot(_dates(xs), ys, linewidth=1.2, label=stage)
    for i, a in enumerate(shifts):
        ax.axvline(_dates([parse_timestamp(a.at)])[0], color=KIND_COLORS["bottleneck_shift"], linewidth=2,
                   alpha=0.7, linestyle=":", label=f"bottleneck shift ({a.stage})" if i == 0 else None)
    _legend(ax, loc="upper left", ncol=4)
    ax.set_ylabel("open items (WIP)")
    ax.set_title(f"{workflow}: work in progress per stage", fontsize=10)
    _date_axis(ax)
    return svg(fig)


# --------------------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{margin-bottom:4px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
h3{margin:22px 0 6px} .muted{color:#666} nav a{margin-right:14px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.kpi{display:inline-block;border:1px solid #ddd;border-radius:6px;padding:8px 14px;margin:4px 8px 4px 0}
.kpi b{display:block;font-size:20px} svg{max-width:100%;height:auto}
.warn{color:#b35900} .bad{color:#c00}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: list[str], rows: Iterable[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>" for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}" class="muted">none</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _dur(seconds: float | None, business: bool = False) -> str:
    return "-" if seconds is None else human_duration(seconds, business)


def _anchor(*parts: str) -> str:
    return "s-" + "-".join("".join(c if c.isalnum() else "_" for c in p) for p in parts)


def render_html(data: ReportData) -> str:
    """The whole report as one self-contained HTML document (inline SVG, no script, no external resource)."""
    s = data.summary
    end = data.samples[-1].at if data.samples else (s.last_ts or 0.0)
    start = s.first_ts if s.first_ts is not None else end  # the first event (the first sample is one interval on)
    span = "no events" if s.first_ts is None else f"event time {format_ts(start)} → {format_ts(end)}"
    shifts = shift_alerts(data.alerts)
    parts: list[str] = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Stagewatch replay report: {_e(Path(data.source).name)}</title><style>{CSS}</style></head><body>",
        "<h1>Stagewatch replay report</h1>",
        f"<p class='muted'>{_e(data.source)} · {_e(span)} · "
        f"replayed {s.events_read:,} events in {data.collect_seconds:.1f} s</p>",
    ]
    nav = ["<nav><a href='#overview'>Overview</a><a href='#health'>Data health</a>"]
    for wf in data.workflows:
        nav.append(f"<a href='#{_anchor(wf)}'>{_e(wf)}</a>")
    nav.append("<a href='#stalled'>Top stalled</a><a href='#flow'>Flow &amp; Little's law</a></nav>")
    parts.append("".join(nav))

    # overview
    parts.append("<h2 id='overview'>Overview</h2><div>")
    kpis = [("events read", f"{s.events_read:,}"), ("distinct items", f"{s.items:,}"),
            ("open at end", f"{s.open_items:,}"), ("alerts fired", f"{sum(s.firing.values()):,}")]
    kpis += [(kind, f"{n:,}") for kind, n in sorted(s.firing.items())]
    parts.extend(f"<span class='kpi'><b>{_e(v)}</b>{_e(k)}</span>" for k, v in kpis)
    parts.append("</div>")
    if data.truth_scores is not None:
        p = data.truth_scores["pages"]
        parts.append("<h3>Against the ground truth (item pages)</h3>")
        parts.append(_table(
            ["anomalies", "item-stages paged", "detected", "precision", "recall", "F1", "false pages / 1000 items",
             "median delay (h)"],
            [[p["anomalies"], p["pages"], p["detected"], f"{p['precision']:.3f}", f"{p['recall']:.3f}",
              f"{p['f1']:.3f}", f"{p['false_pages_per_1000']:.2f}",
              "-" if p["delay_median_hours"] is None else f"{p['delay_median_hours']:.1f}"]],
            numeric=set(range(8)),
        ))
        parts.append(
            f"<p>false bottleneck shifts: {_e(data.truth_scores['false_shifts'])} · "
            f"false source silences: {_e(data.truth_scores['false_silences'])}</p>"
        )
    parts.append("<h3>Alerts fired by stage</h3>")
    parts.append(_table(["workflow", "stage", "kind", "alerts"],
                        [[wf, st, k, n] for (wf, st, k), n in sorted(s.firing_by_stage.items())], numeric={3}))

    # data health
    parts.append("<h2 id='health'>Data health</h2>")
    health = [[outcome, f"{n:,}"] for outcome, n in sorted(s.outcomes.items())]
    health.append(["invalid records (not events)", f"{s.invalid:,}"])
    if "rejected" not in s.outcomes:
        health.append(["rejected", f"{s.rejected:,}"])
    health += [[f"skipped: lifecycle {t}", f"{n:,}"] for t, n in s.reading.skipped.most_common()]
    health += [[f"over the cardinality cap: {dim}", f"{n:,}"] for dim, n in sorted(data.overflow.items())]
    parts.append(_table(["outcome", "events"], health, numeric={1}))
    not_kept = s.reading.not_kept()
    if not_kept:
        parts.append(f"<p class='muted'>{_e(not_kept)}</p>")
    if data.bad_reasons:
        parts.append("<h3>Why records were invalid</h3>")
        ranked = sorted(data.bad_reasons.items(), key=lambda rn: (rn[0] == OTHER_REASONS, -rn[1]))  # "other" last
        parts.append(_table(["reason", "records"], [[r, n] for r, n in ranked], numeric={1}))

    # per workflow
    for wf in data.workflows:
        parts.append(f"<h2 id='{_anchor(wf)}'>Workflow {_e(wf)}</h2>")
        parts.append(timeline_figure(data.alerts, wf, start, end))
        wf_shifts = [a for a in shifts if a.workflow == wf]
        if wf_shifts:
            parts.append("<h3>Bottleneck shifts</h3>")
            parts.append(_table(["at", "stage", "summary"], [[a.at, a.stage, a.summary] for a in wf_shifts]))
        parts.append(wip_figure(data, wf, wf_shifts))
        rows = [b for b in data.baselines if b.workflow == wf]
        parts.append("<h3>Baselines at the end of the replay</h3>")
        parts.append(_table(
            ["stage", "segment", "n", "typical", "p95", "threshold", "source", "time basis"],
            [[b.stage, b.segment, b.n, _dur(b.typical_seconds, b.time_basis == "business"),
              _dur(b.p95_seconds, b.time_basis == "business"),
              _dur(b.threshold_seconds, b.time_basis == "business"), b.source, b.time_basis] for b in rows],
            numeric={2},
        ))
        stages = [v.stage for v in sorted(data.stages, key=lambda v: v.stage)
                  if v.workflow == wf and not v.terminal]
        for stage in stages:
            parts.append(f"<h3 id='{_anchor(wf, stage)}'>{_e(wf)} · {_e(stage)}</h3>")
            parts.append(stage_figure(data, wf, stage, [a for a in wf_shifts if a.stage == stage.split(" (")[0]]))

    # top stalled
    parts.append(f"<h2 id='stalled'>Top {TOP_STALLED} stalled items</h2>")
    parts.append("<p class='muted'>Items paged as stalled, longest in stage first (to resolution, or to the end "
                 "of the replay when still open).</p>")
    parts.append(_table(
        ["item", "workflow", "stage", "segment", "paged at", "stuck for", "still open", "summary"],
        [[r.entity_id, r.workflow, r.stage, r.segment, format_ts(r.fired_at), human_duration(r.stuck_seconds),
          "yes" if r.still_open else "no", r.summary] for r in top_stalled(data.alerts, end)],
    ))

    # flow
    parts.append("<h2 id='flow'>Flow and Little's law</h2>")
    parts.append("<p class='muted'>Little's law: average WIP = arrival rate × mean time in stage (wall time). "
                 "The mean counts completed items only, so a stage holding many never-finished items shows "
                 "observed WIP above the prediction.</p>")
    frs = flow_rows(data)
    parts.append(_table(
        ["workflow", "stage", "arrived", "left", "arrivals/day", "mean time in stage", "WIP predicted (λ·W)",
         "WIP observed (avg)", "observed / predicted"],
        [[r.workflow, r.stage, f"{r.arrivals:,}", f"{r.departures:,}", f"{r.arrival_rate_per_day:.1f}",
          _dur(r.mean_wall_seconds), "-" if r.little_wip is None else f"{r.little_wip:.1f}", f"{r.observed_wip:.1f}",
          f"{r.observed_wip / r.little_wip:.2f}" if r.little_wip else "-"] for r in frs],
        numeric={2, 3, 4, 6, 7, 8},
    ))
    parts.append(f"<p class='muted'>Generated by stagewatch report · {len(data.samples)} samples of the "
                 "engine's views in event time.</p></body></html>")
    return "\n".join(parts)


def write_report(data: ReportData, out: str | Path) -> Path:
    from monitor.outputs import OutputFiles

    path = Path(out)
    if path.parent != Path():
        path.parent.mkdir(parents=True, exist_ok=True)
    html = render_html(data).encode("utf-8")
    with OutputFiles() as files:
        files.open(path).write(html)
    return path


def report_command(
    events: Path,
    out: Path,
    settings: Settings,
    *,
    truth: Path | None = None,
    fmt: str = "auto",
    step: float = DEFAULT_TICK,
    sample_hours: float = DEFAULT_SAMPLE_HOURS,
    mapping: dict[str, Any] | None = None,
) -> int:
    """``stagewatch report``: replay, write the HTML, print where; returns the exit code."""
    from rich.console import Console

    from monitor.inputs import input_problem, nothing_replayed, read_problem
    from monitor.outputs import check_writable
    from monitor.readers import READ_ERRORS

    err = Console(stderr=True, soft_wrap=True)  # an error is one line, however long
    problem = input_problem(events, truth)
    if problem:
        err.print(f"[red]{problem}[/red]")
        return 2
    if same_file(out, events):
        err.print(f"[red]the report would be written over the events file itself ({out}): choose another --out[/red]")
        return 2
    if out.is_dir():
        err.print(f"[red]--out {out} is a directory: name the report's file, e.g. {out / 'report.html'}[/red]")
        return 2

    def unwritable(exc: OSError) -> int:
        err.print(f"[red]cannot write the report to {out}: {exc.filename or out}: {exc.strerror or exc}[/red]")
        return 2

    try:
        check_writable(out)  # now, not after the replay
    except OSError as exc:
        return unwritable(exc)
    try:
        with err.status(f"replaying {events}..."):
            data = collect(events, settings, fmt=fmt, step=step, sample_hours=sample_hours, truth_path=truth,
                           mapping=mapping)
    except READ_ERRORS as exc:
        err.print(f"[red]{read_problem(exc, events)}[/red]")
        return 2
    except (ValueError, KeyError) as exc:
        err.print(f"[red]cannot report on {events}: {exc}[/red]")
        return 2
    started = time.perf_counter()
    try:
        path = write_report(data, out)
    except OSError as exc:  # e.g. the disk filled up
        return unwritable(exc)
    s = data.summary
    err.print(
        f"{path}: {s.events_read:,} events, {sum(s.firing.values()):,} alerts fired; "
        f"replay {data.collect_seconds:.1f} s, plots {time.perf_counter() - started:.1f} s"
    )
    problem = nothing_replayed(events, s)
    if problem:  # the report is written: its data health says why each record was invalid
        err.print(f"[red]{problem}[/red]")
        return 1
    return 0
