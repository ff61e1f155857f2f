"""Source silence: a workflow stopped sending events compared with its learned rate.

Per workflow, in event time. Events are counted per local hour-of-week bin (168 bins) together
with the hours each bin was observed (exposure), so the rate of every hour of the week is known:
quiet nights and weekends are normal for business-hours traffic. Counts and exposure decay by
``exp(-1 / memory_weeks)`` per observed week (default memory: 8 weeks).

The silence limit after the last event at ``t`` is the first instant ``T`` where the events
expected in ``[t, T)`` under an inhomogeneous Poisson model reach ``ln(1 / tail_prob)`` (13.8 for
1e-6): the chance of seeing no event that long is below ``tail_prob``. Rates used for the limit are
shrunk by ``1 - 1.5 / sqrt(count + 1)`` (few observations: expect less, page later), bins not yet
observed get a quarter of the quietest observed rate, and the limit is never earlier than
``floor_gaps`` typical gaps (the gap between events at the rate an average event sees).

Nothing is decided until ``min_events`` events spanning ``min_span`` seconds (default one day, so
quiet nights are known) have been seen.

>>> s = SourceRate()
>>> for i in range(3 * 1440):              # one event a minute for three days
...     s.observe(1_700_000_000 + 60.0 * i)
>>> round(s.expected_gap(1_700_000_000 + 3 * 86400.0))
60
>>> round((s.silent_after(1_700_000_000 + 3 * 86400.0) - (1_700_000_000 + 3 * 86400.0)) / 60)
17
"""

from __future__ import annotations

import math
from typing import Any, Self

from detectors.calendar import _zone, hour_of_week, utc_offset

_HOURS = 168


class SourceRate:
    """Hour-of-week aware event rate of one workflow and the instant its silence is abnormal."""

    def __init__(
        self,
        min_events: int = 200,
        timezone: str = "UTC",
        tail_prob: float = 1e-6,
        floor_gaps: float = 10.0,
        memory_weeks: float = 8.0,
        min_span: float = 86400.0,
        horizon: float = 14 * 86400.0,
    ) -> None:
        _zone(timezone)
        if not 0.0 < tail_prob < 1.0:
            raise ValueError("tail_prob must be within (0, 1)")
        self.min_events = int(min_events)
        self.timezone = timezone
        self.tail_prob = float(tail_prob)
        self.floor_gaps = float(floor_gaps)
        self.memory_weeks = float(memory_weeks)
        self.min_span = float(min_span)
        self.horizon = float(horizon)
        self.n = 0
        self.first: float | None = None
        self.last: float | None = None
        self.counts = [0.0] * _HOURS
        self.exposure = [0.0] * _HOURS  # hours observed
        self._exposed = 0.0  # total hours observed since the last decay
        self._bin = -1  # hour-of-week bin of `last` and the instant that bin ends
        self._bin_end = -math.inf

    # -- learning ---------------------------------------------------------------------------------

    def _locate(self, t: float) -> None:
        off = utc_offset(self.timezone, t)
        local = t + off
        self._bin = hour_of_week(self.timezone, t)
        self._bin_end = (math.floor(local / 3600) + 1) * 3600 - off

    def _expose(self, a: float, b: float) -> None:
        """Add the observed time [a, b) to the bins it covers (bounded loop)."""
        weeks = math.floor((b - a) / (7 * 86400))
        if weeks:
            for h in range(_HOURS):
                self.exposure[h] += weeks
            self._exposed += weeks * _HOURS
            a += weeks * 7 * 86400
        t = a
        for _ in range(_HOURS + 2):
            if t >= b:
                break
            if not self._bin_end - 3600 <= t < self._bin_end:
                self._locate(t)
            end = min(b, self._bin_end)
            self.exposure[self._bin] += (end - t) / 3600
            self._exposed += (end - t) / 3600
            t = end
            if t >= self._bin_end:
                self._locate(t)
        if self._exposed >= _HOURS:
            f = math.exp(-(self._exposed / _HOURS) / self.memory_weeks)
            self.counts = [c * f for c in self.counts]
            self.exposure = [e * f for e in self.exposure]
            self._exposed = 0.0

    def observe(self, ts: float) -> None:
        """Count one event at event time ``ts`` (late events are counted, time does not go back)."""
        if not math.isfinite(ts):
            raise ValueError("timestamp must be finite")
        self.n += 1
        if self.last is None:
            self.first = self.last = ts
            self._locate(ts)
            b = self._bin
        elif ts >= self.last:
            if ts > self.last:
                self._expose(self.last, ts)
                self.last = ts
            b = self._bin
        else:
            b = hour_of_week(self.timezone, ts)
        self.counts[b] += 1.0

    # -- queries (pure) ---------------------------------------------------------------------------

    def learning(self) -> bool:
        return (self.n < self.min_events or self.first is None or self.last is None
                or self.last - self.first < self.min_span)

    def _rates(self, shrink: bool) -> list[float]:
        """Events per hour for each bin (unobserved bins: a quarter of the quietest observed)."""
        rates: list[float | None] = []
        for c, e in zip(self.counts, self.exposure, strict=True):
            if e < 0.5:
                rates.append(None)
                continue
            r = c / e
            if shrink:
                r *= max(0.0, 1.0 - 1.5 / math.sqrt(c + 1.0))
            rates.append(r)
        seen = [r for r in rates if r is not None]
        fill = 0.25 * min(seen) if seen else 0.0
        return [fill if r is None else r for r in rates]

    def typical_gap(self) -> float | None:
        """Seconds between events at the rate an average event sees; None while learning."""
        if self.learning():
            return None
        rates = self._rates(shrink=False)
        total = sum(self.counts)
        mean_rate = sum(c * r for c, r in zip(self.counts, rates, strict=True)) / total if total else 0.0
        return 3600.0 / mean_rate if mean_rate > 0 else None

    def expected_gap(self, now: float) -> float | None:
        """Typical gap (seconds) between events at this hour of the week; ``inf`` in quiet hours;
        None while learning."""
        if self.learning():
            return None
        r = self._rates(shrink=False)[hour_of_week(self.timezone, now)]
        return 3600.0 / r if r > 0 else math.inf

    def silent_after(self, last_ts: float) -> float | None:
        """The instant after which no event since ``last_ts`` means the source is silent.

        None while learning, or when even ``horizon`` seconds of silence would be unremarkable.
        """
        if self.learning():
            return None
        rates = self._rates(shrink=True)
        need = math.log(1.0 / self.tail_prob)
        gap = self.typical_gap()
        floor = last_ts + self.floor_gaps * gap if gap is not None else last_ts
        t = last_ts
        acc = 0.0
        stop = last_ts + self.horizon
        for _ in range(int(self.horizon / 3600) + 3):
            if t >= stop:
                return None
            off = utc_offset(self.timezone, t)
            end = min((math.floor((t + off) / 3600) + 1) * 3600 - off, stop)
            r = rates[hour_of_week(self.timezone, t)] / 3600.0  # events per second
            gain = r * (end - t)
            if acc + gain >= need:
                return max(t + (need - acc) / r, floor)
            acc += gain
            t = end
        return None

    # -- persistence ------------------------------------------------------------------------------

    _PARAMS = ("min_events", "timezone", "tail_prob", "floor_gaps", "memory_weeks", "min_span", "horizon")
    _STATE = ("n", "first", "last", "_exposed", "_bin", "_bin_end")

    def snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = {p: getattr(self, p) for p in self._PARAMS}
        data.update({a: getattr(self, a) for a in self._STATE})
        data["_bin_end"] = None if math.isinf(self._bin_end) else self._bin_end
        data["counts"] = list(self.counts)
        data["exposure"] = list(self.exposure)
        return data

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self:
        s = cls(**{p: data[p] for p in cls._PARAMS})
        for a in cls._STATE:
            setattr(s, a, data[a])
        s._bin_end = -math.inf if data["_bin_end"] is None else float(data["_bin_end"])
        s.counts = [float(c) for c in data["counts"]]
        s.exposure = [float(e) for e in data["exposure"]]
        return s
