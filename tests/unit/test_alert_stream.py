"""Every scenario's replayed alert stream is well formed: an identity fires, then resolves, then may fire
again; a resolution never comes before its firing (event time); an item page is past its limit.
A guard over the whole engine for the kind of fault that once paged a source silent while its latest
event still waited out the allowed lateness (fired 11:52, resolved 11:51: 1 run in 8 at 6000 items,
so that case has its own test in test_engine.py)."""

from __future__ import annotations

import pytest

from monitor.backtest import run_backtest
from monitor.events import decode_alert, parse_timestamp
from monitor.simulate import SCENARIOS, simulate, write


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_alert_lifecycles_are_well_formed(tmp_path, scenario: str) -> None:
    sim = simulate(scenario, items=1500, seed=21)
    alerts_path = tmp_path / "alerts.jsonl"
    run_backtest(write(sim, tmp_path), alerts_path)
    alerts = [decode_alert(line) for line in alerts_path.read_bytes().splitlines()]
    assert any(a.kind == "stalled" for a in alerts)
    firing: dict[str, float] = {}
    for a in alerts:
        at = parse_timestamp(a.at)
        if a.status == "firing":
            assert a.alert_id not in firing, f"{a.alert_id} ({a.kind}) fired twice"
            firing[a.alert_id] = at
            if a.kind in ("stalled", "slow_stage"):
                assert a.observed_seconds >= a.threshold_seconds * 0.999, a.summary
        else:
            assert a.alert_id in firing, f"{a.alert_id} ({a.kind}) resolved without firing"
            assert at >= firing.pop(a.alert_id), f"{a.kind} resolved before it fired: {a.summary}"
