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


def _mixed_stage(seed: int, slowdown_at: int | None, n: int = 3000) -> list:
    """Deals through one shared stage, enterprise 5x slower than smb; the mix flips from 80 % smb to
    80 % enterprise halfway (a change of who is in the stage, not of how long anyone takes), and
    optionally every deal gets 2.5x slower from deal ``slowdown_at`` on."""
    import random

    from monitor.events import Event

    rng = random.Random(seed)
    out = []
    t0 = 1_767_225_600.0
    for i in range(n):
        t = t0 + i * 1800.0
        enterprise = rng.random() < (0.2 if i < n // 2 else 0.8)
        d = (5 if enterprise else 1) * 3 * 3600 * rng.lognormvariate(0, 0.4)
        if slowdown_at is not None and i >= slowdown_at:
            d *= 2.5
        seg = {"segment": "enterprise" if enterprise else "smb"}
        out += [Event(f"d{i}-a", "sales", f"d{i}", "review", t, seg), Event(f"d{i}-b", "sales", f"d{i}", "done", t + d, seg)]
    return sorted(out, key=lambda e: e.timestamp)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_change_in_segment_mix_is_not_a_bottleneck_shift_but_a_slowdown_is(seed: int) -> None:
    from monitor.config import load_settings

    settings = load_settings(None, workflows={"sales": {"terminal_stages": ["done"], "calendar": {"mode": "wall"}}})
    mix = list(replay(Engine(settings), ((e, None) for e in _mixed_stage(seed, None))))
    assert [a.summary for a in mix if a.kind == "bottleneck_shift"] == []
    slow = list(replay(Engine(settings), ((e, None) for e in _mixed_stage(seed, 2000))))
    found = [a for a in slow if a.kind == "bottleneck_shift" and a.status == "firing"]
    assert len(found) >= 1 and "review in sales got" in found[0].summary and "slower" in found[0].summary
