"""FlowTracker: Little's law, no backlog in a steady stream, backlog when departures stall."""

from __future__ import annotations

import heapq
import random

import pytest

from detectors.throughput import Backlog, FlowTracker


def simulate(seed: int, rate: float, mean_d: float, sigma: float, n: int, mode: str | None = None,
             change_item: int = 0, recover_item: int | None = None,
             stalls: float = 0.0, drain: bool = True) -> tuple[FlowTracker, list[tuple[float, Backlog | None]]]:
    """Poisson arrivals, lognormal times in stage (infinite servers), a share ``stalls`` of them
    4..20 times longer (a heavy tail, as real stages have). From item ``change_item``,
    ``mode`` "stop" holds every departure, "half" serves the held items first-in-first-out at half
    the arrival rate. From ``recover_item`` (if given) departures resume and the held items all leave
    at once (``drain``) or never."""
    rng = random.Random(seed)
    f = FlowTracker()
    t = 0.0
    due: list[tuple[float, float]] = []  # (departure time, arrival time)
    held: list[float] = []
    next_serve: float | None = None
    checks: list[tuple[float, Backlog | None]] = []
    t_change = None
    for i in range(n):
        t += rng.expovariate(rate)
        if mode and i == change_item:
            t_change = t
        if recover_item is not None and i == recover_item:
            for a in held if drain else ():
                f.depart(t, t - a)
            held.clear()
            mode = None
        while due and due[0][0] <= t:
            dt, at = heapq.heappop(due)
            if mode and t_change is not None and dt >= t_change:
                held.append(at)
            else:
                f.depart(dt, dt - at)
        if mode == "half" and t_change is not None:
            next_serve = next_serve or t_change
            while next_serve <= t and held:
                at = held.pop(0)
                f.depart(next_serve, next_serve - at)
                next_serve += rng.expovariate(rate / 2)
            next_serve = max(next_serve, t)
        f.arrive(t)
        d = mean_d * rng.lognormvariate(-sigma**2 / 2, sigma)
        if stalls and rng.random() < stalls:
            d *= rng.uniform(4.0, 20.0)
        heapq.heappush(due, (t + d, t))
        checks.append((t, f.check(t)))
    return f, checks


def episodes(checks: list[tuple[float, Backlog | None]]) -> list[Backlog]:
    out, active = [], False
    for _, b in checks:
        if b is not None and not active:
            out.append(b)
        active = b is not None
    return out


@pytest.mark.parametrize(("rate", "mean_d", "sigma"), [
    (1 / 60, 1800.0, 0.5),   # ~30 in the stage
    (1 / 600, 86400.0, 0.9),  # ~144 in the stage, heavy tail
    (1 / 30, 600.0, 0.3),
    (1 / 3600, 3600.0, 0.8),  # ~1 in the stage
])
def test_steady_stream_has_no_backlog_over_10k_items(rate: float, mean_d: float, sigma: float) -> None:
    f, checks = simulate(1, rate, mean_d, sigma, 10_000)
    assert episodes(checks) == []
    observed, expected = f.littles_law()
    tolerance = 0.3 * rate * mean_d if rate * mean_d >= 20 else 1.0  # a few items: noisy
    assert observed == pytest.approx(rate * mean_d, abs=tolerance)
    assert expected == pytest.approx(rate * mean_d, abs=tolerance)
    assert f.arrivals == 10_000 and f.wip == f.arrivals - f.departures


@pytest.mark.parametrize("seed", range(2))
def test_a_heavy_tailed_stage_filling_up_from_empty_is_not_a_backlog(seed: int) -> None:
    """Starting from an empty stage (every new deployment, every backtest), the first departures are
    the quick ones and the slow tail completes weeks later: WIP keeps growing long after a few
    typical durations. That start-up is not a backlog, and no episode may outlive it."""
    rng = random.Random(seed)
    first, second = FlowTracker(), FlowTracker()  # two stages in a row: the second fills even slower
    events: list[tuple[float, int, float, float]] = []  # (time, stage, entered, duration or -1)

    def stay() -> float:
        d = 60000 * rng.lognormvariate(0.0, 0.9)  # p95 4.4x typical: as lead and payment stages are
        return d * rng.uniform(4.0, 20.0) if rng.random() < 0.03 else d

    t = 0.0
    for _ in range(3000):  # 24 a day for 125 days
        t += rng.expovariate(1 / 3600)
        heapq.heappush(events, (t, 0, t, -1.0))
    checks = []
    while events:
        ts, stage, entered, d = heapq.heappop(events)
        f = first if stage in (0, 1) else second
        if d < 0:
            f.arrive(ts)
            heapq.heappush(events, (ts + stay(), stage + 1, ts, 1.0))
        else:
            f.depart(ts, ts - entered)
            if stage == 1:
                heapq.heappush(events, (ts, 2, ts, -1.0))
        checks.append((ts, second.check(ts)))
        first.check(ts)
    assert episodes(checks) == []


@pytest.mark.parametrize("mode", ["stop", "half"])
@pytest.mark.parametrize(("rate", "mean_d", "sigma"), [(1 / 60, 1800.0, 0.5), (1 / 600, 86400.0, 0.9)])
def test_departures_stopping_or_halving_is_a_backlog_within_a_few_typical_durations(
    mode: str, rate: float, mean_d: float, sigma: float
) -> None:
    for seed in range(3):
        _, checks = simulate(seed, rate, mean_d, sigma, 5000, mode=mode, change_item=2500)
        t_change = checks[2500][0]
        found = episodes(checks)
        assert len(found) == 1
        b = found[0]
        assert b.since >= t_change
        assert (b.since - t_change) / mean_d < 6  # measured 1.3..5.1, median ~2
        assert b.wip > 1.5 * b.expected_wip and b.growth_ratio > 1.5
        assert b.arrival_rate_per_s > b.departure_rate_per_s


def test_one_episode_with_a_stable_start_then_resolved_when_the_backlog_drains() -> None:
    _, checks = simulate(4, 1 / 60, 1800.0, 0.5, 6000, mode="stop", change_item=2500, recover_item=3500)
    found = episodes(checks)
    assert len(found) == 1
    during = [b for t, b in checks[2500:3500] if b is not None]
    assert during and all(b.since == found[0].since for b in during)
    assert all(b is None for _, b in checks[3600:])


def test_an_episode_ends_once_departures_keep_up_again_even_if_the_queue_stays() -> None:
    """Growth is over when departures keep pace with arrivals again, drained or not (the items left
    behind are the stalled pages' business): a long queue must not hold the ticket for ever."""
    _, checks = simulate(4, 1 / 60, 1800.0, 0.5, 6000, mode="stop", change_item=2500, recover_item=3500,
                         drain=False)
    found = episodes(checks)
    assert len(found) == 1 and found[0].since >= checks[2500][0]
    assert all(b is None for _, b in checks[4000:])


def test_check_is_idempotent_for_the_same_instant() -> None:
    f, checks = simulate(5, 1 / 60, 1800.0, 0.5, 4000, mode="stop", change_item=3000)
    t = checks[-1][0]
    assert f.check(t) == f.check(t) == checks[-1][1]


def test_nothing_is_judged_before_enough_departures() -> None:
    f = FlowTracker()
    for i in range(500):
        f.arrive(float(i))
    assert f.check(1000.0) is None and f.wip == 500 and f.departures == 0
    assert f.littles_law()[1] == 0.0


def test_cached_window_test_gives_the_answers_of_a_fresh_tracker() -> None:
    """The window test is remembered until a window closes: every check must answer (and leave the
    state) as a copy restored from the snapshot just before it, which recomputes it."""
    import pickle

    rng = random.Random(4)
    f = FlowTracker()
    t = 0.0
    due: list[float] = []
    found = False
    for i in range(4000):
        t += rng.expovariate(1 / 60)
        f.arrive(t)
        heapq.heappush(due, t + 1800 * rng.lognormvariate(0, 0.3))
        while due and due[0] <= t and not 1500 <= i < 2500:  # departures stop for 1000 items
            d = heapq.heappop(due)
            f.depart(t, t - d + 1800)
        if i % 7:
            continue
        fresh = FlowTracker.restore(f.snapshot())
        got = f.check(t)
        assert got == fresh.check(t)
        assert f.snapshot() == fresh.snapshot()
        assert f.backlog() == got and f.in_backlog(t) == (got is not None)
        found = found or got is not None
    assert found
    state = pickle.loads(pickle.dumps(f)).__getstate__()
    del state["_growing"]  # pickled by a version without the cache
    old = FlowTracker.__new__(FlowTracker)
    old.__setstate__(state)
    assert old.check(t + 60.0) == f.check(t + 60.0)
