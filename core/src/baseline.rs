//! `DurationBaseline`: the decayed log-duration histogram of one (workflow, stage, segment).
//! The model, its threshold rule and the reasons behind them are described in
//! `detectors/baseline.py`; this is its implementation, operation for operation.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::py::{as_int, clamp_log, erfc, float_repr, pmax, pmin, psum};

const BIN: f64 = 0.1; // bin width in log-seconds
const MIN_SECONDS: f64 = 1e-3;
const MAX_SECONDS: f64 = 1e10;
const LOG_MIN: f64 = -6.907755278982137; // ln(MIN_SECONDS), as CPython's math.log gives it
const RESCALE_AT: f64 = 1e12; // rescale all weights when the next weight exceeds this
const Z75: f64 = 0.6744897501960817; // standard normal 0.75 quantile
const Z90: f64 = 1.2815515655446004; // standard normal 0.9 quantile
const K_MAX: f64 = 2.75; // spreads above the median at sensitivity 1 when nothing stalls
const K_MIN: f64 = 2.0;
const K_SLOPE: f64 = 8.0; // K falls by this times the censored (stalled) fraction
const LOG_MIN_FACTOR: f64 = 1.3862943611198906; // ln 4: never below 4x typical at sensitivity 1
const LOG_MAX_FACTOR: f64 = 2.0794415416798357; // ln 8: the cap while the spread is narrow
const CAP_SPREAD: f64 = 0.9;
const CAP_SLOPE: f64 = 6.7;
const INSTANT_SPREAD: f64 = 2.5; // lower-half spread of a stage where a tenth pass in under 1/25 of typical
/// Steps done within this many seconds are the instant kind (a system's own step, an auto-approval):
/// the baseline reads such a stage's worked kind apart, and the engine's drift test does not tell
/// one such duration from another (`detectors._core.INSTANT_SECONDS`).
pub const INSTANT_SECONDS: f64 = 10.0;
const INSTANT_SHARE: f64 = 0.02; // a stage has an instant kind when at least this share of completions do
const MIN_SPREAD: f64 = 0.05; // log units: constant data still gets a sane spread
const SKEW_FROM: f64 = 1.15; // lower / upper spread above which the upper tail is read as light ...
const SKEW_SLOPE: f64 = 2.3; // ... the limit's reach, in upper spreads, falling by this per unit of it ...
const SKEW_FLOOR: f64 = 0.8; // ... down to this (exponential and Weibull waits: from a ratio of 1.3)
const LOG_CENSOR_AT: f64 = -0.020202707317519466; // ln 0.98: from 98 % of the threshold a duration is censored
const REFRESH_EVERY: i64 = 16;
const SUMMARY_QS: [f64; 3] = [0.1, 0.5, 0.75]; // the log-quantiles a refresh keeps
const BUDGET: f64 = 0.05; // at most this share of completions may lie past the threshold
const TAIL_Q: f64 = 0.99; // the limit never lies further than TAIL_REACH past this quantile of all durations ...
const TAIL_REACH: f64 = 0.6931471805599453; // ... (ln 2: twice it) ...
const TAIL_UPPER: f64 = 3.0; // ... while the upper half spread is at most this (p75 within ~7.6x typical)
const SQRT2: f64 = std::f64::consts::SQRT_2;

/// Make bin `i` exist in `arrays` (which start at bin `lo`); returns (new lo, its index).
fn place(arrays: &mut [&mut Vec<f64>], lo: i64, i: i64) -> (i64, usize) {
    let len = arrays[0].len() as i64;
    let j = i - lo;
    if len == 0 {
        for a in arrays.iter_mut() {
            a.push(0.0);
        }
        return (i, 0);
    }
    if j < 0 {
        for a in arrays.iter_mut() {
            a.splice(0..0, std::iter::repeat(0.0).take((-j) as usize));
        }
        return (i, 0);
    }
    if j >= len {
        for a in arrays.iter_mut() {
            a.resize((j + 1) as usize, 0.0);
        }
    }
    (lo, j as usize)
}

/// Robust sigmas of log-durations from the lower half (p10..p50) and the upper quartile (p50..p75).
fn half_spreads(sm: &[f64; 3]) -> (f64, f64) {
    ((sm[1] - sm[0]) / Z90, (sm[2] - sm[1]) / Z75)
}

/// Median and robust sigma: the larger of the two half spreads (and a floor).
fn centre_spread(sm: &[f64; 3]) -> (f64, f64) {
    let (lower, upper) = half_spreads(sm);
    (sm[1], pmax(pmax(lower, upper), MIN_SPREAD))
}

#[derive(Clone, Copy, PartialEq)]
enum Query {
    Quantile,
    Threshold,
}

/// Online, outlier- and censoring-robust baseline of one key's stage durations (seconds).
#[pyclass(module = "detectors.baseline", name = "DurationBaseline")]
#[derive(Clone)]
pub struct DurationBaseline {
    #[pyo3(get)]
    warmup: i64,
    #[pyo3(get)]
    window: i64,
    /// durations learned (censored ones included)
    #[pyo3(get)]
    n: i64,
    growth: f64,
    w: f64,      // weight of the next observation
    lo: i64,     // bin index of wt[0]
    wt: Vec<f64>, // bin weights
    ls: Vec<f64>, // bin weighted sums of log-durations
    total: f64,   // histogram weight
    censored: f64, // weight of censored durations
    clo: i64,      // bin index of cwt[0]
    cwt: Vec<f64>, // censored weights by bin (only for the budget floor)
    floor: Option<f64>, // log-duration past which only BUDGET of completions lie
    tail: Option<f64>,  // log-duration below which TAIL_Q of completed and censored durations lie
    since: i64,         // updates since the last summary refresh
    summary: Option<[f64; 3]>, // log-quantiles at SUMMARY_QS
    limit: Option<f64>, // log-duration from which values count as censored
    /// answers of threshold() and quantile(), emptied by every mutation
    memo: Vec<(Query, f64, Option<f64>)>,
}

impl DurationBaseline {
    fn create(warmup: i64, window: i64) -> PyResult<Self> {
        if warmup < 3 || window < 10 {
            return Err(PyValueError::new_err("DurationBaseline: warmup >= 3 and window >= 10"));
        }
        Ok(DurationBaseline {
            warmup,
            window,
            n: 0,
            growth: (1.0 / window as f64).exp(),
            w: 1.0,
            lo: 0,
            wt: Vec::new(),
            ls: Vec::new(),
            total: 0.0,
            censored: 0.0,
            clo: 0,
            cwt: Vec::new(),
            floor: None,
            tail: None,
            since: 0,
            summary: None,
            limit: None,
            memo: Vec::new(),
        })
    }

    fn clear(&mut self) {
        *self = DurationBaseline::create(self.warmup, self.window).expect("validated at creation");
    }

    fn learn(&mut self, seconds: f64, censored: bool) -> PyResult<()> {
        if !seconds.is_finite() {
            return Err(PyValueError::new_err(format!("duration must be finite, got {}", float_repr(seconds))));
        }
        let x = clamp_log(seconds, MIN_SECONDS, MAX_SECONDS);
        self.memo.clear();
        let w = self.w;
        self.n += 1;
        let i = ((x - LOG_MIN) / BIN) as i64;
        if censored || self.limit.map_or(false, |limit| x >= limit) {
            self.censored += w;
            let (clo, j) = place(&mut [&mut self.cwt], self.clo, i);
            self.clo = clo;
            self.cwt[j] += w;
        } else {
            let (lo, j) = place(&mut [&mut self.wt, &mut self.ls], self.lo, i);
            self.lo = lo;
            self.wt[j] += w;
            self.ls[j] += w * x;
            self.total += w;
        }
        let w = w * self.growth;
        self.w = w;
        if w > RESCALE_AT {
            self.rescale();
        }
        self.since += 1;
        if self.n <= 2 * self.warmup || self.since >= REFRESH_EVERY {
            self.refresh();
        }
        Ok(())
    }

    fn rescale(&mut self) {
        let f = 1.0 / self.w;
        for j in 0..self.wt.len() {
            self.wt[j] *= f;
            self.ls[j] *= f;
        }
        self.total *= f;
        self.censored *= f;
        for c in self.cwt.iter_mut() {
            *c *= f;
        }
        self.w = 1.0;
        // drop edge bins whose weight has decayed to nothing, so memory stays bounded
        let floor = 1e-9 * self.total;
        let (mut lo, mut hi) = (0usize, self.wt.len());
        while lo < hi && self.wt[lo] <= floor {
            lo += 1;
        }
        while hi > lo && self.wt[hi - 1] <= floor {
            hi -= 1;
        }
        if lo > 0 || hi < self.wt.len() {
            let dropped = psum(self.wt[..lo].iter().copied()) + psum(self.wt[hi..].iter().copied());
            self.total -= dropped;
            self.wt = self.wt[lo..hi].to_vec();
            self.ls = self.ls[lo..hi].to_vec();
            self.lo += lo as i64;
        }
    }

    fn summarize(&self) -> Option<[f64; 3]> {
        self.log_quantiles(&SUMMARY_QS).map(|qs| [qs[0], qs[1], qs[2]])
    }

    fn refresh(&mut self) {
        self.since = 0;
        self.summary = self.summarize();
        if self.summary.is_none() {
            self.limit = None;
            return;
        }
        self.floor = self.budget_floor();
        self.tail = self.all_quantile(TAIL_Q);
        let t = if self.n >= self.warmup { self.log_threshold(1.0) } else { None };
        self.limit = t.map(|t| t + LOG_CENSOR_AT);
        if let Some(limit) = self.limit {
            if self.prune(limit) {
                if let Some(qs) = self.summarize() {
                    self.summary = Some(qs);
                }
                // what was pruned is censored now: the alert budget counts it (the permit-office log's
                // step of ~20 s typical pruned a fifth of its durations, hours long, then paged items
                // after 6 minutes with its p95 at 15: the budget had been read before the pruning)
                self.floor = self.budget_floor();
                self.tail = self.all_quantile(TAIL_Q);
            }
        }
    }

    /// Move histogram bins whose centroid is past `limit` to the censored mass (stalls learned
    /// during warm-up, before there was a threshold to censor them).
    fn prune(&mut self, limit: f64) -> bool {
        let mut j = self.wt.len() as i64 - 1;
        let mut moved = 0.0;
        while j > 0 {
            let w = self.wt[j as usize];
            if w > 0.0 {
                if self.ls[j as usize] / w < limit {
                    break;
                }
                moved += w;
            }
            j -= 1;
        }
        if moved <= 0.0 || j <= 0 {
            return false;
        }
        let keep = (j + 1) as usize;
        for k in keep..self.wt.len() {
            let w = self.wt[k];
            if w > 0.0 {
                let (clo, c) = place(&mut [&mut self.cwt], self.clo, self.lo + k as i64);
                self.clo = clo;
                self.cwt[c] += w;
            }
        }
        self.wt.truncate(keep);
        self.ls.truncate(keep);
        self.total -= moved;
        self.censored += moved;
        true
    }

    /// The log-duration past which only BUDGET of all completions (censored ones at their own
    /// durations) lie; None while the censored share is within the budget anyway.
    fn budget_floor(&self) -> Option<f64> {
        if self.censored <= BUDGET * (self.total + self.censored) {
            return None;
        }
        self.all_quantile(1.0 - BUDGET)
    }

    /// The log-duration (a bin's upper edge) below which a share `q` of all learned durations lie,
    /// completed and censored ones together; None while nothing is learned.
    fn all_quantile(&self, q: f64) -> Option<f64> {
        let target = q * (self.total + self.censored);
        let (lo, clo) = (self.lo, self.clo);
        let (nw, nc) = (self.wt.len() as i64, self.cwt.len() as i64);
        let start = if nc > 0 { lo.min(clo) } else { lo };
        let stop = (lo + nw).max(clo + nc);
        let mut cum = 0.0;
        for i in start..stop {
            let (j, c) = (i - lo, i - clo);
            let a = if 0 <= j && j < nw { self.wt[j as usize] } else { 0.0 };
            let b = if 0 <= c && c < nc { self.cwt[c as usize] } else { 0.0 };
            cum += a + b;
            if cum >= target && cum > 0.0 {
                return Some(LOG_MIN + (i + 1) as f64 * BIN);
            }
        }
        None
    }

    /// Quantiles (ascending `qs`) of the log-duration histogram, interpolating centroids.
    fn log_quantiles(&self, qs: &[f64]) -> Option<Vec<f64>> {
        self.log_quantiles_from(0, self.total, qs)
    }

    /// The same over the bins from index `from` on, whose weight is `total`.
    fn log_quantiles_from(&self, from: usize, total: f64, qs: &[f64]) -> Option<Vec<f64>> {
        if total <= 0.0 {
            return None;
        }
        let nt = qs.len();
        let mut out = Vec::with_capacity(nt);
        let (mut k, mut cum) = (0usize, 0.0);
        let (mut prev_pos, mut prev_c, mut first) = (0.0, 0.0, true);
        for (&w, &lsum) in self.wt[from..].iter().zip(self.ls[from..].iter()) {
            if w <= 0.0 {
                continue;
            }
            let c = lsum / w;
            let pos = cum + 0.5 * w;
            while k < nt && qs[k] * total <= pos {
                if first {
                    out.push(c);
                } else {
                    out.push(prev_c + (c - prev_c) * (qs[k] * total - prev_pos) / (pos - prev_pos));
                }
                k += 1;
            }
            if k == nt {
                break; // the bins above the last target change nothing
            }
            prev_pos = pos;
            prev_c = c;
            first = false;
            cum += w;
        }
        while k < nt {
            out.push(prev_c);
            k += 1;
        }
        Some(out)
    }

    fn censored_share(&self) -> f64 {
        let t = self.total + self.censored;
        if t > 0.0 {
            self.censored / t
        } else {
            0.0
        }
    }

    /// A stage of two kinds, instant steps and worked ones (some of its completions within seconds:
    /// auto-approvals, events a system writes at one instant, timestamps rounded to the day that make
    /// same-day moves 0 s): the summary quantiles of the worked kind alone, those over 10 s, while it
    /// is the larger kind. An open item is one that was not done at once, so its limit is the worked
    /// kind's; read from both kinds the spread from the instant steps to the worked ones put it at
    /// 10^12 seconds and more (a 30-day stall of a 2-day approval never paged). Also the share of the
    /// instant kind. (A worked kind that is itself wide keeps the wide spread's limit below.)
    fn worked_summary(&self) -> Option<([f64; 3], f64)> {
        let (from, worked, s) = self.instant_kind()?;
        self.log_quantiles_from(from, worked, &SUMMARY_QS).map(|v| ([v[0], v[1], v[2]], s))
    }

    /// Where the worked kind's bins start, its weight and the instant kind's share, when the instant
    /// steps are the smaller kind (``INSTANT_SHARE`` up to half); None otherwise: the instant steps
    /// the norm (half or more), an item not done at once is most likely one that ends here (BPI
    /// 2012: cancelled applications, nearly always followed within seconds, and when not, the case
    /// is over), not a worked one stalled.
    fn instant_kind(&self) -> Option<(usize, f64, f64)> {
        // the bins are ordered: the worked kind starts at the first bin wholly past 10 s
        let from = ((INSTANT_SECONDS.ln() - LOG_MIN) / BIN).ceil() as i64 - self.lo;
        if from <= 0 || from as usize >= self.wt.len() {
            return None;
        }
        let from = from as usize;
        let worked = psum(self.wt[from..].iter().copied());
        let s = 1.0 - worked / self.total;
        (INSTANT_SHARE..0.5).contains(&s).then_some((from, worked, s))
    }

    fn log_threshold(&self, sensitivity: f64) -> Option<f64> {
        let all = self.summary.as_ref()?;
        let worked = if half_spreads(all).0 > INSTANT_SPREAD { self.worked_summary() } else { None };
        if let Some((_, share)) = worked {
            if (1.0 - share) * (self.n as f64) < self.warmup as f64 {
                return None; // warming: the worked kind has not shown enough completions of its own yet
            }
        }
        let sm = worked.as_ref().map_or(all, |(w, _)| w);
        let (centre, spread) = centre_spread(sm);
        let k = pmin(pmax(K_MAX - K_SLOPE * self.censored_share(), K_MIN), K_MAX);
        let (lower, upper) = half_spreads(sm);
        let wide = if lower > INSTANT_SPREAD { spread } else { upper };
        let cap = if wide <= CAP_SPREAD { LOG_MAX_FACTOR } else { LOG_MAX_FACTOR + CAP_SLOPE * (wide - CAP_SPREAD) };
        let skew = if upper > MIN_SPREAD { lower / upper } else { 1.0 };
        // the shape of the upper side is read only where no instant steps widen the lower half (of a stage
        // of instant and worked steps, its worked kind's: above) once a fourth of its window is learned:
        // its first completions are its quick ones, the slow ones still open
        let shaped = lower <= INSTANT_SPREAD && self.n * 4 >= self.window;
        let mut excess = if skew > SKEW_FROM && shaped {
            // clearly wider below the median than above it in log space (gamma, Weibull, exponential
            // waits): a light upper tail, reached in fewer upper spreads than a lognormal's
            k * upper * pmax(SKEW_FROM - SKEW_SLOPE * (skew - SKEW_FROM), SKEW_FLOOR)
        } else {
            k * spread
        };
        if excess > cap {
            excess = cap;
        }
        if let Some(tail) = self.tail {
            // two modes (most quick, a share slow): the p50..p75 spread spans the gap between them and
            // reads as a wide lognormal, whose limit lies far past anything the slow mode ever takes
            let reach = tail + TAIL_REACH - centre;
            if excess > reach && shaped && upper <= TAIL_UPPER {
                excess = reach;
            }
        }
        if excess < LOG_MIN_FACTOR {
            excess = LOG_MIN_FACTOR;
        }
        if let Some(floor) = self.floor {
            if floor - centre > excess {
                excess = floor - centre;
            }
        }
        Some(centre + excess / sensitivity)
    }

    fn memo_get(&self, kind: Query, arg: f64) -> Option<Option<f64>> {
        self.memo.iter().find(|(k, a, _)| *k == kind && *a == arg).map(|(_, _, v)| *v)
    }

    fn quantile_of(&mut self, q: f64) -> PyResult<Option<f64>> {
        if !(0.0..=1.0).contains(&q) {
            return Err(PyValueError::new_err("q must be within [0, 1]"));
        }
        if let Some(v) = self.memo_get(Query::Quantile, q) {
            return Ok(v);
        }
        let value = self.log_quantiles(&[q]).map(|qs| qs[0].exp());
        self.memo.push((Query::Quantile, q, value));
        Ok(value)
    }

    fn restore_from(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let get = |key: &str| data.get_item(key);
        let mut b = DurationBaseline::create(as_int(&get("warmup")?)?, as_int(&get("window")?)?)?;
        b.n = as_int(&get("n")?)?;
        b.w = get("w")?.extract()?;
        b.lo = as_int(&get("lo")?)?;
        b.wt = get("wt")?.extract()?;
        b.ls = get("ls")?.extract()?;
        b.total = get("total")?.extract()?;
        b.censored = get("censored")?.extract()?;
        let dict = data.downcast::<PyDict>()?;
        // v2 snapshots have no censored histogram (it starts empty) and no floor
        b.clo = match dict.get_item("clo")? {
            Some(v) => as_int(&v)?,
            None => 0,
        };
        b.cwt = match dict.get_item("cwt")? {
            Some(v) => v.extract()?,
            None => Vec::new(),
        };
        b.floor = match dict.get_item("floor")? {
            Some(v) => v.extract()?,
            None => None,
        };
        b.tail = match dict.get_item("tail")? {
            Some(v) => v.extract()?,
            None => None, // older snapshots: set at the next refresh
        };
        b.since = as_int(&get("since")?)?;
        let summary: Option<Vec<f64>> = get("summary")?.extract()?;
        b.limit = get("limit")?.extract()?;
        b.summary = match summary {
            None => None,
            Some(s) if s.len() == SUMMARY_QS.len() => Some([s[0], s[1], s[2]]),
            Some(_) => b.summarize(), // an older snapshot kept other quantiles
        };
        Ok(b)
    }
}

#[pymethods]
impl DurationBaseline {
    #[new]
    #[pyo3(signature = (warmup = 30, window = 1000))]
    fn new(warmup: i64, window: i64) -> PyResult<Self> {
        DurationBaseline::create(warmup, window)
    }

    /// Learn one completed duration. ``censored``: the true duration is at least ``seconds``.
    #[pyo3(signature = (seconds, censored = false))]
    fn learn_one(&mut self, seconds: f64, censored: bool) -> PyResult<()> {
        self.learn(seconds, censored)
    }

    /// Forget everything (after a detected shift) and relearn from ``keep_recent`` durations.
    #[pyo3(signature = (keep_recent = Vec::new()))]
    fn reset(&mut self, keep_recent: Vec<f64>) -> PyResult<()> {
        self.clear();
        for seconds in keep_recent {
            self.learn(seconds, false)?;
        }
        self.refresh();
        Ok(())
    }

    /// The median duration (seconds) of normal items; None until 3 durations are known.
    fn typical(&mut self) -> PyResult<Option<f64>> {
        if self.n >= 3 {
            self.quantile_of(0.5)
        } else {
            Ok(None)
        }
    }

    /// Whether steps done within ``INSTANT_SECONDS`` are a smaller kind beside worked ones (2 % to
    /// half of the completions): then how many of them there are is the stage's mix, not its pace.
    fn instant_minority(&self) -> bool {
        self.instant_kind().is_some()
    }

    /// The median of the worked kind where instant steps are a smaller kind beside it
    /// (``instant_minority``), else ``recent_typical``. The median of both kinds falls in the gap
    /// between them and moves with their mix (dates without a time where a third of the items
    /// finish the same day: from 2 to 9 hours, at a mix held constant).
    fn worked_typical(&self) -> Option<f64> {
        match self.instant_kind() {
            Some((from, worked, _)) if self.n >= 3 => {
                self.log_quantiles_from(from, worked, &[0.5]).map(|v| v[0].exp())
            }
            _ => self.recent_typical(),
        }
    }

    /// The median as of the last summary refresh (at most 16 updates old): O(1).
    fn recent_typical(&self) -> Option<f64> {
        match self.summary {
            Some(sm) if self.n >= 3 => Some(sm[1].exp()),
            _ => None,
        }
    }

    /// The ``q`` quantile (0..1) of normal durations in seconds; None before any is learned.
    fn quantile(&mut self, q: f64) -> PyResult<Option<f64>> {
        self.quantile_of(q)
    }

    /// Seconds past which an open item is stalled; None until ``warmup`` durations are known.
    /// Higher ``sensitivity`` pages sooner: the log-excess over typical is divided by it.
    #[pyo3(signature = (sensitivity = 1.0))]
    fn threshold(&mut self, sensitivity: f64) -> PyResult<Option<f64>> {
        if let Some(v) = self.memo_get(Query::Threshold, sensitivity) {
            return Ok(v);
        }
        if sensitivity <= 0.0 {
            return Err(PyValueError::new_err("sensitivity must be > 0"));
        }
        if self.n < self.warmup {
            return Ok(None);
        }
        let value = self.log_threshold(sensitivity).map(f64::exp);
        self.memo.push((Query::Threshold, sensitivity, value));
        Ok(value)
    }

    /// Robust sigma of log-durations, None before any duration is learned.
    fn spread(&self) -> Option<f64> {
        self.summary.as_ref().map(|sm| centre_spread(sm).1)
    }

    /// How abnormal (slow) ``seconds`` is, 0..1, under the learned lognormal shape.
    fn score_one(&self, seconds: f64) -> f64 {
        let sm = match self.summary {
            Some(sm) if self.n >= 3 && seconds > 0.0 => sm,
            _ => return 0.0,
        };
        let x = pmin(pmax(seconds, MIN_SECONDS), MAX_SECONDS).ln();
        let (centre, spread) = centre_spread(&sm);
        let z = (x - centre) / spread;
        0.5 * erfc(-z / SQRT2)
    }

    /// Decayed share of learned durations that were censored (stalled, clipped).
    fn censored_fraction(&self) -> f64 {
        self.censored_share()
    }

    /// Completed durations needed before the baseline pages (a changed ``engine.warmup`` applied to
    /// what is already learned): the limit used to censor is recomputed at once.
    #[setter]
    fn set_warmup(&mut self, warmup: i64) -> PyResult<()> {
        if warmup < 3 {
            return Err(PyValueError::new_err("DurationBaseline: warmup >= 3"));
        }
        if warmup != self.warmup {
            self.warmup = warmup;
            self.memo.clear();
            if self.summary.is_some() {
                self.refresh();
            }
        }
        Ok(())
    }

    #[getter(_floor)]
    fn budget_floor_value(&self) -> Option<f64> {
        self.floor
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("v", 3)?;
        d.set_item("warmup", self.warmup)?;
        d.set_item("window", self.window)?;
        d.set_item("n", self.n)?;
        d.set_item("w", self.w)?;
        d.set_item("lo", self.lo)?;
        d.set_item("wt", &self.wt)?;
        d.set_item("ls", &self.ls)?;
        d.set_item("total", self.total)?;
        d.set_item("censored", self.censored)?;
        d.set_item("since", self.since)?;
        d.set_item("clo", self.clo)?;
        d.set_item("cwt", &self.cwt)?;
        d.set_item("floor", self.floor)?;
        d.set_item("tail", self.tail)?;
        d.set_item("summary", self.summary.map(|s| s.to_vec()))?;
        d.set_item("limit", self.limit)?;
        Ok(d)
    }

    #[classmethod]
    fn restore(_cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        DurationBaseline::restore_from(data)
    }

    fn __getstate__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.snapshot(py)
    }

    fn __setstate__(&mut self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        *self = DurationBaseline::restore_from(state)?;
        Ok(())
    }

    /// Pickled as ``DurationBaseline(warmup, window)`` + its snapshot, at every protocol.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let this = slf.borrow();
        let args = PyTuple::new(py, [this.warmup, this.window])?;
        let state = this.snapshot(py)?;
        PyTuple::new(py, [slf.get_type().into_any(), args.into_any(), state.into_any()])
    }

    fn __copy__(&self) -> Self {
        self.clone()
    }

    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        self.clone()
    }

    fn __repr__(&mut self, py: Python<'_>) -> PyResult<String> {
        let round = py.import("builtins")?.getattr("round")?;
        let show = |v: Option<f64>| -> PyResult<String> {
            match v {
                None => Ok("None".into()),
                Some(x) if x == 0.0 => Ok(float_repr(x)),
                Some(x) => Ok(round.call1((x, 3))?.repr()?.to_string()),
            }
        };
        let (t, th) = (self.typical()?, self.threshold(1.0)?);
        Ok(format!("DurationBaseline(n={}, typical={}, threshold={})", self.n, show(t)?, show(th)?))
    }
}
