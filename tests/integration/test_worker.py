"""The live worker against the real broker: parity with backtest, paging without a next event,
scale-out, and poison input."""

from __future__ import annotations

import json
import random
import time
import uuid
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from monitor.backtest import run_backtest
from monitor.config import load_settings
from monitor.events import Event, decode_alert, encode
from monitor.produce import produce
from streams.process import WorkerProcess

DAY = 86400.0


def stream(n_items: int, seed: int, start: float, unit: float, stalls: int = 4, open_stalls: int = 0) -> list[Event]:
    """Deals through lead -> qualification -> contract -> won, two segments; some stall in contract,
    and the last ``open_stalls`` of those never leave it (still firing when the stream ends)."""
    rng = random.Random(seed)
    out: list[Event] = []
    stall_ids = set(rng.sample(range(n_items // 2, n_items), stalls))
    never_won = set(sorted(stall_ids)[len(stall_ids) - open_stalls:]) if open_stalls else set()
    for i in range(n_items):
        seg = "enterprise" if i % 3 == 0 else "smb"
        scale = 3.0 if seg == "enterprise" else 1.0
        t = start + i * unit * 0.2
        ent = f"deal-{i}"
        for stage, typical in (("lead", 0.0), ("qualification", 1.0), ("contract", 2.0)):
            t += typical * scale * unit * rng.lognormvariate(0, 0.3)
            out.append(Event(f"{ent}-{stage}", "sales", ent, stage, t, {"segment": seg}, None))
        factor = 12.0 if i in stall_ids else 1.0
        t += 2.0 * scale * unit * rng.lognormvariate(0, 0.3) * factor
        if i not in never_won:
            out.append(Event(f"{ent}-won", "sales", ent, "won", t, {"segment": seg}, None))
    return sorted(out, key=lambda e: e.timestamp)


def base_settings(kafka: str, partitions: int, **worker) -> dict:
    uid = uuid.uuid4().hex[:10]
    return {
        "kafka": {"bootstrap_servers": kafka},
        "topics": {
            "events": [f"ev-{uid}"],
            "dlq": f"dlq-{uid}",
            "alerts": f"alerts-{uid}",
            "feedback": f"feedback-{uid}",
            "partitions": partitions,
        },
        "engine": {"warmup": 10, "allowed_lateness_seconds": 0, "silence_enabled": False, "backlog_enabled": False},
        "workflows": {"sales": {"terminal_stages": ["won"], "calendar": {"mode": "wall"}}},
        "worker": {"app_id": f"sw-{uid}", "tick_interval_seconds": 600.0, "checkpoint_interval_seconds": 1.0, **worker},
    }


def create_topics(kafka: str, names: list[str], partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        admin.close()


def read_topic(kafka: str, topic: str, until, timeout: float = 120.0, idle: float = 8.0):
    """Records of ``topic`` from the start, until ``until(records)`` holds and no record came for ``idle`` s."""
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=500)
    records = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            got = False
            for rec in consumer:
                records.append(rec)
                got = True
            if got:
                last = time.monotonic()
            if until(records) and time.monotonic() - last > idle:
                break
    finally:
        consumer.close()
    return records


def wait_assigned(workers: list[WorkerProcess], partitions: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assigned = []
        for w in workers:
            try:
                assigned += httpx.get(f"{w.url}/health", timeout=2).json().get("assigned", [])
            except httpx.HTTPError:
                pass
        if sorted(assigned) == list(range(partitions)):
            return
        time.sleep(0.5)
    raise AssertionError(f"partitions not assigned: {assigned}")


def alert_keys(records) -> set[tuple[str, str, str]]:
    return {(a.alert_id, a.status, a.at) for a in (decode_alert(r.value) for r in records)}


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, list[Event]]:
    events = stream(160, seed=11, start=1_767_225_600.0, unit=DAY)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(encode(e.to_wire()) + b"\n" for e in events))
    return path, events


def expected_alerts(path: Path, settings: dict, partitions: int, tmp_path: Path) -> set:
    out = tmp_path / f"expected-{partitions}.jsonl"
    run_backtest(path, out, load_settings(None, **settings), partitions=partitions,
                 step=settings["worker"]["tick_interval_seconds"], finish=False)
    lines = [decode_alert(line) for line in out.read_bytes().splitlines()]
    return {(a.alert_id, a.status, a.at) for a in lines}


def test_worker_with_event_clock_pages_exactly_what_backtest_pages(kafka, tmp_path, history):
    path, events = history
    cfg = base_settings(kafka, partitions=2, clock="event")
    expected = expected_alerts(path, cfg, 2, tmp_path)
    assert any(k for k in expected if k[1] == "firing"), "the stream must make the engine page"
    create_topics(kafka, list(cfg["topics"]["events"]), 2)
    with WorkerProcess(tmp_path, cfg).start(timeout=90) as w:
        wait_assigned([w], 2)
        produce(load_settings(None, **cfg), events, batch=20)
        got = read_topic(kafka, cfg["topics"]["alerts"], lambda r: len(alert_keys(r)) >= len(expected))
    assert alert_keys(got) == expected


def test_two_workers_in_one_group_page_the_same_as_one(kafka, tmp_path, history):
    path, events = history
    cfg = base_settings(kafka, partitions=2, clock="event")
    expected = expected_alerts(path, cfg, 2, tmp_path)
    create_topics(kafka, list(cfg["topics"]["events"]), 2)
    a = WorkerProcess(tmp_path, cfg, name="worker-a")
    b = WorkerProcess(tmp_path, cfg, name="worker-b")
    with a.start(timeout=90), b.start(timeout=90):
        wait_assigned([a, b], 2)
        owned = [httpx.get(f"{w.url}/health").json()["assigned"] for w in (a, b)]
        assert all(len(o) == 1 for o in owned), owned
        produce(load_settings(None, **cfg), events, batch=1)
        got = read_topic(kafka, cfg["topics"]["alerts"], lambda r: len(alert_keys(r)) >= len(expected))
        # each hears of the other's partition through the group's peers topic (``streams.peers``): what
        # a source's silence and the stage tickets are judged over
        heard = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(heard.get(w.name) for w in (a, b)):
            heard = {w.name: httpx.get(f"{w.url}/health").json()["peers"] for w in (a, b)}
            time.sleep(0.5)
    assert alert_keys(got) == expected
    assert {int(p) for p in heard["worker-a"]} == set(owned[1]), heard
    assert {int(p) for p in heard["worker-b"]} == set(owned[0]), heard
    assert set(heard["worker-a"].values()).isdisjoint(heard["worker-b"].values())  # two processes
    assert topic_config(kafka, f"{cfg['worker']['app_id']}-peers", ("cleanup.policy", "segment.ms")) == {
        "cleanup.policy": "compact", "segment.ms": "600000"}


def topic_config(kafka: str, topic: str, names: tuple[str, ...]) -> dict[str, str]:
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:  # {resource type: {name: {key: {"value": ...}}}}, the keys set on the topic
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    (configs,) = [by_name[topic] for by_name in described.values() if topic in by_name]
    return {k: v["value"] for k, v in configs.items() if k in names}


def test_a_stalled_item_pages_with_no_further_event(kafka, tmp_path):
    now = time.time()
    unit = 2.0  # "days" of two seconds: contract lasts ~4 s (smb)
    events = stream(60, seed=5, start=now - 400, unit=unit, stalls=0)
    events = [e for e in events if e.timestamp < now - 5]
    cfg = base_settings(kafka, partitions=1, clock="wall", tick_interval_seconds=0.5)
    create_topics(kafka, list(cfg["topics"]["events"]), 1)
    with WorkerProcess(tmp_path, cfg).start(timeout=90) as w:
        wait_assigned([w], 1)
        settings = load_settings(None, **cfg)
        produce(settings, events, batch=10)
        entered = time.time()
        produce(settings, [Event("stuck-1", "sales", "deal-stuck", "contract", entered, {"segment": "smb"}, None)])
        records = read_topic(
            kafka, cfg["topics"]["alerts"],
            lambda r: any(decode_alert(x.value).entity_id == "deal-stuck" for x in r), timeout=120, idle=0,
        )
        paged = [decode_alert(r.value) for r in records if decode_alert(r.value).entity_id == "deal-stuck"]
        assert paged and paged[0].kind == "stalled" and paged[0].status == "firing"
        item = httpx.get(f"{w.url}/items/deal-stuck").json()
        assert item["stalled"] is True and "stalled" in item["why"]
        # paged within a tick interval (+ delivery) of crossing the limit
        crossing = entered + paged[0].threshold_seconds
        assert time.time() >= crossing


def test_poison_records_go_to_the_dlq_and_the_worker_keeps_going(kafka, tmp_path):
    cfg = base_settings(kafka, partitions=1, clock="event")
    topic = cfg["topics"]["events"][0]
    create_topics(kafka, [topic], 1)
    with WorkerProcess(tmp_path, cfg).start(timeout=90) as w:
        wait_assigned([w], 1)
        producer = KafkaProducer(bootstrap_servers=kafka)
        poison = [b"\xff\xfe not utf8", b"{\"workflow\": 1}", b"[]", b"{" * 5000, b"[{\"workflow\":\"sales\"}]"]
        for p in poison:
            producer.send(topic, key=b"x", value=p)
        good = Event("g1", "sales", "deal-good", "lead", time.time(), {}, None)
        producer.send(topic, key=b"deal-good", value=encode(good.to_wire()))
        producer.flush()
        producer.close()
        dlq = read_topic(kafka, cfg["topics"]["dlq"], lambda r: len(r) >= len(poison), timeout=60, idle=1)
        # a bad element of a batch is kept on its own; anything else is kept byte for byte
        expected = [*poison[:-1], b'{"workflow":"sales"}']
        assert sorted(r.value for r in dlq) == sorted(expected)
        for r in dlq:
            headers = dict(r.headers)
            assert headers["reason"] and headers["source_topic"] == topic.encode()
            assert int(headers["source_offset"]) >= 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if httpx.get(f"{w.url}/items/deal-good").status_code == 200:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the good event after the poison was not processed")
        text = httpx.get(f"{w.url}/metrics").text
        assert 'stagewatch_dlq_records_total{reason_class="invalid_utf8"}' in text
        assert json.loads(httpx.get(f"{w.url}/health").text)["status"] == "ready"
        assert httpx.get(f"{w.url}/live").json() == {"status": "alive"}  # the liveness probe's path


def test_a_late_event_is_kept_in_the_dlq_with_its_reason_and_record(kafka, tmp_path):
    """An event older than its item's state, beyond the allowed lateness, is not applied: the worker
    keeps it in the DLQ with the reason and its record's offset instead of only counting it."""
    cfg = base_settings(kafka, partitions=1, clock="event")
    topic = cfg["topics"]["events"][0]
    create_topics(kafka, [topic], 1)
    now = time.time()
    moved = Event("m1", "sales", "deal-late", "proposal", now, {}, None)
    stale = Event("m0", "sales", "deal-late", "lead", now - 3600, {}, None)
    with WorkerProcess(tmp_path, cfg).start(timeout=90) as w:
        wait_assigned([w], 1)
        producer = KafkaProducer(bootstrap_servers=kafka)
        producer.send(topic, key=b"deal-late", value=encode(moved.to_wire()))
        meta = producer.send(topic, key=b"deal-late", value=encode(stale.to_wire())).get(timeout=30)
        producer.flush()
        producer.close()
        dlq = read_topic(kafka, cfg["topics"]["dlq"], lambda r: len(r) >= 1, timeout=60, idle=1)
        assert len(dlq) == 1
        headers = dict(dlq[0].headers)
        assert headers["reason"].startswith(b"late: deal-late entered proposal at ")
        assert headers["reason_class"] == b"late"
        assert headers["source_topic"] == topic.encode() and int(headers["source_offset"]) == meta.offset
        assert dlq[0].key == b"deal-late" and dlq[0].value == encode(stale.to_wire())  # the record's bytes
        item = httpx.get(f"{w.url}/items/deal-late").json()
        assert item["stage"] == "proposal"  # the state is the newer event's
        text = httpx.get(f"{w.url}/metrics").text
        assert 'stagewatch_dlq_records_total{reason_class="late"} 1.0' in text


def test_a_hole_in_a_partition_is_read_straight_from_the_broker(kafka):
    """``streams.holes.fetch_range`` on the real broker: exactly the records of the hole, in order;
    past the log end it gives up with a clear error instead of waiting forever."""
    from streams.holes import HoleNotRead, fetch_range

    cfg = base_settings(kafka, partitions=2)
    topic = cfg["topics"]["events"][0]
    create_topics(kafka, [topic], 2)
    producer = KafkaProducer(bootstrap_servers=kafka)
    for i in range(20):
        producer.send(topic, key=b"k", value=f"v{i}".encode(), partition=1)
    producer.flush()
    producer.close()
    settings = load_settings(None, **cfg)
    records = fetch_range(settings, topic, 1, 5, 12)
    assert [(r.offset, r.value) for r in records] == [(o, f"v{o}".encode()) for o in range(5, 12)]
    assert fetch_range(settings, topic, 1, 19, 20)[0].value == b"v19"
    with pytest.raises(HoleNotRead, match="offsets 18..24"):
        fetch_range(settings, topic, 1, 18, 25, timeout=2.0)
