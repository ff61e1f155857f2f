"""Read-only views of the engine's state, the contract between the engine and its readers
(the Prometheus collector, the worker's web views, ``stagewatch inspect``, reports).

Readers never reach into the engine's internals; the engine produces these on demand (scrape time).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class StageView:
    workflow: str
    stage: str
    wip: int  # open items currently in the stage
    stalled: int  # open items past their threshold (firing `stalled`)
    oldest_age_seconds: float  # age of the oldest open item (wall seconds), 0 when empty
    due_next_hour: int  # open items that will cross their threshold within the next hour
    arrivals_total: int  # items that entered the stage (counter)
    departures_total: int  # items that left the stage (counter)
    bottleneck_score: float  # 0..1: share of the workflow's time-in-process spent in this stage, shift-aware
    terminal: bool = False


@dataclass(frozen=True, slots=True)
class BaselineView:
    workflow: str
    stage: str
    segment: str  # "*" for the stage-level fallback
    n: int  # completed durations learned
    typical_seconds: float | None  # median (None while warming up)
    p95_seconds: float | None
    threshold_seconds: float | None  # open items older than this page (None: not paging yet)
    source: str  # which level of the hierarchy gives the threshold: "segment", "stage", "workflow", "warming"
    time_basis: str = "wall"  # "wall" or "business"
    time_zone: str = "UTC"  # the zone of the workflow's local hours: configured, or found from the timestamps


@dataclass(frozen=True, slots=True)
class SourceView:
    workflow: str
    last_event_timestamp: float  # event time of the newest event (epoch seconds)
    events_total: int
    silent: bool
    expected_gap_seconds: float | None  # typical gap between events at this time of week


@dataclass(frozen=True, slots=True)
class HistogramView:
    """Cumulative-free bucket counts aligned with ``monitor.metrics.DURATION_BUCKETS`` (+Inf last)."""

    workflow: str
    stage: str
    segment: str
    bucket_counts: list[int]
    sum_seconds: float
    count: int


@dataclass(frozen=True, slots=True)
class ItemView:
    entity_id: str
    workflow: str
    stage: str
    segment: str
    entered_at: float
    age_seconds: float
    expected_seconds: float | None
    threshold_seconds: float | None
    deadline: float | None  # wall instant the item will page if still here
    waiting_on: str | None
    stalled: bool
    why: str  # one sentence in business words
    time_basis: str = "wall"  # "wall" or "business": how age, typical and threshold are measured
    time_zone: str = "UTC"  # the zone of the workflow's local hours


@dataclass(slots=True)
class Counters:
    """Monotonic counters kept by the engine as plain ints (no metric calls on the hot path)."""

    events: dict[tuple[str, str], int] = field(default_factory=dict)  # (workflow, outcome) -> n
    anomalies: dict[tuple[str, str], int] = field(default_factory=dict)  # (workflow, kind) -> n
    overflow: dict[str, int] = field(default_factory=dict)  # dimension ("workflow","stage","segment") -> n
    expired: dict[str, int] = field(default_factory=dict)  # workflow -> open items dropped after item_idle_days

    def __getstate__(self) -> list[dict[Any, int]]:
        return [getattr(self, f.name) for f in fields(self)]

    def __setstate__(self, state: list[dict[Any, int]]) -> None:
        # a snapshot from before a counter existed lacks it: that counter starts empty
        for i, f in enumerate(fields(self)):
            setattr(self, f.name, state[i] if i < len(state) else {})
