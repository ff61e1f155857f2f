"""Source silence: a workflow stopped sending events compared with its learned rate.

Per workflow, in event time. Moments of activity are counted per local hour-of-week bin (168
bins) together with the hours each bin was observed (exposure), so the rate of every hour of the
week is known: quiet nights and weekends are normal for business-hours traffic. Counts and exposure
decay by ``exp(-1 / memory_weeks)`` per observed week (default memory: 8 weeks).

A moment is an event that does not fall in the same minute as the latest one: the events of a
batch job, or the two or three one user action writes, are one sign of life, not forty. Counted
per event, a public loan-offer log (193,849 events) whose weekend traffic starts with a job
delivering ~45 events within a minute at 8:00 paged silence most weekend mornings at ~9:00 (61
silences in 13 months); counted per moment, 13. On simulated Poisson traffic of ~10 events an hour
a stop is called 5-10 % later (a few events share a minute); the rates, gaps and counts below are
of moments ("events" in the rest of this file).

The silence limit after the last event at ``t`` is the first instant ``T`` where the events
expected in ``[t, T)`` under an inhomogeneous Poisson model reach ``ln(1 / tail_prob)`` (13.8 for
1e-6): the chance of seeing no event that long is below ``tail_prob``. Rates used for the limit are
shrunk by ``1 - 1.5 / sqrt(count + 1)`` (few observations: expect less, page later), where a bin
agrees with the week's day x hour pattern the pattern lends it its counts (:func:`pooled_rates`;
24/7 traffic of 240 events a day, three weeks in: limits 79-106 min after a stop instead of
88-149), bins not yet observed get a quarter of the quietest observed rate, and the limit is never earlier than
``floor_gaps`` typical gaps (the gap between events at the rate an average event sees).

Bursty sources: real integrations deliver in clumps (a clerk works through a pile, a batch job
runs), so long gaps are far likelier than a Poisson model says. Every gap is scored by the events
the model expected in it; how often gaps reach 2, 4, 8 and 16 expected events gives a
:meth:`~SourceRate.dispersion` factor (1.0 for Poisson traffic) that multiplies ``ln(1/tail_prob)``.
On a public permit-office log (8,577 events over 13 months) it is 3.4 and source_silent pages fell
from 50 to 8; on simulated Poisson streams it stays 1.0, so their silence delay is unchanged.
Where clumps are the rule (a small workflow whose ~6 events a day are the steps of ~1.3 items, each
item's steps within hours), too few gaps reach many expected events for their frequencies to show
it. So the spread of the gaps' scores counts too: scored in expected events, a Poisson source's gaps
are exponential with mean 1 (``E[s^2] = 2 E[s]^2``), a source in clumps of ``b`` events has ``1/b`` of
its gaps between clumps, ``b`` times longer (``E[s^2] ~ 2 b E[s]^2``). The ratio (scores capped at 16
expected events, and a gap that reached the silence limit not at all, so an outage is not taken
for a clump; from the source's second week on, when its rates are formed) counts from 1.5 (Poisson
traffic: 0.8-1.1; 2-4 for such workflows) once 50 gaps are scored. 50 such workflows over five months (a reviewer's stream): false silence pages 16 -> 1
(and 13 -> 10 in the last weeks, when the stream's items ran out); the 56 simulated quality runs are
unchanged; public logs: the permit-office receipt log 6 -> 1 silences, BPI 2013 incidents 6 -> 3,
BPI 2019 11 -> 7, BPI 2020 travel permits 10 -> 7, the others unchanged.

Nothing is decided until ``min_events`` events spanning ``min_span`` seconds (default one day, so
quiet nights are known) have been seen.

Measured (seeded, see the tests): no false silence over 30 days of 1000 or 100 events/day, 24/7
or office hours only (UTC and Europe/Berlin); a stop of 1000 events/day 24/7 traffic is silent
29-31 minutes after the last event (200/day: 1.9-2.1 h); for office-hours traffic the last event of
a Friday becomes silence at about 9:06 on Monday. Public holidays are not known to it: a workday
holiday of a business-hours workflow would read as silence.

Implementation: compiled (``core/src/silence.rs``, built when the package is installed), the same
operations in the same order as the Python class it replaced: Python's ``max``/``min``, ``sum()`` as
plain left-to-right addition, ``//`` on floats, the C library's ``log``/``exp``/``sqrt`` that
CPython's ``math`` calls, and numpy's summation order (pairwise along the day, row by row along the
hour) in :func:`pooled_rates`, so every limit, gap, snapshot and alert is bit-for-bit what it was.
UTC offsets still come from :func:`detectors.calendar.utc_offset` (zoneinfo), asked only when an
instant leaves the period of constant offset it last answered for. ``observe`` costs ~0.2-0.3 us and
``silent_after`` ~0.25 us (Python: ~2.9 and 4.3-6.7 us; 1000 events a day). The snapshot format
(``snapshot()``/``restore()``) and pickles (by the name ``detectors.silence.SourceRate``, every
protocol; the Python class's pickles at protocol 2 and up, which the engine writes, load) are
unchanged but for the gaps' spread (``scores``, twenty-second session), which snapshots and states
without it start at zero. A subclass's own ``learning``/``dispersion``/``pace`` are honoured by the
limits.

>>> s = SourceRate()
>>> for i in range(8 * 1440):              # one event a minute for eight days
...     s.observe(1_700_000_000 + 60.0 * i)
>>> last = 1_700_000_000 + 60.0 * (8 * 1440 - 1)
>>> round(s.expected_gap(last))
59
>>> round((s.silent_after(last) - last) / 60)
15
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence

from detectors._core import SourceRate, pooled_rates, silent_after_combined

__all__ = ["SourceRate", "combined_gap", "past_holidays", "pooled_rates", "silent_after_combined"]


def combined_gap(gaps: Iterable[float | None]) -> float | None:
    """The typical gap between the events of a source split over several shares, from each share's own
    typical gap (None or 0: nothing known): their rates add up. None when no share knows one."""
    inverse = sum(1.0 / g for g in gaps if g)
    return 1.0 / inverse if inverse > 0 else None


def past_holidays(spans: Sequence[tuple[float, float]], last: float, limit: float,
                  limit_after: Callable[[float], float | None]) -> float:
    """The silence limit after an event at ``last`` with holidays (``spans``: epoch ``[start, end)`` of
    local days, in order): no event is due on one, so a holiday that begins before the limit moves it to
    the limit after its end, as if the source had spoken then (``limit_after``), never earlier. Without
    this an office closed on Thanksgiving was paged silent at 9:06 that morning, and every item open then
    was held as one whose events may have been lost in the outage: 8-9 % of the stalls never paged."""
    for start, end in spans[bisect_right(spans, last, key=lambda span: span[1]):]:  # (decades of them)
        if start >= limit:
            break
        after = limit_after(end)
        if after is not None and after > limit:
            limit = after
    return limit
