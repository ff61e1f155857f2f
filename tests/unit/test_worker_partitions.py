"""What a worker does for a partition as partitions come and go: which worker speaks to Alertmanager for
its firing alerts, and when (after a rebalance the partition's next owner, not the last one too; after
a restore only once the replay of the records past the checkpoint has resolved what the last process
already resolved); counters that never fall; a partition revoked while its hole was read stays gone.
Service-free: the real worker, engine, checkpoint, sink and agent, with no broker and no delivery (what
the sink holds to send is what Alertmanager would be told)."""

from __future__ import annotations

import asyncio
import time

from faust.types import TP

from monitor.config import load_settings
from monitor.events import Alert, encode
from streams.app import BEHIND_PROGRESS_SECONDS, Worker
from tests.unit.test_engine import DAY, ev, feed, normal_history

SETTINGS = load_settings(
    None,
    engine={"warmup": 10, "allowed_lateness_seconds": 0, "silence_enabled": False, "backlog_enabled": False},
    workflows={"sales": {"terminal_stages": ["won"], "calendar": {"mode": "wall"}}},
    alertmanager={"urls": ["http://127.0.0.1:9"]},  # never reached: nothing here delivers
)


T_LAST = normal_history()[-1].timestamp


def worker(published: list[Alert]) -> Worker:
    w = Worker(SETTINGS)
    w.alerts_topic.send_soon = lambda key, value: None  # type: ignore[method-assign]  # no broker here

    async def no_changelog(writes: object) -> None:
        return None

    w._send_changelog = no_changelog  # type: ignore[method-assign]
    sink = w.alertmanager
    assert sink is not None
    submit = sink.submit

    def recorded(alerts: list[Alert]) -> None:
        alerts = list(alerts)
        published.extend(alerts)
        submit(alerts)

    sink.submit = recorded  # type: ignore[method-assign]
    return w


def to_be_sent(w: Worker) -> dict[str, str]:
    """What the worker's sink holds for Alertmanager (queued or tracked for re-sending): id -> status."""
    sink = w.alertmanager
    assert sink is not None
    sink._drain(time.time())
    return {aid: t.alert.status for aid, t in sink._active.items()}


def stalled_deal(w: Worker) -> tuple[float, Alert]:
    """Partition 0 pages deal-42 stalled in contract; returns the time and the alert."""
    eng = w.engine_for(0)
    hist = normal_history()
    feed(eng, hist)
    t = hist[-1].timestamp
    w.publish(eng.process(ev("deal-42", "lead", t)) + eng.process(ev("deal-42", "contract", t + 60)))
    view = eng.item_view("deal-42", t + 60)
    assert view is not None and view.threshold_seconds is not None
    at = t + 60 + view.threshold_seconds * 1.01
    fired = [a for a in eng.tick(at) if a.entity_id == "deal-42"]
    assert [a.status for a in fired] == ["firing"]
    w.publish(fired)
    return at, fired[0]


def test_a_revoked_partitions_firing_alerts_are_left_to_its_next_owner():
    """Kept and re-sent by the last owner too, a stalled page resolved by the new owner fired again at
    Alertmanager a minute later, and stayed firing while the last owner ran."""
    a = worker([])
    _at, page = stalled_deal(a)
    assert to_be_sent(a) == {page.alert_id: "firing"}
    asyncio.run(a.app.on_partitions_revoked.send(revoked={TP(SETTINGS.topics.events[0], 0)}))
    assert a.group.engines == {} and to_be_sent(a) == {}
    assert a.alertmanager is not None and a.alertmanager.buffered == 0


def test_a_restored_partition_resends_what_still_fires_once_its_replay_has_caught_up():
    """The last process paged deal-42, checkpointed, then sent its resolution and died before the next
    checkpoint. Re-sent at the restore, the page fired again until the replay resolved it a second
    time; now what is still firing is re-sent once the partition has caught up, and a page whose
    resolution the replay repeats is never sent as firing again."""
    a = worker([])
    at, page = stalled_deal(a)
    asyncio.run(a.checkpoint(force=True))
    eng = a.group.engines[0]
    moved = ev("deal-42", "won", at + 30)
    a.publish(eng.process(moved))  # the resolution, sent; not in a checkpoint yet

    sent: list[Alert] = []
    b = worker(sent)
    b.table.data.update(a.table.data.items())  # what the changelog restores
    restored = b.engine_for(0)
    assert [x.alert_id for x in restored.active_alerts()] == [page.alert_id]  # the checkpoint's view
    b.resend_restored()  # the replay has just begun: the partition is behind
    assert sent == []
    b.publish(restored.process(moved))  # the replay reaches the resolving record
    for topic in SETTINGS.topics.events:  # ... and the last one: no progress since
        b.progress_at[(topic, 0)] = time.time() - BEHIND_PROGRESS_SECONDS - 1
    b.resend_restored()
    assert [(x.alert_id, x.status) for x in sent] == [(page.alert_id, "resolved")]
    assert to_be_sent(b) == {page.alert_id: "resolved"}


def test_a_restored_partitions_firing_alerts_are_resent_within_two_intervals_however_long_its_replay():
    """A long replay must not let Alertmanager expire a page that still holds (the last process sent it
    with an end four resend intervals ahead)."""
    a = worker([])
    _at, page = stalled_deal(a)
    asyncio.run(a.checkpoint(force=True))
    sent: list[Alert] = []
    b = worker(sent)
    b.table.data.update(a.table.data.items())
    b.engine_for(0)
    b.resend_restored()
    assert sent == []  # behind
    assert b.alertmanager is not None
    b.restored_at[0] -= 2 * b.alertmanager.resend_interval  # two intervals into the replay
    b.resend_restored()
    assert [(x.alert_id, x.status) for x in sent] == [(page.alert_id, "firing")]
    b.resend_restored()
    assert len(sent) == 1  # once


def test_a_workers_counters_never_fall_as_partitions_come_and_go():
    """Each engine's totals are its partition's whole history, restored with it: summed over the partitions
    a worker holds, they fell at every revoke (a counter reset to Prometheus, and to ``rate`` a burst of
    all the rest) and jumped at every assignment. The worker exports what its engines counted while it
    held them; its health still says how many events the partitions have taken in all."""
    import time as _time

    from prometheus_client import CollectorRegistry

    from monitor.engine import Engine
    from monitor.metrics import create
    from streams.group import EngineGroup

    def engine(seed: int) -> Engine:
        e = Engine(SETTINGS)
        feed(e, normal_history(seed=seed))
        return e

    group = EngineGroup()
    registry = CollectorRegistry()
    create(registry, lambda: group, _time.time)

    def exported() -> dict[str, float]:
        names = {"events": ("stagewatch_events_total", {"workflow": "sales", "outcome": "accepted"}),
                 "durations": ("stagewatch_stage_duration_seconds_count",
                               {"workflow": "sales", "stage": "contract", "segment": "smb"}),
                 "arrivals": ("stagewatch_stage_arrivals_total", {"workflow": "sales", "stage": "contract"})}
        return {k: registry.get_sample_value(n, labels) or 0.0 for k, (n, labels) in names.items()}

    e0, e1 = engine(1), engine(2)
    group.join(0, e0)
    group.join(1, e1)
    assert exported() == {"events": 0.0, "durations": 0.0, "arrivals": 0.0}  # restored: counted elsewhere
    t = T_LAST + DAY
    for k, e in enumerate((e0, e1)):  # one more deal each
        e.process(ev(f"new-{k}", "lead", t))
        e.process(ev(f"new-{k}", "contract", t + 60))
        e.process(ev(f"new-{k}", "won", t + DAY))
    after_events = exported()
    assert after_events == {"events": 6.0, "durations": 2.0, "arrivals": 2.0}
    group.leave(1)  # revoked
    assert exported() == after_events  # what partition 1 counted here stays counted
    group.join(1, Engine.restore(e1.snapshot(), SETTINGS))  # back (a rebalance gives it to us again)
    assert exported() == after_events
    assert group.events_taken() == sum(sum(e.counters.events.values()) for e in (e0, e1))


def test_a_partition_revoked_while_its_hole_is_read_is_not_taken_back():
    """Records 5..7 never reached the worker; while it reads them from the broker the partition is revoked.
    The record that revealed the hole is the next owner's: asked again for holes, the worker restored the
    partition's engine from its table and kept it, writing checkpoints into a changelog partition
    another worker owns and judging items it no longer holds."""
    import json as _json
    from types import SimpleNamespace

    import streams.app as app_mod

    settings = load_settings(None, engine={"allowed_lateness_seconds": 0}, topics={"partitions": 1})
    topic = settings.topics.events[0]
    now = time.time()

    def record(offset: int) -> SimpleNamespace:
        value = _json.dumps({"event_id": f"e{offset}", "workflow": "sales", "entity_id": "deal-1",
                             "stage": f"s{offset}", "timestamp": now - 1000 + offset}).encode()
        return SimpleNamespace(topic=topic, partition=0, offset=offset, key=b"deal-1", value=value)

    def delivered(msg: SimpleNamespace) -> SimpleNamespace:
        return SimpleNamespace(message=msg)

    a = Worker(settings)
    a._send_changelog = lambda writes: asyncio.sleep(0)  # type: ignore[method-assign]
    for offset in range(5):
        a.handle(delivered(record(offset)))
    asyncio.run(a.checkpoint(force=True))
    b = Worker(settings)
    b.table.data.update(a.table.data.items())
    writes: list[object] = []

    async def changelog(w: list[object]) -> None:
        writes.extend(w)

    b._send_changelog = changelog  # type: ignore[method-assign]

    def read_slowly(_settings: object, _topic: str, _p: int, first: int, end: int, timeout: float = 15.0) -> list:
        time.sleep(0.3)  # the broker read, during which the rebalance happens
        return [record(o) for o in range(first, end)]

    class Stream:
        def noack(self) -> Stream:
            return self

        async def events(self):  # type: ignore[no-untyped-def]
            yield delivered(record(8))

    async def main() -> None:
        async def rebalance() -> None:
            await asyncio.sleep(0.1)
            await b.app.on_partitions_revoked.send(revoked={TP(topic, 0)})

        revoke = asyncio.ensure_future(rebalance())
        await b.app.agents[f"{settings.worker.app_id}-events"].fun(Stream())
        await revoke
        await b.checkpoint()

    fetch = app_mod.fetch_range
    app_mod.fetch_range = read_slowly
    try:
        asyncio.run(main())
    finally:
        app_mod.fetch_range = fetch
    assert b.group.engines == {} and b.applied == {} and writes == []


def test_a_restart_remembers_the_recently_closed_items():
    """A producer's retry of an event of a closed deal, delivered after a restart, reopened the deal (and
    paged it stalled later), and a late event of it was applied instead of kept in the DLQ: the engine's
    memory of recently closed items did not survive the checkpoint. It travels with the item records now
    (and leaves them once forgotten)."""
    from types import SimpleNamespace

    settings = load_settings(
        None, engine={"warmup": 10, "allowed_lateness_seconds": 0, "silence_enabled": False,
                      "backlog_enabled": False, "recently_closed": 2},
        topics={"partitions": 1}, workflows={"sales": {"terminal_stages": ["won"], "calendar": {"mode": "wall"}}})
    topic = settings.topics.events[0]
    t0 = time.time() - 3 * DAY
    offset = iter(range(1000))

    def delivered(entity: str, eid: str, stage: str, ts: float) -> SimpleNamespace:
        body = {"event_id": eid, "workflow": "sales", "entity_id": entity, "stage": stage, "timestamp": ts}
        return SimpleNamespace(message=SimpleNamespace(topic=topic, partition=0, offset=next(offset),
                                                       key=entity.encode(), value=encode(body)))

    dlq: list[tuple[str, str]] = []
    a = Worker(settings)
    a._send_changelog = lambda writes: asyncio.sleep(0)  # type: ignore[method-assign]
    a._send_dlq = lambda key, raw, reason, *rest: dlq.append((key.decode(), reason))  # type: ignore[method-assign]
    for k, entity in enumerate(("deal-1", "deal-2", "deal-3")):  # deal-1 is forgotten: 2 remembered
        for j, stage in enumerate(("lead", "contract", "won")):
            a.handle(delivered(entity, f"{entity}-e{j}", stage, t0 + k * 60 + j * 3600))
    asyncio.run(a.checkpoint(force=True))
    assert sorted(key for key in a.table.data if b"/i/" in key) == [b"0/i/deal-2", b"0/i/deal-3"]

    b = Worker(settings)
    b.table.data.update(a.table.data.items())
    b._send_dlq = a._send_dlq  # type: ignore[method-assign]
    b.handle(delivered("deal-3", "deal-3-e1", "contract", t0 + 120 + 3600))  # the retry of an event
    b.handle(delivered("deal-2", "deal-2-late", "qualification", t0 + 60 + 5400))  # before it was won
    eng = b.group.engines[0]
    assert eng.items == {}
    assert eng.counters.events[("sales", "duplicate")] == 1
    assert [(key, reason.split(":")[0]) for key, reason in dlq] == [("deal-2", "late")]


def test_records_are_acked_only_once_their_alerts_and_dlq_records_are_delivered(monkeypatch):
    """Faust's producer flush returns after a tenth of a second without a completed send: a checkpoint
    acked the records whose DLQ records (or alerts) were still on their way, and a crash then lost them."""
    from types import SimpleNamespace

    import streams.app as app_mod

    monkeypatch.setattr(app_mod, "OUTPUT_WAIT_SECONDS", 0.05)
    settings = load_settings(None, topics={"partitions": 1})
    topic = settings.topics.events[0]

    class Stream:
        acked: list[int] = []

        async def ack(self, event: SimpleNamespace) -> bool:
            self.acked.append(event.message.offset)
            return True

    class Producer:
        async def flush(self) -> None:
            return None

    async def main() -> list[list[int]]:
        w = Worker(settings)
        w._send_changelog = lambda writes: asyncio.sleep(0)  # type: ignore[method-assign]
        w.app._producer = Producer()  # type: ignore[assignment]
        w.stream = stream = Stream()
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        w.dlq_topic.send_soon = lambda key, value, headers: delivery  # type: ignore[method-assign]
        w.handle(SimpleNamespace(message=SimpleNamespace(topic=topic, partition=0, offset=0, key=b"x",
                                                         value=b"not json")))
        seen = []
        await w.checkpoint(force=True)
        seen.append(list(stream.acked))
        delivery.set_result(None)
        await w.checkpoint(force=True)
        seen.append(list(stream.acked))
        return seen

    assert asyncio.run(main()) == [[], [0]]


def test_checkpoints_are_written_with_the_rocksdb_store(tmp_path):
    """Faust's RocksDB store takes a key's partition from the stream event being processed; a checkpoint
    runs from a timer, outside of one, and every write failed (an assertion in the store): no checkpoint,
    no record ever acked."""
    from types import SimpleNamespace

    from streams.checkpoint import recover

    settings = load_settings(None, engine={"allowed_lateness_seconds": 0}, topics={"partitions": 1},
                             worker={"store": "rocksdb", "data_dir": str(tmp_path)})
    w = Worker(settings)
    w._send_changelog = lambda writes: asyncio.sleep(0)  # type: ignore[method-assign]
    body = {"event_id": "e1", "workflow": "sales", "entity_id": "deal-1", "stage": "lead", "timestamp": time.time() - 60}
    w.handle(SimpleNamespace(message=SimpleNamespace(topic=settings.topics.events[0], partition=0, offset=0,
                                                     key=b"deal-1", value=encode(body))))
    asyncio.run(w.checkpoint(force=True))
    assert w.covered == {(settings.topics.events[0], 0): 0}
    # (the store lists only the partitions assigned to the worker, none here: read the partition's database)
    written = w.table.data._db_for_partition(0).items()  # type: ignore[attr-defined]
    assert list(recover(0, list(written)).items) == ["deal-1"]


def test_a_silence_paged_by_one_of_a_workers_partitions_shows_in_the_silent_gauge():
    """One partition pages a source's silence for all; the others hold back. The worker's gauge was the
    partitions' AND: 0 while the page fired, so the Prometheus rule on it never fired either."""
    from prometheus_client import CollectorRegistry

    from monitor.engine import Engine
    from monitor.metrics import create
    from streams.group import EngineGroup

    settings = load_settings(None, engine={"warmup": 10, "allowed_lateness_seconds": 0, "silence_enabled": True,
                                           "backlog_enabled": False},
                             workflows={"sales": {"terminal_stages": ["won"], "calendar": {"mode": "wall"}}})
    group = EngineGroup()
    engines = [Engine(settings), Engine(settings)]
    for p, e in enumerate(engines):
        group.join(p, e)
    history = normal_history(n=200)
    fired: list[Alert] = []
    next_tick = history[0].timestamp
    for x in history:
        while x.timestamp >= next_tick:
            for e in engines:
                fired += e.tick(next_tick)
            next_tick += 600
        fired += engines[int(x.entity_id[1:]) % 2].process(x)
    now = history[-1].timestamp
    fired = []  # the source stops here
    while not any(a.kind == "source_silent" and a.status == "firing" for a in fired):
        now += 3600
        assert now < history[-1].timestamp + 10 * DAY, "the silence must be paged"
        for e in engines:
            fired += e.tick(now)
    assert sorted(v.silent for e in engines for v in e.source_views(now)) == [False, True]
    registry = CollectorRegistry()
    create(registry, lambda: group, lambda: now)
    assert registry.get_sample_value("stagewatch_source_silent", {"workflow": "sales"}) == 1.0
