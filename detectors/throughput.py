"""Throughput and Little's law: is work piling up in a stage?

Per (workflow, stage), in event time. The stage's normal mean time-in-stage ``D`` (the smaller of
an EWMA of completed durations and one 10x slower, so a queue building up does not inflate it at
once) sizes everything: arrival and departure rates and the time-weighted mean WIP are
exponentially decayed with time constant ``rate_windows * D``, and arrivals/departures are also
counted in consecutive windows of length ``D`` (at least ``min_window`` seconds, and long enough
to hold ``min_window_events`` arrivals). Nothing is judged during the first ``settle_durations * D``
(WIP is not in steady state yet and the first departures are the short ones).

A backlog episode starts when, over the last ``windows`` closed windows,

* net inflow (arrivals - departures) is positive in all but at most one window and significant as
  a Poisson count (``net > 3 * sqrt(arrivals + departures) + 2``), and
* WIP exceeds its Little's-law expectation ``arrival_rate * D`` by a clear factor
  (``> growth_factor`` times, and beyond Poisson noise: ``> expected + 4 sqrt(expected) + 3``).

It ends when WIP is back under ``end_factor`` times the expectation (noise margin 2 sqrt) — the
backlog has drained — or when departures kept pace with arrivals over the last ``windows`` windows
(none idle) and the open one shows no significant net inflow: the growth is over, even if the queue
stays long (its items page as stalled on their own). The expectation used for the drain test is the
smaller of the current one and the one frozen at the start (a growing queue lengthens time in stage,
which would otherwise raise it). Without the second rule, an episode started while a heavy-tailed
stage was still filling up (its slow items not yet departed, so its mean time in stage read low)
stayed open to the end of nearly every simulated replay (42 of 50 episodes in 18 replays; now 4 of
24, stages whose WIP grows all stream long). The first window starts empty (counts from the stage
filling up used to leak into it: steady simulated workflows raised 1-4 backlog tickets per replay,
now none). Durations are wall-clock seconds, as the rates are (the engine passes wall time even on
a business calendar).
:meth:`FlowTracker.check` returns the same :class:`Backlog` (same ``since``) for the whole episode
and ``None`` outside one, so the engine maps the transitions to firing / resolved.

Measured (seeded Poisson arrivals, lognormal times in stage, 3 runs each): no episode in 30 000
steady items for WIP ~1, 20, 30 and 144; departures stopping are found 1.3-2.3 ``D`` after the
stop, departures halving 1.4-3.4 ``D`` after (5.1 at worst in the tests) when ~20+ items are in
the stage. With ~1 item in the stage, growth is only significant after tens of ``D``.

>>> f = FlowTracker()
>>> t = 0.0
>>> for i in range(3000):           # one arrival a minute, each item stays 30 minutes
...     f.arrive(i * 60.0)
...     if i >= 30:
...         f.depart(i * 60.0, 1800.0)
>>> f.check(3000 * 60.0) is None, f.wip
(True, 30)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Self


@dataclass(frozen=True, slots=True)
class Backlog:
    wip: int
    expected_wip: float  # arrival_rate * mean time in stage (Little's law)
    arrival_rate_per_s: float
    departure_rate_per_s: float
    growth_ratio: float  # wip / expected_wip
    since: float  # event time the episode started
    normal_seconds: float = 0.0  # mean time in stage as it normally is (Little's law: expected_wip / arrival rate)


class FlowTracker:
    """Arrivals, departures and WIP of one stage; detects durable backlog growth."""

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
    ) -> None:
        self.min_departures = int(min_departures)
        self.windows = int(windows)
        self.growth_factor = float(growth_factor)
        self.end_factor = float(end_factor)
        self.rate_windows = float(rate_windows)
        self.min_window = float(min_window)
        self.duration_alpha = float(duration_alpha)
        self.min_window_events = float(min_window_events)
        self.settle_durations = float(settle_durations)
        self.wip = 0
        self.arrivals = 0
        self.departures = 0
        self._mean_d: float | None = None  # EWMA of time in stage (seconds)
        self._slow_d: float | None = None  # the same, 10x slower: the normal before a queue builds up
        self._t: float | None = None  # event time of the latest update
        self._t0: float | None = None  # first event time
        self._ra = 0.0  # decayed arrival count
        self._rd = 0.0  # decayed departure count
        self._wip_avg = 0.0  # time-weighted decayed mean WIP
        self._win_start: float | None = None
        self._win_len = 0.0
        self._win_a = 0
        self._win_d = 0
        self._closed: list[list[int]] = []  # last `windows` closed windows: [arrivals, departures]
        self._growing: bool | None = None  # the window test on _closed; None (unknown) once a window closes
        self._since: float | None = None  # start of the current episode
        self._ref_expected = 0.0  # Little's-law WIP when the episode started
        self._settled = False  # past the start-up period

    # -- time ---------------------------------------------------------------------------------------

    def _normal_d(self) -> float:
        """Mean time in stage as it normally is: a queue building up lengthens the fast EWMA first."""
        if self._mean_d is None or self._slow_d is None:
            return 0.0
        return min(self._mean_d, self._slow_d)

    def _tau(self) -> float:
        return self.rate_windows * max(self._normal_d(), self.min_window)

    def _window_length(self) -> float:
        """One typical duration, but long enough to hold ~``min_window_events`` arrivals."""
        rate = self.arrival_rate()
        by_count = self.min_window_events / rate if rate > 0 else 0.0
        return max(self._normal_d(), self.min_window, by_count)

    def _advance(self, t: float) -> None:
        """Move the clock to ``t`` (late events are counted at the current clock)."""
        if self._t is None:
            self._t = self._t0 = t
            return
        if t <= self._t:
            return
        dt = t - self._t
        # self._tau(), inlined (this runs for every arrival, departure and check)
        m, s = self._mean_d, self._slow_d
        d = 0.0 if m is None or s is None else (m if m < s else s)
        mw = self.min_window
        f = math.exp(-dt / (self.rate_windows * (mw if mw > d else d)))
        self._ra *= f
        self._rd *= f
        self._wip_avg = self._wip_avg * f + self.wip * (1.0 - f)
        self._t = t
        if self._win_start is not None and t >= self._win_start + self._win_len:  # a window closes
            self._growing = None
            for _ in range(self.windows + 1):  # bounded: older windows fall out anyway
                if t < self._win_start + self._win_len:
                    break
                self._closed.append([self._win_a, self._win_d])
                del self._closed[: -self.windows]
                self._win_a = self._win_d = 0
                self._win_start += self._win_len
                self._win_len = self._window_length()
            else:  # a long gap: restart windows at t
                self._win_start = t

    # -- updates ----------------------------------------------------------------------------------

    def arrive(self, ts: float) -> None:
        self._advance(ts)
        self.arrivals += 1
        self.wip += 1
        self._ra += 1.0
        self._win_a += 1

    def depart(self, ts: float, duration: float) -> None:
        self._advance(ts)
        self.departures += 1
        self.wip = max(self.wip - 1, 0)
        self._rd += 1.0
        self._win_d += 1
        if duration >= 0 and math.isfinite(duration):
            if self._mean_d is None or self._slow_d is None:
                self._mean_d = self._slow_d = duration
            else:
                self._mean_d += max(self.duration_alpha, 1.0 / self.departures) * (duration - self._mean_d)
                self._slow_d += max(self.duration_alpha / 10, 1.0 / self.departures) * (duration - self._slow_d)
        if self._win_start is None and self.departures >= self.min_departures:
            self._win_start = ts
            self._win_len = self._window_length()
            self._win_a = self._win_d = 0  # the first window starts now, not with the stream

    # -- queries ----------------------------------------------------------------------------------

    def _rate(self, decayed: float) -> float:
        if self._t is None or self._t0 is None:
            return 0.0
        tau = self._tau()
        span = self._t - self._t0
        return decayed / (tau * (1.0 - math.exp(-span / tau))) if span > 0 else 0.0

    def arrival_rate(self) -> float:
        return self._rate(self._ra)

    def departure_rate(self) -> float:
        return self._rate(self._rd)

    def littles_law(self) -> tuple[float, float]:
        """(observed time-weighted mean WIP, arrival rate x mean time in stage)."""
        return self._wip_avg, self.arrival_rate() * self._normal_d()

    def _excess(self, factor: float, sigmas: float, expected: float) -> bool:
        return self.wip > factor * expected and self.wip > expected + sigmas * math.sqrt(expected) + 3

    @staticmethod
    def _significant_inflow(arrivals: int, departures: int) -> bool:
        """Net inflow beyond what Poisson noise in the two counts explains."""
        return arrivals - departures > 2.5 * math.sqrt(arrivals + departures) + 2

    def _windows_growing(self) -> bool:
        """The window test: net inflow in all but at most one of the last closed windows, significant
        as a Poisson count. It needs no rates, and it ends nearly every check."""
        closed = self._closed
        if len(closed) < self.windows:
            return False
        a = d = growing = 0
        for wa, wd in closed:
            a += wa
            d += wd
            growing += wa > wd
        return growing >= self.windows - 1 and self._significant_inflow(a, d)

    def _caught_up(self) -> bool:
        """Departures kept up with arrivals over the last closed windows (none of them idle) and the
        window still open shows no significant net inflow: the queue stopped growing (it may stay
        long, which the stage's stalled items and its metrics show; the growth is over)."""
        closed = self._closed
        if len(closed) < self.windows or not all(a + d for a, d in closed):
            return False
        return (sum(w[1] for w in closed) >= sum(w[0] for w in closed)
                and not self._significant_inflow(self._win_a, self._win_d))

    def in_backlog(self, now: float) -> bool:
        """Move the clock to ``now`` and judge: True while a backlog episode is ongoing.
        Idempotent for the same ``now``; :meth:`backlog` describes the episode."""
        self._advance(now)
        if self.departures < self.min_departures or self._mean_d is None or self._t0 is None:
            return False
        if not self._settled:
            if now - self._t0 < self.settle_durations * self._mean_d:
                return False  # start-up: WIP not in steady state, early departures are the short ones
            self._settled = True
        if self._since is None:
            growing = self._growing
            if growing is None:  # a window closed since the last check
                growing = self._growing = self._windows_growing()
            if not growing:
                return False
        expected = self.arrival_rate() * self._normal_d()
        if self._since is not None:
            # judged against the normal WIP frozen at the start: while the queue grows, time in
            # stage (and with it the current Little's-law expectation) grows too
            if not self._excess(self.end_factor, 2.0, min(expected, self._ref_expected)) or self._caught_up():
                self._since = None
                return False
        else:
            if not self._excess(self.growth_factor, 4.0, expected):
                return False
            self._since = now
            self._ref_expected = expected
        return True

    def backlog(self) -> Backlog | None:
        """The ongoing backlog episode as of the latest :meth:`in_backlog`, or None (pure)."""
        if self._since is None:
            return None
        rate, normal = self.arrival_rate(), self._normal_d()
        expected = rate * normal
        return Backlog(self.wip, expected, rate, self.departure_rate(),
                       self.wip / expected if expected > 0 else math.inf, self._since, normal)

    def check(self, now: float) -> Backlog | None:
        """The ongoing backlog episode, or None. Idempotent for the same ``now``."""
        return self.backlog() if self.in_backlog(now) else None

    # -- persistence ------------------------------------------------------------------------------

    _PARAMS = ("min_departures", "windows", "growth_factor", "end_factor", "rate_windows", "min_window",
               "duration_alpha", "min_window_events", "settle_durations")
    _STATE = ("wip", "arrivals", "departures", "_mean_d", "_slow_d", "_t", "_t0", "_ra", "_rd", "_wip_avg",
              "_win_start", "_win_len", "_win_a", "_win_d", "_since", "_ref_expected",
              "_settled")

    def snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = {p: getattr(self, p) for p in self._PARAMS}
        data.update({a: getattr(self, a) for a in self._STATE})
        data["closed"] = [list(w) for w in self._closed]
        return data

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self:
        f = cls(**{p: data[p] for p in cls._PARAMS if p in data})  # older snapshots: defaults
        for a in cls._STATE:
            if a in data:
                setattr(f, a, data[a])
        if "_slow_d" not in data:
            f._slow_d = f._mean_d
        f._closed = [[int(w[0]), int(w[1])] for w in data["closed"]]
        return f

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_growing", None)  # pickled before the window test was cached
