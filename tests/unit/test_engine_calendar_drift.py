"""A workflow whose calendar is still being learned (``auto``) measures in wall time, where nights and
weekends inside a stage look like slowdowns: no bottleneck_shift may come of that."""

from __future__ import annotations

import pytest

from monitor.backtest import replay
from monitor.engine import Engine
from monitor.simulate import simulate


@pytest.mark.parametrize("seed", [3, 7])
def test_no_bottleneck_shift_from_calendar_learning(seed: int) -> None:
    sim = simulate("business_hours", items=2000, seed=seed)  # office hours only, no injected shift
    events = sorted((e.to_event() for e in sim.events), key=lambda e: e.timestamp)
    alerts = list(replay(Engine(), ((e, None) for e in events)))
    shifts = [f"{a.at} {a.workflow}/{a.stage}" for a in alerts if a.kind == "bottleneck_shift"]
    assert shifts == []
