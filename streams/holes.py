"""Records of a partition are applied in offset order, without holes.

The worker skips a record whose offset is at or below the last one applied (it is already part of the
recovered state). That is only sound if every record reaches the agent, and with Faust it does not
always: after a SIGKILL restart a CI run here had the first record after the committed offset never
reach the agent while the next ones did (faust-streaming#216 reports such skips around rebalances);
the checkpoint then covered the hole and the record was lost for good.

So when a record arrives past ``applied + 1``, the worker reads the missing offsets straight from the
broker with a plain consumer (no group) and applies them first. Seeking Faust's own consumer back was
tried and does not work: Faust drops re-read records below the offset its fetch loop last handed
over, and that loop is usually in the middle of a batch. Offsets that hold no record (a transaction
marker, a compacted record) simply come back empty.
"""

from __future__ import annotations

import time
from typing import Any

from monitor.config import Settings

FETCH_TIMEOUT = 15.0  # seconds to read a hole before giving up (the broker is unreachable)
TAIL_AFTER = 30.0  # seconds a partition's last few records may wait undelivered before they are read directly
TAIL_MAX = 1000  # ... at most this many: more is a backlog being worked through, not a skipped tail


def missing(applied: int | None, offset: int) -> tuple[int, int] | None:
    """The offsets [first, end) between the last applied record and this one, if any."""
    if applied is None or offset <= applied + 1:
        return None
    return applied + 1, offset


class TailWatch:
    """A skipped *last* record has no later record to reveal its hole. ``due`` says when a partition's
    log end has stayed a few records past its applied offset, with no progress, for ``after`` seconds:
    those records are then read directly (if the agent was merely busy, its later delivery of them is
    skipped as already applied)."""

    def __init__(self, after: float = TAIL_AFTER, most: int = TAIL_MAX) -> None:
        self.after = after
        self.most = most
        self.seen: dict[Any, tuple[int, float]] = {}  # partition -> (applied, since when) with records left

    def due(self, key: Any, applied: int | None, high: int | None, now: float) -> bool:
        if applied is None or high is None or not 0 < high - applied - 1 <= self.most:
            self.seen.pop(key, None)
            return False
        seen = self.seen.get(key)
        if seen is None or seen[0] != applied:
            self.seen[key] = (applied, now)
            return False
        if now - seen[1] >= self.after:
            del self.seen[key]
            return True
        return False


class HoleNotRead(RuntimeError):
    """The missing records could not be read from the broker in time."""


def fetch_range(settings: Settings, topic: str, partition: int, first: int, end: int,
                timeout: float = FETCH_TIMEOUT) -> list[Any]:
    """The records of ``topic``/``partition`` with offsets in [first, end), read with kafka-python
    (blocking: run it in a thread). Offsets without a record are simply absent from the result."""
    from kafka import KafkaConsumer, TopicPartition

    from streams.app import kafka_client_kwargs

    consumer = KafkaConsumer(**kafka_client_kwargs(settings), group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=4 * 1024 * 1024)
    tp = TopicPartition(topic, partition)
    out: list[Any] = []
    try:
        consumer.assign([tp])
        consumer.seek(tp, first)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                if record.offset >= end:
                    return out
                out.append(record)
            if consumer.position(tp) >= end:
                return out
        raise HoleNotRead(f"offsets {first}..{end - 1} of {topic}/{partition}: read {len(out)} records in "
                          f"{timeout:.0f} s, the broker did not return the rest")
    finally:
        consumer.close()
