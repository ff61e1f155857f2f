"""Compare two configurations on the same events: ``stagewatch backtest --compare A.yaml B.yaml EVENTS``.

Each configuration is replayed in-process (:func:`monitor.backtest.replay`, one engine each, event time).
An alert's identity is its ``alert_id`` (kind, workflow, stage, entity): the comparison says which
identities fire only under A, only under B, or under both, and how many alerts each configuration fires
per (workflow, stage, segment, kind). With the simulator's truth, each configuration's item pages are
scored with :func:`monitor.evaluate.score_alerts` (the same matching as ``stagewatch evaluate``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.backtest import DEFAULT_TICK, BacktestSummary, partition_engines, replay
from monitor.config import Settings
from monitor.events import Alert

EXAMPLES = 10  # identities listed per side in the difference
AlertKey = tuple[str, str, str, str]  # (workflow, stage, segment, kind)


@dataclass
class Run:
    """One configuration's replay: its firing alerts, and their scores when a truth was given."""

    label: str
    config: str
    alerts: list[Alert]  # every status change
    summary: BacktestSummary
    scores: dict[str, Any] | None = None

    @property
    def firing(self) -> dict[str, Alert]:
        """alert_id -> first firing alert."""
        out: dict[str, Alert] = {}
        for a in self.alerts:
            if a.status == "firing" and a.alert_id not in out:
                out[a.alert_id] = a
        return out

    def counts(self) -> Counter[AlertKey]:
        return Counter(
            (a.workflow, a.stage or "-", a.segment or "-", a.kind) for a in self.alerts if a.status == "firing"
        )


@dataclass
class Comparison:
    a: Run
    b: Run
    marks: dict[str, bool] | None = None  # ops feedback: alert_id -> right (True) / false (False)

    def feedback(self) -> dict[str, Any] | None:
        """Per config, how many of its alerts ops marked right or false (``stagewatch feedback``)."""
        if self.marks is None:
            return None
        from monitor.feedback import summarize

        return {"A": summarize(set(self.a.firing), self.marks), "B": summarize(set(self.b.firing), self.marks)}

    def difference(self) -> dict[str, list[Alert]]:
        fa, fb = self.a.firing, self.b.firing
        return {
            "only_a": [fa[k] for k in fa if k not in fb],
            "only_b": [fb[k] for k in fb if k not in fa],
            "both": [fa[k] for k in fa if k in fb],
        }

    def rows(self) -> list[tuple[str, str, str, str, int, int]]:
        """(workflow, stage, segment, kind, alerts under A, alerts under B), sorted."""
        ca, cb = self.a.counts(), self.b.counts()
        return [(*k, ca.get(k, 0), cb.get(k, 0)) for k in sorted(set(ca) | set(cb))]

    def as_dict(self) -> dict[str, Any]:
        diff = self.difference()
        return {
            "configs": {"A": self.a.config, "B": self.b.config},
            "alerts": [
                {"workflow": wf, "stage": st, "segment": seg, "kind": kind, "A": na, "B": nb}
                for wf, st, seg, kind, na, nb in self.rows()
            ],
            "difference": {
                side: {
                    "count": len(alerts),
                    "by_kind": dict(Counter(a.kind for a in alerts)),
                    "examples": [_identity(a) for a in alerts[:EXAMPLES]],
                }
                for side, alerts in diff.items()
            },
            "scores": (
                {"A": self.a.scores["pages"], "B": self.b.scores["pages"]}
                if self.a.scores is not None and self.b.scores is not None
                else None
            ),
            "summary": {"A": self.a.summary.as_dict(), "B": self.b.summary.as_dict()},
            "feedback": self.feedback(),
        }


def _identity(a: Alert) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id,
        "kind": a.kind,
        "workflow": a.workflow,
        "stage": a.stage,
        "entity_id": a.entity_id,
        "segment": a.segment,
        "at": a.at,
        "summary": a.summary,
    }


def run_one(
    label: str,
    config: str,
    settings: Settings,
    events_path: str | Path,
    *,
    fmt: str = "auto",
    mapping: dict[str, Any] | None = None,
    step: float = DEFAULT_TICK,
    truth: Any = None,
    partitions: int = 1,
    order: str = "auto",
) -> Run:
    """Replay ``events_path`` with ``settings`` as ``backtest`` does (``partitions``, ``order``: see
    :func:`monitor.backtest.run_backtest`); score against ``truth`` (a :class:`Truth`) when given."""
    import time

    from monitor.readers import read_events

    summary = BacktestSummary()
    started = time.perf_counter()
    records = read_events(events_path, fmt=fmt, mapping=mapping or {}, order=order, stats=summary.reading,
                          keep=settings.segment_keys())
    alerts = list(replay(partition_engines(settings, partitions), records, step=step, summary=summary))
    summary.seconds = time.perf_counter() - started
    summary.alert_changes = len(alerts)
    for a in alerts:
        if a.status == "firing":
            summary.firing[a.kind] += 1
            summary.firing_by_stage[(a.workflow, a.stage or "-", a.kind)] += 1
    scores = None
    if truth is not None:
        from monitor.evaluate import score_alerts

        scores = score_alerts(truth, alerts)
    return Run(label, config, alerts, summary, scores)


def compare(
    settings_a: Settings,
    settings_b: Settings,
    events_path: str | Path,
    *,
    names: tuple[str, str] = ("A", "B"),
    truth_path: str | Path | None = None,
    fmt: str = "auto",
    mapping: dict[str, Any] | None = None,
    step: float = DEFAULT_TICK,
    partitions: int = 1,
    order: str = "auto",
) -> Comparison:
    truth = None
    if truth_path is not None:
        from monitor.evaluate import Truth

        truth = Truth.load(truth_path)
    kw: dict[str, Any] = {"fmt": fmt, "mapping": mapping, "step": step, "truth": truth, "partitions": partitions,
                          "order": order}
    return Comparison(
        run_one("A", names[0], settings_a, events_path, **kw),
        run_one("B", names[1], settings_b, events_path, **kw),
    )


# --------------------------------------------------------------------------- rendering (pure)


def tables(cmp: Comparison) -> list[Any]:
    """The comparison as rich renderables: alerts per stage, the difference, scores when known."""
    from rich.table import Table

    out: list[Any] = []
    t = Table(title=f"alerts fired: A = {cmp.a.config}, B = {cmp.b.config}")
    for col in ("workflow", "stage", "segment", "kind", "A", "B", "B - A"):
        t.add_column(col, justify="right" if col in ("A", "B", "B - A") else "left")
    for wf, st, seg, kind, na, nb in cmp.rows():
        delta = nb - na
        t.add_row(wf, st, seg, kind, str(na), str(nb), f"{delta:+d}" if delta else "0")
    ta, tb = sum(cmp.a.summary.firing.values()), sum(cmp.b.summary.firing.values())
    t.add_section()
    t.add_row("total", "", "", "", str(ta), str(tb), f"{tb - ta:+d}" if tb != ta else "0")
    out.append(t)

    diff = cmp.difference()
    d = Table(title="alert identities (kind, workflow, stage, item)")
    kinds = sorted({a.kind for alerts in diff.values() for a in alerts})
    d.add_column("")
    for k in kinds:
        d.add_column(k, justify="right")
    d.add_column("total", justify="right")
    for side, label in (("only_a", "only in A"), ("only_b", "only in B"), ("both", "in both")):
        c = Counter(a.kind for a in diff[side])
        d.add_row(label, *(str(c.get(k, 0)) for k in kinds), str(len(diff[side])))
    out.append(d)

    for side, label in (("only_a", "A"), ("only_b", "B")):
        alerts = diff[side]
        if not alerts:
            continue
        e = Table(title=f"fired only in {label} (first {min(EXAMPLES, len(alerts))} of {len(alerts)})")
        for col in ("kind", "workflow", "stage", "item", "at", "summary"):
            e.add_column(col, overflow="fold")
        for a in alerts[:EXAMPLES]:
            e.add_row(a.kind, a.workflow, a.stage or "-", a.entity_id or "-", a.at, a.summary)
        out.append(e)

    if cmp.a.scores is not None and cmp.b.scores is not None:
        s = Table(title="item pages against the truth")
        for col in ("config", "anomalies", "paged", "detected", "precision", "recall", "F1", "false/1000"):
            s.add_column(col, justify="left" if col == "config" else "right")
        for run in (cmp.a, cmp.b):
            p = run.scores["pages"]  # type: ignore[index]
            s.add_row(f"{run.label}: {run.config}", str(p["anomalies"]), str(p["pages"]), str(p["detected"]),
                      f"{p['precision']:.3f}", f"{p['recall']:.3f}", f"{p['f1']:.3f}",
                      f"{p['false_pages_per_1000']:.2f}")
        out.append(s)
    fb = cmp.feedback()
    if fb is not None:
        f = Table(title="alerts judged by ops (stagewatch feedback)")
        for col in ("config", "marked right", "marked false", "not judged", "precision on judged"):
            f.add_column(col, justify="left" if col == "config" else "right")
        for side, run in (("A", cmp.a), ("B", cmp.b)):
            r = fb[side]
            prec = "-" if r["precision_on_judged"] is None else f"{r['precision_on_judged']:.3f}"
            f.add_row(f"{side}: {run.config}", str(r["marked_right"]), str(r["marked_false"]), str(r["unjudged"]), prec)
        out.append(f)
    return out


def print_comparison(cmp: Comparison, console: Any = None) -> None:
    from rich.console import Console

    console = console or Console()
    for t in tables(cmp):
        console.print(t)


def compare_command(
    configs: tuple[Path, Path],
    settings: tuple[Settings, Settings],
    events: Path,
    truth: Path | None,
    *,
    as_json: bool = False,
    fmt: str = "auto",
    step: float = DEFAULT_TICK,
    mapping: dict[str, Any] | None = None,
    feedback: Path | None = None,
    partitions: int = 1,
    order: str = "auto",
) -> int:
    """``stagewatch backtest --compare A B EVENTS``: the ``settings`` read from ``configs``; prints tables (or
    JSON); returns the exit code."""
    import json

    from rich.console import Console

    from monitor.inputs import input_problem, nothing_replayed, read_problem
    from monitor.readers import READ_ERRORS

    err = Console(stderr=True, soft_wrap=True)  # an error is one line, however long
    problem = input_problem(events, truth, feedback)
    if problem:
        err.print(f"[red]{problem}[/red]")
        return 2
    try:
        with err.status("replaying with both configurations..."):
            result = compare(settings[0], settings[1], events, names=(str(configs[0]), str(configs[1])),
                             truth_path=truth, fmt=fmt, mapping=mapping, step=step, partitions=partitions,
                             order=order)
        if feedback is not None:
            from monitor.feedback import verdicts

            result.marks = verdicts(feedback)
    except READ_ERRORS as exc:
        err.print(f"[red]{read_problem(exc, events)}[/red]")
        return 2
    except (ValueError, KeyError) as exc:
        err.print(f"[red]cannot compare on {events}: {exc}[/red]")
        return 2
    if as_json:
        print(json.dumps(result.as_dict(), indent=1))
    else:
        print_comparison(result)
    problem = nothing_replayed(events, result.a.summary)
    if problem:
        err.print(f"[red]{problem}[/red]")
        return 1
    return 0
