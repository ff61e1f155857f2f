"""The engine's detection quality, end to end: simulate -> backtest -> evaluate (``stagewatch evaluate
--scenario``), one seed of 6000 items per scenario, held to the acceptance figures: >= 0.97 of the
oracle's F1, better than a static SLA and an online River p99, <= 5 false pages per 1000 items, the
slowdown found within 7 days, the silence within 2 hours, no page on an item whose events were lost.
The full table over seeds 1-8 is in README.md; this keeps a change from slipping below it unseen."""

from __future__ import annotations

import pytest

from monitor.quality import run_quality
from monitor.simulate import Variation

LOGNORMAL = ["steady", "segmented", "business_hours", "slowdown", "silence", "out_of_order"]


def _run(scenario: str, variation: Variation | None = None) -> dict:
    (row,) = run_quality([scenario], items=6000, seeds=[1], variation=variation)
    assert row["engine_missing"] is None
    return row


def _beats_the_alternatives(r: dict) -> bool:
    return r["f1"] > r["static_sla_f1"] and r["f1"] > r["river_p99_f1"]


@pytest.mark.parametrize("scenario", LOGNORMAL)
def test_each_scenario_meets_the_acceptance_figures(scenario: str) -> None:
    r = _run(scenario)
    assert r["engine_vs_oracle"] >= 0.97 and _beats_the_alternatives(r), r
    assert r["precision"] >= 0.9 and r["recall"] >= 0.7, r
    assert r["false_pages_per_1000"] <= 5.0, r
    assert r["pages_on_lost"] == 0 and r["false_shifts"] == 0 and r["false_silences"] == 0, r
    if scenario == "slowdown":
        assert r["shift_delay_days"] is not None and r["shift_delay_days"] <= 7.0, r
    if scenario == "silence":
        assert r["silence_delay_hours"] is not None and r["silence_delay_hours"] <= 2.0, r


def test_other_duration_families_stay_close_to_the_oracle() -> None:
    # gamma, Weibull, log-logistic and two-mode stages (the engine's weak spot: over 5 false pages; 10.5
    # before items that entered a stage before it had a limit of its own were judged on that limit once
    # there: the two-mode stages' first limits are read from their quick kind, 12.3-13.0 since)
    r = _run("shapes")
    assert r["engine_vs_oracle"] >= 0.95 and _beats_the_alternatives(r), r
    assert r["false_pages_per_1000"] <= 13.5, r


def test_exponential_waits_are_paged_within_the_false_page_goal() -> None:
    """Every stage exponential (the textbook service time): light-tailed, wider below the median than
    above it in log space. Read as a lognormal the engine reached 0.27 of the oracle; the oracle's best
    F1 costs it ~20 false pages per 1000 items, so within the goal of 5 the engine cannot reach it.
    Measured 0.70 of the oracle at 2.2 false pages per 1000, below the static SLA (in force from the
    stream's start) and the River p99 on this seed: a weak spot, held here so it does not get worse."""
    r = _run("steady", Variation(family="exponential"))
    assert r["variation"] == {"family": "exponential"}
    assert r["engine_vs_oracle"] >= 0.67, r
    assert r["false_pages_per_1000"] <= 5.0, r
