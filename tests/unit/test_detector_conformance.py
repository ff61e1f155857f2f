"""One generic test over every detector model: construct, query before learning, snapshot/restore
(also through JSON), pickling, and identical behaviour of the restored model on further updates."""

from __future__ import annotations

import json
import pickle
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import detectors
from detectors import (
    ActivityProfile,
    BusinessCalendar,
    CreepWatch,
    DurationBaseline,
    FlowTracker,
    ShiftDetector,
    SourceRate,
    WallClock,
)

T0 = 1_772_409_600.0  # 2026-03-02 00:00 UTC, a Monday


@dataclass
class Spec:
    """How to drive one model class: ``feed`` applies update ``i`` and returns its output;
    ``query`` returns everything the model answers (must be pure)."""

    cls: type
    feed: Callable[[Any, int, random.Random], Any]
    query: Callable[[Any, int], Any]


def _baseline_feed(m: DurationBaseline, i: int, rng: random.Random) -> Any:
    m.learn_one(3600 * rng.lognormvariate(0, 0.6) * (2 if i > 400 else 1))
    return None


def _baseline_query(m: DurationBaseline, i: int) -> Any:
    return (m.n, m.typical(), m.quantile(0.95), m.threshold(), m.threshold(2.0), m.score_one(7200.0),
            m.censored_fraction())


def _drift_feed(m: ShiftDetector, i: int, rng: random.Random) -> Any:
    return m.update(3600 * rng.lognormvariate(0, 0.5) * (3 if i > 300 else 1), T0 + i)


def _drift_query(m: ShiftDetector, i: int) -> Any:
    return (m.recent(5), m.level(), m.score_one(5000.0))


def _flow_feed(m: FlowTracker, i: int, rng: random.Random) -> Any:
    t = T0 + 60.0 * i
    m.arrive(t)
    if i > 30 and (i < 400 or rng.random() < 0.3):
        m.depart(t, 1800 * rng.lognormvariate(0, 0.3))
    return m.check(t)


def _flow_query(m: FlowTracker, i: int) -> Any:
    return (m.wip, m.arrivals, m.departures, m.littles_law(), m.arrival_rate(), m.departure_rate())


def _silence_feed(m: SourceRate, i: int, rng: random.Random) -> Any:
    m.observe(T0 + 300.0 * i + rng.random() * 100)
    return None


def _silence_query(m: SourceRate, i: int) -> Any:
    now = T0 + 300.0 * i
    return (m.learning(), m.expected_gap(now), m.silent_after(now), m.typical_gap())


def _profile_feed(m: ActivityProfile, i: int, rng: random.Random) -> Any:
    m.learn_one(T0 + 900.0 * i + rng.random() * 60)
    return m.decided()


def _profile_query(m: ActivityProfile, i: int) -> Any:
    cal = m.calendar()
    return (m.decided(), None if cal is None else cal.snapshot())


def _creep_feed(m: CreepWatch, i: int, rng: random.Random) -> Any:
    # the items that entered the day before, enterprise's 2 % a day slower from day 100; judged daily
    day, slow = 86400.0, 7200 * 1.02 ** max(0, i - 100)
    start = T0 + day * (i - 1)
    for k in range(30):
        m.learn("smb", start + 900.0 * k, 3600 * rng.lognormvariate(0, 0.5))
    for k in range(8):
        m.learn("enterprise", start + 900.0 * k, slow * rng.lognormvariate(0, 0.5))
    return m.observe(T0 + day * i, settle=day)


def _creep_query(m: CreepWatch, i: int) -> Any:
    return (m.due(T0 + 86400.0 * i), sorted(m.cohorts), m.last_at)


SPECS = [
    Spec(DurationBaseline, _baseline_feed, _baseline_query),
    Spec(ShiftDetector, _drift_feed, _drift_query),
    Spec(FlowTracker, _flow_feed, _flow_query),
    Spec(SourceRate, _silence_feed, _silence_query),
    Spec(ActivityProfile, _profile_feed, _profile_query),
    Spec(CreepWatch, _creep_feed, _creep_query),
]


def _construct(cls: type) -> Any:
    if cls is SourceRate:
        return cls(min_events=50)
    if cls is ActivityProfile:
        return cls(min_events=300, min_days=3)
    return cls()


def test_every_exported_model_is_covered() -> None:
    models = {getattr(detectors, name) for name in detectors.__all__}
    models = {m for m in models if isinstance(m, type) and hasattr(m, "snapshot")}
    assert models == {s.cls for s in SPECS} | {BusinessCalendar, WallClock}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.cls.__name__)
def test_queries_before_learning_do_not_crash(spec: Spec) -> None:
    m = _construct(spec.cls)
    spec.query(m, 0)
    assert spec.cls.restore(m.snapshot()).snapshot() == m.snapshot()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.cls.__name__)
def test_queries_are_pure(spec: Spec) -> None:
    m = _construct(spec.cls)
    rng = random.Random(1)
    for i in range(300):
        spec.feed(m, i, rng)
    before = m.snapshot()
    first = spec.query(m, 300)
    assert spec.query(m, 300) == first
    assert m.snapshot() == before


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.cls.__name__)
@pytest.mark.parametrize("cut", [5, 250, 700])
@pytest.mark.parametrize("how", ["restore", "json", "pickle"])
def test_round_trip_behaves_identically_after_more_updates(spec: Spec, cut: int, how: str) -> None:
    rng = random.Random(cut)
    m = _construct(spec.cls)
    for i in range(cut):
        spec.feed(m, i, rng)
    snap = m.snapshot()
    if how == "restore":
        twin = spec.cls.restore(snap)
    elif how == "json":
        twin = spec.cls.restore(json.loads(json.dumps(snap)))  # plain data only
    else:
        twin = pickle.loads(pickle.dumps(m))
    assert twin.snapshot() == snap
    assert spec.query(twin, cut) == spec.query(m, cut)
    state = rng.getstate()
    outs_m = [spec.feed(m, i, rng) for i in range(cut, cut + 400)]
    rng.setstate(state)
    outs_t = [spec.feed(twin, i, rng) for i in range(cut, cut + 400)]
    assert outs_t == outs_m
    assert spec.query(twin, cut + 400) == spec.query(m, cut + 400)
    assert twin.snapshot() == m.snapshot()


@pytest.mark.parametrize("cal", [
    WallClock(),
    BusinessCalendar("Europe/Berlin", holidays=["2026-04-03"]),
    BusinessCalendar.from_hour_mask("America/New_York", [h % 24 in range(8, 20) for h in range(168)]),
], ids=repr)
def test_calendars_round_trip(cal: BusinessCalendar | WallClock) -> None:
    for twin in (type(cal).restore(json.loads(json.dumps(cal.snapshot()))), pickle.loads(pickle.dumps(cal)),
                 detectors.restore_calendar(cal.snapshot())):
        assert twin == cal
        for a in (T0, T0 + 12345.0, T0 + 40 * 86400.0):
            assert twin.business_seconds(a, a + 500_000) == cal.business_seconds(a, a + 500_000)
            assert twin.add_business(a, 50_000) == cal.add_business(a, 50_000)


@pytest.mark.parametrize("module", ["baseline", "calendar", "creep", "drift", "throughput", "silence", "public_holidays"])
def test_fixed_seed_doctests_hold(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples in the docstrings, run against the module as it runs (compiled by mypyc or not:
    an extension module keeps no docstrings to find them in, so they are read from its source)."""
    import doctest
    import importlib.util

    from detectors._build import compiled

    mod = importlib.import_module(f"detectors.{module}")
    docs = mod
    if compiled(mod):
        spec = importlib.util.spec_from_file_location(f"_doctests_of_{module}",
                                                      Path(str(mod.__file__)).with_name(f"{module}.py"))
        assert spec is not None and spec.loader is not None
        docs = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, docs)
        spec.loader.exec_module(docs)
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(docs):
        test.globs = dict(vars(mod))  # the module that runs, not the copy read for its docstrings
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0 and result.failed == 0
