"""Ops feedback on alerts: "this page was false" / "this one was right".

Stored in Kafka (topic ``topics.feedback``), keyed by the item's ``entity_id`` and written to the
same partition number as the item's events, so the worker that owns the item's engine reads it
and nudges that stage's limit (``Engine.feedback``, bounded by ``engine.feedback_max_factor``).
``stagewatch backtest --compare ... --feedback FILE`` and ``report`` read an exported JSONL copy.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from monitor.config import Settings
from monitor.events import Alert, decode_alert, encode


class Feedback(msgspec.Struct):
    alert_id: str
    verdict: bool  # True: the alert was right; False: a false alert
    workflow: str
    stage: str
    segment: str
    entity_id: str
    waiting_on: str | None = None
    kind: str = "stalled"
    note: str = ""
    by: str = ""
    at: float = 0.0


def parse_verdict(text: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "right", "correct", "yes", "tp"):
        return True
    if t in ("false", "wrong", "no", "fp", "noise"):
        return False
    raise ValueError(f"verdict must be 'true' (the alert was right) or 'false' (a false alert), not {text!r}")


def from_alert(alert: Alert, verdict: bool, note: str = "", by: str = "") -> Feedback:
    if alert.entity_id is None or alert.stage is None or alert.segment is None:
        raise ValueError(f"alert {alert.alert_id} is about a whole stage or workflow ({alert.kind}); "
                         "feedback applies to item alerts (stalled, slow_stage)")
    return Feedback(alert.alert_id, verdict, alert.workflow, alert.stage, alert.segment, alert.entity_id,
                    alert.waiting_on, alert.kind, note, by, time.time())


def decode_feedback(raw: bytes) -> Feedback:
    return msgspec.json.decode(raw, type=Feedback)


def read_topic(settings: Settings, topic: str, timeout: float = 20.0) -> Iterator[Any]:
    """Every record of ``topic`` from its start to its end as of now (kafka-python records), within
    ``timeout`` seconds; KafkaUnavailable (with what to check) when the broker cannot be reached."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    from monitor.produce import kafka_unavailable
    from streams.app import kafka_client_kwargs

    try:
        consumer = KafkaConsumer(enable_auto_commit=False, consumer_timeout_ms=1000, **kafka_client_kwargs(settings))
    except KafkaError as exc:
        raise kafka_unavailable(settings, exc) from exc
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(consumer.position(tp) < end[tp] for tp in tps):
            for rec in consumer:
                yield rec
                if all(consumer.position(tp) >= end[tp] for tp in tps):
                    break
    except KafkaError as exc:
        raise kafka_unavailable(settings, exc) from exc
    finally:
        consumer.close()


def find_alert(settings: Settings, alert_id: str, timeout: float = 20.0) -> Alert | None:
    """The latest record of ``alert_id`` on the alerts topic (read from the start to the end)."""
    key = alert_id.encode()
    found: Alert | None = None
    for rec in read_topic(settings, settings.topics.alerts, timeout):
        if rec.key == key:
            found = decode_alert(rec.value)
    return found


def send_feedback(settings: Settings, fb: Feedback) -> None:
    from monitor.produce import Delivery, connect_producer
    from streams.app import partition_for

    producer = connect_producer(settings, acks="all")
    try:
        parts = producer.partitions_for(settings.topics.events[0])
        n = len(parts) if parts else settings.topics.partitions
        fb_parts = producer.partitions_for(settings.topics.feedback)
        if fb_parts and len(fb_parts) != n:
            raise ValueError(
                f"topic {settings.topics.feedback} has {len(fb_parts)} partitions, {settings.topics.events[0]} has "
                f"{n}: they must match (feedback goes to the partition of the item's events)"
            )
        key = fb.entity_id.encode()
        delivery = Delivery()
        delivery.watch(producer.send(settings.topics.feedback, key=key, value=encode(fb), partition=partition_for(key, n)))
        producer.flush()
        delivery.check(1)
    finally:
        producer.close()


def export_feedback(settings: Settings, path: Path, timeout: float = 20.0) -> int:
    """Copy the feedback records of the feedback topic to a JSONL file (for backtest --compare and
    report); the workers' own wake records on that topic (``streams.app.WAKE_KEY``) are not feedback."""
    from streams.app import WAKE_KEY

    n = 0
    with open(path, "wb") as out:
        for rec in read_topic(settings, settings.topics.feedback, timeout):
            if rec.key == WAKE_KEY:
                continue
            out.write(rec.value + b"\n")
            n += 1
    return n


def read_feedback(path: str | Path) -> Iterator[Feedback]:
    for i, line in enumerate(Path(path).read_bytes().splitlines(), 1):
        if line.strip():
            try:
                yield decode_feedback(line)
            except msgspec.DecodeError as exc:
                raise ValueError(f"{path}:{i}: not a feedback record: {exc}") from None


def verdicts(path: str | Path) -> dict[str, bool]:
    """alert_id -> the latest verdict."""
    return {fb.alert_id: fb.verdict for fb in read_feedback(path)}


def summarize(alert_ids: set[str], marks: dict[str, bool]) -> dict[str, Any]:
    """How many of a config's alerts ops marked right / false, and the precision that implies."""
    right = sum(1 for a in alert_ids if marks.get(a) is True)
    false = sum(1 for a in alert_ids if marks.get(a) is False)
    judged = right + false
    return {"marked_right": right, "marked_false": false, "unjudged": len(alert_ids) - judged,
            "precision_on_judged": right / judged if judged else None}
