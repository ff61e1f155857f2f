"""Reliability and security against the real services: SIGKILL and SIGTERM of the worker, a broker
restart, an Alertmanager outage, poison input, a cardinality attack, replays, authenticated HTTP
ingest and SASL/PLAIN Kafka. Every wait is bounded; figures are printed (run with ``-s``)."""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from monitor.backtest import run_backtest
from monitor.config import load_settings
from monitor.events import Event, decode_alert, encode
from monitor.produce import produce
from monitor.stack import AlertmanagerProcess, KafkaProcess, StackError
from streams.process import WorkerProcess
from tests.integration.test_worker import (
    DAY,
    alert_keys,
    base_settings,
    create_topics,
    expected_alerts,
    read_topic,
    stream,
)
from tests.unit.test_security import hostile_records

START = 1_767_225_600.0  # 2026-01-01


# ----------------------------------------------------------------------------- helpers


def wait_for(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = cond()
        except (httpx.HTTPError, OSError):
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def metric(url: str, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in scrape(url).items() if n == name and want <= set(lab))


def events_seen(url: str) -> int:
    """Events the engines have taken (every outcome), restored with each partition: the worker's count of
    processed input, through restarts (``stagewatch_events_total`` counts what this process took)."""
    return int(httpx.get(f"{url}/health", timeout=10).json()["events"])


def wait_processed(w: WorkerProcess, n: int, timeout: float = 120.0) -> None:
    try:
        wait_for(lambda: events_seen(w.url) >= n, timeout, f"{n} events processed by {w.name}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; counted {events_seen(w.url)}") from None
    assert events_seen(w.url) == n, f"{events_seen(w.url)} events counted, {n} produced"


def kill9(w: WorkerProcess) -> None:
    assert w.proc is not None
    os.killpg(w.proc.pid, signal.SIGKILL)
    w.proc.wait(timeout=10)
    w.proc = None


def write_events(path: Path, events: list[Event]) -> Path:
    path.write_bytes(b"".join(encode(e.to_wire()) + b"\n" for e in events))
    return path


def sequence_ok(records: list[Any]) -> None:
    """At-least-once: an identical (id, status, at) may repeat; a second firing of an id without a
    resolve in between may not."""
    seen: set[tuple[str, str, str]] = set()
    last: dict[str, str] = {}
    for r in records:
        a = decode_alert(r.value)
        key = (a.alert_id, a.status, a.at)
        if key in seen:
            continue
        seen.add(key)
        assert not (a.status == "firing" and last.get(a.alert_id) == "firing"), f"{a.alert_id} paged twice"
        last[a.alert_id] = a.status


def final_firing(alerts_path: Path) -> set[str]:
    state: dict[str, str] = {}
    for line in alerts_path.read_bytes().splitlines():
        a = decode_alert(line)
        state[a.alert_id] = a.status
    return {k for k, v in state.items() if v == "firing"}


def am_alerts(am_url: str, ids: set[str]) -> list[dict]:
    """Alerts Alertmanager holds as active for our alert ids (resolved ones leave its API)."""
    return [a for a in httpx.get(f"{am_url}/api/v2/alerts", timeout=5).json()
            if a["labels"].get("alert_id") in ids]


def am_ids(am_url: str, ids: set[str]) -> list[str]:
    return [a["labels"]["alert_id"] for a in am_alerts(am_url, ids)]


def backtest_file(events: list[Event], cfg: dict, partitions: int, tmp_path: Path, name: str) -> tuple[Path, Any]:
    path = write_events(tmp_path / f"{name}.jsonl", events)
    out = tmp_path / f"{name}.alerts.jsonl"
    summary = run_backtest(path, out, load_settings(None, **cfg), partitions=partitions,
                           step=cfg["worker"]["tick_interval_seconds"], finish=False)
    return out, summary


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def own_alertmanager(tmp_path: Path):
    am = AlertmanagerProcess(tmp_path / "am")
    am.start(timeout=60)
    try:
        yield am
    finally:
        am.stop()


def with_alertmanager(cfg: dict, am: AlertmanagerProcess, **extra: Any) -> dict:
    return {**cfg, "alertmanager": {"urls": [am.url], "resend_interval_seconds": 3.0, "timeout_seconds": 1.0, **extra}}


# ----------------------------------------------------------------------------- 1. SIGKILL


def test_sigkill_mid_stream_loses_no_item_pages_nobody_twice_and_keeps_baselines(kafka, tmp_path, own_alertmanager):
    events = stream(400, seed=21, start=START, unit=DAY, stalls=10, open_stalls=2)
    cfg = with_alertmanager(base_settings(kafka, partitions=2, clock="event", session_timeout_seconds=6.0),
                            own_alertmanager)
    path = write_events(tmp_path / "events.jsonl", events)
    expected = expected_alerts(path, cfg, 2, tmp_path)
    firing_at_end = final_firing(tmp_path / "expected-2.jsonl")
    assert firing_at_end and sum(1 for k in expected if k[1] == "firing") > len(firing_at_end)
    create_topics(kafka, list(cfg["topics"]["events"]), 2)
    settings = load_settings(None, **cfg)
    chunks = [events[j * len(events) // 4:(j + 1) * len(events) // 4] for j in range(4)]
    w = WorkerProcess(tmp_path, cfg)
    recoveries: list[float] = []
    kill_times: list[float] = []  # event time of the last event produced before each kill
    done = 0
    with w.start(timeout=120):
        for i, chunk in enumerate(chunks):
            producer = threading.Thread(target=produce, args=(settings, chunk), kwargs={"rate": 1500.0})
            producer.start()
            if i < 3:  # SIGKILL mid-stream: about half of this chunk processed
                wait_for(lambda t=done + len(chunk) // 2: events_seen(w.url) >= t, 60, "half a chunk processed",
                         every=0.05)
                kill9(w)
                killed = time.monotonic()
                producer.join(timeout=60)
                kill_times.append(chunk[-1].timestamp)
                w.start(timeout=120)
                recoveries.append(time.monotonic() - killed)
            producer.join(timeout=60)
            done += len(chunk)
        wait_processed(w, len(events))
        # baselines survive one more SIGKILL at rest, n counts included
        before = httpx.get(f"{w.url}/baselines").json()
        assert before and any(b["n"] > 0 for b in before)
        kill9(w)
        killed = time.monotonic()
        w.start(timeout=120)
        recoveries.append(time.monotonic() - killed)
        # one new item per partition after the restart (it enters "lead" at the last event time: no
        # duration learned, no tick), so both partitions have surely taken a record since
        probes = [Event(f"probe-{p}", "sales", f"probe-{p}", "lead", events[-1].timestamp, {"segment": "smb"}, None)
                  for p in (0, 4)]  # partitions 0 and 1
        produce(settings, probes)
        wait_processed(w, len(events) + 2)
        after = httpx.get(f"{w.url}/baselines").json()
        outcomes = {o: metric(w.url, "stagewatch_events_total", outcome=o) for o in ("accepted", "duplicate", "late")}
        assert after == before, f"baselines after restart differ from before the kill; outcomes {outcomes}"
        got = read_topic(kafka, cfg["topics"]["alerts"], lambda r: len(alert_keys(r)) >= len(expected))
        # Alertmanager holds one alert per identity: every one still firing, no duplicate
        wait_for(lambda: set(am_ids(own_alertmanager.url, {k[0] for k in expected})) == firing_at_end, 30,
                 "Alertmanager to hold exactly the alerts still firing")
        ids = am_ids(own_alertmanager.url, {k[0] for k in expected})
    assert alert_keys(got) == expected, "alerts after kills differ from the backtest"
    sequence_ok(got)
    assert len(ids) == len(set(ids)), "Alertmanager holds two alerts for one identity"
    paged_after_kill = {k for k in expected if k[1] == "firing" and _ts(k[2]) > kill_times[0]}
    assert paged_after_kill, "no stall crossed its limit after a kill: the test proves nothing"
    print(f"\n[sigkill] {len(events)} events, 4 kills, {len(expected)} alert changes "
          f"({sum(1 for k in expected if k[1] == 'firing')} firings, {len(paged_after_kill)} after the first kill), "
          f"{len(got)} alert records (duplicates of identical changes: {len(got) - len(alert_keys(got))}), "
          f"lost 0, double pages 0, recovery kill->ready s: {[round(r, 1) for r in recoveries]}")


def learned_history(kafka: str, partitions: int, **worker: Any) -> tuple[list[Event], dict, Any]:
    """60 deals of history ending 5 s ago, in "days" of five seconds (smb contracts take ~10 s), and a
    wall-clock worker's settings on fresh topics: (events, settings dict, settings)."""
    now = time.time()
    events = [e for e in stream(60, seed=5, start=now - 1000, unit=5.0, stalls=0) if e.timestamp < now - 5]
    cfg = base_settings(kafka, partitions=partitions, clock="wall", tick_interval_seconds=0.5, **worker)
    create_topics(kafka, list(cfg["topics"]["events"]), partitions)
    return events, cfg, load_settings(None, **cfg)


def test_after_a_restart_a_quiet_partition_pages_its_stall_with_no_further_event(kafka, tmp_path):
    """A worker restored a partition's engine at the partition's first record: after a crash, a deal
    stalled in a partition with no further event was never paged. Wake records fix that."""
    events, cfg, settings = learned_history(kafka, 2, session_timeout_seconds=6.0)
    w = WorkerProcess(tmp_path, cfg)
    with w.start(timeout=120):
        produce(settings, events, batch=10)
        wait_processed(w, len(events))
        entered = time.time()
        produce(settings, [Event("stuck-1", "sales", "deal-stuck", "contract", entered, {"segment": "smb"}, None)])
        wait_processed(w, len(events) + 1)
        item = httpx.get(f"{w.url}/items/deal-stuck").json()
        assert not item["stalled"]
        assert item["threshold_seconds"] > 20, "the limit is too short to crash before it: the test proves nothing"
        time.sleep(3.0)  # checkpoints every second: the open item is in the changelog
        kill9(w)
        killed = time.time()
        assert killed < entered + item["threshold_seconds"], "the stall crossed its limit before the crash"
        w.start(timeout=120)
        # no event after the restart: only the restored engine's timer can page it
        records = read_topic(
            kafka, cfg["topics"]["alerts"],
            lambda r: any(decode_alert(x.value).entity_id == "deal-stuck" for x in r), timeout=150, idle=0,
        )
        paged = [a for a in map(decode_alert, (r.value for r in records)) if a.entity_id == "deal-stuck"]
    assert [(a.kind, a.status) for a in paged] == [("stalled", "firing")]
    assert _ts(paged[0].at) >= entered + item["threshold_seconds"] - 1.0
    print(f"\n[restart] limit {item['threshold_seconds']:.0f} s, crash {killed - entered:.1f} s after entering, "
          f"paged {_ts(paged[0].at) - entered:.1f} s after entering")


def test_after_a_restart_a_deal_whose_move_waits_in_the_backlog_is_not_paged(kafka, tmp_path):
    """A restarted worker on the wall clock finds a backlog: a deal that moved on while it was down,
    its event queued behind 20,000 others, must not be paged as stalled meanwhile (``Worker.behind``:
    a partition working through a backlog is judged at the newest event it applied). A deal that the
    backlog leaves stalled is paged once the worker has caught up."""
    events, cfg, settings = learned_history(kafka, 1)
    w = WorkerProcess(tmp_path, cfg)
    with w.start(timeout=120):
        produce(settings, events, batch=10)
        wait_processed(w, len(events))
        entered = time.time()
        produce(settings, [Event(f"{d}-contract", "sales", d, "contract", entered, {"segment": "smb"}, None)
                           for d in ("deal-moved", "deal-stuck")])
        wait_processed(w, len(events) + 2)
        limit = httpx.get(f"{w.url}/items/deal-moved").json()["threshold_seconds"]
        assert 10 < limit < 120, limit
        time.sleep(3.0)  # checkpoints every second: the open items are in the changelog
    moved = time.time()
    assert moved < entered + limit, "the limit passed before the worker stopped: the test proves nothing"
    backlog = [Event(f"t-{i}", "support", f"ticket-{i}", "open", moved, {}, None) for i in range(20_000)]
    backlog.append(Event("deal-moved-won", "sales", "deal-moved", "won", moved, {"segment": "smb"}, None))
    produce(settings, backlog, batch=1)
    time.sleep(max(0.0, entered + limit + 2.0 - time.time()))  # both deals are past their limit now
    with w.start(timeout=120):
        records = read_topic(
            kafka, cfg["topics"]["alerts"],
            lambda r: any(decode_alert(x.value).entity_id == "deal-stuck" for x in r), timeout=150, idle=0,
        )
        time.sleep(2.0)  # a few more ticks
        records = read_topic(kafka, cfg["topics"]["alerts"], lambda r: False, timeout=5, idle=0)
    paged = [(a.entity_id, a.kind, a.status) for a in map(decode_alert, (r.value for r in records))
             if a.entity_id in ("deal-moved", "deal-stuck")]
    assert paged == [("deal-stuck", "stalled", "firing")], paged


def _ts(text: str) -> float:
    from monitor.events import parse_timestamp

    return parse_timestamp(text)


# ----------------------------------------------------------------------------- 2. broker restart


def test_broker_restart_under_load_the_worker_reconnects_and_loses_nothing(tmp_path):
    broker = KafkaProcess(tmp_path / "broker")
    broker.start(timeout=120)
    try:
        kafka = broker.bootstrap
        events = stream(300, seed=31, start=START, unit=DAY, stalls=6)
        cfg = base_settings(kafka, partitions=2, clock="event", session_timeout_seconds=6.0)
        expected = expected_alerts(write_events(tmp_path / "events.jsonl", events), cfg, 2, tmp_path)
        create_topics(kafka, list(cfg["topics"]["events"]), 2)
        settings = load_settings(None, **cfg)
        half = len(events) // 2
        with WorkerProcess(tmp_path, cfg).start(timeout=120) as w:
            produce(settings, events[:half], batch=1)
            wait_for(lambda: events_seen(w.url) >= half // 3, 60, "the worker busy")
            broker.stop()  # under load: the worker is still consuming and checkpointing
            down = time.monotonic()
            time.sleep(5)
            assert w.running(), f"the worker died with the broker:\n{w.log_tail()}"
            broker.start(timeout=120)
            outage = time.monotonic() - down
            produce(settings, events[half:], batch=1)
            back = time.monotonic()
            wait_processed(w, len(events), timeout=180)
            resumed = time.monotonic() - back
            assert httpx.get(f"{w.url}/health").status_code == 200
            got = read_topic(kafka, cfg["topics"]["alerts"], lambda r: len(alert_keys(r)) >= len(expected))
        assert alert_keys(got) == expected
        sequence_ok(got)
        print(f"\n[broker restart] {len(events)} events, outage {outage:.1f} s, all counted; "
              f"{len(expected)} alert changes = backtest; caught up {resumed:.1f} s after the second half was sent")
    finally:
        broker.stop()


# ----------------------------------------------------------------------------- 3. Alertmanager outage


def test_alertmanager_outage_buffers_alerts_and_delivers_firing_and_resolved_when_back(kafka, tmp_path,
                                                                                       own_alertmanager):
    am = own_alertmanager
    events = stream(160, seed=11, start=START, unit=DAY, stalls=4)
    cfg = with_alertmanager(base_settings(kafka, partitions=1, clock="event"), am)
    full_out, _ = backtest_file(events, cfg, 1, tmp_path, "full")
    changes = [decode_alert(x) for x in full_out.read_bytes().splitlines()]
    # split where the first alert that resolves has fired but not yet resolved
    resolved = next(a for a in changes if a.status == "resolved")
    split = next(i for i, e in enumerate(events) if e.timestamp >= _ts(resolved.at))
    part_a, part_b = events[:split], events[split:]
    a_out, _ = backtest_file(part_a, cfg, 1, tmp_path, "part-a")
    firing_a, firing_end = final_firing(a_out), final_firing(full_out)
    assert resolved.alert_id in firing_a and resolved.alert_id not in firing_end
    ids = {a.alert_id for a in changes}
    create_topics(kafka, list(cfg["topics"]["events"]), 1)
    settings = load_settings(None, **cfg)
    with WorkerProcess(tmp_path, cfg).start(timeout=120) as w:
        am.stop()  # Alertmanager down: its process is gone
        produce(settings, part_a, batch=5)
        wait_processed(w, len(part_a))
        buffered = wait_for(lambda: metric(w.url, "stagewatch_sink_buffered_alerts", sink="alertmanager"), 20,
                            "alerts buffered while Alertmanager is down")
        errors = metric(w.url, "stagewatch_sink_sent_total", sink="alertmanager", outcome="error")
        am.start(timeout=60)
        back = time.monotonic()
        wait_for(lambda: set(am_ids(am.url, ids)) == firing_a, 30, "buffered firing alerts delivered")
        delivered_in = time.monotonic() - back
        wait_for(lambda: metric(w.url, "stagewatch_sink_buffered_alerts", sink="alertmanager") == 0, 20,
                 "the buffer drained")
        # second outage: Alertmanager hangs (SIGSTOP keeps its memory) while the alert resolves
        assert am.proc is not None
        os.kill(am.proc.pid, signal.SIGSTOP)
        try:
            produce(settings, part_b, batch=5)
            wait_processed(w, len(events))
            buffered_b = wait_for(lambda: metric(w.url, "stagewatch_sink_buffered_alerts", sink="alertmanager"), 20,
                                  "the resolution buffered while Alertmanager hangs")
        finally:
            os.kill(am.proc.pid, signal.SIGCONT)
        wait_for(lambda: set(am_ids(am.url, ids)) == firing_end, 30,
                 "the resolution (and new firings) delivered after the hang")
        held = am_ids(am.url, ids)
    assert len(held) == len(set(held))
    print(f"\n[alertmanager outage] buffered {buffered:.0f} alerts ({errors:.0f} failed posts) while down, "
          f"delivered {delivered_in:.1f} s after it returned; {buffered_b:.0f} buffered during the hang, "
          f"resolution of {resolved.alert_id[:12]} delivered; lost 0, duplicates 0")


# ----------------------------------------------------------------------------- 4. poison input


def test_hostile_records_go_to_the_dlq_with_a_reason_and_every_good_event_is_processed(kafka, tmp_path):
    cfg = base_settings(kafka, partitions=1, clock="wall", tick_interval_seconds=1.0)
    topic = cfg["topics"]["events"][0]
    create_topics(kafka, [topic, cfg["topics"]["dlq"]], 1)
    records = hostile_records(random.Random(20260101), 400)
    good, bad = sum(h.good for h in records), sum(h.bad for h in records)
    with WorkerProcess(tmp_path, cfg).start(timeout=120) as w:
        producer = KafkaProducer(bootstrap_servers=kafka, max_request_size=2 * 1024 * 1024, linger_ms=20)
        for h in records:
            producer.send(topic, key=b"fuzz", value=h.value)
        producer.flush()
        producer.close()
        ready: list[int] = []

        def all_in() -> bool:
            ready.append(httpx.get(f"{w.url}/health", timeout=5).status_code)
            return metric(w.url, "stagewatch_dlq_records_total") >= bad and events_seen(w.url) >= good

        wait_for(all_in, 120, "every record accounted for")
        dlq = read_topic(kafka, cfg["topics"]["dlq"], lambda r: len(r) >= bad, timeout=60, idle=2)
        accepted = metric(w.url, "stagewatch_events_total", outcome="accepted")
        assert w.running() and httpx.get(f"{w.url}/health").status_code == 200
    assert set(ready) == {200}, "the worker stopped being ready during the fuzz"
    assert len(dlq) == bad and accepted == good
    assert all(dict(r.headers).get("reason") for r in dlq)
    kinds = sorted({h.kind for h in records})
    print(f"\n[poison] {len(records)} records ({', '.join(kinds)}): {bad} to the DLQ with a reason, "
          f"{good} good events accepted, worker ready throughout")


# ----------------------------------------------------------------------------- 5. cardinality attack


def test_a_cardinality_attack_keeps_memory_and_series_bounded_and_counts_the_overflow(kafka, tmp_path):
    cap = 20_000
    cfg = base_settings(kafka, partitions=1, clock="wall", tick_interval_seconds=5.0,
                        checkpoint_interval_seconds=5.0)
    cfg["engine"] = {**cfg["engine"], "max_open_items": cap, "max_workflows": 10, "max_stages_per_workflow": 10,
                     "max_segments_per_stage": 5, "recently_closed": cap}
    topic = cfg["topics"]["events"][0]
    create_topics(kafka, [topic], 1)
    total = int(os.environ.get("STAGEWATCH_ATTACK_EVENTS", "200000"))
    per_record = 500
    now = time.time()
    with WorkerProcess(tmp_path, cfg).start(timeout=120) as w:
        assert w.pid is not None
        rss_before = rss_kib(w.pid)
        producer = KafkaProducer(bootstrap_servers=kafka, max_request_size=4 * 1024 * 1024, linger_ms=50,
                                 batch_size=1024 * 1024, compression_type=None)
        started = time.monotonic()
        for start in range(0, total, per_record):
            batch = [{"event_id": f"a{i}", "workflow": f"wf-{i}", "entity_id": f"e{i}", "stage": f"st-{i}",
                      "timestamp": now - 100 + i * 1e-4, "attributes": {"segment": f"sg-{i}"}}
                     for i in range(start, start + per_record)]
            producer.send(topic, key=b"attack", value=encode(batch))
        producer.flush()
        producer.close()
        wait_for(lambda: events_seen(w.url) >= total, 600, f"{total} attack events processed", every=1.0)
        took = time.monotonic() - started
        time.sleep(6)  # a checkpoint of the capped items
        rss_after = rss_kib(w.pid)
        text = httpx.get(f"{w.url}/metrics").text
        overflow = {d: metric(w.url, "stagewatch_cardinality_overflow_total", dimension=d)
                    for d in ("workflow", "stage", "segment", "item")}
        open_items = httpx.get(f"{w.url}/health").json()["open_items"]
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    ec = load_settings(None, **cfg).engine
    pairs = ec.max_workflows * ec.max_stages_per_workflow
    # 7 gauges/counters per (workflow, stage); per segment: 4 baseline gauges + a 20-line histogram
    series_cap = 7 * pairs + 24 * pairs * ec.max_segments_per_stage + 300
    assert open_items == cap, "open items are capped by max_open_items"
    assert all(n > 0 for n in overflow.values()), overflow
    assert len(lines) <= series_cap
    grown = (rss_after - rss_before) / 1024
    assert grown < 400, f"RSS grew {grown:.0f} MiB for {cap} capped items"
    print(f"\n[cardinality] {total} distinct workflows/stages/segments/items in {total // per_record} records, "
          f"processed in {took:.1f} s ({total / took:,.0f} events/s); open items {open_items} (cap {cap}); "
          f"RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB (+{grown:.0f} MiB, "
          f"{(rss_after - rss_before) * 1024 / cap:,.0f} B per open item); /metrics {len(lines)} samples "
          f"(cap {series_cap}); overflow {overflow}")


# ----------------------------------------------------------------------------- 6. replays


def test_replaying_the_topic_twice_in_another_order_pages_nobody_twice(kafka, tmp_path):
    events = stream(600, seed=41, start=START, unit=DAY, stalls=8)
    cfg = base_settings(kafka, partitions=2, clock="event")
    path = write_events(tmp_path / "events.jsonl", events)
    expected = expected_alerts(path, cfg, 2, tmp_path)
    summary = run_backtest(path, None, load_settings(None, **cfg), partitions=2,
                           step=cfg["worker"]["tick_interval_seconds"], finish=False)
    create_topics(kafka, list(cfg["topics"]["events"]), 2)
    settings = load_settings(None, **cfg)
    replay = list(events)
    random.Random(3).shuffle(replay)
    with WorkerProcess(tmp_path, cfg).start(timeout=120) as w:
        produce(settings, events, batch=20)
        wait_processed(w, len(events))
        produce(settings, events, batch=20)  # the same file again
        produce(settings, replay, batch=20)  # and once more, shuffled
        wait_processed(w, 3 * len(events))
        accepted = metric(w.url, "stagewatch_events_total", outcome="accepted")
        repeats = metric(w.url, "stagewatch_events_total", outcome="duplicate") + metric(
            w.url, "stagewatch_events_total", outcome="late")
        got = read_topic(kafka, cfg["topics"]["alerts"], lambda r: len(alert_keys(r)) >= len(expected))
    assert accepted == summary.outcomes["accepted"]
    assert repeats >= 2 * len(events)
    assert alert_keys(got) == expected
    sequence_ok(got)
    assert len(got) == len(expected), "a replayed event published an alert again"
    print(f"\n[replay] {len(events)} events x3 (same order, shuffled): accepted {accepted:.0f} (= backtest), "
          f"duplicates/late {repeats:.0f}, {len(got)} alert records = {len(expected)} backtest changes")


# ----------------------------------------------------------------------------- 7. HTTP ingest


def test_http_ingest_requires_the_token_bounds_the_body_and_never_logs_the_token(kafka, tmp_path):
    token = secrets.token_hex(24)
    cfg = base_settings(kafka, partitions=1, clock="wall", tick_interval_seconds=1.0, ingest_token=token,
                        max_body_bytes=4096)
    create_topics(kafka, list(cfg["topics"]["events"]), 1)
    event = {"event_id": "h1", "workflow": "sales", "entity_id": "deal-http", "stage": "lead",
             "timestamp": time.time() - 5}
    with WorkerProcess(tmp_path, cfg).start(timeout=120) as w:
        url = f"{w.url}/events"
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.post(url, json=event).status_code == 401
        assert httpx.post(url, json=event, headers={"Authorization": f"Basic {token}"}).status_code == 401
        assert httpx.post(url, json=event, headers={"Authorization": f"Bearer {token[:-1]}x"}).status_code == 401
        assert httpx.post(url, json=event, headers={"Authorization": token}).status_code == 401
        big = httpx.post(url, content=b"[" + b" " * 5000 + b"]", headers=auth)
        assert big.status_code == 413
        bad = httpx.post(url, content=b'{"workflow": ', headers=auth)
        assert bad.status_code == 422 and "invalid JSON" in " ".join(bad.json()["rejected"])
        ok = httpx.post(url, json=event, headers=auth)
        assert ok.status_code == 202 and ok.json()["accepted"] == 1
        wait_for(lambda: httpx.get(f"{w.url}/items/deal-http").status_code == 200, 30, "the ingested event processed")
    log = w.log_path.read_text(errors="replace")
    assert token not in log, "the ingest token appears in the worker log"
    print(f"\n[ingest] 401 x4, 413, 422 with reason, 202 then processed; token absent from {len(log)} B of log")


# ----------------------------------------------------------------------------- 8. SASL/PLAIN


def test_sasl_plain_worker_and_producer_work_and_a_wrong_password_fails_clearly(tmp_path):
    password = secrets.token_hex(12)
    broker = KafkaProcess(tmp_path / "broker", sasl_users={"stagewatch": password})
    broker.start(timeout=120)
    try:
        events = stream(160, seed=11, start=START, unit=DAY, stalls=4)
        path = write_events(tmp_path / "events.jsonl", events)
        cfg = base_settings(broker.sasl_bootstrap, partitions=1, clock="event")
        cfg["kafka"] = {"bootstrap_servers": broker.sasl_bootstrap, "security_protocol": "SASL_PLAINTEXT",
                        "sasl_mechanism": "PLAIN", "sasl_username": "stagewatch", "sasl_password": password}
        expected = expected_alerts(path, cfg, 1, tmp_path)
        create_topics(broker.bootstrap, list(cfg["topics"]["events"]), 1)
        with WorkerProcess(tmp_path, cfg).start(timeout=120) as w:
            done = subprocess.run([sys.executable, "-m", "monitor.cli", "produce", str(path), "--config",
                                   str(w.config_path), "--batch", "10"], capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            got = read_topic(broker.bootstrap, cfg["topics"]["alerts"], lambda r: len(alert_keys(r)) >= len(expected))
            assert events_seen(w.url) == len(events)
        assert alert_keys(got) == expected
        assert password not in w.log_path.read_text(errors="replace")

        wrong = {**cfg, "kafka": {**cfg["kafka"], "sasl_password": "wrong-" + password}}
        wrong["worker"] = {**cfg["worker"], "app_id": cfg["worker"]["app_id"] + "-wrong"}
        bad_worker = WorkerProcess(tmp_path, wrong, name="worker-wrong-password")
        t0 = time.monotonic()
        with pytest.raises(StackError):
            bad_worker.start(timeout=25)
        refused_worker = time.monotonic() - t0
        t0 = time.monotonic()
        with pytest.raises(Exception) as err:
            produce(load_settings(None, **wrong), events[:5])
        refused_producer = time.monotonic() - t0
        assert "auth" in f"{type(err.value).__name__} {err.value}".lower()
        assert refused_producer < 60
        print(f"\n[sasl] worker over SASL_PLAINTEXT paged {len(expected)} alert changes = backtest; "
              f"`stagewatch produce` over SASL ok; wrong password: worker not ready after {refused_worker:.0f} s, "
              f"producer raised {type(err.value).__name__} after {refused_producer:.1f} s")
    finally:
        broker.stop()


# ----------------------------------------------------------------------------- 9. SIGTERM


def test_sigterm_commits_offsets_and_flushes_alerts_so_a_restart_changes_nothing(kafka, tmp_path, own_alertmanager):
    am = own_alertmanager
    events = stream(200, seed=51, start=START, unit=DAY, stalls=6)
    cfg = with_alertmanager(base_settings(kafka, partitions=2, clock="event", checkpoint_interval_seconds=30.0),
                            am, resend_interval_seconds=60.0)
    expected = expected_alerts(write_events(tmp_path / "events.jsonl", events), cfg, 2, tmp_path)
    full_out, _ = backtest_file(events, cfg, 2, tmp_path, "full")
    # SIGTERM while an alert fires that resolves later (the split of the outage test)
    # split the stream where an alert is firing in part A's own replay and resolves in part B
    changes = list(map(decode_alert, full_out.read_bytes().splitlines()))
    firing_a: set[str] = set()
    for cand in [a for a in changes if a.status == "resolved"][:10]:
        half = next(i for i, e in enumerate(events) if e.timestamp >= _ts(cand.at))
        a_out, _ = backtest_file(events[:half], cfg, 2, tmp_path, "part-a")
        firing_a = final_firing(a_out)
        if firing_a:
            break
    assert firing_a
    topic = cfg["topics"]["events"][0]
    create_topics(kafka, [topic], 2)
    settings = load_settings(None, **cfg)
    w = WorkerProcess(tmp_path, cfg)
    with w.start(timeout=120):
        produce(settings, events[:half], batch=5)
        wait_for(lambda: events_seen(w.url) >= half, 60, "part A processed", every=0.05)
        assert w.proc is not None
        proc = w.proc
        t0 = time.monotonic()
        w.stop()  # SIGTERM; SIGKILL only after 30 s
        stopped_in = time.monotonic() - t0
        assert proc.returncode != -signal.SIGKILL, "the worker needed SIGKILL"
        # the checkpoint interval is 30 s: only the shutdown path can have committed these offsets
        admin = KafkaAdminClient(bootstrap_servers=kafka)
        try:
            committed = {tp.partition: om.offset for tp, om in
                         admin.list_group_offsets(cfg["worker"]["app_id"])[cfg["worker"]["app_id"]].items() if tp.topic == topic}
        finally:
            admin.close()
        consumer_end = _end_offsets(kafka, topic, 2)
        # the alerts pending at SIGTERM reached Alertmanager before the process ended
        held = set(am_ids(am.url, {k[0] for k in expected}))
        w.start(timeout=120)
        produce(settings, events[half:], batch=5)
        wait_processed(w, len(events))
        got = read_topic(kafka, cfg["topics"]["alerts"], lambda r: len(alert_keys(r)) >= len(expected))
    assert committed == consumer_end, f"offsets committed at SIGTERM {committed}, end of topic {consumer_end}"
    assert held == firing_a, "alerts pending at SIGTERM were not flushed to Alertmanager"
    assert alert_keys(got) == expected
    sequence_ok(got)
    assert len(got) == len(expected), "an event was processed twice and re-published an alert"
    print(f"\n[sigterm] stopped in {stopped_in:.1f} s, offsets committed {committed} = end {consumer_end}, "
          f"{len(held)} firing alerts flushed to Alertmanager, {len(got)} alert records = backtest, no replay")


def _end_offsets(kafka: str, topic: str, partitions: int) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=kafka)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()
