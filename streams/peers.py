"""What the workers of one group tell each other about their partitions.

Two judgements are made over every partition together (``streams.group``): a source's silence (each
partition sees a share of its events, so alone a quiet night of one share reads as an outage and a
real stop is called hours late) and who holds a ticket about a whole stage or source (one page for a
silent source, one ticket for a stage's shift or backlog). Within one worker the partitions' engines
are at hand. Workers of one group each own some partitions, so each worker publishes, per partition
it owns, what those judgements need on a compacted topic (``<app_id>-peers``) and reads everyone's
records into a ``PeerBoard`` that the group consults alongside its own engines:

- key ``P`` (every ``PUBLISH_EVERY`` seconds, and at once when a ticket is taken or let go):
  ``PartitionNews``, the partition's owner, its clock, when its share of each source was last heard,
  the silences it called, the stage and source alerts it holds. A few dozen bytes a source;
- key ``P/WORKFLOW`` (every ``RATE_EVERY`` seconds): ``RateNews``, that share's learned event rate
  (``SourceRate``, ~6 KB; it moves with the hours of the week, not by the second).

Two workers that see the same evidence reach the same verdict on a silence at the same tick, so the
page is not "whoever is first": the source is paged by the owner of the lowest-numbered partition
that has heard it (``PeerBoard.first_partition``), unless its clock is not there yet (``--clock event``:
a partition's time moves with its own events, and that partition may hear the source again before its
clock shows the silence): then the worker that found the silence pages it, and the other hears of that
hold before its own clock gets there. A designated partition that leaves the silence unpaged for
``TAKEOVER`` seconds (its worker stuck) hands it to the worker that found it. A stage's shift or
backlog is found by each partition's own detector at its own time; the first to find it tickets it,
as within one worker, and holding a ticket is published at once (two workers finding the same shift
within one round trip to the broker would both ticket it).

A partition's record older than ``STALE_SECONDS`` (wall time) is no evidence of the source any more
(its worker died and the partition's next owner has not spoken yet; it does within ``PUBLISH_EVERY``
of restoring the partition), but the tickets it holds stand until the next owner's record replaces
it: that owner restores the partition with them.
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
RATE_EVERY = 60.0  # ... and between the records of each partition's learned source rates
STALE_SECONDS = 60.0  # a partition's record this old speaks for a worker that is gone
TAKEOVER = 5 * PUBLISH_EVERY  # a silence the designated partition leaves unpaged this long is paged by whoever found it
# ... designated only if its clock is this close to the silence's limit (ticks run every few seconds;
# an event clock far behind, replaying history slower here, would find the silence late or never)
CLOCK_SLACK = 300.0
READ_BACK = 15 * 60.0  # a starting worker reads the records of the last this many seconds (older: stale)
# the topic: compacted to one record per key, in segments rolled every 10 minutes (compaction never
# touches the open segment: at Kafka's default of 7 days a starting worker would read days of records)
TOPIC_CONFIG = {"segment.ms": "600000", "min.cleanable.dirty.ratio": "0.1"}


class SourceNews(msgspec.Struct, array_like=True):
    heard: float | None  # the share's latest event, applied or in the lateness buffer
    applied: float | None  # ... applied
    silences: list[tuple[float, float]]  # (start, end) of the silences called; end=inf while silent


class PartitionNews(msgspec.Struct, tag="partition"):
    worker: str  # who owns the partition (a process of the group)
    sent: float  # wall time
    clock: float | None  # the partition's time: its engine's last tick (the event clock's, with --clock event)
    sources: dict[str, SourceNews]
    holds: list[tuple[str, str, str | None]]  # (kind, workflow, stage): stage and source alerts firing here


class RateNews(msgspec.Struct, tag="rate"):
    worker: str
    sent: float
    rate: msgspec.Raw  # ``SourceRate.snapshot()``, msgpack


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(PartitionNews | RateNews)


def partition_news(engine: Any, worker: str, sent: float) -> bytes:
    """A partition's record: what its engine knows of each source and which whole-stage alerts it holds."""
    sources = {name: SourceNews(wf.last_heard(), wf.last_ts, list(wf.silences))
               for name, wf in engine.workflows.items()}
    holds = [(a.kind, a.workflow, a.stage) for a in engine.active.values() if a.entity_id is None]
    return _encoder.encode(PartitionNews(worker, sent, engine.clock, sources, holds))


def rate_news(rate: SourceRate, worker: str, sent: float) -> bytes:
    return _encoder.encode(RateNews(worker, sent, msgspec.Raw(_encoder.encode(rate.snapshot()))))


def news_of(partition: int, engine: Any, worker: str, sent: float, rates: Any = ()) -> list[tuple[bytes, bytes]]:
    """The records (key, value) that speak for one partition, with the rates of its sources ``rates``."""
    out = [(str(partition).encode(), partition_news(engine, worker, sent))]
    out += [(f"{partition}/{name}".encode(), rate_news(engine.workflows[name].rate, worker, sent)) for name in rates]
    return out


class RemoteShare:
    """One source's share in another worker's partition, as its latest records told it."""

    __slots__ = ("applied", "heard", "rate", "silences")

    def __init__(self, news: SourceNews, rate: SourceRate | None) -> None:
        self.heard = news.heard
        self.applied = news.applied
        self.silences = news.silences
        self.rate = rate  # None until its rate record is read

    def silent_since(self, since: float) -> bool:
        return any(end >= since for _start, end in self.silences)


class RemotePartition:
    """A partition another worker owns: its shares of the sources and the alerts it holds."""

    def __init__(self, partition: int, news: PartitionNews) -> None:
        self.partition = partition
        self.worker = news.worker
        self.sent = news.sent
        self.clock = news.clock
        self.news = news.sources
        self.holds = {(kind, wf, stage) for kind, wf, stage in news.holds}


class PeerBoard:
    """The latest records of every partition of the group, as one worker reads them (``update``); the
    group asks about the partitions it does not own (``local``: the partitions it does)."""

    def __init__(self, me: str, partitions: int, clock: Any = time.time, stale: float = STALE_SECONDS) -> None:
        self.me = me
        self.count = partitions  # of the events topic: records of others (a topic recreated smaller) are not read
        self.clock = clock
        self.stale = stale
        self.partitions: dict[int, RemotePartition] = {}
        self.rates: dict[tuple[int, str], tuple[bytes, SourceRate]] = {}  # (partition, workflow) -> (raw, rate)
        self.version = 0  # moves with every record taken: caches keyed by it stay correct

    def update_many(self, records: list[tuple[bytes | None, bytes | None]]) -> None:
        for key, value in records:
            self.update(key, value)

    def update(self, key: bytes | None, value: bytes | None) -> None:
        """Take one record of the peers topic (a tombstone or a record this version cannot read drops it)."""
        if key is None:
            return
        partition_text, _, workflow = key.decode("utf-8", "replace").partition("/")
        if not (partition_text.isascii() and partition_text.isdigit()) or int(partition_text) >= self.count:
            return
        partition = int(partition_text)
        self.version += 1
        try:
            news = _decoder.decode(value) if value else None
            if isinstance(news, PartitionNews):
                self.partitions[partition] = RemotePartition(partition, news)
            elif isinstance(news, RateNews) and workflow:
                raw = bytes(news.rate)
                known = self.rates.get((partition, workflow))
                if known is None or known[0] != raw:  # restored once per change
                    self.rates[(partition, workflow)] = (raw, SourceRate.restore(msgspec.msgpack.decode(raw)))
            elif workflow:
                self.rates.pop((partition, workflow), None)
            else:
                self.partitions.pop(partition, None)  # a tombstone: nobody speaks for it
        except Exception as exc:  # noqa: BLE001 - a record from another version: its evidence is unknown
            log.warning("peers record %r not read (%s: %s)", key, type(exc).__name__, exc)
            if workflow:
                self.rates.pop((partition, workflow), None)  # the partition's tickets stand

    def others(self, local: Any) -> list[RemotePartition]:
        """The records of the partitions this worker does not own, by partition."""
        return [r for p, r in sorted(self.partitions.items()) if p not in local]

    def live(self, local: Any) -> list[RemotePartition]:
        """... of those, the fresh ones (evidence of the sources)."""
        cutoff = self.clock() - self.stale
        return [r for r in self.others(local) if r.sent >= cutoff]

    def heard_of(self, local: Any) -> dict[str, str]:
        """Partition -> the worker that owns it, of the fresh records (``/health``)."""
        return {str(r.partition): r.worker for r in self.live(local)}

    def shares(self, workflow: str, local: Any) -> list[tuple[int, RemoteShare]]:
        """The fresh shares of ``workflow`` in other workers' partitions whose rate is known."""
        out = []
        for r in self.live(local):
            news = r.news.get(workflow)
            rate = self.rates.get((r.partition, workflow))
            if news is not None and rate is not None:
                out.append((r.partition, RemoteShare(news, rate[1])))
        return out

    def holder(self, key: tuple[str, str, str | None], local: Any) -> RemotePartition | None:
        """Another worker's partition holding this alert (stale or not: until its next owner speaks)."""
        return next((r for r in self.others(local) if key in r.holds), None)

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

    def bucket(self) -> int:
        """Changes when records may have gone stale (cache keys)."""
        return int(self.clock() // PUBLISH_EVERY)


class PeerReader:
    """Reads the peers topic, every partition of it, from ``READ_BACK`` seconds ago on, for as long as the
    worker runs, in a thread of its own (kafka-python, no consumer group: every worker reads every
    record), and hands the records to ``deliver`` (the worker passes them to its event loop)."""

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

    def _open(self) -> Any:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(**self.kwargs, group_id=None, enable_auto_commit=False)
        try:
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                raise RuntimeError(f"{self.topic} has no partitions yet")
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            since = int((time.time() - READ_BACK) * 1000)
            for tp, found in consumer.offsets_for_times({tp: since for tp in tps}).items():
                if found is None:
                    consumer.seek_to_end(tp)  # nothing that recent: only what comes next counts
                else:
                    consumer.seek(tp, found.offset)
        except Exception:
            consumer.close()
            raise
        return consumer

    def _run(self) -> None:
        consumer = None
        while not self.stopping.is_set():
            try:
                if consumer is None:
                    consumer = self._open()
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
