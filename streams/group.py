"""One engine per Kafka partition, seen as one.

Items are keyed by ``entity_id``, so each partition's items live in one engine; each partition's
engine learns its own baselines from its own items. That makes an item's alerts depend on its
partition only — never on which worker owns that partition — and a replay with
``stagewatch backtest --partitions N`` reproduces the live alerts exactly.

``EngineGroup`` presents the partition engines with the engine's read-only view interface
(``monitor.views``), merged, for the metrics collector and the web views.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from monitor.engine import Engine
from monitor.events import Alert
from monitor.views import BaselineView, Counters, HistogramView, ItemView, SourceView, StageView


class EngineGroup:
    def __init__(self) -> None:
        self.engines: dict[int, Engine] = {}

    def _ordered(self) -> list[Engine]:
        """The engines by partition: views that pick one engine's answer (a tie on ``n``) or merge in
        order give the same result whatever order the partitions were recovered in."""
        return [eng for _p, eng in sorted(self.engines.items())]

    def __len__(self) -> int:
        return len(self.engines)

    def stage_views(self, now: float) -> Iterator[StageView]:
        merged: dict[tuple[str, str], StageView] = {}
        for eng in self._ordered():
            for v in eng.stage_views(now):
                key = (v.workflow, v.stage)
                m = merged.get(key)
                merged[key] = v if m is None else StageView(
                    workflow=v.workflow,
                    stage=v.stage,
                    wip=m.wip + v.wip,
                    stalled=m.stalled + v.stalled,
                    oldest_age_seconds=max(m.oldest_age_seconds, v.oldest_age_seconds),
                    due_next_hour=m.due_next_hour + v.due_next_hour,
                    arrivals_total=m.arrivals_total + v.arrivals_total,
                    departures_total=m.departures_total + v.departures_total,
                    bottleneck_score=max(m.bottleneck_score, v.bottleneck_score),
                    terminal=m.terminal or v.terminal,
                )
        yield from merged.values()

    def baseline_views(self) -> Iterator[BaselineView]:
        """Per key, the baseline of the partition that has learned the most (the best-informed one)."""
        best: dict[tuple[str, str, str], BaselineView] = {}
        for eng in self._ordered():
            for v in eng.baseline_views():
                key = (v.workflow, v.stage, v.segment)
                if key not in best or v.n > best[key].n:
                    best[key] = v
        yield from best.values()

    def source_views(self, now: float) -> Iterator[SourceView]:
        merged: dict[str, SourceView] = {}
        for eng in self._ordered():
            for v in eng.source_views(now):
                m = merged.get(v.workflow)
                merged[v.workflow] = v if m is None else SourceView(
                    workflow=v.workflow,
                    last_event_timestamp=max(m.last_event_timestamp, v.last_event_timestamp),
                    events_total=m.events_total + v.events_total,
                    silent=m.silent and v.silent,
                    expected_gap_seconds=m.expected_gap_seconds or v.expected_gap_seconds,
                )
        yield from merged.values()

    def histogram_views(self) -> Iterator[HistogramView]:
        merged: dict[tuple[str, str, str], HistogramView] = {}
        for eng in self._ordered():
            for v in eng.histogram_views():
                key = (v.workflow, v.stage, v.segment)
                m = merged.get(key)
                merged[key] = v if m is None else HistogramView(
                    v.workflow,
                    v.stage,
                    v.segment,
                    [a + b for a, b in zip(m.bucket_counts, v.bucket_counts, strict=True)],
                    m.sum_seconds + v.sum_seconds,
                    m.count + v.count,
                )
        yield from merged.values()

    @property
    def counters(self) -> Counters:
        total = Counters()
        for eng in self._ordered():
            # the three dicts differ only in key type; the sum is the same for each
            pairs: tuple[tuple[dict[Any, int], dict[Any, int]], ...] = (
                (eng.counters.events, total.events),
                (eng.counters.anomalies, total.anomalies),
                (eng.counters.overflow, total.overflow),
                (eng.counters.expired, total.expired),
            )
            for src, dst in pairs:
                for k, n in src.items():
                    dst[k] = dst.get(k, 0) + n
        return total

    def item_view(self, entity_id: str, now: float) -> ItemView | None:
        for eng in self._ordered():
            v = eng.item_view(entity_id, now)
            if v is not None:
                return v
        return None

    def active_alerts(self) -> list[Alert]:
        return [a for eng in self._ordered() for a in eng.active_alerts()]

    @property
    def open_items(self) -> int:
        return sum(e.open_items for e in self.engines.values())
