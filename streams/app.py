"""The Faust worker: events from Kafka → one engine per partition → alerts, metrics, DLQ.

Design (see ``streams/group.py`` for why one engine per partition):

- The agent reads raw bytes and decodes them itself, so a bad record is never silently acked and
  skipped: it goes to the DLQ topic with its original bytes, the reason, and where it came from.
- State: a Faust table (Kafka changelog, memory or RocksDB store) holds, per partition, every open
  item (key ``{p}/i/{entity_id}``) and the learned state (key ``{p}/learned`` + chunks). A checkpoint
  writes the items changed since the last one and the learned state, flushes the producer, and
  only then acks the events it covers: Faust commits offsets only for events whose effects are in
  the changelog, so a crash replays from the last checkpoint and loses nothing. Events already in
  a checkpoint are skipped by offset when they are redelivered.
- Clock: ``wall`` — a Faust timer ticks every engine every ``tick_interval_seconds`` (an open item
  pages within one interval of crossing its limit, with no further event for it); ``event`` — each
  partition ticks in fixed event-time steps as events arrive, exactly as ``stagewatch backtest``.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import math
import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import faust
import msgspec
from faust.exceptions import ConsumerNotStarted
from faust.types import TP
from kafka.partitioner.default import murmur2
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from detectors.drift import load_change_test
from monitor import metrics as metrics_mod
from monitor.backtest import partition_scope
from monitor.config import Settings
from monitor.engine import Engine, EventClock, EventRejected, check_not_future
from monitor.events import Alert, BadRecord, Event, decode_record, encode, encode_alert
from streams.checkpoint import CHUNK, checkpoint_records, recover
from streams.consumer import FastPathApp
from streams.group import EngineGroup
from streams.holes import TailWatch, fetch_range, missing
from streams.peers import PUBLISH_EVERY, RATE_EVERY, TOPIC_CONFIG, PeerBoard, PeerReader, news_of

log = logging.getLogger("stagewatch.worker")

PARTITION_CACHE = 1 << 16
EMPTY_HOLES_TOLERATED = 3  # holes that held no record before an input topic's holes are no longer read
# bytes fetched per partition at once (Faust's default is 1 MiB). aiokafka asks for a partition's next
# records only once the last fetch is consumed, so the agent waits out every fetch's round trip: with
# batched records of a few hundred events (~75 KB each) 1 MiB held only ~13 records and the agent sat
# idle half the time; 8 MiB still left it waiting 7-10 us an event (200k events on the event clock:
# 44k events/s), now 32 MiB: 56k. A fetch response stays within aiokafka's 50 MB in all.
FETCH_BYTES = 32 * 1024 * 1024
# the agent hands the event loop over (timers, web requests, the producer) at least this often: with
# ``streams.consumer``'s inline delivery nothing else would, while the stream's buffer holds records
LOOP_SLICE_SECONDS = 0.005
# a partition with records left to apply has made progress within this many seconds: it is working
# through a backlog (``Worker.behind``); beyond, its tail is transaction markers or a stuck tail
BEHIND_PROGRESS_SECONDS = 5.0
OUTPUT_WAIT_SECONDS = 10.0  # a checkpoint waits this long for its alerts and DLQ records to be delivered
IN_FLIGHT_PRUNE = 1000  # delivered ones are dropped from the list of outputs in flight past this many
WAKE_KEY = b"stagewatch-wake"  # key of the worker's own wake records on the feedback topic
WAKE_EVERY = 10.0  # seconds between wake records for a partition that still has no engine


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2, positive), as the Java client and kafka-python use it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def decode_safely(raw: bytes) -> tuple[list[Event], list[BadRecord]]:
    """``decode_record``, and should it ever raise, the whole record as one bad record: a poison
    record goes to the DLQ instead of stopping the agent."""
    try:
        return decode_record(raw)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the record's fault, not the worker's
        return [], [BadRecord(raw, f"undecodable record: {exc.__class__.__name__}: {str(exc)[:200]}")]


def kafka_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Security settings for kafka-python clients (producers in CLI and tests)."""
    k = settings.kafka
    out: dict[str, Any] = {"bootstrap_servers": k.bootstrap_servers.split(","), "security_protocol": k.security_protocol}
    if k.sasl_mechanism:
        out["sasl_mechanism"] = k.sasl_mechanism
        out["sasl_plain_username"] = k.sasl_username
        out["sasl_plain_password"] = k.sasl_password.get_secret_value() if k.sasl_password else None
    if k.ssl_cafile:
        out["ssl_cafile"] = str(k.ssl_cafile)
    if k.ssl_certfile:
        out["ssl_certfile"] = str(k.ssl_certfile)
    if k.ssl_keyfile:
        out["ssl_keyfile"] = str(k.ssl_keyfile)
    return out


def _faust_credentials(settings: Settings) -> Any:
    k = settings.kafka
    ssl_context = None
    if k.security_protocol in ("SSL", "SASL_SSL"):
        import ssl

        ssl_context = ssl.create_default_context(cafile=str(k.ssl_cafile) if k.ssl_cafile else None)
        if k.ssl_certfile:
            ssl_context.load_cert_chain(str(k.ssl_certfile), str(k.ssl_keyfile) if k.ssl_keyfile else None)
    if k.sasl_mechanism:
        password = k.sasl_password.get_secret_value() if k.sasl_password else ""
        if k.sasl_mechanism == "PLAIN":
            return faust.SASLCredentials(
                username=k.sasl_username, password=password, mechanism="PLAIN", ssl_context=ssl_context
            )
        return faust.SASLCredentials(
            username=k.sasl_username, password=password, mechanism=k.sasl_mechanism, ssl_context=ssl_context
        )
    if ssl_context is not None:
        return faust.SSLCredentials(ssl_context)
    return None


class _App(FastPathApp):
    """The Faust app (its consumer on ``streams.consumer``'s fast path), with the worker's shutdown
    run first: Faust's own stop waits for every event to be acked, and only a checkpoint acks them."""

    def __init__(self, worker: Worker, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stagewatch_worker = worker

    async def on_stop(self) -> None:
        await self._stagewatch_worker.shutdown()
        await super().on_stop()


class Worker:
    """Owns the Faust app, the partition engines, and the sinks."""

    def __init__(self, settings: Settings, *, extra_sinks: Iterable[Any] = (), config_path: Any = None) -> None:
        self.settings = settings
        load_change_test()  # before the first event, not in the middle of the stream
        self.loglevel = "info"  # what ``run_worker`` asks Faust for (``restore_log_level``)
        self.config_path = config_path
        self.config_mtime = _mtime(config_path)
        self.config_status: dict[str, Any] = {"path": str(config_path) if config_path else None, "applied": 0,
                                              "rejected": 0, "last_error": None, "needs_restart": []}
        w = settings.worker
        self.group = EngineGroup()
        self.clocks: dict[int, EventClock] = {}
        self.applied: dict[tuple[str, int], int] = {}  # (topic, partition) -> last offset applied
        self.progress_at: dict[tuple[str, int], float] = {}  # ... wall time of that, or of its recovery
        self.was_behind: set[int] = set()  # partitions behind at their last tick (``tick_time``)
        self.covered: dict[tuple[str, int], int] = {}  # ... last offset covered by a checkpoint
        self.pending: dict[int, list[Any]] = {}  # partition -> events not acked yet
        self.generations: dict[int, tuple[int, int]] = {}  # partition -> (learned-state generation, chunks)
        self.feedback_changed: set[int] = set()  # partitions whose learned state ops feedback changed since the last checkpoint
        # partition -> its engine's alert_changes in the last checkpoint: a stage alert fired on a tick, or a
        # silence another partition resolved, changes the learned state without an event (saved all the same)
        self.saved_alerts: dict[int, int] = {}
        self.tails = TailWatch()  # partitions whose last records stay undelivered
        self.empty_holes: dict[str, int] = {}  # input topic -> holes that held no record (``fill_hole``)
        self.woken: dict[int, float] = {}  # partition -> monotonic time its last wake record was sent
        self.restored_at: dict[int, float] = {}  # partition -> monotonic time restored, its alerts not re-sent yet
        # alerts and DLQ records handed to the producer whose delivery is not confirmed yet: the records
        # they come from are acked only once they are (``_outputs_delivered``)
        self.in_flight: list[asyncio.Future[Any]] = []
        self.learned_at: dict[int, float] = {}  # partition -> monotonic time of its last learned-state write
        self.checkpoint_lock = asyncio.Lock()
        self.ack_due = False  # pending holds events already covered (skipped on redelivery): ack them
        # the record and event being applied: an event the engine finds late as it arrives goes to the
        # DLQ with its record's offset, and as its record's bytes when the record is that one event
        self.applying_msg: Any = None
        self.applying_event: Event | None = None
        self.applying_whole = False
        self.partition_cache: OrderedDict[str, int] = OrderedDict()
        self.partitions = settings.topics.partitions
        self.started = time.time()
        self.registry = CollectorRegistry()
        self.event_clock = w.clock == "event"  # the worker section needs a restart: fixed for the run
        self.now = self._event_now if self.event_clock else time.time
        self.metrics = metrics_mod.create(self.registry, lambda: self.group, self.now)
        self.sinks: list[Any] = list(extra_sinks)
        self.stream: Any = None  # the agent's stream: checkpoints ack the events they cover
        self.alertmanager = None
        if settings.alertmanager.urls:
            from monitor.sinks import AlertmanagerSink

            self.alertmanager = AlertmanagerSink.from_config(settings.alertmanager, self.metrics)
            self.sinks.append(self.alertmanager)
        if w.store == "rocksdb":
            try:
                import rocksdict  # noqa: F401
            except ImportError:
                raise SystemExit("worker.store: rocksdb needs the RocksDB bindings: "
                                 "pip install 'stagewatch[rocksdb]' (or use store: memory)") from None
        store = "memory://" if w.store == "memory" else f"rocksdb://{w.data_dir}"
        self.app = _App(
            self,
            w.app_id,
            broker=[f"kafka://{b}" for b in settings.kafka.bootstrap_servers.split(",")],
            broker_credentials=_faust_credentials(settings),
            store=store,
            datadir=str(w.data_dir),
            web_host=w.web_host,
            web_port=w.web_port,
            web_bind=w.web_host,
            topic_partitions=self.partitions,
            topic_replication_factor=settings.topics.replication_factor,
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            key_serializer="raw",
            value_serializer="raw",
            table_standby_replicas=0,
            broker_commit_interval=1.0,
            broker_session_timeout=w.session_timeout_seconds,
            broker_heartbeat_interval=min(3.0, w.session_timeout_seconds / 3),
            producer_max_request_size=2 * CHUNK,
            consumer_max_fetch_size=FETCH_BYTES,
        )
        # internal=True: Faust creates a missing topic with these partitions when it subscribes
        self.events_topic = self.app.topic(
            *settings.topics.events, key_type=bytes, value_type=bytes, partitions=self.partitions, internal=True
        )
        self.dlq_topic = self.app.topic(settings.topics.dlq, key_type=bytes, value_type=bytes, partitions=self.partitions)
        self.alerts_topic = self.app.topic(
            settings.topics.alerts, key_type=bytes, value_type=bytes, partitions=self.partitions
        )
        self.feedback_topic = self.app.topic(
            settings.topics.feedback, key_type=bytes, value_type=bytes, partitions=self.partitions, internal=True
        )
        # what the workers of the group tell each other of their partitions (``streams.peers``): a source's
        # silence and the tickets about whole stages are judged over every partition, not only this
        # worker's (with one partition a second worker is idle: nothing to share)
        self.me = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.peers_topic: Any = None
        self.peer_reader: PeerReader | None = None
        self.rates_told = -math.inf  # monotonic time the partitions' source rates were last all published
        self.told: set[tuple[int, str]] = set()  # (partition, workflow) whose rate was published since
        if self.partitions > 1:
            self.group.board = PeerBoard(self.me, self.partitions)
            self.peers_topic = self.app.topic(f"{w.app_id}-peers", key_type=bytes, value_type=bytes, partitions=1,
                                              compacting=True, config=TOPIC_CONFIG)
        self.table = self.app.Table(
            f"{w.app_id}-state",
            default=None,
            key_type=bytes,
            value_type=bytes,
            partitions=self.partitions,
        )
        self._wire()

    # ------------------------------------------------------------------ wiring
    def _wire(self) -> None:
        app = self.app
        worker = self

        @app.agent(self.events_topic, name=f"{self.settings.worker.app_id}-events")
        async def consume(stream: Any) -> None:
            s = worker.stream = stream.noack()
            slice_end = time.perf_counter() + LOOP_SLICE_SECONDS
            async for event in s.events():
                m = event.message
                for _ in range(3):  # the tail check may have filled part of it meanwhile: look again
                    hole = worker.hole_before(m)
                    if hole is None or await worker.fill_hole(m.topic, m.partition, *hole):
                        break
                    if m.partition not in worker.group.engines:
                        # revoked while its hole was read: the partition's next owner takes the record
                        # (asked again, ``hole_before`` would restore the partition's engine here: a
                        # second owner, writing its checkpoints and judging its items)
                        break
                if m.partition not in worker.group.engines:
                    continue
                worker.handle(event)
                if worker.ack_due:  # not after every event: the scan of pending events is O(pending)
                    worker.ack_due = False
                    await worker.ack_covered(s)
                if time.perf_counter() >= slice_end:
                    await asyncio.sleep(0)
                    slice_end = time.perf_counter() + LOOP_SLICE_SECONDS

        @app.agent(self.feedback_topic, name=f"{self.settings.worker.app_id}-feedback")
        async def feedback(stream: Any) -> None:
            async for event in stream.events():
                if worker.apply_feedback(event):
                    # in a checkpoint before Faust acks the record (when the next one is taken): acked
                    # first, a crash in the seconds before the next checkpoint lost the verdict
                    await worker.checkpoint(force=True)

        if not self.event_clock:

            @app.timer(self.settings.worker.tick_interval_seconds)
            async def tick() -> None:
                worker.wake_unrestored()
                worker.resend_restored()
                fired = worker.tick(time.time())
                if fired:
                    await worker.checkpoint()

        @app.timer(self.settings.worker.checkpoint_interval_seconds)
        async def checkpoint() -> None:
            worker.wake_unrestored()
            worker.resend_restored()
            await worker.fill_tails()
            await worker.checkpoint()

        if self.config_path is not None:

            @app.timer(2.0)
            async def watch_config() -> None:
                worker.maybe_reload()

        @app.task
        async def declare_outputs() -> None:
            for topic in (worker.dlq_topic, worker.alerts_topic):
                await topic.maybe_declare()
            if worker.peers_topic is not None:
                try:
                    await worker.peers_topic.maybe_declare()
                except Exception as exc:  # noqa: BLE001 - it may exist already, or be created by an admin
                    log.warning("declaring %s: %s: %s", worker.peers_topic.get_topic_name(), type(exc).__name__, exc)
                worker.start_peers(asyncio.get_running_loop())

        if self.peers_topic is not None:

            @app.timer(PUBLISH_EVERY)
            async def tell_peers() -> None:
                worker.tell_peers()

        @app.task
        async def start_sinks() -> None:
            if worker.alertmanager is not None:
                asyncio.ensure_future(worker.alertmanager.run())

        @app.task
        async def quiet_logging() -> None:
            restore_log_level(worker.loglevel)

        # faust types receivers as (sender, *args, signal=..., **kw); it calls this one with the revoked set
        @app.on_partitions_revoked.connect  # type: ignore[arg-type]
        async def on_revoked(app: Any, revoked: Any, **kwargs: Any) -> None:
            for tp in revoked:
                eng = worker.group.engines.get(tp.partition)
                if eng is not None and worker.alertmanager is not None:
                    # the partition's next owner re-sends its firing alerts (``resend_restored``)
                    worker.alertmanager.forget(a.alert_id for a in eng.active_alerts())
                worker.restored_at.pop(tp.partition, None)
                worker.group.leave(tp.partition)
                worker.clocks.pop(tp.partition, None)
                worker.pending.pop(tp.partition, None)
                worker.applied.pop((tp.topic, tp.partition), None)
                worker.progress_at.pop((tp.topic, tp.partition), None)
                worker.was_behind.discard(tp.partition)
                worker.generations.pop(tp.partition, None)
                worker.woken.pop(tp.partition, None)
                worker.told = {k for k in worker.told if k[0] != tp.partition}

        self._web()

    # ---------------------------------------------------------------- engines
    def engine_for(self, partition: int) -> Engine:
        eng = self.group.engines.get(partition)
        if eng is None:
            eng = self._recover(partition)
            eng.on_late = functools.partial(self.late_event, partition)
            self.group.join(partition, eng)
            if self.alertmanager is not None:
                self.restored_at[partition] = time.monotonic()  # its firing alerts: ``resend_restored``
            if eng.restored:  # settings changed while it was down: what a reload of them fires or resolves
                self.publish(eng.restored)
                eng.restored = []
        return eng

    def resend_restored(self) -> None:
        """Send Alertmanager the alerts a restored partition holds firing: the sink's memory died with the
        last process (or stayed with the partition's last owner), and Alertmanager lets an alert expire
        that nobody re-sends. Not at once: the checkpoint may be older than resolutions the last process
        already sent (it checkpoints every few seconds), and the replay of the records after it resolves
        them again; sent before that, each would page again for a moment. So once the partition has
        caught up, with what is still firing then, or after two resend intervals at the latest (before
        Alertmanager expires what the last process sent: ``endsAt`` is four intervals ahead)."""
        if self.alertmanager is None or not self.restored_at:
            return
        now, waited = time.time(), time.monotonic()
        longest = 2 * self.alertmanager.resend_interval
        for p, since in list(self.restored_at.items()):
            eng = self.group.engines.get(p)
            if eng is not None and self.behind(p, now) and waited - since < longest:
                continue
            del self.restored_at[p]
            if eng is not None:
                self.alertmanager.submit(eng.active_alerts())

    def table_recovered(self) -> bool:
        rec = getattr(self.app.tables, "recovery", None)
        return bool(rec is not None and rec.completed.is_set() and not self.app.rebalancing)

    def wake_unrestored(self) -> None:
        """After a restart or a rebalance a partition's engine is restored at its first record; a quiet
        partition would keep its open items unjudged (no stall paged, no alert re-sent to Alertmanager)
        until its next event. So each assigned partition still without an engine gets a wake record on
        the co-partitioned feedback topic: Faust hands it to the agent only once the table is recovered
        and the streams run (restoring from a timer could read a table still being recovered)."""
        if not self.table_recovered():
            return
        now = time.monotonic()
        for p in self.assigned_partitions():
            if p in self.group.engines or now - self.woken.get(p, -math.inf) < WAKE_EVERY:
                continue
            self.woken[p] = now
            self.feedback_topic.send_soon(key=WAKE_KEY, value=b"", partition=p)

    def assigned_partitions(self) -> list[int]:
        events = set(self.settings.topics.events)
        return sorted({tp.partition for tp in self.app.consumer.assignment() if tp.topic in events})

    async def shutdown(self) -> None:
        """SIGTERM: checkpoint (so the restart replays nothing), then deliver the pending alerts."""
        if self.peer_reader is not None:
            self.peer_reader.stop()
        try:
            await self.checkpoint(force=True)
        except Exception:  # noqa: BLE001 - shutting down: the offsets left uncommitted replay safely
            log.exception("final checkpoint failed; the restart replays from the last one")
        if self.alertmanager is not None:
            delivered = await self.alertmanager.flush(self.settings.alertmanager.timeout_seconds * 2)
            self.alertmanager.stop()
            if not delivered:
                log.warning("shutdown: %d alerts not delivered to Alertmanager", self.alertmanager.buffered)

    def _recover(self, partition: int) -> Engine:
        rec = recover(partition, list(self.table.data.items()))
        if rec.problem is not None:
            log.error("partition %s: %s; relearning", partition, rec.problem)
        self.generations[partition] = rec.generation
        now = time.time()
        for topic in self.settings.topics.events:
            self.progress_at[(topic, partition)] = now
        if rec.manifest is not None:
            for topic, off in rec.manifest.get("applied", {}).items():
                self.applied[(topic, partition)] = off
                self.covered[(topic, partition)] = off
            clock_state = rec.manifest.get("clock")
            if clock_state is not None and self.event_clock:
                # the event clock is part of the state: ticks resume on the same schedule
                clock = self.clocks[partition] = EventClock(self.settings.worker.tick_interval_seconds)
                clock.next_tick, clock.last_ts = clock_state
                now = clock.last_ts if clock.last_ts is not None else now
        scope = partition_scope(partition, self.partitions)
        try:
            eng = Engine.restore_parts(rec.learned, list(rec.items.items()), self.settings, now, scope)
        except Exception as exc:  # noqa: BLE001 - an unreadable snapshot must not wedge the partition
            log.error("partition %s: the learned state cannot be read (%s: %s); relearning, open items kept",
                      partition, type(exc).__name__, exc)
            try:
                eng = Engine.restore_parts(None, list(rec.items.items()), self.settings, now, scope)
            except Exception as exc2:  # noqa: BLE001
                log.error("partition %s: the open items cannot be read either (%s: %s); starting empty",
                          partition, type(exc2).__name__, exc2)
                eng = Engine(self.settings, scope)
        if eng.dirty is None:  # else items the restore changed (Engine.restore_parts), to be written
            eng.dirty = set()
        if rec.learned is not None or rec.items:
            log.info("partition %s: recovered %d open items (and %d recently closed)", partition,
                     eng.open_items, len(rec.items) - eng.open_items)
        return eng

    # ---------------------------------------------------------------- hot path
    def handle(self, event: Any) -> None:
        """One record: decode, check, feed its events to the partition's engine, publish the alerts.
        The record is acked only once a checkpoint covers it (see ``ack_covered``)."""
        msg = event.message
        p = msg.partition
        eng = self.engine_for(p)  # first: recovering the partition restores its applied offsets
        pending = self.pending.get(p)
        if pending is None:
            pending = self.pending[p] = []
        pending.append(event)
        if msg.offset <= self.applied.get((msg.topic, p), -1):
            self.ack_due = True
            return  # already part of the recovered state
        self._apply_record(msg, eng)

    def _apply_record(self, msg: Any, eng: Engine) -> None:
        """Apply one record (a Faust message, or a record read straight from the broker) to ``eng``."""
        p = msg.partition
        tpkey = (msg.topic, p)
        events, bad = decode_safely(msg.value if msg.value is not None else b"")
        for b in bad:
            self.dead_letter(msg, b.raw, b.reason)
        out: list[Alert] = []
        clock = None
        if self.event_clock:
            clock = self.clocks.get(p)
            if clock is None:
                clock = self.clocks[p] = EventClock(self.settings.worker.tick_interval_seconds)
        key = msg.key
        wall = time.time()
        max_future = self.settings.engine.max_future_seconds
        one_partition = self.partitions == 1  # every entity hashes to partition 0: nothing to check
        times: list[float] = []
        self.applying_msg, self.applying_whole = msg, len(events) == 1 and not bad
        for ev in events:
            if not one_partition and (key is None or ev.entity_id.encode() != key) \
                    and self._partition_of(ev.entity_id) != p:
                self.dead_letter(
                    msg,
                    encode(ev.to_wire()),
                    f"entity_id {ev.entity_id!r} belongs to partition {self._partition_of(ev.entity_id)}, "
                    f"record is in partition {p}: a batched record must hold events keyed to its partition",
                )
                continue
            try:
                if clock is not None:
                    fired = clock.advance(eng, ev.timestamp)
                    if fired:
                        out.extend(fired)
                else:
                    check_not_future(ev.timestamp, wall, max_future)
                self.applying_event = ev
                fired = eng.process(ev)
            except EventRejected as exc:
                self.dead_letter(msg, encode(ev.to_wire()), str(exc))
                continue
            if fired:
                out.extend(fired)
            times.append(ev.timestamp)
        self.applying_msg = self.applying_event = None
        if times:
            self.metrics.observe_event_lags(wall, times)
        self.applied[tpkey] = msg.offset
        self.progress_at[tpkey] = wall
        if out:
            self.publish(out)

    def hole_before(self, msg: Any) -> tuple[int, int] | None:
        """Offsets of this record's partition that never reached the worker, if any (``streams.holes``)."""
        self.engine_for(msg.partition)  # restores the partition's applied offsets
        if not self._checks_holes(msg.topic):
            return None
        return missing(self.applied.get((msg.topic, msg.partition)), msg.offset)

    def _checks_holes(self, topic: str) -> bool:
        """False once ``topic`` has shown offsets without records (transaction markers) often enough."""
        return self.empty_holes.get(topic, 0) < EMPTY_HOLES_TOLERATED

    async def fill_hole(self, topic: str, p: int, first: int, end: int) -> bool:
        """Read the records [first, end) of ``topic``/``p`` straight from the broker and apply them in
        order. False: the partition moved on or was revoked meanwhile; True: filled, or given up."""
        try:
            records = await asyncio.to_thread(fetch_range, self.settings, topic, p, first, end)
        except Exception as exc:  # noqa: BLE001 - carry on: a stalled partition would page no one
            log.error("partition %s of %s: offsets %d..%d never reached the worker and could not be read "
                      "(%s); they are skipped", p, topic, first, end - 1, exc)
            return True
        if p not in self.group.engines or self.applied.get((topic, p)) != first - 1:
            return False  # revoked (and maybe re-assigned) while reading: the recovery replays it
        if not records:  # offsets without a record: a transaction marker, a compacted record
            n = self.empty_holes[topic] = self.empty_holes.get(topic, 0) + 1
            if n == EMPTY_HOLES_TOLERATED:
                log.warning("%s has offsets without records (a transactional producer, or compaction): its "
                            "holes are no longer checked", topic)
            return True
        log.warning("partition %s of %s: offsets %d..%d never reached the worker; read %d records from the "
                    "broker", p, topic, first, end - 1, len(records))
        self.metrics.refetched.inc(len(records))
        eng = self.engine_for(p)
        for record in records:
            self._apply_record(record, eng)
        # Faust commits only up to its first offset not acked: these were consumed, outside of it
        add_gap = getattr(self.app.consumer, "_add_gap", None)
        if add_gap is not None:
            await add_gap(TP(topic, p), first, end - 1)
        return True

    async def fill_tails(self) -> None:
        """Read the last records of a partition that Faust has left undelivered (``TailWatch``)."""
        consumer = getattr(self.app, "consumer", None)
        if consumer is None or not self.table_recovered():
            return
        now = time.monotonic()
        for tp in consumer.assignment():
            if (tp.topic not in self.settings.topics.events or tp.partition not in self.group.engines
                    or not self._checks_holes(tp.topic)):
                continue
            applied = self.applied.get((tp.topic, tp.partition))
            high = consumer.highwater(tp)
            if self.tails.due((tp.topic, tp.partition), applied, high, now):
                assert applied is not None and high is not None
                await self.fill_hole(tp.topic, tp.partition, applied + 1, high)

    def apply_feedback(self, event: Any) -> bool:
        """Ops judged an alert: nudge the limit of that stage in the engine that owns the item. True when a
        verdict changed the learned state (not for a wake record or a bad record)."""
        from monitor.engine import state_name
        from monitor.feedback import decode_feedback

        msg = event.message
        if msg.key == WAKE_KEY:
            # our own wake record (``wake_unrestored``): the streams run, so this partition's table
            # data is recovered; restoring its engine lets the timer judge its open items
            self.engine_for(msg.partition)
            return False
        try:
            fb = decode_feedback(msg.value or b"")
        except msgspec.DecodeError as exc:
            self.dead_letter(msg, msg.value or b"", f"invalid feedback record: {exc}")
            return False
        self.feedback_changed.add(msg.partition)  # saved by the next checkpoint even if no event comes
        factor = self.engine_for(msg.partition).feedback(
            fb.workflow, state_name(fb.stage, fb.waiting_on), fb.segment, fb.verdict)
        log.info("feedback on %s (%s): limit factor for %s/%s/%s now %.2f", fb.alert_id,
                 "right" if fb.verdict else "false", fb.workflow, fb.stage, fb.segment, factor)
        return True

    def _partition_of(self, entity_id: str) -> int:
        cache = self.partition_cache
        p = cache.get(entity_id)
        if p is None:
            p = cache[entity_id] = partition_for(entity_id.encode(), self.partitions)
            if len(cache) > PARTITION_CACHE:
                cache.popitem(last=False)
        return p

    def dead_letter(self, msg: Any, raw: bytes, reason: str) -> None:
        self._send_dlq(msg.key, raw, reason, msg.topic, msg.partition, msg.offset)

    def late_event(self, partition: int, ev: Event, reason: str) -> None:
        """An event the engine did not apply, older than its item's state beyond the allowed lateness
        (``Engine.on_late``): kept in the DLQ, as ``stagewatch backtest`` keeps it in its DLQ file. Found
        late as it arrived, it carries its record's offset (and is its record's bytes, unless the record
        was a batch); found when the lateness buffer released it, the event as read and its partition
        only (the buffer keeps events, not records)."""
        if ev is self.applying_event:
            msg = self.applying_msg
            self.dead_letter(msg, msg.value if self.applying_whole else encode(ev.to_wire()), reason)
            return
        raw = encode(ev.to_wire())
        topics = self.settings.topics.events
        self._send_dlq(ev.entity_id.encode(), raw, reason, topics[0] if len(topics) == 1 else None, partition, None)

    def _send_dlq(self, key: bytes | None, raw: bytes, reason: str, topic: str | None, partition: int,
                  offset: int | None) -> None:
        cls = self.metrics.record_dlq(reason)
        headers = [("reason", reason.encode()[:1000]), ("reason_class", cls.encode())]
        if topic is not None:
            headers.append(("source_topic", topic.encode()))
        headers.append(("source_partition", str(partition).encode()))
        if offset is not None:
            headers.append(("source_offset", str(offset).encode()))
        self._sending(self.dlq_topic.send_soon(key=key, value=raw, headers=headers))

    def _sending(self, sent: Any) -> None:
        if isinstance(sent, asyncio.Future):
            self.in_flight.append(sent)
            if len(self.in_flight) > IN_FLIGHT_PRUNE:
                self.in_flight = [f for f in self.in_flight if not f.done()]

    async def _outputs_delivered(self) -> bool:
        """Whether every alert and DLQ record published so far has reached the broker. Faust's producer
        flush returns after a tenth of a second without a completed send, and does not count a message
        being handed to the client: acked after it alone, the records they came from were committed
        while a crash could still lose them."""
        pending = [f for f in self.in_flight if not f.done()]
        if pending:
            _done, waiting = await asyncio.wait(pending, timeout=OUTPUT_WAIT_SECONDS)
            pending = list(waiting)
        failed = sum(1 for f in self.in_flight if f.done() and not f.cancelled() and f.exception() is not None)
        if failed:  # the producer gave up on them; holding the input back would stop the partition for good
            log.error("%d alerts or DLQ records could not be delivered to Kafka", failed)
        self.in_flight = pending
        if pending:
            log.warning("%d alerts or DLQ records not yet delivered to Kafka after %.0f s: the records they "
                        "come from are acked later", len(pending), OUTPUT_WAIT_SECONDS)
        return not pending

    def publish(self, alerts: list[Alert]) -> None:
        whole = False
        for a in alerts:
            self._sending(self.alerts_topic.send_soon(key=a.alert_id.encode(), value=encode_alert(a)))
            self.metrics.alerts_published.labels(kind=a.kind, status=a.status).inc()
            whole = whole or a.entity_id is None
        for sink in self.sinks:
            sink.submit(alerts)
        if whole:  # a ticket about a whole stage or source taken or let go: the other workers hear it at once
            self.tell_peers()

    def start_peers(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read what the other workers say of their partitions into the group's board."""
        board = self.group.board
        assert self.peers_topic is not None and board is not None
        self.peer_reader = PeerReader(
            kafka_client_kwargs(self.settings), self.peers_topic.get_topic_name(),
            lambda records: loop.call_soon_threadsafe(self.peer_records, records),
        )
        self.peer_reader.start()

    def peer_records(self, records: list[tuple[bytes | None, bytes | None]]) -> None:
        """Records of the peers topic, on the event loop: a silence paged here ends when another worker
        hears the source again."""
        assert self.group.board is not None
        self.group.board.update_many(records)
        ended = self.group.silences_heard_elsewhere()
        if ended:
            self.publish(ended)

    def tell_peers(self) -> None:
        """Each of this worker's partitions: what the others need of it (``streams.peers.news_of``)."""
        if self.peers_topic is None:
            return
        now = time.time()
        if time.monotonic() - self.rates_told >= RATE_EVERY:
            self.rates_told = time.monotonic()
            self.told.clear()
        for p, eng in self.group.engines.items():
            untold = [wf for wf in eng.workflows if (p, wf) not in self.told]  # all, every RATE_EVERY
            self.told.update((p, wf) for wf in untold)
            for key, value in news_of(p, eng, self.me, now, untold):
                self.peers_topic.send_soon(key=key, value=value)

    def tick(self, now: float) -> int:
        started = time.perf_counter()
        fired = 0
        for p, eng in list(self.group.engines.items()):
            at = self.tick_time(p, eng, now)
            if at is None:
                continue
            out = eng.tick(at)
            if out:
                fired += len(out)
                self.publish(out)
        self.metrics.tick_duration.observe(time.perf_counter() - started)
        return fired

    def tick_time(self, p: int, eng: Engine, now: float) -> float | None:
        """``now`` for partition ``p``'s engine, unless the partition is working through a backlog:
        then the newest event time it applied (None: nothing applied yet). An item whose next event
        waits in the worker's own backlog (after a restart, an outage, a burst) is not stalled, and a
        source whose events wait there is not silent; what the applied events show stalled still pages.
        The wall clock returns a tick after the backlog is gone: a worker at its capacity finds no record
        left from its last fetch for a moment while the broker holds the next ones."""
        was = p in self.was_behind
        if self.behind(p, now):
            self.was_behind.add(p)
        else:
            self.was_behind.discard(p)
            if not was:
                return now
        return None if eng.max_ts is None else min(now, eng.max_ts)

    def behind(self, p: int, now: float) -> bool:
        """Partition ``p`` has records the worker has not applied yet and is still applying records
        (or was recovered) within ``BEHIND_PROGRESS_SECONDS``: a tail that makes no progress is
        transaction markers or a tail Faust holds back (``fill_tails``), not a backlog."""
        for topic in self.settings.topics.events:
            since = self.progress_at.get((topic, p))
            if since is None or now - since > BEHIND_PROGRESS_SECONDS:
                continue
            lag = self.lag(topic, p)
            if lag is None or lag > 0:  # None: the consumer has not fetched it yet
                return True
        return False

    def lag(self, topic: str, p: int) -> int | None:
        """Records of ``topic``/``p`` on the broker past the last one applied (None: not known yet;
        0 when the partition is not, or no longer, assigned to this worker)."""
        consumer = getattr(self.app, "consumer", None)
        if consumer is None:
            return None
        try:
            high = consumer.highwater(TP(topic, p))
        except ConsumerNotStarted:
            return None
        except (AssertionError, KeyError):  # aiokafka: not assigned (a rebalance under way, a smaller topic)
            return 0
        return None if high is None else max(0, high - self.applied.get((topic, p), -1) - 1)

    def _event_now(self) -> float:
        return max((c.last_ts or 0.0 for c in self.clocks.values()), default=0.0) or time.time()

    # ------------------------------------------------------------ hot reload
    def maybe_reload(self) -> bool:
        """Apply a changed settings file without a restart, keeping everything learned.

        Invalid settings are rejected with the reason (``/config``, the log, a metric) and the old
        ones stay in force. Kafka, topics, worker and Alertmanager settings need a restart: they are
        reported, not applied.
        """
        from monitor.config import ConfigError, load_settings

        mtime = _mtime(self.config_path)
        if mtime == self.config_mtime:
            return False
        self.config_mtime = mtime
        try:
            new = load_settings(self.config_path)
        except ConfigError as exc:
            self.config_status["rejected"] += 1
            self.config_status["last_error"] = str(exc)
            self.metrics.config_reloads.labels(outcome="rejected").inc()
            log.error("settings file rejected, the running settings stay in force: %s", exc)
            return False
        old = self.settings
        # (the Alertmanager sink is built once, at the start: its URLs and intervals need a restart too)
        restart = [k for k in ("kafka", "topics", "worker", "alertmanager") if getattr(new, k) != getattr(old, k)]
        # what needs a restart keeps its running value; the rest applies now
        self.settings = new.model_copy(update={k: getattr(old, k) for k in restart})
        for eng in self.group.engines.values():
            changed = eng.reconfigure(self.settings)
            if changed:
                self.publish(changed)
        self.config_status.update(applied=self.config_status["applied"] + 1, last_error=None, needs_restart=restart)
        self.metrics.config_reloads.labels(outcome="applied").inc()
        log.warning("settings reloaded from %s%s", self.config_path,
                    f"; changes to {', '.join(restart)} need a restart" if restart else "")
        return True

    def update_consumer_lag(self) -> None:
        consumer = getattr(self.app, "consumer", None)
        if consumer is None:
            return
        self.metrics.consumer_lag.set(sum(self.lag(tp.topic, tp.partition) or 0 for tp in consumer.assignment()
                                          if tp.topic in self.settings.topics.events))

    # -------------------------------------------------------------- checkpoint
    def _write(self, writes: list[tuple[int, bytes, bytes | None]], partition: int, key: bytes,
               value: bytes | None) -> None:
        """Set a table key locally now; its changelog record goes out with the checkpoint's batch."""
        data: Any = self.table.data
        if value is None:
            data.pop(key, None)
        elif hasattr(data, "_db_for_partition"):
            # RocksDB: its store takes a key's partition from the stream event being processed, and a
            # checkpoint runs outside of one (a timer, a tick, shutdown): every write failed
            data._db_for_partition(partition).put(key, value)
            data._key_index[key] = partition
        else:
            data[key] = value
        writes.append((partition, key, value))

    async def _send_changelog(self, writes: list[tuple[int, bytes, bytes | None]]) -> None:
        """Send a checkpoint's changelog records straight to the Kafka producer's batches (Faust's
        ``send_changelog`` queues one message at a time) and wait until all are acknowledged."""
        if not writes:
            return
        topic = self.table.changelog_topic.get_topic_name()
        producer = self.app.producer
        futures = [await producer.send(topic, key, value, partition, None, None) for partition, key, value in writes]
        await asyncio.gather(*futures)

    async def checkpoint(self, force: bool = False) -> None:
        """Every ``learned_checkpoint_seconds`` (or when forced) write the changed items and the
        learned state with the offsets they cover, flush, then ack those events. Items and learned
        state always go together (``streams.checkpoint``: even after a crash halfway through), so a
        recovery replays exactly the events after those offsets."""
        async with self.checkpoint_lock:  # the timer, a paging tick and shutdown may all ask at once
            await self._checkpoint(force)

    async def _checkpoint(self, force: bool) -> None:
        marks: dict[tuple[str, int], int] = {}
        writes: list[tuple[int, bytes, bytes | None]] = []
        now = time.monotonic()
        for p, eng in list(self.group.engines.items()):
            applied = {t: o for (t, pp), o in self.applied.items() if pp == p}
            due = self.learned_at.get(p, -math.inf) + self.settings.worker.learned_checkpoint_seconds
            if not force and now < due and eng.dirty:
                continue  # items and learned state go together: both then stand at the same offsets
            dirty = eng.dirty or set()
            eng.dirty = set()
            delta = [(entity_id, eng.export_item(entity_id)) for entity_id in dirty]
            if not delta and p not in self.feedback_changed and eng.alert_changes == self.saved_alerts.get(p) \
                    and all(self.covered.get((t, p)) == o for t, o in applied.items()):
                continue  # nothing changed since the last checkpoint
            self.feedback_changed.discard(p)
            self.saved_alerts[p] = eng.alert_changes
            self.learned_at[p] = now
            manifest: dict[str, Any] = {"applied": applied}
            clock = self.clocks.get(p)
            if clock is not None:
                manifest["clock"] = [clock.next_tick, clock.last_ts]
            old = self.generations.get(p, (0, 0))
            records, n = checkpoint_records(p, old[0] + 1, old, eng.snapshot_learned(), delta, manifest)
            for key, value in records:
                self._write(writes, p, key, value)
            self.generations[p] = (old[0] + 1, n)
            for t, o in applied.items():
                marks[(t, p)] = o
        await self._send_changelog(writes)
        if marks:
            await self.app.producer.flush()
            if not await self._outputs_delivered():
                return  # covered (and acked) at a later checkpoint, once they are delivered
            self.covered.update(marks)
            if self.stream is not None:
                await self.ack_covered(self.stream)

    async def ack_covered(self, stream: Any) -> None:
        """Ack (so Faust may commit) the events whose effects are in a flushed checkpoint."""
        for p, events in list(self.pending.items()):
            if not events:
                continue
            keep = []
            for ev in events:
                m = ev.message
                if m.offset <= self.covered.get((m.topic, p), -1):
                    await stream.ack(ev)
                else:
                    keep.append(ev)
            self.pending[p] = keep

    # --------------------------------------------------------------------- web
    def _web(self) -> None:
        app = self.app
        worker = self
        settings = self.settings

        def ready() -> bool:
            return worker.table_recovered()

        @app.page("/health")
        class Health(faust.web.View):
            async def get(self, request: Any) -> Any:
                ok = ready()
                assigned = worker.assigned_partitions() if ok else []
                return self.json(
                    {"status": "ready" if ok else "recovering", "assigned": assigned,
                     "engines": sorted(worker.group.engines), "open_items": worker.group.open_items,
                     "events": worker.group.events_taken(),
                     # the other workers' partitions this one hears of (``streams.peers``)
                     "peers": worker.group.board.heard_of(worker.group.engines) if worker.group.board else {}},
                    status=200 if ok else 503,
                )

        @app.page("/live")
        class Live(faust.web.View):
            """Liveness: the event loop answers. Not readiness: a worker restoring partitions it took over
            (minutes, after a failover) is alive, and killing it then starts the next rebalance."""

            async def get(self, request: Any) -> Any:
                return self.json({"status": "alive"})

        @app.page("/metrics")
        class Metrics(faust.web.View):
            async def get(self, request: Any) -> Any:
                from aiohttp import web as aioweb

                try:  # read at scrape time, like every other state-backed metric
                    worker.update_consumer_lag()
                except Exception:  # noqa: BLE001 - e.g. a rebalance mid-scrape: keep the last value
                    log.debug("consumer lag not updated", exc_info=True)
                return aioweb.Response(body=generate_latest(worker.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        @app.page("/items/{entity_id}")
        class ItemPage(faust.web.View):
            async def get(self, request: Any, entity_id: str) -> Any:
                view = worker.group.item_view(entity_id, worker.now())
                if view is None:
                    return self.json({"error": f"no open item {entity_id!r} on this worker"}, status=404)
                return self.json(msgspec.to_builtins(view))

        @app.page("/baselines")
        class Baselines(faust.web.View):
            async def get(self, request: Any) -> Any:
                views = sorted(worker.group.baseline_views(), key=lambda v: (v.workflow, v.stage, v.segment))
                return self.json([msgspec.to_builtins(v) for v in views])

        @app.page("/feedback")
        class FeedbackPage(faust.web.View):
            async def get(self, request: Any) -> Any:
                """Limit factors ops feedback has set, per partition: why a stage pages later than learned."""
                return self.json({str(p): [{"workflow": k[0], "stage": k[1], "segment": k[2], "factor": f}
                                           for k, f in eng.feedback_factor.items()]
                                  for p, eng in worker.group.engines.items()})

            async def post(self, request: Any) -> Any:
                from monitor.feedback import from_alert, parse_verdict

                if token is None:
                    return self.json({"error": "feedback is disabled: set worker.ingest_token"}, status=403)
                auth = request.headers.get("Authorization", "")
                given = auth[7:] if auth.startswith("Bearer ") else ""
                if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
                    return self.json({"error": "missing or wrong bearer token"}, status=401)
                try:
                    body = msgspec.json.decode(await request.content.read(65536))
                    verdict = parse_verdict(str(body["verdict"]))
                    aid = str(body["alert_id"])
                except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
                    return self.json({"error": f"expected {{alert_id, verdict}}: {exc}"}, status=422)
                alert = next((a for a in worker.group.active_alerts() if a.alert_id == aid), None)
                if alert is None:
                    return self.json({"error": f"no active alert {aid} here; for resolved alerts use "
                                               "`stagewatch feedback`"}, status=404)
                try:
                    fb = from_alert(alert, verdict, str(body.get("note", ""))[:500], str(body.get("by", ""))[:100])
                except ValueError as exc:
                    return self.json({"error": str(exc)}, status=422)
                key = fb.entity_id.encode()
                await app.send(settings.topics.feedback, key=key, value=msgspec.json.encode(fb),
                               partition=partition_for(key, worker.partitions))
                return self.json({"accepted": aid}, status=202)

        @app.page("/config")
        class Config(faust.web.View):
            async def get(self, request: Any) -> Any:
                return self.json(worker.config_status)

        @app.page("/stages")
        class Stages(faust.web.View):
            async def get(self, request: Any) -> Any:
                views = sorted(worker.group.stage_views(worker.now()), key=lambda v: (v.workflow, v.stage))
                return self.json([msgspec.to_builtins(v) for v in views])

        @app.page("/alerts")
        class Alerts(faust.web.View):
            async def get(self, request: Any) -> Any:
                return self.json([msgspec.to_builtins(a) for a in worker.group.active_alerts()])

        token = settings.worker.ingest_token
        limit = settings.worker.max_body_bytes

        @app.page("/events")
        class Ingest(faust.web.View):
            async def post(self, request: Any) -> Any:
                if token is None:
                    return self.json({"error": "ingest is disabled: set worker.ingest_token"}, status=403)
                auth = request.headers.get("Authorization", "")
                given = auth[7:] if auth.startswith("Bearer ") else ""
                if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
                    return self.json({"error": "missing or wrong bearer token"}, status=401)
                if (request.content_length or 0) > limit:
                    return self.json({"error": f"body larger than {limit} bytes"}, status=413)
                body = await request.content.read(limit + 1)
                if len(body) > limit:
                    return self.json({"error": f"body larger than {limit} bytes"}, status=413)
                events, bad = decode_safely(body)
                if bad and not events:
                    return self.json({"error": "no valid event", "rejected": [b.reason for b in bad]}, status=422)
                topic = settings.topics.events[0]
                for ev in events:
                    await app.send(topic, key=ev.entity_id.encode(), value=encode(ev.to_wire()))
                return self.json({"accepted": len(events), "rejected": [b.reason for b in bad]}, status=202)


def _mtime(path: Any) -> float | None:
    import os

    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None


def restore_log_level(loglevel: str) -> None:
    """Undo what Faust's worker does for a log level of WARN or above: it sets the root logger to
    DEBUG for its terminal spinner (a handler that spins on every record, long finished once the
    worker runs), so every library's ``debug()`` call built and dispatched a record that no handler
    printed: 2-3 % of the worker's main thread, mostly aiokafka's producer at each changelog send."""
    from faust.utils.terminal import SpinnerHandler
    from mode.utils.logging import level_number

    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, SpinnerHandler):
            root.removeHandler(handler)
    level = level_number(loglevel)
    if root.level < level:
        root.setLevel(level)


def create_worker(settings: Settings, config_path: Any = None) -> Worker:
    return Worker(settings, config_path=config_path)


def run_worker(settings: Settings, loglevel: str = "info", config_path: Any = None) -> None:
    """Run the worker in the foreground until SIGINT/SIGTERM (Faust handles both)."""
    import sys

    worker = create_worker(settings, config_path)
    worker.loglevel = loglevel
    w = settings.worker
    sys.argv = ["stagewatch", "worker", "--loglevel", loglevel, "--web-port", str(w.web_port), "--web-host", w.web_host]
    worker.app.main()
