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

from detectors.silence import combined_gap, silent_after_combined
from monitor.engine import Engine
from monitor.events import Alert
from monitor.views import BaselineView, Counters, HistogramView, ItemView, SourceView, StageView


class EngineGroup:
    def __init__(self) -> None:
        self.engines: dict[int, Engine] = {}
        self._limits: dict[tuple[Any, ...], tuple[float, float] | None] = {}
        # (kind, workflow, stage) -> the engine holding that firing alert about a whole stage or source:
        # one ticket for a stage's shift or backlog, one page for a source's silence, from the partition
        # that found it first (each partition judges its own share of the stage). Every event asks for
        # its source's silence (one another partition holds ends when this one hears the source), so no
        # scan of the partitions
        self._holders: dict[tuple[str, str, str | None], Engine] = {}

    def join(self, partition: int, engine: Engine) -> None:
        """Add a partition's engine (a new one, or one recovered with stage or source alerts it holds)."""
        self.leave(partition)
        self.engines[partition] = engine
        engine.peers = self
        for alert in engine.active.values():
            if alert.entity_id is None:
                self._holders[(alert.kind, alert.workflow, alert.stage)] = engine

    def leave(self, partition: int) -> None:
        """Drop a partition's engine (revoked): the alerts it held go with it."""
        engine = self.engines.pop(partition, None)
        if engine is not None:
            for key in [k for k, holder in self._holders.items() if holder is engine]:
                del self._holders[key]

    def holds(self, alert: Alert, engine: Engine, holding: bool) -> None:
        """An engine fired (``holding``) or resolved an alert about a whole stage or source."""
        key = (alert.kind, alert.workflow, alert.stage)
        if holding:
            self._holders[key] = engine
        elif self._holders.get(key) is engine:
            del self._holders[key]

    def holder(self, kind: str, workflow: str, stage: str | None) -> Engine | None:
        """The partition's engine holding the firing ``kind`` alert of this stage (None: of the source)."""
        return self._holders.get((kind, workflow, stage))

    def _ordered(self) -> list[Engine]:
        """The engines by partition: views that pick one engine's answer (a tie on ``n``) or merge in
        order give the same result whatever order the partitions were recovered in."""
        return [eng for _p, eng in sorted(self.engines.items())]

    def __len__(self) -> int:
        return len(self.engines)

    def source_limit(self, workflow: str, applied: bool = False) -> tuple[float, float] | None:
        """A source's silence judged over every partition of this worker (or replay): (the time of its
        latest event, the instant after which it is silent); None while nothing is known. ``applied``:
        the latest event applied, not merely heard (still in a lateness buffer).

        Each partition sees a share of the items, so alone it expects a quarter of the events (4
        partitions) and a quiet night of one quarter reads as an outage (steady scenario, 4 seeds: 4
        false silences in 8 partitioned replays, none on one engine), while a real stop is called late
        (a 6 h silence, 3 seeds: 4.8-6.2 h after it began against 1.5-1.7 h) and items whose events were
        lost in it are paged (1-8 a run). Over the shares the events expected since the latest one add up
        as for one engine (``silent_after_combined``): 1.5-1.8 h, no false silence, no page on a lost
        item; one alert for the source (from the partition whose clock passed the limit first)."""
        latest: float | None = None
        owner: Engine | None = None
        rates = []
        for eng in self._ordered():
            wf = eng.workflows.get(workflow)
            if wf is None:
                continue
            heard = wf.last_ts if applied else wf.last_heard()
            if heard is None:
                continue
            rates.append(wf.rate)
            if latest is None or heard > latest:
                latest, owner = heard, eng
        if owner is None or latest is None:
            return None
        # cached by the latest event, as one engine caches its own limit (WorkflowState.silent_after): the
        # rates behind it change only as events arrive
        key = (workflow, applied, latest, tuple((p, id(e)) for p, e in self.engines.items()))  # a revoke changes it
        cache = self._limits
        if key in cache:
            return cache[key]
        if len(cache) >= 16:
            cache.clear()
        mine = owner.workflows[workflow].rate  # first: its hours bin the time
        rates.remove(mine)
        limit = silent_after_combined([mine, *rates], latest)
        cache[key] = None if limit is None else (latest, limit)
        return cache[key]

    def typical_gap(self, workflow: str, at: float) -> float | None:
        """The typical gap between the source's events at ``at``, over every partition (for the alert's
        words: "they usually arrive every ...")."""
        return combined_gap(eng.workflows[workflow].rate.expected_gap(at) for eng in self._ordered()
                            if workflow in eng.workflows)

    def silent_holder(self, workflow: str) -> Engine | None:
        """The partition's engine holding the firing ``source_silent`` alert of ``workflow``, if any."""
        return self.holder("source_silent", workflow, None)

    def silenced_since(self, workflow: str, since: float) -> bool:
        """Whether any partition's engine called the source silent at or after ``since``."""
        return any(wf.silent_since(since) for eng in self.engines.values()
                   if (wf := eng.workflows.get(workflow)) is not None)

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
