"""The live worker on a real local broker (started here: ``_common.local_broker``).

    python bench/worker.py [--events 50000] [--skip-latency]

(a) ceiling: a no-op Faust agent (bench/_noop_faust.py) counting the same records, one event each,
    measured first and again last; (b) is compared with the mean of the two, their gap is the error bar;
(a') the same no-op agent on the consumer the worker runs on (``streams.consumer``: Faust's consumer
    without four asyncio tasks per message), first and last too: (b)/(a') is what our own work costs;
(b) our worker (``stagewatch worker``) on one event per record; goal >= 0.85 of (a);
(c) our worker on batched records (JSON arrays of 100..500 events); goal >= 100k events/s, next to
    raw aiokafka consume + msgspec decode of the same records, measured in the same run;

(b) and (c) are measured twice, on the same simulated events:
- replay: the simulated 75-day history as it is, worker on the event clock (``--clock event``): every
  record also drives event-time ticks, and the per-stage backlog/source checks every 300 s of event
  time (what a backfill or ``stagewatch backtest`` pays);
- live: the same events with their timestamps rewritten to the last minutes, gaps compressed (as
  ``stagewatch produce --live --speed`` does), worker on the wall clock ticking every 5 s: at high
  live rates per-event work dominates and stage checks are rare.
(d) under load (single-event records at ``--latency-rate``, 4,000/s by default, live timestamps, wall
    clock ticking every second): event produced -> alert on the alerts topic (the resolve that an
    item's next event causes), and stall latency: the instant the item crossed its limit -> the page
    on the alerts topic.

Records are produced before a consumer starts, so (a)-(c) measure consumption only: the rate is
taken between the first and the last poll of the consumer's own count (every 0.02 s once records flow).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, header, local_broker, sim_lines

from monitor.events import Event, decode_alert, decode_record, encode, parse_timestamp
from monitor.produce import live_timestamps
from monitor.stack import free_port
from streams.app import FETCH_BYTES, partition_for
from streams.process import WorkerProcess

POLL = 0.2
# once records flow: a 50k-event batched run lasts ~0.3 s, and at 0.2 s the rate was taken over one or
# two polls (one run read 24.5k events/s where the worker had done ~150k)
POLL_COUNTING = 0.02


# ----------------------------------------------------------------------------- broker helpers
def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, int]]) -> float:
    """Send (key, value, partition) records; returns records/s of the producer."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024,
                             max_request_size=4 * 1024 * 1024, acks=1)
    t0 = time.perf_counter()
    for key, value, p in records:
        producer.send(topic, key=key, value=value, partition=p)
    producer.flush()
    producer.close()
    return len(records) / (time.perf_counter() - t0)


def single_records(lines: list[bytes], partitions: int) -> list[tuple[bytes, bytes, int]]:
    out = []
    for line in lines:
        key = json.loads(line)["entity_id"].encode()
        out.append((key, line, partition_for(key, partitions)))
    return out


def batched_records(lines: list[bytes], partitions: int, seed: int = 1) -> list[tuple[bytes, bytes, int]]:
    """JSON arrays of 100..500 events, each array holding events of one partition (in order)."""
    rng = random.Random(seed)
    by_part: dict[int, list[tuple[bytes, bytes]]] = {}
    for line in lines:
        key = json.loads(line)["entity_id"].encode()
        by_part.setdefault(partition_for(key, partitions), []).append((key, line))
    out = []
    for p, evs in sorted(by_part.items()):
        i = 0
        while i < len(evs):
            n = rng.randint(100, 500)
            chunk = evs[i:i + n]
            out.append((chunk[0][0], b"[" + b",".join(v for _, v in chunk) + b"]", p))
            i += n
    return out


def live_lines(lines: list[bytes], span: float = 600.0, margin: float = 5.0) -> list[bytes]:
    """The same events, their times shifted and compressed to ``span`` seconds ending ``margin``
    seconds ago (``stagewatch produce --live --speed``): a dense live-like stream."""
    events = [ev for line in lines for ev in decode_record(line)[0]]
    first, last = events[0].timestamp, max(ev.timestamp for ev in events)
    speed = max(1.0, (last - first) / span)
    start = time.time() - margin - (last - first) / speed
    return [encode(ev.to_wire()) for ev in live_timestamps(events, speed=speed, start=start)]


def wait_count(count: Any, total: int, timeout: float) -> tuple[float, float]:
    """Poll ``count()`` until it reaches ``total``; (rate between the first non-zero poll and the
    poll that saw the total, seconds from the first poll to the total)."""
    start = time.monotonic()
    first: tuple[float, int] | None = None
    last = (start, 0)
    while time.monotonic() - start < timeout:
        try:
            c = count()
        except (httpx.HTTPError, ValueError):
            c = last[1]
        now = time.monotonic()
        if c > 0 and first is None:
            first = (now, c)
        last = (now, c)
        if c >= total:
            break
        time.sleep(POLL if first is None else POLL_COUNTING)
    if first is None or last[1] <= first[1]:
        return 0.0, last[0] - start
    return (last[1] - first[1]) / (last[0] - first[0]), last[0] - start


def health_events(url: str) -> int:
    """The worker's count of events taken, from /health: as cheap to poll as the no-op agent's /count
    (polling /metrics cost the worker ~9 % of its main thread at 0.2 s, a handicap the ceiling lacks)."""
    return int(httpx.get(f"{url}/health", timeout=5).json()["events"])


def worker_settings(bootstrap: str, topic: str, partitions: int, **worker: Any) -> dict[str, Any]:
    uid = uuid.uuid4().hex[:8]
    return {
        "kafka": {"bootstrap_servers": bootstrap},
        "topics": {"events": [topic], "dlq": f"dlq-{uid}", "alerts": f"alerts-{uid}", "feedback": f"fb-{uid}",
                   "partitions": partitions},
        "worker": {"app_id": f"bench-{uid}", **worker},
        # the stream is in order: no lateness buffer, or its last 5 minutes would never be counted
        "engine": {"allowed_lateness_seconds": 0},
    }


def run_worker(tmp: Path, cfg: dict[str, Any], total: int, name: str, timeout: float = 600) -> float:
    with WorkerProcess(tmp, cfg, name=name).start(timeout=120) as w:
        rate, _ = wait_count(lambda: health_events(w.url), total, timeout)
    return rate


def run_noop(tmp: Path, bootstrap: str, topic: str, total: int, partitions: int = 1, fast_path: bool = False) -> float:
    """The no-op Faust agent's records/s; ``fast_path``: on ``streams.consumer``'s consumer, as the worker."""
    port = free_port()
    env = {**os.environ, "NOOP_BROKER": f"kafka://{bootstrap}", "NOOP_TOPIC": topic, "NOOP_PORT": str(port),
           "NOOP_APP_ID": f"noop-{uuid.uuid4().hex[:8]}", "NOOP_DATADIR": str(tmp / "noop"),
           "NOOP_PARTITIONS": str(partitions), "NOOP_FETCH_BYTES": str(FETCH_BYTES),
           "NOOP_FAST_PATH": "1" if fast_path else ""}
    log = open(tmp / "noop.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_noop_faust.py"), "worker", "-l", "warn"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    try:
        rate, _ = wait_count(lambda: httpx.get(f"http://127.0.0.1:{port}/count", timeout=5).json()["count"],
                             total, 300)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    return rate


def raw_consume(bootstrap: str, topic: str, total_events: int) -> float:
    """aiokafka consume + msgspec decode (into the wire event type) of every record: events/s."""
    from aiokafka import AIOKafkaConsumer

    from monitor.events import _wire_batch_decoder, _wire_decoder

    async def go() -> float:
        c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=8 * 1024 * 1024)
        await c.start()
        n = 0
        t0 = None
        try:
            deadline = time.monotonic() + 300
            while n < total_events and time.monotonic() < deadline:
                batches = await c.getmany(timeout_ms=500, max_records=10_000)
                if t0 is None and batches:
                    t0 = time.perf_counter()
                for recs in batches.values():
                    for r in recs:
                        v = r.value
                        n += len(_wire_batch_decoder.decode(v)) if v[:1] == b"[" else (_wire_decoder.decode(v) and 1)
        finally:
            await c.stop()
        return n / (time.perf_counter() - t0) if t0 else 0.0

    return asyncio.run(go())


# ----------------------------------------------------------------------------- latency
LATENCY_NEXT = {"lead": "qualification", "qualification": "won"}  # the stage whose event ends a stay


def latency(tmp: Path, bootstrap: str, rate: float, seconds: float = 30.0) -> dict[str, Any]:
    """Live load at ``rate`` events/s; stalls every 1.5 s (stay 12 s in ``lead``, typical 1 s)."""
    from kafka import KafkaConsumer, KafkaProducer

    topic = f"live-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, [topic], 1)
    cfg = worker_settings(bootstrap, topic, 1, clock="wall", tick_interval_seconds=1.0)
    cfg["engine"] = {"warmup": 10, "allowed_lateness_seconds": 0, "silence_enabled": False,
                     "backlog_enabled": False, "drift_enabled": False}
    cfg["workflows"] = {"sales": {"terminal_stages": ["won"], "calendar": {"mode": "wall"}}}
    alerts_topic = cfg["topics"]["alerts"]
    sent: dict[tuple[str, str], float] = {}  # (entity, stage) -> wall time the event was sent
    received: list[tuple[float, Any]] = []
    stop = threading.Event()

    def read_alerts() -> None:
        c = KafkaConsumer(alerts_topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                          consumer_timeout_ms=200)
        deadline = time.monotonic() + seconds + 120
        while not stop.is_set() and time.monotonic() < deadline:
            for r in c:
                received.append((time.time(), decode_alert(r.value)))
        c.close()

    with WorkerProcess(tmp, cfg, name="latency-worker").start(timeout=120):
        reader = threading.Thread(target=read_alerts, daemon=True)
        reader.start()
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks=1)
        rng = random.Random(4)
        due: list[tuple[float, int, str, str]] = []  # (wall, seq, entity, stage)
        seq = 0
        t_start = time.time()
        next_stall = t_start + 5.0
        i = 0
        events_sent = 0
        while time.time() - t_start < seconds:
            now = time.time()
            target = int((now - t_start) * rate / 3)  # items started so far (3 events each)
            while i < target:
                ent = f"d{i}"
                stall = now >= next_stall
                if stall:
                    next_stall += 1.5
                heapq.heappush(due, (now, seq, ent, "lead"))
                stay = 12.0 if stall else rng.lognormvariate(0, 0.3)
                heapq.heappush(due, (now + stay, seq + 1, ent, "qualification"))
                heapq.heappush(due, (now + stay + 0.5, seq + 2, ent, "won"))
                seq += 3
                i += 1
            while due and due[0][0] <= now:
                _, _, ent, stage = heapq.heappop(due)
                ts = time.time()
                ev = Event(f"{ent}-{stage}", "sales", ent, stage, ts, {"segment": "smb"})
                producer.send(topic, key=ent.encode(), value=encode(ev.to_wire()), partition=0)
                sent[(ent, stage)] = ts
                events_sent += 1
            time.sleep(0.002)
        producer.flush()
        producer.close()
        time.sleep(5.0)
        stop.set()
        reader.join(30)
    ev_lat = []
    stall_lat = []
    for got, a in received:
        if a.kind != "stalled":
            continue
        if a.status == "firing":
            crossed = parse_timestamp(a.details["entered_at"]) + a.threshold_seconds
            stall_lat.append(got - crossed)
        elif (resolving := (a.entity_id, LATENCY_NEXT.get(a.stage, ""))) in sent:  # its next stage's event
            ev_lat.append(got - sent[resolving])

    def pct(xs: list[float], q: float) -> float:
        return statistics.quantiles(xs, n=100)[int(q) - 1] if len(xs) >= 2 else (xs[0] if xs else float("nan"))

    return {"rate": events_sent / seconds, "event_alert": ev_lat, "stall": stall_lat,
            "ev_p50": pct(ev_lat, 50), "ev_p99": pct(ev_lat, 99),
            "stall_p50": pct(stall_lat, 50), "stall_p99": pct(stall_lat, 99)}


def measure(tmp: Path, boot: str, lines: list[bytes], label: str, **worker: Any) -> dict[str, float]:
    """(b), (c) and the raw consume+decode ceilings on fresh topics holding ``lines``."""
    n = len(lines)
    single, batched = f"single-{uuid.uuid4().hex[:6]}", f"batched-{uuid.uuid4().hex[:6]}"
    create_topics(boot, [single, batched], 1)
    singles, batches = single_records(lines, 1), batched_records(lines, 1)
    print(f"[{label}] producing {n:,} single-event records ({produce(boot, single, singles):,.0f} records/s) and "
          f"{len(batches):,} batched records of 100..500 events ({produce(boot, batched, batches):,.0f} records/s)")
    out: dict[str, float] = {}
    out["raw_single"] = raw_consume(boot, single, n)
    print(f"[{label}]     raw aiokafka + msgspec, 1/record : {out['raw_single']:10,.0f} events/s")
    out["b"] = run_worker(tmp, worker_settings(boot, single, 1, **worker), n, f"{label}-b")
    print(f"[{label}] (b) our worker, 1 event/record      : {out['b']:10,.0f} events/s")
    out["raw_batched"] = raw_consume(boot, batched, n)
    print(f"[{label}]     raw aiokafka + msgspec, batched  : {out['raw_batched']:10,.0f} events/s")
    out["c"] = run_worker(tmp, worker_settings(boot, batched, 1, **worker), n, f"{label}-c")
    print(f"[{label}] (c) our worker, batched records     : {out['c']:10,.0f} events/s")
    return out


def results(label: str, a: float, f: float, m: dict[str, float]) -> None:
    b, c, raw = m["b"], m["c"], m["raw_batched"]
    print(f"RESULT {label} (b)/(a) = {b / a if a else 0:.3f}: {b:,.0f} events/s vs no-op Faust {a:,.0f} records/s "
          f"(goal >= 0.85; {'meets' if a and b / a >= 0.85 else 'below'} goal)")
    print(f"RESULT {label} (b)/(a') = {b / f if f else 0:.3f}: vs the no-op on the worker's own consumer {f:,.0f} "
          f"records/s (what the worker's own work costs)")
    print(f"RESULT {label} (c) = {c:,.0f} events/s = {c / raw if raw else 0:.3f} of raw consume+decode {raw:,.0f}/s "
          f"(goal >= 100,000/s; {'meets' if c >= 100_000 else 'below'} goal)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)  # keeps `make bench` under 10 minutes
    ap.add_argument("--skip-latency", action="store_true")
    # (d)'s live load: the generator, the broker, the alert reader and the worker share this machine's
    # cores; at ~7k events/s on two cores the worker fell behind, and latency then measures its backlog
    ap.add_argument("--latency-rate", type=float, default=4000.0, help="events/s of the live load of (d)")
    args = ap.parse_args()
    header("live worker on a local Kafka broker")
    lines = sim_lines("steady", 40_000).read_bytes().splitlines()[: args.events]
    with local_broker("sw-bench-") as (tmp, boot):
        ceiling = f"single-{uuid.uuid4().hex[:6]}"
        create_topics(boot, [ceiling], 1)
        produce(boot, ceiling, single_records(lines, 1))
        a_first = run_noop(tmp, boot, ceiling, len(lines))
        print(f"(a) no-op Faust agent, 1 event/record : {a_first:10,.0f} records/s (ceiling of (b), both pairs)")
        f_first = run_noop(tmp, boot, ceiling, len(lines), fast_path=True)
        print(f"(a') the same on the worker's consumer: {f_first:10,.0f} records/s (streams.consumer's fast path)")
        replay = measure(tmp, boot, lines, "replay", clock="event", tick_interval_seconds=60.0)
        live = measure(tmp, boot, live_lines(lines), "live", clock="wall", tick_interval_seconds=5.0)
        # the ceiling again at the end: how far it drifts within one run is the error bar of (b)/(a)
        a_last = run_noop(tmp, boot, ceiling, len(lines))
        f_last = run_noop(tmp, boot, ceiling, len(lines), fast_path=True)
        a, f = (a_first + a_last) / 2, (f_first + f_last) / 2
        print(f"(a) again at the end                  : {a_last:10,.0f} records/s; (b) ratios below use the mean "
              f"{a:,.0f}, +-{abs(a_first - a_last) / 2 / a if a else 0:.0%} between the two")
        print(f"(a') again at the end                 : {f_last:10,.0f} records/s; mean {f:,.0f}, "
              f"+-{abs(f_first - f_last) / 2 / f if f else 0:.0%}")
        print("replay = the 75-day history on the event clock (ticks + stage checks every 300 s of event time);")
        print("live   = the same events compressed into the last 10 minutes, wall clock ticking every 5 s")
        results("replay", a, f, replay)
        results("live", a, f, live)
        if not args.skip_latency:
            lat = latency(tmp, boot, rate=args.latency_rate)
            print(f"(d) under {lat['rate']:,.0f} events/s live load (wall clock, tick 1 s): "
                  f"{len(lat['event_alert'])} event->alert samples, {len(lat['stall'])} stall samples")
            print(f"RESULT event produced -> alert on topic: p50 {lat['ev_p50'] * 1000:.0f} ms, "
                  f"p99 {lat['ev_p99'] * 1000:.0f} ms")
            print(f"RESULT stall (limit crossed -> page on topic): p50 {lat['stall_p50'] * 1000:.0f} ms, "
                  f"p99 {lat['stall_p99'] * 1000:.0f} ms (tick interval 1 s bounds it)")


if __name__ == "__main__":
    main()
