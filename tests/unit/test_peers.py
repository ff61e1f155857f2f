"""Workers of one group judge a source's silence over all partitions and page it once
(``streams.peers``): two groups of partition engines, as two workers, exchange their records the
way the peers topic carries them (encoded, after a lag), with no broker."""

from __future__ import annotations

from monitor.config import load_settings
from monitor.engine import Engine, EventClock
from monitor.events import Alert, Event, alert_id, parse_timestamp
from streams.app import partition_for
from streams.group import EngineGroup
from streams.peers import STALE_SECONDS, PeerBoard, news_of

DAY = 86400.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
PARTS = 4
OWNERS = {0: "a", 1: "b", 2: "a", 3: "b"}
STEP = 300.0  # the partitions' ticks; ticked together, the records go out after each (a record 2 steps old is stale)


class Wall:
    """The workers' wall clock: a replay runs days of event time in a second; or, when the partitions
    are ticked with the wall time (``follow``), the time of the tick running."""

    def __init__(self, follow: list[Engine] | None = None) -> None:
        self.now = 1000.0
        self.follow = follow

    def __call__(self) -> float:
        if self.follow is not None:
            return max((e.clock for e in self.follow if e.clock is not None), default=self.now)
        return self.now


def entities() -> dict[int, list[str]]:
    ids: dict[int, list[str]] = {p: [] for p in range(PARTS)}
    k = 0
    while min(len(v) for v in ids.values()) < 20:
        ids[partition_for(f"t{k}".encode(), PARTS)].append(f"t{k}")
        k += 1
    return ids


def minutely(ids: dict[int, list[str]], start: float, end: float, parts: tuple[int, ...]) -> list[Event]:
    out, t, i = [], start, 0
    while t < end:
        e = ids[parts[i % len(parts)]][i % 20]
        out.append(Event(f"{e}-{t}", "ops", e, "open", t, {}, None))
        t, i = t + 60.0, i + 1
    return out


def run(events: list[Event], share: bool = True, lag: int = 20, wall_clock: bool = False,
        deaf: str | None = None, move: tuple[float, float] | None = None) -> list[Alert]:
    """Two workers (a: partitions 0 and 2, b: 1 and 3); with ``share`` each worker's records reach the
    other's board every ``lag`` events (two wall seconds). Each partition on its own event clock, or
    with ``wall_clock`` all of them ticked together every 5 minutes, the records exchanged after each
    tick (the worker's default: its timer ticks every partition with the wall time, and its records
    go out every two seconds). Worker ``deaf`` has silence paging switched off. ``move`` = (at, until):
    partition 0 is revoked from worker a at ``at`` and restored by worker b at ``until``."""
    engines: dict[int, Engine] = {}
    wall = Wall(list(engines.values()) if wall_clock else None)
    for p in range(PARTS):
        silence = OWNERS[p] != deaf
        settings = load_settings(None, engine={"backlog_enabled": False, "allowed_lateness_seconds": 0,
                                                "silence_enabled": silence})
        engines[p] = Engine(settings, scope=f"partition-{p}")
        if wall.follow is not None:
            wall.follow.append(engines[p])
    groups = {w: EngineGroup() for w in "ab"}
    for w, g in groups.items():
        if share:
            g.board = PeerBoard(w, PARTS, clock=wall, stale=2 * STEP if wall_clock else STALE_SECONDS)
    for p, eng in engines.items():
        groups[OWNERS[p]].join(p, eng)
    clocks = {p: EventClock(STEP) for p in range(PARTS)}
    out: list[Alert] = []

    owners = dict(OWNERS)

    def exchange() -> None:
        for p, eng in engines.items():
            if p not in groups[owners[p]].engines:
                continue  # between two owners: nobody speaks for it
            records = news_of(p, eng, owners[p], wall(), list(eng.workflows))
            for g in groups.values():
                if g.board is not None:
                    g.board.update_many(records)
                    out.extend(g.silences_heard_elsewhere())

    step = T0
    for k, ev in enumerate(events):
        p = partition_for(ev.entity_id.encode(), PARTS)
        if wall_clock:  # every partition ticked at each step, the records exchanged after each
            while step <= ev.timestamp:
                if move is not None and step >= move[0] and owners[0] == "a":
                    groups["a"].leave(0)
                    owners[0] = "b"
                if move is not None and step >= move[1] and 0 not in groups["b"].engines:
                    groups["b"].join(0, engines[0])
                for q in range(PARTS):
                    if q in groups[owners[q]].engines:
                        out += clocks[q].advance(engines[q], step)
                if share:
                    exchange()
                step += STEP
        out += clocks[p].advance(engines[p], ev.timestamp)
        out += engines[p].process(ev)
        if not wall_clock:
            wall.now += 2.0 / lag
            if share and k % lag == 0:
                exchange()
    return out


def silences(alerts: list[Alert]) -> list[tuple[str, str, float]]:
    return [(a.status, a.alert_id, parse_timestamp(a.at)) for a in alerts if a.kind == "source_silent"]


def outage(resume: tuple[int, ...], back: float = 3600.0) -> tuple[list[Event], float]:
    """A minutely source over every partition for 8 days, silent for 6 h, then back for ``back`` seconds
    in the partitions ``resume`` (in turn)."""
    ids = entities()
    end = T0 + 8 * DAY
    return minutely(ids, T0, end, (0, 1, 2, 3)) + minutely(ids, end + 6 * 3600, end + 6 * 3600 + back, resume), end


def test_two_workers_page_a_silent_source_once_from_the_lowest_partition():
    """Ticked with the wall time, both workers find the silence at the same tick. Alone each judges its
    half and pages it (two pages); sharing their records, the owner of partition 0 pages it once, as
    soon as one engine would (one event a minute: silent after half an hour), and resolves it as soon
    as the other worker's record says the source is back in its partitions."""
    events, end = outage((1, 3))
    alone = silences(run(events, share=False, wall_clock=True))
    assert [s[0] for s in alone].count("firing") == 2
    shared = silences(run(events, wall_clock=True))
    assert [s[0] for s in shared] == ["firing", "resolved"], shared
    assert shared[0][1] == shared[1][1] == alert_id("source_silent", "ops", None, None, "partition-0")
    assert end < shared[0][2] < end + 3600
    # ended as the record comes in, at the latest event it names (records go out after each 5-minute step here)
    assert end + 6 * 3600 <= shared[1][2] <= end + 6 * 3600 + STEP


def test_a_silence_paged_by_a_partition_that_moves_to_the_other_worker_is_not_paged_again():
    """Partition 0 pages the silence, then moves from worker a to worker b, which takes 20 minutes to
    restore it: meanwhile its last record (stale after 10 minutes here) still holds the page, so b's
    own partitions do not page it a second time, and the restored partition 0 carries it on."""
    events, end = outage((1, 3))
    shared = silences(run(events, wall_clock=True, move=(end + 3600, end + 3600 + 4 * STEP)))
    assert [s[0] for s in shared] == ["firing", "resolved"], shared
    assert shared[0][1] == shared[1][1] == alert_id("source_silent", "ops", None, None, "partition-0")


def test_on_event_clocks_the_worker_whose_clock_finds_the_silence_pages_it_once():
    """With the event clock a partition's time moves with its own events: partition 0's clock is still
    at the stop when worker b's partitions hear the source again 6 h later (and find the silence on
    the way there), so b pages it rather than wait for partition 0, whose worker then hears of that."""
    events, end = outage((1, 3, 2, 0))
    alone = silences(run(events, share=False))
    assert [s[0] for s in alone].count("firing") == 2
    for lag in (1, 20):
        shared = silences(run(events, lag=lag))
        assert [s[0] for s in shared] == ["firing", "resolved"], shared
        assert end < shared[0][2] < end + 3600


def test_a_designated_partition_that_does_not_page_hands_the_silence_over():
    """Worker a (partition 0) keeps ticking but does not page silences (switched off there): worker b
    waits TAKEOVER wall seconds for its page, then pages the source itself."""
    events, end = outage((1, 3), back=0.0)
    events += [Event(f"hb-{k}", "other", f"hb-{k}", "open", end + k * 60.0, {}, None) for k in range(1, 300)]
    shared = silences(run(events, wall_clock=True, deaf="a"))
    assert [s[0] for s in shared] == ["firing"], shared
    assert shared[0][1] == alert_id("source_silent", "ops", None, None, "partition-1")
    assert end + 1800 < shared[0][2] < end + 3 * 3600


def test_a_board_reads_partitions_and_rates_keeps_tickets_past_staleness_and_skips_garbage():
    wall = Wall()
    board = PeerBoard("me", 4, clock=wall)
    settings = load_settings(None, engine={"allowed_lateness_seconds": 0})
    eng = Engine(settings)
    eng.process(Event("x-1", "ops", "x", "open", T0, {}, None))
    eng.active["t"] = Alert("t", "bottleneck_shift", "firing", "ops", "open", None, None, "2026-01-01T00:00:00Z",
                            2.0, 1.0, 1.5, 0.9, "ticket", "open got 2x slower")
    board.update_many(news_of(1, eng, "other", wall.now))  # the partition, not its rate yet
    assert board.first_partition("ops", {}) is None  # no evidence without the share's rate
    board.update_many(news_of(1, eng, "other", wall.now, ["ops"]) + news_of(0, eng, "me", wall.now, ["ops"]))
    for key, value in ((b"2", b"\x93not news"), (b"x", b"1"), (b"1_0", b""), ("²".encode(), b""), (None, b""),
                       (b"7", news_of(7, eng, "other", wall.now)[0][1])):  # not a partition of the topic
        board.update(key, value)
    assert [r.partition for r in board.live({})] == [0, 1]  # its own too: a partition it lost stays known
    assert board.first_partition("ops", {0: eng}) == 1 and board.first_partition("sales", {}) is None
    assert board.live({0: eng, 1: eng}) == []  # the partitions this worker owns speak for themselves
    key = ("bottleneck_shift", "ops", "open")
    assert board.holder(key, {0: eng}).partition == 1
    wall.now += STALE_SECONDS + 1
    assert board.live({}) == [] and board.first_partition("ops", {}) is None  # no evidence from a gone worker
    assert board.holder(key, {0: eng}).partition == 1  # ... but its tickets stand until the next owner speaks
    board.update(b"1", b"")  # a tombstone
    board.update(b"1/ops", b"")
    assert sorted(board.partitions) == [0] and list(board.rates) == [(0, "ops")]
