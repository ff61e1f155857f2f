"""Every Prometheus metric Stagewatch exposes, named in one place.

Two kinds:

* State that lives in the engine (work in progress, learned baselines, counters kept as plain ints)
  is read at scrape time by :class:`EngineCollector` from the engine's read-only views
  (``monitor/views.py``); nothing is copied into gauges on the hot path.
* Events the worker/driver sees (DLQ records, event lag, sink deliveries, tick durations) are
  ordinary client metrics, bundled in :class:`WorkerMetrics`.

The registry is always passed in (``create(registry, ...)``); library code never touches the global one.
Labels are bounded: ``workflow``, ``stage``, ``segment`` (capped by the engine, overflow -> ``other``),
``kind``, ``outcome``. Never an entity id. As a second line of defence the collector emits at most
``max_series_per_metric`` series per metric and counts what it drops.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from monitor.views import BaselineView, Counters, HistogramView, SourceView, StageView

# Stage durations: one minute to three months (seconds). The engine's HistogramView is aligned with this.
DURATION_BUCKETS: tuple[float, ...] = (
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,  # 2 h
    14400.0,  # 4 h
    28800.0,  # 8 h
    86400.0,  # 1 d
    172800.0,  # 2 d
    259200.0,  # 3 d
    432000.0,  # 5 d
    604800.0,  # 7 d
    1209600.0,  # 14 d
    2592000.0,  # 30 d
    5184000.0,  # 60 d
    7776000.0,  # 90 d
)

# Event lag (wall now - event time when processed): sub-second to a day.
LAG_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
# One engine tick (deadline scan): milliseconds to seconds.
TICK_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

DLQ_REASON_CLASSES: tuple[str, ...] = (
    "invalid_json", "invalid_utf8", "schema", "timestamp", "too_large", "late", "other",
)
DEFAULT_MAX_SERIES_PER_METRIC = 5000

_SCHEMA_FIELDS = ("workflow", "entity_id", "stage", "event_id", "waiting_on", "attributes")

log = logging.getLogger(__name__)


def reason_class(reason: str) -> str:
    """Map a free-text DLQ reason (``monitor.events.BadRecord.reason``) to a bounded label value."""
    text = reason.strip().lower()
    if text.startswith("batch element "):  # "batch element 3: timestamp: ..." -> judge the element's reason
        _, _, text = text.partition(": ")
    if "utf-8" in text or "utf8" in text:
        return "invalid_utf8"
    if text.startswith("invalid json"):
        return "invalid_json"
    if "too large" in text or "too_large" in text or "too big" in text:
        return "too_large"
    if text.startswith("timestamp"):
        return "timestamp"
    if text.startswith("late:"):  # older than its item's state, beyond the allowed lateness (Engine._late)
        return "late"
    if (
        text.startswith(_SCHEMA_FIELDS)
        or text.startswith("an event must be")
        or text.startswith("empty batch")
        or text.startswith("schema")
    ):
        return "schema"
    return "other"


class EngineLike(Protocol):
    """What the collector needs from the engine: the read-only views of ``monitor/views.py``."""

    counters: Counters

    def stage_views(self, now: float) -> Iterable[StageView]: ...

    def baseline_views(self) -> Iterable[BaselineView]: ...

    def source_views(self, now: float) -> Iterable[SourceView]: ...

    def histogram_views(self) -> Iterable[HistogramView]: ...


class _Capped:
    """Adds samples to one metric family, at most ``limit`` label sets; counts the rest."""

    def __init__(self, family: Metric, limit: int, dropped: dict[str, int]) -> None:
        self.family = family
        self.limit = limit
        self.dropped = dropped
        self.seen = 0

    def admit(self) -> bool:
        if self.seen >= self.limit:
            self.dropped[self.family.name] = self.dropped.get(self.family.name, 0) + 1
            return False
        self.seen += 1
        return True

    def add(self, labels: Sequence[str], value: float) -> None:
        if self.admit():
            self.family.add_metric(list(labels), value)  # type: ignore[attr-defined]


def _families() -> dict[str, Metric]:
    """The engine-backed metric families, empty. Names here are the exposition names' stems."""
    s = "stagewatch_"
    wss = ["workflow", "stage", "segment"]
    ws = ["workflow", "stage"]
    return {
        "events": CounterMetricFamily(
            s + "events", "Events processed by the engine, by outcome.", labels=["workflow", "outcome"]
        ),
        "anomalies": CounterMetricFamily(
            s + "anomalies", "Anomalies (alerts fired) by kind.", labels=["workflow", "kind"]
        ),
        "overflow": CounterMetricFamily(
            s + "cardinality_overflow",
            "Values folded into 'other' because a label dimension hit its cap.",
            labels=["dimension"],
        ),
        "expired": CounterMetricFamily(
            s + "items_expired",
            "Open items no longer tracked after item_idle_days without an event (taken as finished).",
            labels=["workflow"],
        ),
        "duration": HistogramMetricFamily(
            s + "stage_duration_seconds", "Completed stage durations (seconds).", labels=wss
        ),
        "expected": GaugeMetricFamily(
            s + "stage_expected_duration_seconds",
            "Learned stage duration: quantile 0.5 is typical, 0.95 the p95.",
            labels=[*wss, "quantile"],
        ),
        "threshold": GaugeMetricFamily(
            s + "stage_threshold_seconds", "Open items older than this page (learned).", labels=wss
        ),
        "baseline_n": GaugeMetricFamily(
            s + "baseline_observations", "Completed durations the baseline has learned.", labels=wss
        ),
        "wip": GaugeMetricFamily(s + "work_in_progress", "Open items currently in the stage.", labels=ws),
        "stalled": GaugeMetricFamily(s + "stalled_items", "Open items past their stage's limit.", labels=ws),
        "oldest": GaugeMetricFamily(
            s + "oldest_item_age_seconds", "Age of the oldest open item in the stage.", labels=ws
        ),
        "due": GaugeMetricFamily(
            s + "items_due_next_hour", "Open items that will cross their limit within an hour.", labels=ws
        ),
        "arrivals": CounterMetricFamily(s + "stage_arrivals", "Items that entered the stage.", labels=ws),
        "departures": CounterMetricFamily(s + "stage_departures", "Items that left the stage.", labels=ws),
        "bottleneck": GaugeMetricFamily(
            s + "bottleneck_score", "0..1: share of the workflow's time in process spent here.", labels=ws
        ),
        "last_event": GaugeMetricFamily(
            s + "source_last_event_timestamp_seconds",
            "Event time of the newest event of the workflow (epoch seconds).",
            labels=["workflow"],
        ),
        "silent": GaugeMetricFamily(
            s + "source_silent", "1 when the workflow stopped sending events (learned rate).", labels=["workflow"]
        ),
    }


class EngineCollector:
    """Reads the engine's views at scrape time. Registered by :func:`create`."""

    def __init__(
        self,
        engine_provider: Callable[[], EngineLike | None],
        now: Callable[[], float],
        max_series_per_metric: int = DEFAULT_MAX_SERIES_PER_METRIC,
        on_dropped: Callable[[str, int], None] | None = None,
    ) -> None:
        if max_series_per_metric < 1:
            raise ValueError("max_series_per_metric must be >= 1")
        self._engine_provider = engine_provider
        self._now = now
        self._max = max_series_per_metric
        self._on_dropped = on_dropped

    def describe(self) -> list[Metric]:
        # Names only: lets the registry detect clashes without calling the engine at registration.
        return list(_families().values())

    def collect(self) -> Iterator[Metric]:
        fams = _families()
        engine = self._engine_provider()
        if engine is not None:
            dropped: dict[str, int] = {}
            capped = {key: _Capped(fam, self._max, dropped) for key, fam in fams.items()}
            self._fill(engine, capped)
            if self._on_dropped is not None:
                for name, n in dropped.items():
                    self._on_dropped(name, n)
        yield from fams.values()

    def _fill(self, engine: EngineLike, c: dict[str, _Capped]) -> None:
        now = self._now()
        counters = engine.counters
        for (workflow, outcome), n in counters.events.items():
            c["events"].add((workflow, outcome), n)
        for (workflow, kind), n in counters.anomalies.items():
            c["anomalies"].add((workflow, kind), n)
        for dimension, n in counters.overflow.items():
            c["overflow"].add((dimension,), n)
        for workflow, n in counters.expired.items():
            c["expired"].add((workflow,), n)

        for h in engine.histogram_views():
            self._add_histogram(c["duration"], h)

        for b in engine.baseline_views():
            key = (b.workflow, b.stage, b.segment)
            c["baseline_n"].add(key, b.n)
            if b.threshold_seconds is not None:
                c["threshold"].add(key, b.threshold_seconds)
            if b.typical_seconds is not None:
                c["expected"].add((*key, "0.5"), b.typical_seconds)
            if b.p95_seconds is not None:
                c["expected"].add((*key, "0.95"), b.p95_seconds)

        for v in engine.stage_views(now):
            key2 = (v.workflow, v.stage)
            c["wip"].add(key2, v.wip)
            c["stalled"].add(key2, v.stalled)
            c["oldest"].add(key2, v.oldest_age_seconds)
            c["due"].add(key2, v.due_next_hour)
            c["arrivals"].add(key2, v.arrivals_total)
            c["departures"].add(key2, v.departures_total)
            c["bottleneck"].add(key2, v.bottleneck_score)

        for src in engine.source_views(now):
            c["last_event"].add((src.workflow,), src.last_event_timestamp)
            c["silent"].add((src.workflow,), 1.0 if src.silent else 0.0)

    @staticmethod
    def _add_histogram(capped: _Capped, h: HistogramView) -> None:
        if len(h.bucket_counts) != len(DURATION_BUCKETS) + 1:
            log.warning(
                "histogram view %s/%s/%s has %d buckets, expected %d; skipped",
                h.workflow,
                h.stage,
                h.segment,
                len(h.bucket_counts),
                len(DURATION_BUCKETS) + 1,
            )
            return
        if not capped.admit():
            return
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, n in zip((*DURATION_BUCKETS, math.inf), h.bucket_counts, strict=True):
            cumulative += n
            buckets.append(("+Inf" if bound == math.inf else _le(bound), float(cumulative)))
        capped.family.add_metric(  # type: ignore[attr-defined]
            [h.workflow, h.stage, h.segment], buckets, sum_value=h.sum_seconds
        )


def _le(bound: float) -> str:
    # the same text prometheus_client writes for its own histograms ("60.0")
    return str(float(bound))


@dataclass(frozen=True)
class WorkerMetrics:
    """The metrics a worker/driver updates itself, plus the engine collector. Build with :func:`create`."""

    registry: CollectorRegistry
    collector: EngineCollector
    dlq_records: Counter  # {reason_class}
    event_lag: Histogram
    alerts_published: Counter  # {kind, status}
    sink_buffered: Gauge  # {sink}
    sink_dropped: Counter  # {sink}
    sink_sent: Counter  # {sink, outcome}
    consumer_lag: Gauge
    tick_duration: Histogram
    build_info: Gauge  # {version}
    series_dropped: Counter  # {metric}
    config_reloads: Counter  # {outcome}: applied, rejected, unchanged
    refetched: Counter

    def record_dlq(self, reason: str) -> str:
        """Count one DLQ record; returns the bounded reason class used as label."""
        cls = reason_class(reason)
        self.dlq_records.labels(reason_class=cls).inc()
        return cls

    def observe_event_lag(self, wall_now: float, event_time: float) -> None:
        """Wall clock minus event time at processing; negative lag (clock skew) counts as 0."""
        self.event_lag.observe(max(0.0, wall_now - event_time))

    def observe_event_lags(self, wall_now: float, event_times: Sequence[float]) -> None:
        """``observe_event_lag`` for every event of a record at once: the bucket counts are
        aggregated first, so the histogram's locked counters are touched once per bucket, not per event."""
        h = self.event_lag
        bounds = getattr(h, "_upper_bounds", None)
        buckets = getattr(h, "_buckets", None)
        total = getattr(h, "_sum", None)
        if bounds is None or buckets is None or total is None or len(event_times) == 1:
            for t in event_times:  # another prometheus_client layout (or one event): the public API
                h.observe(max(0.0, wall_now - t))
            return
        counts: dict[int, int] = {}
        lag_sum = 0.0
        for t in event_times:
            lag = wall_now - t
            if lag < 0.0:
                lag = 0.0
            lag_sum += lag
            i = bisect_left(bounds, lag)  # the first bucket whose upper bound >= lag, as observe() picks
            counts[i] = counts.get(i, 0) + 1
        total.inc(lag_sum)
        for i, n in counts.items():
            buckets[i].inc(n)


def create(
    registry: CollectorRegistry,
    engine_provider: Callable[[], Any],
    now: Callable[[], float],
    *,
    version: str | None = None,
    max_series_per_metric: int = DEFAULT_MAX_SERIES_PER_METRIC,
) -> WorkerMetrics:
    """Register every Stagewatch metric on ``registry``.

    ``engine_provider()`` returns the current engine (or None before it exists); ``now()`` is the clock
    passed to the views (wall clock in the worker, event time in a backtest).
    """
    if version is None:
        version = _version()
    series_dropped = Counter(
        "stagewatch_metric_series_dropped",
        "Series the collector left out of a scrape because a metric hit max_series_per_metric "
        "(counted every scrape while it lasts).",
        ["metric"],
        registry=None,
    )

    def on_dropped(metric: str, n: int) -> None:
        series_dropped.labels(metric=metric).inc(n)

    collector = EngineCollector(engine_provider, now, max_series_per_metric, on_dropped)
    # the collector first: a scrape then shows the drops of that same scrape
    registry.register(collector)  # type: ignore[arg-type]
    registry.register(series_dropped)

    dlq = Counter(
        "stagewatch_dlq_records",
        "Records sent to the dead-letter queue, by reason class.",
        ["reason_class"],
        registry=registry,
    )
    for cls in DLQ_REASON_CLASSES:  # every class exported from the start: rate() works from the first one
        dlq.labels(reason_class=cls)
    build_info = Gauge("stagewatch_build_info", "Stagewatch version (value is 1).", ["version"], registry=registry)
    build_info.labels(version=version).set(1)
    return WorkerMetrics(
        registry=registry,
        collector=collector,
        dlq_records=dlq,
        event_lag=Histogram(
            "stagewatch_event_lag_seconds",
            "Wall clock minus event time when the event was processed.",
            buckets=LAG_BUCKETS,
            registry=registry,
        ),
        alerts_published=Counter(
            "stagewatch_alerts_published",
            "Alerts published by the worker, by kind and status.",
            ["kind", "status"],
            registry=registry,
        ),
        sink_buffered=Gauge(
            "stagewatch_sink_buffered_alerts",
            "Alerts waiting in a sink for delivery.",
            ["sink"],
            registry=registry,
        ),
        sink_dropped=Counter(
            "stagewatch_sink_dropped_alerts",
            "Alerts a sink dropped because its buffer was full.",
            ["sink"],
            registry=registry,
        ),
        sink_sent=Counter(
            "stagewatch_sink_sent",
            "Delivery attempts of a sink, by outcome (success, error).",
            ["sink", "outcome"],
            registry=registry,
        ),
        consumer_lag=Gauge(
            "stagewatch_consumer_lag_records",
            "Records behind the end of the input topics (sum over assigned partitions).",
            registry=registry,
        ),
        tick_duration=Histogram(
            "stagewatch_tick_duration_seconds",
            "Wall time of one engine tick.",
            buckets=TICK_BUCKETS,
            registry=registry,
        ),
        build_info=build_info,
        series_dropped=series_dropped,
        config_reloads=Counter(
            "stagewatch_config_reloads",
            "Settings file changes seen by the worker, by outcome (applied, rejected: invalid, old kept).",
            ["outcome"],
            registry=registry,
        ),
        refetched=Counter(
            "stagewatch_input_refetched_records",
            "Input records the Kafka client never handed to the worker, read straight from the broker.",
            registry=registry,
        ),
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("stagewatch")
    except PackageNotFoundError:
        return "unknown"
