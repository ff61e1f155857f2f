"""Scale-out: two workers in one consumer group (2 partitions) against one worker on the same
2-partition topic and the same records, on a local broker started here. The ceiling is the one
worker: the ratio says how much a second process adds (on a 2-core machine it also competes with
the broker and the producer for the cores).

    python bench/scaleout.py [--events 50000] [--batched]
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path

import httpx
from _common import header, local_broker, sim_lines
from worker import (
    batched_records,
    create_topics,
    health_events,
    produce,
    single_records,
    wait_count,
    worker_settings,
)

from streams.process import WorkerProcess


def run_group(tmp: Path, boot: str, topic: str, total: int, workers: int) -> float:
    cfg = worker_settings(boot, topic, 2, clock="event", tick_interval_seconds=60.0)
    procs = [WorkerProcess(tmp, cfg, name=f"so-{workers}-{k}") for k in range(workers)]
    try:
        for p in procs:
            p.start(timeout=120)

        def count() -> int:
            total_seen = 0
            for p in procs:
                try:
                    total_seen += health_events(p.url)
                except httpx.HTTPError:
                    pass
            return total_seen

        rate, _ = wait_count(count, total, 600)
    finally:
        for p in procs:
            p.stop()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)  # keeps `make bench` under 10 minutes
    ap.add_argument("--batched", action="store_true", help="JSON arrays of 100..500 events per record")
    args = ap.parse_args()
    header("scale-out: 2 workers in one group vs 1")
    lines = sim_lines("steady", 40_000).read_bytes().splitlines()[: args.events]
    n = len(lines)
    with local_broker("sw-scaleout-") as (tmp, boot):
        topic = f"so-{uuid.uuid4().hex[:6]}"
        create_topics(boot, [topic], 2)
        records = batched_records(lines, 2) if args.batched else single_records(lines, 2)
        produce(boot, topic, records)
        print(f"{n:,} events in {len(records):,} records over 2 partitions")
        one = run_group(tmp, boot, topic, n, 1)
        time.sleep(1.0)
        two = run_group(tmp, boot, topic, n, 2)
        print(f"1 worker (both partitions): {one:10,.0f} events/s")
        print(f"2 workers (one partition each): {two:10,.0f} events/s")
        print(f"RESULT 2 workers = {two / one if one else 0:.2f}x one worker (ideal 2.0 with spare cores)")


if __name__ == "__main__":
    main()
