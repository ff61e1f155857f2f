"""Engine throughput: events/s of ``Engine.process`` plus its event-time ticks on simulated streams,
against the ceiling of msgspec decode + dict lookup + one ``river.stats.Quantile`` update per event
measured on the same events in the same run (goal: >= 0.3 of the ceiling).

    python bench/engine.py [--items 20000] [--scenario steady]

Figures: decode only (``decode_record``), engine only (pre-decoded events, ``EventClock.advance`` +
``Engine.process`` + the final flush), and decode + engine (the whole per-event path, the figure
compared with the ceiling).
"""

from __future__ import annotations

import argparse
import time

from _common import ceiling_rate, header, ratio_line, sim_lines

from monitor.engine import Engine, EventClock
from monitor.events import Event, decode_record

STEP = 60.0  # the default tick step of backtest / the worker's event clock


def run_engine(events: list[Event]) -> tuple[float, int]:
    engine = Engine()
    clock = EventClock(STEP)
    alerts = 0
    t0 = time.perf_counter()
    for ev in events:
        alerts += len(clock.advance(engine, ev.timestamp))
        alerts += len(engine.process(ev))
    alerts += len(clock.finish(engine))
    return time.perf_counter() - t0, alerts


def run_decode_engine(lines: list[bytes]) -> float:
    engine = Engine()
    clock = EventClock(STEP)
    t0 = time.perf_counter()
    for line in lines:
        for ev in decode_record(line)[0]:
            clock.advance(engine, ev.timestamp)
            engine.process(ev)
    clock.finish(engine)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--scenario", default="steady")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    header("engine throughput")
    lines = sim_lines(args.scenario, args.items).read_bytes().splitlines()
    n = len(lines)
    print(f"input: {n:,} events of scenario {args.scenario!r} ({args.items:,} items)")

    t0 = time.perf_counter()
    events = [ev for line in lines for ev in decode_record(line)[0]]
    decode_s = time.perf_counter() - t0
    span_days = (events[-1].timestamp - events[0].timestamp) / 86400
    print(f"event-time span {span_days:.1f} days = {span_days * 86400 / STEP:,.0f} ticks of {STEP:.0f} s")

    engine_s, alerts = min(run_engine(events) for _ in range(args.repeat))
    full_s = min(run_decode_engine(lines) for _ in range(args.repeat))
    ceiling = ceiling_rate(lines)

    print(f"decode_record only      : {n / decode_s:12,.0f} events/s")
    print(f"engine only (+ticks)    : {n / engine_s:12,.0f} events/s  ({alerts} alert changes)")
    print(f"decode + engine (+ticks): {n / full_s:12,.0f} events/s")
    print(f"ceiling (decode + lookup + Quantile.update): {ceiling:12,.0f} events/s")
    print(ratio_line("RESULT engine (decode + process + ticks)", n / full_s, ceiling, 0.3))


if __name__ == "__main__":
    main()
