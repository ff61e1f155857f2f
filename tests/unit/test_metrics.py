from __future__ import annotations

from collections.abc import Iterable

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor import metrics
from monitor.metrics import DLQ_REASON_CLASSES, DURATION_BUCKETS, create, reason_class
from monitor.views import BaselineView, Counters, HistogramView, SourceView, StageView

NOW = 1_780_000_000.0


class FakeEngine:
    """Our own view interface (monitor/views.py), filled with fixed data."""

    def __init__(self, n_stages: int = 2) -> None:
        self.counters = Counters(
            events={("sales", "accepted"): 120, ("sales", "duplicate"): 3},
            anomalies={("sales", "stalled"): 4},
            overflow={"segment": 7},
        )
        self.n_stages = n_stages
        self.seen_now: list[float] = []

    def stage_views(self, now: float) -> Iterable[StageView]:
        self.seen_now.append(now)
        for i in range(self.n_stages):
            yield StageView("sales", f"s{i}", wip=10 + i, stalled=i, oldest_age_seconds=3600.0 * (i + 1),
                            due_next_hour=2, arrivals_total=100 + i, departures_total=90 + i,
                            bottleneck_score=0.25)

    def baseline_views(self) -> Iterable[BaselineView]:
        yield BaselineView("sales", "contract", "enterprise", 40, 302000.0, 700000.0, 720000.0, "segment")
        yield BaselineView("sales", "contract", "*", 2, None, None, None, "warming")

    def source_views(self, now: float) -> Iterable[SourceView]:
        yield SourceView("sales", NOW - 30, 123, False, 60.0)
        yield SourceView("claims", NOW - 86400, 10, True, 600.0)

    def histogram_views(self) -> Iterable[HistogramView]:
        counts = [0] * (len(DURATION_BUCKETS) + 1)
        counts[0] = 2  # <= 60 s
        counts[8] = 3  # <= 1 d
        counts[-1] = 1  # > 90 d
        yield HistogramView("sales", "contract", "enterprise", counts, 3 * 80000.0 + 2 * 30 + 9e6, 6)
        yield HistogramView("sales", "bad", "x", [1, 2], 3.0, 3)  # misaligned: must be skipped


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def test_duration_buckets_span_minutes_to_months_and_increase() -> None:
    assert DURATION_BUCKETS[0] == 60 and DURATION_BUCKETS[-1] == 90 * 86400
    assert list(DURATION_BUCKETS) == sorted(set(DURATION_BUCKETS))
    assert {3600, 86400, 7 * 86400, 30 * 86400} <= set(DURATION_BUCKETS)


def test_engine_counters_are_exposed_as_totals(registry: CollectorRegistry) -> None:
    engine = FakeEngine()
    create(registry, lambda: engine, lambda: NOW, version="1.2.3")
    g = registry.get_sample_value
    assert g("stagewatch_events_total", {"workflow": "sales", "outcome": "accepted"}) == 120
    assert g("stagewatch_anomalies_total", {"workflow": "sales", "kind": "stalled"}) == 4
    assert g("stagewatch_cardinality_overflow_total", {"dimension": "segment"}) == 7
    assert g("stagewatch_build_info", {"version": "1.2.3"}) == 1


def test_stage_views_become_gauges_and_counters_read_with_the_given_clock(registry: CollectorRegistry) -> None:
    engine = FakeEngine()
    create(registry, lambda: engine, lambda: NOW)
    g = registry.get_sample_value
    lbl = {"workflow": "sales", "stage": "s1"}
    assert g("stagewatch_work_in_progress", lbl) == 11
    assert g("stagewatch_stalled_items", lbl) == 1
    assert g("stagewatch_oldest_item_age_seconds", lbl) == 7200
    assert g("stagewatch_items_due_next_hour", lbl) == 2
    assert g("stagewatch_stage_arrivals_total", lbl) == 101
    assert g("stagewatch_stage_departures_total", lbl) == 91
    assert g("stagewatch_bottleneck_score", lbl) == 0.25
    assert engine.seen_now and set(engine.seen_now) == {NOW}


def test_baselines_expose_quantiles_threshold_and_skip_unknown_values(registry: CollectorRegistry) -> None:
    create(registry, FakeEngine, lambda: NOW)
    g = registry.get_sample_value
    seg = {"workflow": "sales", "stage": "contract", "segment": "enterprise"}
    assert g("stagewatch_stage_expected_duration_seconds", {**seg, "quantile": "0.5"}) == 302000
    assert g("stagewatch_stage_expected_duration_seconds", {**seg, "quantile": "0.95"}) == 700000
    assert g("stagewatch_stage_threshold_seconds", seg) == 720000
    assert g("stagewatch_baseline_observations", seg) == 40
    warming = {"workflow": "sales", "stage": "contract", "segment": "*"}
    assert g("stagewatch_baseline_observations", warming) == 2
    assert g("stagewatch_stage_threshold_seconds", warming) is None
    assert g("stagewatch_stage_expected_duration_seconds", {**warming, "quantile": "0.5"}) is None


def test_sources_expose_freshness_and_silence(registry: CollectorRegistry) -> None:
    create(registry, FakeEngine, lambda: NOW)
    g = registry.get_sample_value
    assert g("stagewatch_source_last_event_timestamp_seconds", {"workflow": "sales"}) == NOW - 30
    assert g("stagewatch_source_silent", {"workflow": "sales"}) == 0
    assert g("stagewatch_source_silent", {"workflow": "claims"}) == 1


def test_histogram_is_cumulative_with_inf_equal_to_count(registry: CollectorRegistry) -> None:
    create(registry, FakeEngine, lambda: NOW)
    g = registry.get_sample_value
    lbl = {"workflow": "sales", "stage": "contract", "segment": "enterprise"}
    assert g("stagewatch_stage_duration_seconds_bucket", {**lbl, "le": "60.0"}) == 2
    assert g("stagewatch_stage_duration_seconds_bucket", {**lbl, "le": "43200.0"}) is None  # not a bucket
    assert g("stagewatch_stage_duration_seconds_bucket", {**lbl, "le": "3600.0"}) == 2
    assert g("stagewatch_stage_duration_seconds_bucket", {**lbl, "le": "86400.0"}) == 5
    assert g("stagewatch_stage_duration_seconds_bucket", {**lbl, "le": "7776000.0"}) == 5
    assert g("stagewatch_stage_duration_seconds_bucket", {**lbl, "le": "+Inf"}) == 6
    assert g("stagewatch_stage_duration_seconds_count", lbl) == 6
    assert g("stagewatch_stage_duration_seconds_sum", lbl) == pytest.approx(3 * 80000.0 + 60 + 9e6)
    # the misaligned view is left out rather than exposing a wrong histogram
    assert g("stagewatch_stage_duration_seconds_count", {"workflow": "sales", "stage": "bad", "segment": "x"}) is None


def test_exposition_parses_and_never_carries_an_entity_label(registry: CollectorRegistry) -> None:
    create(registry, FakeEngine, lambda: NOW)
    text = generate_latest(registry).decode()
    names = set()
    for fam in text_string_to_metric_families(text):
        names.add(fam.name)
        for sample in fam.samples:
            assert "entity_id" not in sample.labels
    expected = {
        "stagewatch_events", "stagewatch_anomalies", "stagewatch_cardinality_overflow",
        "stagewatch_stage_duration_seconds", "stagewatch_stage_expected_duration_seconds",
        "stagewatch_stage_threshold_seconds", "stagewatch_baseline_observations",
        "stagewatch_work_in_progress", "stagewatch_stalled_items", "stagewatch_oldest_item_age_seconds",
        "stagewatch_items_due_next_hour", "stagewatch_stage_arrivals", "stagewatch_stage_departures",
        "stagewatch_bottleneck_score", "stagewatch_source_last_event_timestamp_seconds",
        "stagewatch_source_silent", "stagewatch_dlq_records", "stagewatch_event_lag_seconds",
        "stagewatch_alerts_published", "stagewatch_sink_buffered_alerts", "stagewatch_sink_dropped_alerts",
        "stagewatch_sink_sent", "stagewatch_consumer_lag_records", "stagewatch_tick_duration_seconds",
        "stagewatch_build_info", "stagewatch_metric_series_dropped", "stagewatch_input_refetched_records",
    }
    assert expected <= names, expected - names


def test_no_engine_yet_gives_empty_engine_metrics_but_worker_metrics_work(registry: CollectorRegistry) -> None:
    m = create(registry, lambda: None, lambda: NOW)
    m.consumer_lag.set(42)
    assert registry.get_sample_value("stagewatch_consumer_lag_records") == 42
    assert registry.get_sample_value("stagewatch_work_in_progress", {"workflow": "sales", "stage": "s0"}) is None


def test_series_cap_drops_and_counts_per_scrape(registry: CollectorRegistry) -> None:
    engine = FakeEngine(n_stages=25)
    create(registry, lambda: engine, lambda: NOW, max_series_per_metric=10)
    text = generate_latest(registry).decode()
    wip = [ln for ln in text.splitlines() if ln.startswith("stagewatch_work_in_progress{")]
    assert len(wip) == 10
    dropped = registry.get_sample_value("stagewatch_metric_series_dropped_total", {"metric": "stagewatch_work_in_progress"})
    # get_sample_value scrapes once more: two scrapes x 15 dropped, the second one included
    assert dropped == 30
    assert registry.get_sample_value("stagewatch_metric_series_dropped_total", {"metric": "stagewatch_source_silent"}) is None


def test_registry_rejects_a_second_create_on_the_same_registry(registry: CollectorRegistry) -> None:
    create(registry, FakeEngine, lambda: NOW)
    with pytest.raises(ValueError):
        create(registry, FakeEngine, lambda: NOW)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("invalid UTF-8", "invalid_utf8"),
        ("invalid JSON: expected ',' or '}' at byte 12", "invalid_json"),
        ("timestamp: 99999999999999 is outside 1970..2200", "timestamp"),
        ("batch element 3: timestamp: NaN is not a time", "timestamp"),
        ("batch element 0: workflow: missing", "schema"),
        ("entity_id: longer than 256 characters", "schema"),
        ("an event must be a JSON object, got a number", "schema"),
        ("empty batch: a JSON array must hold at least one event", "schema"),
        ("record too large: 2000000 bytes > 1048576", "too_large"),
        ("late: deal-1 entered contract at 2026-03-02T10:00:00Z, after this event; beyond the allowed "
         "lateness of 5 minutes, not applied", "late"),
        ("something nobody expected", "other"),
    ],
)
def test_reason_class_is_bounded(reason: str, expected: str) -> None:
    assert reason_class(reason) == expected
    assert reason_class(reason) in DLQ_REASON_CLASSES


def test_reason_class_matches_the_decoders_real_reasons() -> None:
    from monitor.events import decode_record

    cases = {
        b"\xff\xfe{": "invalid_utf8",
        b"{not json": "invalid_json",
        b'{"workflow":"w","entity_id":"e","stage":"s","timestamp":"yesterday"}': "timestamp",
        b'{"entity_id":"e","stage":"s","timestamp":1}': "schema",
    }
    for raw, expected in cases.items():
        _, bad = decode_record(raw)
        assert bad, raw
        assert reason_class(bad[0].reason) == expected, bad[0].reason


def test_worker_helpers_count_dlq_and_lag(registry: CollectorRegistry) -> None:
    m = create(registry, lambda: None, lambda: NOW)
    assert registry.get_sample_value("stagewatch_dlq_records_total", {"reason_class": "schema"}) == 0
    assert m.record_dlq("invalid JSON: bad") == "invalid_json"
    assert registry.get_sample_value("stagewatch_dlq_records_total", {"reason_class": "invalid_json"}) == 1
    m.observe_event_lag(NOW, NOW - 2.0)
    m.observe_event_lag(NOW, NOW + 5.0)  # skewed producer clock: counted as zero lag
    assert registry.get_sample_value("stagewatch_event_lag_seconds_count") == 2
    assert registry.get_sample_value("stagewatch_event_lag_seconds_sum") == 2.0
    assert registry.get_sample_value("stagewatch_event_lag_seconds_bucket", {"le": "0.05"}) == 1


def test_metrics_module_defines_buckets_before_anything_engine_specific() -> None:
    # the engine imports DURATION_BUCKETS; the module must not import the engine (no cycle)
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(metrics))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not any(mod.startswith("monitor.engine") for mod in imported)


def test_event_lags_of_a_record_at_once_equal_one_observe_per_event() -> None:
    import random

    rng = random.Random(4)
    lags = [rng.choice([-5.0, 0.0, 0.5, 1.0, 30.0, 3600.0, 1e9]) * rng.random() for _ in range(500)]
    lags += [1.0, 5.0, 0.0]  # exactly on bucket bounds
    one, batch = CollectorRegistry(), CollectorRegistry()
    m_one = create(one, lambda: None, lambda: NOW)
    m_batch = create(batch, lambda: None, lambda: NOW)
    for lag in lags:
        m_one.observe_event_lag(NOW, NOW - lag)
    for i in range(0, len(lags), 100):
        m_batch.observe_event_lags(NOW, [NOW - lag for lag in lags[i:i + 100]])

    def lag_lines(reg: CollectorRegistry) -> list[str]:  # buckets and count: exact
        return [ln for ln in generate_latest(reg).decode().splitlines()
                if ln.startswith(("stagewatch_event_lag_seconds_bucket", "stagewatch_event_lag_seconds_count"))]

    assert len(lag_lines(one)) > 5
    assert lag_lines(batch) == lag_lines(one)
    name = "stagewatch_event_lag_seconds_sum"  # summed in another order: equal up to rounding
    assert batch.get_sample_value(name) == pytest.approx(one.get_sample_value(name), rel=1e-12)
