"""Backtest end to end from a JSONL file of ~1M simulated events (``steady``, 200k items, cached in
``/tmp/stagewatch-bench``): read + decode + engine + ticks + alerts written as JSONL, exactly what
``stagewatch backtest -o`` does, with its collector threshold. Goal: >= 300k events/s; the ceiling
(msgspec decode + dict lookup + one ``river.stats.Quantile`` update per event) is measured on the same
lines in the same run.

    python bench/backtest.py [--items 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import ceiling_rate, header, ratio_line, sim_lines

from monitor.backtest import run_backtest
from monitor.cli import tune_gc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--scenario", default="steady")
    args = ap.parse_args()
    header("backtest end to end")
    tune_gc()  # as `stagewatch backtest` runs (monitor.cli.main)
    path = sim_lines(args.scenario, args.items)
    print(f"input: {path} ({path.stat().st_size / 1e6:.0f} MB)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "alerts.jsonl"
        t0 = time.perf_counter()
        c0 = time.process_time()
        s = run_backtest(path, out)
        cpu = time.process_time() - c0
        wall = time.perf_counter() - t0
    rate = s.events_read / wall
    print(f"events {s.events_read:,}, items {s.items:,}, alert changes {s.alert_changes:,}, "
          f"firing {dict(s.firing)}")
    print(f"backtest: {wall:.1f} s wall ({cpu:.1f} s CPU) = {rate:,.0f} events/s wall, "
          f"{s.events_read / cpu:,.0f} events/s per CPU second")
    lines = path.read_bytes().splitlines()
    ceiling = ceiling_rate(lines, repeat=1)
    del lines
    print(f"RESULT backtest {rate:,.0f} events/s (goal >= 300,000/s; {'meets' if rate >= 300_000 else 'below'} goal)")
    print(ratio_line("RESULT backtest vs ceiling", rate, ceiling, 0.3))


if __name__ == "__main__":
    main()
