"""What the workers of one group tell each other about their partitions.

Two judgements are made over every partition together (``streams.group``): a source's silence (each
partition sees a share of its events, so alone a quiet night of one share reads as an outage and a
real stop is called hours late) and who holds a ticket about a whole stage or source (one page for a
silent source, one ticket for a stage's shift or backlog). Within one worker the partitions' engines
are at hand. Workers of one group each hold some partitions, so each worker publishes, per partition
it owns, what those judgements need (``PartitionNews``: when its share of each source was last heard,
that share's learned event rate, the silences it called, the stage and source alerts it holds) on a
compacted topic (``<app_id>-peers``, one record per partition), and reads everyone's records into a
``PeerBoard`` the group consults alongside its own engines.

Two workers that see the same evidence reach the same verdict on a silence at the same moment, so the
page is not "whoever is first": the source is paged by the owner of the lowest-numbered partition
that has heard it (``PeerBoard.first_partition``), unless its clock is not there yet (``--clock event``:
a partition's time moves with its own events, and that partition may hear the source again before its
clock shows the silence): then the worker that found the silence pages it, and the other hears of that
hold before its own clock gets there. A designated partition that leaves the silence unpaged for
``TAKEOVER`` seconds (its worker stuck) hands it to the worker that found it. A stage's shift or backlog is found by each
partition's own detector at its own time; the first to find it tickets it, as within one worker, and
holding a ticket is published at once (two workers finding the same shift within one round trip to
the broker would both ticket it).

A record older than ``STALE_SECONDS`` (wall time) is ignored: its worker died and the partition's next
owner has not spoken yet (it does within ``PUBLISH_EVERY`` of taking the partition over).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import msgspec

from detectors.silence import SourceRate

log = logging.getLogger("stagewatch.peers")

PUBLISH_EVERY = 2.0  # seconds between a worker's records about each of its partitions
STALE_SECONDS = 60.0  # a record this old speaks for a worker that is gone
TAKEOVER = 5 * PUBLISH_EVERY  # a silence the designated partition leaves unpaged this long is paged by whoever found it
# ... designated only if its clock is this close to the silence's limit (ticks run every few seconds;
# an event clock far behind, replaying history slower here, would find the silence late or never)
CLOCK_SLACK = 300.0


class SourceNews(msgspec.Struct, array_like=True):
    heard: float | None  # the share's latest event, applied or in the lateness buffer
    applied: float | None  # ... applied
    rate: msgspec.Raw  # the share's learned event rate (``SourceRate.snapshot``, msgpack)
    silences: list[tuple[float, float]]  # (start, end) of the silences called; end=inf while silent


class PartitionNews(msgspec.Struct):
    worker: str  # who owns the partition (a process of the group)
    sent: float  # wall time
    clock: float | None  # the partition's time: its engine's last tick (the event clock's, with --clock event)
    sources: dict[str, SourceNews]
    holds: list[tuple[str, str, str | None]]  # (kind, workflow, stage): stage and source alerts firing here


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(PartitionNews)


def news_of(engine: Any, worker: str, sent: float) -> bytes:
    """A partition's record: what its engine knows of each source and which whole-stage alerts it holds."""
    sources = {
        name: SourceNews(wf.last_heard(), wf.last_ts, msgspec.Raw(_encoder.encode(wf.rate.snapshot())),
                         list(wf.silences))
        for name, wf in engine.workflows.items()
    }
    holds = [(a.kind, a.workflow, a.stage) for a in engine.active.values() if a.entity_id is None]
    return _encoder.encode(PartitionNews(worker, sent, engine.clock, sources, holds))


class RemoteShare:
    """One source's share in another worker's partition, as its latest record told it."""

    __slots__ = ("applied", "heard", "raw", "rate", "silences")

    def __init__(self, news: SourceNews, before: RemoteShare | None) -> None:
        self.heard = news.heard
        self.applied = news.applied
        self.silences = news.silences
        self.raw = bytes(news.rate)
        # restored once per change: a record repeats an unchanged rate every PUBLISH_EVERY
        self.rate: SourceRate = before.rate if before is not None and before.raw == self.raw else \
            SourceRate.restore(msgspec.msgpack.decode(self.raw))

    def silent_since(self, since: float) -> bool:
        return any(end >= since for _start, end in self.silences)


class RemotePartition:
    """A partition another worker owns: its shares of the sources and the alerts it holds."""

    def __init__(self, partition: int, news: PartitionNews, before: RemotePartition | None) -> None:
        self.partition = partition
        self.worker = news.worker
        self.sent = news.sent
        self.clock = news.clock
        self.sources: dict[str, RemoteShare] = {name: RemoteShare(src, None if before is None else before.sources.get(name))
                        for name, src in news.sources.items()}
        self.holds = {(kind, wf, stage) for kind, wf, stage in news.holds}


class PeerBoard:
    """The latest record of every partition the other workers own (``update``), as seen by one worker."""

    def __init__(self, me: str, clock: Any = time.time, stale: float = STALE_SECONDS) -> None:
        self.me = me
        self.clock = clock
        self.stale = stale
        self.partitions: dict[int, RemotePartition] = {}
        self.version = 0  # moves with every record taken: caches keyed by it stay correct

    def update_many(self, records: list[tuple[bytes | None, bytes | None]]) -> None:
        for key, value in records:
            self.update(key, value)

    def update(self, key: bytes | None, value: bytes | None) -> None:
        """Take one record of the peers topic (a tombstone or a malformed record drops the partition)."""
        if key is None:
            return
        try:
            partition = int(key)
        except ValueError:
            return
        old = self.partitions.pop(partition, None)
        self.version += 1
        if not value:
            return
        try:
            news = _decoder.decode(value)
            if news.worker != self.me:  # this worker's own partitions are at hand
                self.partitions[partition] = RemotePartition(partition, news, old)
        except (msgspec.DecodeError, ValueError, TypeError, KeyError):
            pass  # not a record this version understands: the partition counts as unheard

    def live(self, local: Any) -> list[RemotePartition]:
        """The fresh records of partitions not owned here (``local``: the partitions this worker owns),
        by partition."""
        cutoff = self.clock() - self.stale
        return [r for p, r in sorted(self.partitions.items()) if p not in local and r.sent >= cutoff]

    def heard_of(self, local: Any) -> dict[str, str]:
        """Partition -> the worker that owns it, of the fresh records (``/health``)."""
        return {str(r.partition): r.worker for r in self.live(local)}

    def shares(self, workflow: str, local: Any) -> list[tuple[int, RemoteShare]]:
        return [(r.partition, s) for r in self.live(local) if (s := r.sources.get(workflow)) is not None]

    def holds(self, key: tuple[str, str, str | None], local: Any) -> bool:
        return any(key in r.holds for r in self.live(local))

    def first_partition(self, workflow: str, local: Any) -> int | None:
        """The lowest-numbered partition of another worker that has heard ``workflow``, if any."""
        for p, share in self.shares(workflow, local):
            if share.heard is not None:
                return p
        return None

    def time_at(self, partition: int) -> float:
        """Where the partition's clock is now, at the latest: its last tick, plus the wall time since its
        record was sent (a wall clock moves that much; an event clock, replaying history, faster)."""
        r = self.partitions[partition]
        return -math.inf if r.clock is None else r.clock + max(0.0, self.clock() - r.sent)


class PeerReader:
    """Reads the peers topic from its start, for as long as the worker runs, in a thread of its own
    (kafka-python, no consumer group: every worker reads every record), and hands each record to
    ``deliver`` (the worker passes it to its event loop)."""

    def __init__(self, consumer_kwargs: dict[str, Any], topic: str, deliver: Any) -> None:
        self.kwargs = consumer_kwargs
        self.topic = topic
        self.deliver = deliver
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="stagewatch-peers", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def _run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = None
        while not self.stopping.is_set():
            try:
                if consumer is None:
                    consumer = KafkaConsumer(**self.kwargs, group_id=None, enable_auto_commit=False)
                    tp = TopicPartition(self.topic, 0)
                    consumer.assign([tp])
                    consumer.seek_to_beginning(tp)
                for records in consumer.poll(timeout_ms=500).values():
                    self.deliver([(r.key, r.value) for r in records])
            except Exception as exc:  # noqa: BLE001 - the broker is away: the board ages, try again
                log.warning("reading %s: %s: %s; retrying", self.topic, type(exc).__name__, exc)
                if consumer is not None:
                    consumer.close()
                    consumer = None
                self.stopping.wait(PUBLISH_EVERY)
        if consumer is not None:
            consumer.close()
