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
        deaf: str | None = None) -> list[Alert]:
    """Two workers (a: partitions 0 and 2, b: 1 and 3); with ``share`` each worker's records reach the
    other's board every ``lag`` events (two wall seconds). Each partition on its own event clock, or
    with ``wall_clock`` all of them ticked together every 5 minutes, the records exchanged after each
    tick (the worker's default: its timer ticks every partition with the wall time, and its records
    go out every two seconds). Worker ``deaf`` has silence paging switched off."""
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
            g.board = PeerBoard(w, clock=wall, stale=2 * STEP if wall_clock else STALE_SECONDS)
    for p, eng in engines.items():
        groups[OWNERS[p]].join(p, eng)
    clocks = {p: EventClock(STEP) for p in range(PARTS)}
    out: list[Alert] = []

    def exchange() -> None:
        for p, eng in engines.items():
            record = news_of(eng, OWNERS[p], wall())
            for g in groups.values():
                if g.board is not None:
                    g.board.update(str(p).encode(), record)

    step = T0
    for k, ev in enumerate(events):
        p = partition_for(ev.entity_id.encode(), PARTS)
        if wall_clock:  # every partition ticked at each step, the records exchanged after each
            while step <= ev.timestamp:
                for q in range(PARTS):
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
    soon as one engine would (one event a minute: silent after half an hour), and resolves it once the
    other worker's record says the source is back in its partitions."""
    events, end = outage((1, 3))
    alone = silences(run(events, share=False, wall_clock=True))
    assert [s[0] for s in alone].count("firing") == 2
    shared = silences(run(events, wall_clock=True))
    assert [s[0] for s in shared] == ["firing", "resolved"], shared
    assert shared[0][1] == shared[1][1] == alert_id("source_silent", "ops", None, None, "partition-0")
    assert end < shared[0][2] < end + 3600
    assert end + 6 * 3600 <= shared[1][2] <= end + 6 * 3600 + 2 * STEP  # a's next tick after the record


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


def test_a_board_ignores_its_own_records_stale_ones_and_garbage():
    wall = Wall()
    board = PeerBoard("me", clock=wall)
    eng = Engine(load_settings(None, engine={"allowed_lateness_seconds": 0}))
    eng.process(Event("x-1", "ops", "x", "open", T0, {}, None))
    board.update(b"0", news_of(eng, "me", wall.now))
    board.update(b"1", news_of(eng, "other", wall.now))
    board.update(b"2", b"\x93not news")
    board.update(b"x", news_of(eng, "other", wall.now))
    board.update(None, news_of(eng, "other", wall.now))
    assert [r.partition for r in board.live({})] == [1]
    assert board.first_partition("ops", {}) == 1 and board.first_partition("sales", {}) is None
    assert board.live({1: eng}) == []  # a partition this worker owns now speaks for itself
    wall.now += STALE_SECONDS + 1
    assert board.live({}) == []  # its worker is gone
    board.update(b"1", b"")  # a tombstone
    assert board.partitions == {}
