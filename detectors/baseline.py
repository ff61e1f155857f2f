"""Stage-duration baseline: what a normal duration of one (workflow, stage, segment) looks like.

Representation
    A decayed histogram over log-duration. Bins are 0.1 wide in log space (≈10 % relative width)
    and grow on demand, so a baseline holds only the bins its data touch (≈40..150 bins, 1..2.5 KB).
    Each bin keeps its weight and the weighted sum of its log-durations (its centroid), so quantiles
    interpolate between centroids: exact for repeated values, about 1 % off for smooth data.

Forgetting (the choice asked for in the design)
    Exponential forgetting with an effective memory of ``window`` observations (default 1000):
    every new observation weighs ``e^(1/window)`` times the previous one (the growing-weight trick,
    O(1) per update; all weights are rescaled when they get large). Slow seasonal change of the
    normal is followed within about ``window`` completions; a sudden shift is for
    :class:`detectors.drift.ShiftDetector` to find and :meth:`DurationBaseline.reset` to absorb.

Threshold (when an open item is "stalled")
    In log space: centre = median, spread = the larger of (p50 - p10) / 1.2816 and
    (p75 - p50) / 0.6745: robust sigmas for lognormal data from the lower half (which stalls in the
    upper tail cannot widen and censoring of the top cannot narrow) and from the upper quartile
    (real durations are right-skewed even in log space — approvals that wait a night, a weekend —
    and a few per cent of stalls move p75 only a little). On the receipt-phase log of a Dutch
    municipality (8,577 events) the upper quartile cut slow-stage alerts from 1,699 to 653.
    The limit is ``exp(p50 + clamp(k * spread, ln 4, cap) / sensitivity)``: never before 4x typical,
    and ``k`` = 2.75 spreads when nothing stalls, lowered towards 2.0 as the share of stalled
    (censored) items grows (``k = 2.75 - 8 * censored_fraction``): when stalls are common, a long
    duration is more likely a stall than a slow normal item, so paging sooner gives a better F1.
    ``cap`` = ln 8: while the spread is at most 0.9 (a single kind of normal, p95 within 4.4x
    typical) the limit stops growing with it at 8x typical (11.5x at the default sensitivity 0.85),
    so a variable 6-day stage pages after 69 days, not 80. Wider stages (two kinds of normal: seconds
    for most items, hours for some) leave the cap quickly: it rises 6.7 per unit of spread and no
    longer binds from a spread of 1.0 on. The cap reads the spread of the upper side (p50..p75) only:
    exponential-like waits (most tickets picked up at once, some after a while) are wide in log space
    below the median, not above it, and a wide lower half lifted their limits to 40-60x typical where
    their p99.9 is 7x (simulated ``shapes`` scenario: 0.70-0.79 -> 0.86-0.92 of the oracle's F1). Unless
    a tenth of the items pass in under 1/25 of typical (lower-half spread above 2.5): two kinds of
    normal, where the wide spread stands (BPI 2012: an application cancelled is usually followed
    within seconds, and for a fifth of them nothing follows; capped, 548 of them paged). See "Instant
    steps" below for the case where the quick kind is instant.
    ``stagewatch evaluate``, six scenarios of 6000 items: runs
    at >= 0.97 of the oracle's F1 21 -> 24 of 24 (seeds 1-4), 19 -> 23 of 24 on seeds 5-8 (never
    looked at before), false pages per 1000 items unchanged at worst (5.8, slowdown seed 5). On
    three public logs: two unchanged, the receipt log 172 -> 206 stalled pages (all in its bimodal
    first step, through two more bottleneck shifts there that re-learned its baseline).
    Measured (seeded lognormal streams of 3000 items, paging online with the engine's clipping,
    6 seeds each; ``tests/unit/test_detectors_baseline.py``), F1 as a share of that of the best
    fixed multiple of the true median chosen in hindsight: >= 0.95 on average for sigma <= 0.7 with
    2..5 % stalls of 4x..20x typical, 0.87..0.91 at sigma 0.9 (0.85 before the cap). With 10 %
    stalls the alert budget below holds pages back (0.60..0.86 on average): there it trades recall
    for staying quiet on stages that are slow by nature. Explainable as "typical 3.5 days, p95 8.1
    days, pages after 14 days".

Light upper tails
    Gamma, Weibull and exponential waits (most items picked up soon, a few after a while: the textbook
    service time) are wider below their median than above it in log space, and their upper tail is
    light: p99.9 lies 2.2-2.5 upper spreads above the median (a lognormal's: 3.1). Read as a lognormal
    from the wider lower half, an exponential stage was limited at 32x typical, where its p99.9 is
    10x: its stalls (4-20x) went unpaged (simulated, every stage exponential: 0.27 of the oracle's F1,
    below a static SLA). So when the lower spread is clearly the wider (ratio above 1.15, and below the
    instant-and-worked case above), the limit is read from the upper spread, in a reach that falls with
    the ratio: ``k * upper * max(1.15 - 2.3 * (ratio - 1.15), 0.8)``, continuous with the lognormal
    rule at 1.15 and at 0.8 from a ratio of 1.3 (exponential and Weibull: 1.43, gamma 2: 1.29). Only
    once a fourth of the window is learned: the first completions of a stage are its quick ones (the
    slow ones are still open), and their upper side looks light when it is only cut short. The ratio
    is noisy (0.85-1.28 on symmetric log-logistic stages of 500-3500 items), hence the margin above
    one. Measured (``stagewatch evaluate --scenario steady --family F --seeds 1,2,3,4``: 6000 items,
    every stage of one family; seeds 3-4 held out): exponential 0.27-0.44 -> 0.76-0.87 of the
    oracle's F1 at 1.3-7.7 false pages per 1000 items, Weibull 1.5 0.71-0.75 -> 0.95-0.96, Weibull 1.2
    0.72-0.79 -> 0.87-0.94, gamma 2 0.76-0.78 -> 0.91-0.94; log-logistic 2.5 at 0.96-1.00 of the
    oracle as before, but 22-25 -> 26-34 false pages per 1000 (its heavy tail pages its normal items
    whenever noise makes a segment look light). ``shapes`` (seeds 1-8) 0.86-0.92 -> 0.96-1.02; the six
    lognormal scenarios (48 runs) within +-0.01 of their oracle ratio, +0.0-0.4 false pages per 1000
    on each scenario's mean.

Two kinds of normal
    A stage where most items are quick and a common share slow (70 % quick, 30 % six times slower) has
    its median in the quick kind and its upper quartile in the slow one: the p50..p75 spread spans the
    gap between them, and read as one lognormal it put the limit at 90-320x typical where the slow
    kind's p99.9 lies at ~13x (simulated ``--family bimodal``: 0.36-0.40 of the oracle's F1, below a
    static SLA). So the limit never lies further than twice the p99 of all durations learned (completed
    and censored ones, so stalls that were paged hold it up rather than pull it down), once a fourth of
    the window is learned, and only while the upper half spread is at most 3 (p75 within ~7.6x typical)
    and the stage is not one of instant steps (above): on stages whose upper quartile lies hundreds of
    times past typical (BPI 2012's cancellations, where cases end) the twice-p99 limit paged ten times
    as many items, ahead of the check that learns where items end. A lognormal's limit (2.75 spreads)
    reaches the cap only from a spread of 1.6 on (p75 at 3x typical, the limit at 80x). Measured:
    ``--family bimodal`` 0.36-0.40 -> 0.45-0.48 of the oracle (seeds 1-4; 5-8 held out: 0.46-0.56),
    still below the River p99 (its early false pages remain: the first completions are the quick ones,
    and the slow ones page until the alert budget below lifts the limit); ``shapes`` (seeds 1-4)
    +0.01-0.02; the six lognormal scenarios unchanged (24 runs; seeds 5-8 in the same range), and of the
    28 runs of the seven other one-family settings two moved, by +0.001 and +0.002. Real logs: BPI 2012
    99 -> 113 stalled pages (W_Valideren aanvraag at 250 working hours, typical 70 min, p95 17 h), BPI
    2017 offers 819 -> 822, BPI 2017 applications 1,855 -> 1,872, BPI 2019 36 -> 22 slow-stage
    tickets; the others within one alert.

Instant steps
    Some completions within 10 s beside worked ones (auto-approvals next to a manager's, events a system
    writes at one instant, timestamps rounded to the day that make same-day moves 0 s): the wide spread
    from the instant steps to the worked ones put the limit at 10^12 seconds and more, so a 30-day stall
    of a 2-day approval never paged (20 % of approvals automatic: 0 of 20 stalls; day-rounded CRM
    timestamps: 0 of 17). An open item is one that was not done at once: while the instant steps are
    the smaller kind (2-50 % of completions), the limit is the worked kind's alone, read from the
    completions over ~10 s (those of the 10 % histogram bins wholly past 10 s), and none before about
    ``warmup`` of them are learned (by decayed weight) (20 of 20 and 34 of 34 paged,
    at 0.4 and 0 false pages per 1000 items). Where the instant steps are the norm (half or more: BPI
    2012's cancelled applications, whose case is over when nothing follows within seconds) and where
    the worked kind is wide in itself, the wide spread stands. Public logs: BPI 2012 113 -> 149
    stalled pages, BPI 2019 38 -> 71, the permit log 65 -> 123 (items hours in a step whose p95 is
    minutes), BPI 2013 and the receipt log unchanged within 4.

Alert budget
    Real stages often have two kinds of normal: most items done in half a minute, one in six
    waiting hours for a clerk. The lower half is then narrow, the limit low, and every waiting
    item would page. So censored durations are also kept by bin (weights only), and when more than
    5 % of completions lie past the limit, the limit is raised to where only 5 % do. A stage whose
    stalls stay within the budget (the usual case) never sees the floor. On the permit-office log
    above it cut stalled pages from 684 to 194 and slow-stage tickets from 216 to 19. Durations
    learned during warm-up that the first limit moves out as stalls (below) count at once: read
    before that move, the budget let a step of ~20 s typical, a fifth of whose items wait hours,
    page items after 6 minutes with its p95 at 15 (the receipt log: pages and tickets at limits
    under an hour 20 -> 4, stalled pages 199 -> 182; 3 of the 56 simulated runs moved, by 0.001).

Censoring
    A duration at or above 98 % of the current threshold (or passed with ``censored=True``: the
    engine clips paged items at the threshold) only tells us "at least this long": it is counted in
    :meth:`censored_fraction` but does not enter the histogram. So a stage whose items stall cannot
    learn that stalling is normal, and clipped values cannot ratchet the threshold upward; the
    quantiles describe the normal (non-stalled) items. Stalls learned during warm-up (before there
    was a threshold) are moved out of the histogram the same way once a threshold exists. Fed 30 %
    durations clipped at its own threshold for 20 000 items, the threshold rose at most 1.04x
    (it falls instead: ``k`` drops as the censored share grows). Summaries used by the threshold
    are refreshed on every update during the first ``2 * warmup`` updates, then every 16 updates,
    so ``learn_one`` costs ~3 us and ``threshold`` ~2 us in Python, ~0.07 and ~0.05 us compiled (~0.4 us on a stage of instant steps: one more
    walk of the histogram).

Why not a River statistic
    River (0.26) has no quantile sketch that both forgets and censors: ``stats.Quantile`` (P²) and
    ``sketch.Histogram`` never forget, ``stats.RollingQuantile`` forgets by a hard window of raw
    values (8 KB for 1000 items, and a sudden cliff when a batch leaves it), ``stats.EWMean`` /
    ``EWVar`` decay but are moments, which stalls in the upper tail inflate. None can move values
    past a later-learned limit out of the estimate (the warm-up pruning above). On an uncensored
    stationary stream the quantiles agree with ``river.stats.Quantile``: within 0.02 log-seconds
    (2 %) with negligible forgetting, within the sampling noise of the ~2000-item effective window
    at the default one (tests/unit/test_detectors_baseline.py derives the tolerance).

Implementation
    Compiled (``core/src/baseline.rs``, built when the package is installed): the same operations in
    the same order as the Python class it replaced, with the C library's ``log``/``exp``/``erfc`` that
    CPython's ``math`` calls, so every answer, snapshot and alert is bit-for-bit what it was. The
    snapshot format (``snapshot()``/``restore()``, v3; v2 still restores) and pickles (by the name
    ``detectors.baseline.DurationBaseline``, every protocol; the Python class's pickles at protocol 2
    and up, which the engine writes, load) are unchanged.

>>> import random
>>> rng = random.Random(7)
>>> b = DurationBaseline(warmup=30)
>>> for _ in range(2000):
...     b.learn_one(3600 * rng.lognormvariate(0.0, 0.5))
>>> round(b.typical() / 3600, 1), round(b.quantile(0.95) / 3600, 1), round(b.threshold() / 3600, 1)
(1.0, 2.2, 3.9)
>>> b.score_one(3600) < 0.6 < 0.99 < b.score_one(6 * 3600)
True
"""

from detectors._core import DurationBaseline

__all__ = ["DurationBaseline"]
