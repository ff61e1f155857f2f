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

Implementation
    :class:`FlowTracker` is compiled (``core/src/throughput.rs``, built when the package is installed):
    the same operations in the same order as the Python class it replaced (Python's ``max``/``min``
    tie rules, int counts compared exactly with floats, the C library's ``exp``, and the same errors
    on a float division by zero, ``math.exp`` overflowing or a bad parameter), so every answer,
    snapshot and alert is bit-for-bit what it was; ``arrive``/``depart``/``check`` cost 50-70 ns
    instead of 350-850. ``snapshot()``/``restore()`` keep their format (older snapshots still
    restore). Pickles (by the name ``detectors.throughput.FlowTracker``, every protocol) carry the
    Python class's ``__dict__`` (``__getstate__``), so the Python class's pickles at protocol 2 and up,
    which the engine writes, load (and the other way round).
    :class:`Backlog` stays a Python dataclass, built only when an episode is asked for (0.9 us a
    call; the engine asks when a backlog alert fires).

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

from dataclasses import dataclass

from detectors._core import FlowTracker


@dataclass(frozen=True, slots=True)
class Backlog:
    wip: int
    expected_wip: float  # arrival_rate * mean time in stage (Little's law)
    arrival_rate_per_s: float
    departure_rate_per_s: float
    growth_ratio: float  # wip / expected_wip
    since: float  # event time the episode started
    normal_seconds: float = 0.0  # mean time in stage as it normally is (Little's law: expected_wip / arrival rate)


__all__ = ["Backlog", "FlowTracker"]
