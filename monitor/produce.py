"""``stagewatch produce``: send an events file to Kafka.

Events are grouped per partition with Kafka's default partitioner (murmur2 of ``entity_id``), so a
batched record (a JSON array) only ever holds events of its own partition — the worker checks that.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from monitor.config import Settings
from monitor.events import Event, encode

PACE_STEP = 1.0  # seconds slept at a time while waiting for an event's time (--live)


def live_timestamps(events: Iterable[Event], speed: float = 1.0, start: float | None = None) -> Iterator[Event]:
    """Shift event times so the first is now, keeping the gaps (divided by ``speed``)."""
    first: float | None = None
    base = start if start is not None else time.time()
    for ev in events:
        if first is None:
            first = ev.timestamp
        yield Event(
            ev.event_id,
            ev.workflow,
            ev.entity_id,
            ev.stage,
            base + (ev.timestamp - first) / speed,
            ev.attributes,
            ev.waiting_on,
        )


def when_due(events: Iterable[Event], before_wait: Callable[[], None]) -> Iterator[Event]:
    """Each event once the wall clock has reached its timestamp, never before (an event an hour ahead
    was sent after a minute). ``before_wait`` runs before each wait: nothing batched is held back while
    the next event's time is awaited. The wait is slept in steps of ``PACE_STEP``."""
    for ev in events:
        if ev.timestamp > time.time():
            before_wait()
            while (left := ev.timestamp - time.time()) > 0:
                time.sleep(min(left, PACE_STEP))
        yield ev


class KafkaUnavailable(ConnectionError):
    """Kafka could not be reached or refused us; the message says what to check."""


class Delivery:
    """Counts the records Kafka refused after the producer's retries: ``flush()`` does not raise for
    them, so without this check a failed send would be lost silently."""

    def __init__(self) -> None:
        self.failed = 0
        self.first: BaseException | None = None

    def watch(self, future: Any) -> None:
        future.add_errback(self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.failed += 1
        if self.first is None:
            self.first = exc

    def check(self, sent: int) -> None:
        if self.failed:
            raise KafkaUnavailable(
                f"{self.failed} of {sent} records were not delivered to Kafka: {type(self.first).__name__}: "
                f"{self.first}"
            )


def connect_producer(settings: Settings, **kwargs: Any) -> Any:
    """A kafka-python producer, or KafkaUnavailable naming the address and what to check."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from streams.app import kafka_client_kwargs

    try:
        return KafkaProducer(**kwargs, **kafka_client_kwargs(settings))
    except KafkaError as exc:
        raise kafka_unavailable(settings, exc) from exc


def kafka_unavailable(settings: Settings, exc: BaseException) -> KafkaUnavailable:
    """The error for a broker that cannot be reached, naming the address and what to check."""
    k = settings.kafka
    hint = (
        f"check the address and the SASL {k.sasl_mechanism} authentication (username/password)"
        if k.sasl_mechanism
        else "check the address (--bootstrap; `stagewatch up` prints it) and that the broker runs"
    )
    return KafkaUnavailable(
        f"cannot connect to Kafka at {k.bootstrap_servers} ({k.security_protocol}): {type(exc).__name__}: {exc}; "
        f"{hint}"
    )


def produce(
    settings: Settings,
    events: Iterable[Event],
    *,
    topic: str | None = None,
    batch: int = 1,
    rate: float | None = None,
    paced: bool = False,
    on_progress: Callable[[int], None] | None = None,
    max_events: int | None = None,
) -> int:
    """Send events; ``batch`` > 1 packs up to that many same-partition events per record.

    ``rate``: events per second at most. ``paced``: send each event when its timestamp is reached
    (for live demos, with ``live_timestamps``). Returns the number of events sent.
    """
    from streams.app import partition_for

    topic = topic or settings.topics.events[0]
    producer = connect_producer(settings, linger_ms=20, batch_size=256 * 1024, acks="all")
    parts = producer.partitions_for(topic)
    n_partitions = len(parts) if parts else settings.topics.partitions
    pending: dict[int, list[dict[str, Any]]] = {}
    pending_keys: dict[int, bytes] = {}
    delivery = Delivery()
    records = 0
    sent = 0
    started = time.monotonic()

    def flush_partition(p: int) -> None:
        nonlocal records
        evs = pending.pop(p, [])
        if evs:
            delivery.watch(producer.send(topic, key=pending_keys.pop(p), value=encode(evs), partition=p))
            records += 1

    def flush_all() -> None:
        for p in list(pending):
            flush_partition(p)
        producer.flush()

    stream: Iterable[Event] = itertools.islice(events, max_events)
    try:
        for ev in when_due(stream, flush_all) if paced else stream:
            key = ev.entity_id.encode()
            if batch <= 1:
                delivery.watch(producer.send(topic, key=key, value=encode(ev.to_wire())))
                records += 1
            else:
                p = partition_for(key, n_partitions)
                pending.setdefault(p, []).append(ev.to_wire())
                pending_keys.setdefault(p, key)
                if len(pending[p]) >= batch:
                    flush_partition(p)
            sent += 1
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            if on_progress is not None and sent % 100 == 0:
                on_progress(sent)
        flush_all()
    finally:
        producer.close()
    delivery.check(records)
    if on_progress is not None:
        on_progress(sent)
    return sent


def read_valid(
    path: Path, fmt: str = "auto", mapping: dict[str, Any] | None = None, on_bad: Callable[[Any], None] | None = None,
    keep: Iterable[str] = (),
) -> Iterator[Event]:
    """The valid events of a file; each bad record goes to ``on_bad`` (never silently dropped). ``keep``: see
    :func:`monitor.readers.read_events`."""
    from monitor.readers import read_events

    for ev, bad in read_events(path, fmt=fmt, mapping=mapping or {}, keep=keep):
        if ev is not None:
            yield ev
        elif on_bad is not None:
            on_bad(bad)
