"""backlog_growth from the engine: fires when arrivals durably outrun a fixed departure capacity,
and explains itself in time-in-stage terms (Little's law), in seconds."""

from __future__ import annotations

import json

import pytest

from monitor.backtest import run_backtest
from monitor.engine import Engine, EventClock
from monitor.events import Event
from monitor.simulate import simulate, write

T0 = 1_700_000_000.0


def _queue_events(n_steady: int, n_rush: int) -> list[Event]:
    """A FIFO queue served one item a minute: arrivals every 90 s, then every 30 s (a rush)."""
    arrivals = [T0 + 90.0 * i for i in range(n_steady)]
    arrivals += [arrivals[-1] + 30.0 * (i + 1) for i in range(n_rush)]
    events: list[Event] = []
    free_at = T0
    for i, t in enumerate(arrivals):
        start = max(t, free_at)
        free_at = start + 60.0
        events.append(Event(workflow="ops", entity_id=f"job-{i}", stage="queue", timestamp=t, event_id=f"{i}-a"))
        events.append(Event(workflow="ops", entity_id=f"job-{i}", stage="done", timestamp=free_at, event_id=f"{i}-b"))
    return sorted(events, key=lambda e: e.timestamp)


def test_backlog_growth_fires_with_time_in_stage_figures() -> None:
    engine = Engine()
    clock = EventClock(60.0)
    alerts = []
    for ev in _queue_events(600, 900):
        alerts += clock.advance(engine, ev.timestamp)
        alerts += engine.process(ev)
    backlog = [a for a in alerts if a.kind == "backlog_growth" and a.status == "firing"]
    assert backlog, "a queue growing for hours must page backlog_growth"
    a = backlog[0]
    assert a.stage == "queue" and a.entity_id is None
    # normal time in stage ~1-2 min; the queue implies a longer wait, past the paging point
    assert 30.0 < a.expected_seconds < 600.0
    assert a.observed_seconds > a.threshold_seconds > a.expected_seconds
    assert "piling up" in a.summary


@pytest.mark.parametrize(("scenario", "seed"), [("steady", 11), ("business_hours", 12)])
def test_a_steady_workflow_filling_up_from_empty_raises_no_backlog(tmp_path, scenario: str, seed: int) -> None:
    """Every replay and every new deployment starts with empty stages that fill up for weeks (the
    quick items leave first). That is not work piling up; nor is a 9-to-5 stage's queue, whose
    time in stage counts nights and weekends in wall time (Little's law needs one clock)."""
    sim = simulate(scenario, items=3000, seed=seed)
    alerts = tmp_path / "alerts.jsonl"
    run_backtest(write(sim, tmp_path), alerts)
    kinds = [json.loads(line)["kind"] for line in alerts.read_bytes().splitlines()]
    assert "stalled" in kinds and "backlog_growth" not in kinds
