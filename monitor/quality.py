"""Quality runner: every scenario x seed -> simulate, backtest the engine, evaluate, one table.

``stagewatch evaluate --scenario all --items 6000 --seeds 1,2,3``. The engine runs through the Python
API :func:`monitor.backtest.run_backtest` or, with ``--engine-cmd``, as a command whose ``{events}``
and ``{alerts}`` placeholders are filled in (e.g. ``stagewatch backtest {events} --alerts-out {alerts}``).
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from monitor.config import Settings
from monitor.evaluate import evaluate
from monitor.simulate import SCENARIOS, Variation, simulate, write

ENGINE_CMD_TIMEOUT = 1800.0


def _run_engine(events: Path, alerts: Path, settings: Settings | None, engine_cmd: str | None) -> str | None:
    """Produce ``alerts`` from ``events``; returns None on success, else why there is no engine row."""
    if engine_cmd:
        argv = [a.format(events=str(events), alerts=str(alerts)) for a in shlex.split(engine_cmd)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=ENGINE_CMD_TIMEOUT, check=False)
        if proc.returncode != 0:
            return f"engine command exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
        return None if alerts.exists() else "engine command wrote no alerts file"
    try:
        from monitor.backtest import run_backtest
    except ImportError as exc:
        return f"monitor.backtest.run_backtest unavailable ({exc})"
    run_backtest(events, alerts, settings)
    return None


def run_quality(
    scenarios: Iterable[str] = ("all",),
    items: int = 6000,
    seeds: Iterable[int] = (1,),
    settings: Settings | None = None,
    engine_cmd: str | None = None,
    work_dir: Path | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    variation: Variation | None = None,
) -> list[dict[str, Any]]:
    names = [n for s in scenarios for n in (SCENARIOS if s == "all" else [s])]
    for n in names:
        if n not in SCENARIOS:
            raise ValueError(f"unknown scenario {n!r}; known: {', '.join(SCENARIOS)}")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stagewatch-quality-") as tmp:
        base = work_dir or Path(tmp)
        for name in names:
            for seed in seeds:
                out = base / f"{name}-s{seed}"
                events = write(simulate(name, items=items, seed=seed, variation=variation), out, "jsonl")
                alerts = out / "alerts.jsonl"
                started = time.perf_counter()
                why = _run_engine(events, alerts, settings, engine_cmd)
                engine_seconds = time.perf_counter() - started
                ev = evaluate(out / "truth.json", None if why else alerts, events)
                row = summarize(ev.as_dict())
                row["engine_seconds"] = round(engine_seconds, 2) if not why else None
                row["engine_missing"] = why
                if variation is not None and (changed := variation.as_dict()):
                    row["variation"] = changed
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return rows


def summarize(ev: dict[str, Any]) -> dict[str, Any]:
    """One flat row from an evaluation dict."""
    e = ev.get("engine") or {}
    pages = e.get("pages") or {}
    b = ev.get("baselines") or {}
    oracle = b.get("oracle") or {}
    shifts = e.get("shifts") or []
    silences = e.get("silences") or []
    engine_f1 = pages.get("f1")
    oracle_f1 = oracle.get("f1")
    return {
        "scenario": ev["scenario"],
        "seed": ev["seed"],
        "precision": pages.get("precision"),
        "recall": pages.get("recall"),
        "f1": engine_f1,
        "false_pages_per_1000": pages.get("false_pages_per_1000"),
        "delay_median_hours": pages.get("delay_median_hours"),
        "oracle_f1": oracle_f1,
        "oracle_c": oracle.get("c"),
        "static_sla_f1": (b.get("static_sla") or {}).get("f1"),
        "river_p99_f1": (b.get("river_p99") or {}).get("f1"),
        "engine_vs_oracle": engine_f1 / oracle_f1 if engine_f1 is not None and oracle_f1 else None,
        "shift_delay_days": shifts[0]["delay_days"] if shifts else None,
        "shift_missed": any(s["delay_days"] is None for s in shifts) if shifts else None,
        "silence_delay_hours": silences[0]["delay_hours"] if silences else None,
        "silence_missed": any(s["delay_hours"] is None for s in silences) if silences else None,
        "pages_on_lost": pages.get("pages_on_lost"),
        "false_shifts": e.get("false_shifts"),
        "false_silences": e.get("false_silences"),
    }


def print_quality(rows: list[dict[str, Any]], console: Any = None) -> None:
    from rich.table import Table

    from monitor.evaluate import wide_console

    console = console or wide_console()
    t = Table(title="stagewatch quality (engine vs baselines on simulated ground truth)")
    cols = [
        ("scenario", "scenario", None), ("seed", "seed", None), ("P", "precision", 3), ("R", "recall", 3),
        ("F1", "f1", 3), ("false/1000", "false_pages_per_1000", 1), ("delay h", "delay_median_hours", 1),
        ("oracle F1 (c)", None, None), ("SLA F1", "static_sla_f1", 3), ("river F1", "river_p99_f1", 3),
        ("eng/oracle", "engine_vs_oracle", 2), ("shift d", "shift_delay_days", 2),
        ("silence h", "silence_delay_hours", 2), ("lost pages", "pages_on_lost", None),
    ]
    for title, _k, _d in cols:
        t.add_column(title, justify="left" if title == "scenario" else "right")
    for r in rows:
        cells = []
        for _title, key, digits in cols:
            if key is None:
                cells.append("-" if r["oracle_f1"] is None else f"{r['oracle_f1']:.3f} ({r['oracle_c']:g})")
                continue
            v = r[key]
            if key == "shift_delay_days" and r["shift_missed"]:
                cells.append("MISSED")
            elif key == "silence_delay_hours" and r["silence_missed"]:
                cells.append("MISSED")
            elif v is None:
                cells.append("-")
            elif digits is not None:
                cells.append(f"{v:.{digits}f}")
            else:
                cells.append(str(v))
        t.add_row(*cells)
    console.print(t)
    missing = {r["engine_missing"] for r in rows if r.get("engine_missing")}
    for why in missing:
        console.print(f"[yellow]no engine rows: {why}[/yellow]")
