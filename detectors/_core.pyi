# The compiled detectors (core/src); documented where they are exported (detectors/baseline.py,
# detectors/silence.py, detectors/throughput.py, detectors/drift.py; FastEvent in monitor/events.py).
from array import array
from collections.abc import Callable, Sequence
from typing import Any, Self

from detectors.drift import Shift
from detectors.throughput import Backlog

class DurationBaseline:
    warmup: int
    window: int
    n: int
    _floor: float | None
    def __init__(self, warmup: int = 30, window: int = 1000) -> None: ...
    def learn_one(self, seconds: float, censored: bool = False) -> None: ...
    def reset(self, keep_recent: Sequence[float] = ()) -> None: ...
    def typical(self) -> float | None: ...
    def recent_typical(self) -> float | None: ...
    def quantile(self, q: float) -> float | None: ...
    def threshold(self, sensitivity: float = 1.0) -> float | None: ...
    def spread(self) -> float | None: ...
    def score_one(self, seconds: float) -> float: ...
    def censored_fraction(self) -> float: ...
    def snapshot(self) -> dict[str, Any]: ...
    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self: ...

class SourceRate:
    min_events: int
    timezone: str
    tail_prob: float
    floor_gaps: float
    memory_weeks: float
    min_span: float
    horizon: float
    n: int
    first: float | None
    last: float | None
    counts: array[float]
    exposure: array[float]
    gaps: float
    exceed: array[float]
    recent_seen: float
    recent_due: float
    _exposed: float
    _bin: int
    _bin_end: float
    _table: tuple[array[float], array[float], float | None] | None
    _PARAMS: tuple[str, ...]
    _STATE: tuple[str, ...]
    def __init__(
        self,
        min_events: int = 200,
        timezone: str = "UTC",
        tail_prob: float = 1e-6,
        floor_gaps: float = 10.0,
        memory_weeks: float = 8.0,
        min_span: float = 86400.0,
        horizon: float = 14 * 86400.0,
    ) -> None: ...
    def rezone(self, timezone: str, turn: int | None = None) -> None: ...
    def observe(self, ts: float) -> None: ...
    def learning(self) -> bool: ...
    def _compute_table(self) -> tuple[array[float], array[float], float | None]: ...
    def _tables(self) -> tuple[array[float], array[float], float | None]: ...
    def typical_gap(self) -> float | None: ...
    def expected_gap(self, now: float) -> float | None: ...
    def pace(self) -> float: ...
    def dispersion(self) -> float: ...
    def silent_after(self, last_ts: float) -> float | None: ...
    def snapshot(self) -> dict[str, Any]: ...
    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self: ...
    def __getstate__(self) -> dict[str, Any]: ...
    def __setstate__(self, state: dict[str, Any]) -> None: ...

def silent_after_combined(parts: Sequence[SourceRate], last_ts: float) -> float | None: ...
def pooled_rates(counts: array[float], exposure: array[float], own: array[float]) -> array[float]: ...
class FlowTracker:
    min_departures: int
    windows: int
    growth_factor: float
    end_factor: float
    rate_windows: float
    min_window: float
    duration_alpha: float
    min_window_events: float
    settle_durations: float
    wip: int
    arrivals: int
    departures: int
    def __init__(
        self,
        min_departures: int = 30,
        windows: int = 3,
        growth_factor: float = 1.5,
        end_factor: float = 1.2,
        rate_windows: float = 3.0,
        min_window: float = 60.0,
        duration_alpha: float = 0.02,
        min_window_events: float = 20.0,
        settle_durations: float = 5.0,
    ) -> None: ...
    def arrive(self, ts: float) -> None: ...
    def depart(self, ts: float, duration: float) -> None: ...
    def arrival_rate(self) -> float: ...
    def departure_rate(self) -> float: ...
    def littles_law(self) -> tuple[float, float]: ...
    def in_backlog(self, now: float) -> bool: ...
    def backlog(self) -> Backlog | None: ...
    def check(self, now: float) -> Backlog | None: ...
    def snapshot(self) -> dict[str, Any]: ...
    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self: ...
    def __getstate__(self) -> dict[str, Any]: ...
    def __setstate__(self, state: dict[str, Any]) -> None: ...

class ShiftDetector:
    min_samples: int
    min_ratio: float
    threshold_sigmas: float
    slack_sigmas: float
    clip: float
    buffer: int
    ref_window: int
    confirm: int
    n: int
    shifts: int
    _learn_from: int
    _armed_at: int | None
    _m: float
    _s: float
    _mad: float
    _ref_n: int
    _n_up: int
    _n_dn: int
    _pending: int | None
    _pending_len: int
    _buf: array[float]
    _ph: Any
    _PARAMS: tuple[str, ...]
    _STATE: tuple[str, ...]
    def __init__(
        self,
        min_samples: int = 30,
        min_ratio: float = 1.5,
        threshold_sigmas: float = 15.0,
        slack_sigmas: float = 0.4,
        clip: float = 3.0,
        buffer: int = 64,
        ref_window: int = 1000,
        confirm: int = 5,
    ) -> None: ...
    def update(self, seconds: float, ts: float) -> Shift | None: ...
    def recent(self, k: int) -> list[float]: ...
    def level(self) -> float | None: ...
    def score_one(self, seconds: float) -> float: ...
    def snapshot(self) -> dict[str, Any]: ...
    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self: ...
    def __getstate__(self) -> dict[str, Any]: ...
    def __setstate__(self, state: dict[str, Any]) -> None: ...

class FastEvent:
    """monitor.events: the common case of ``_validate_wire`` (core/src/events.rs)."""
    def __init__(
        self,
        event_type: type,
        derive_id: Callable[[str, str, str, float], str],
        max_id_len: int,
        max_name_len: int,
        max_attributes: int,
        max_attr_value_len: int,
        min_timestamp: float,
        max_timestamp: float,
        epoch_ms_threshold: float,
    ) -> None: ...
    def __call__(self, w: Any) -> Any | None: ...
