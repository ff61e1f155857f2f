//! `SourceRate`: the hour-of-week event rate of one workflow and the instant its silence is
//! abnormal. The model and the reasons behind it are described in `detectors/silence.py`; this is
//! its implementation, operation for operation (the Python class it replaced is the reference:
//! Python's `max`/`min`, `sum()` as plain left-to-right addition, `//` on floats, int arithmetic
//! where Python had ints, and numpy's summation order in `pooled_rates`).
//!
//! Time zones stay Python's: UTC offsets come from `detectors.calendar.utc_offset` (zoneinfo), called
//! only when an instant leaves the constant-offset period that function last answered for (the
//! `(start, end, offset)` it keeps in `calendar._PERIODS`), so the per-event path and the hour walk
//! of a silence limit stay compiled.

use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyList, PyString, PyTuple, PyType};
use crate::py::{as_int, div, exp, floordiv, int_check, log, pmax, pmin, pmin_all, psum, sqrt};

const HOURS: usize = 168;
const MOMENT: f64 = 60.0; // seconds: the events of one minute are one moment of activity
const REFRESH_EVERY: i64 = 256;
const LEVELS: [f64; 4] = [2.0, 4.0, 8.0, 16.0]; // expected events in a gap
const MIN_EXCEED: f64 = 5.0;
const MAX_DISPERSION: f64 = 20.0;
// Clumped sources (the moments' own spread, `dispersion_of`): a gap's score counts up to SCORE_CAP
// expected events (a silence is not a clump), once MIN_SCORED gaps are scored, and only a spread
// of BURSTY or more (Poisson traffic: 0.8-1.1) counts.
const SCORE_CAP: f64 = 16.0;
const MIN_SCORED: f64 = 50.0;
const BURSTY: f64 = 1.5;
const PACE_SECONDS: f64 = 6.0 * 3600.0;
// the same over days: a sparse source's hours hold too few events to show its pace, its days do (orders
// of ~100 a day whose August fell 60 %: 4 false silences in 6 runs at night, every 19 min expected)
const SEASON_SECONDS: f64 = 3.0 * 86400.0;
const PACE_MIN_DUE: f64 = 20.0;
const PACE_FLOOR: f64 = 0.2;
const MONDAY_SHIFT: f64 = 3.0 * 86400.0; // calendar._MONDAY_SHIFT (an int there; exact as a float)
const WEEK: f64 = 7.0 * 86400.0;

const PARAMS: [&str; 7] = ["min_events", "timezone", "tail_prob", "floor_gaps", "memory_weeks", "min_span", "horizon"];
const STATE: [&str; 9] = ["n", "first", "last", "_exposed", "_bin", "_bin_end", "gaps", "recent_seen", "recent_due"];

type Bins = [f64; HOURS];

// -- Python's float semantics ---------------------------------------------------------------------

/// `math.floor(x)` (an int in Python, integral here).
fn floor_int(x: f64) -> PyResult<f64> {
    int_check(x).map(f64::floor)
}

/// `int(x)` as a loop bound: truncation, saturated to i64.
fn trunc_int(x: f64) -> PyResult<i64> {
    int_check(x).map(|x| x.trunc() as i64)
}

/// Python's `%` of an integral float by 168: the hour-of-week bin.
fn bin_of(hour: f64) -> usize {
    hour.rem_euclid(HOURS as f64) as usize
}

/// `float((hour + 1) * 3600) - off` for the integral `hour` (a Python int there): exact in floats
/// for any instant of the calendar, through Python's ints beyond.
fn hour_end(py: Python<'_>, hour: f64, off: f64) -> PyResult<f64> {
    if hour.abs() < 1e12 {
        return Ok((hour + 1.0) * 3600.0 - off);
    }
    let h = PyFloat::new(py, hour).call_method0("__int__")?;
    h.add(1)?.mul(3600)?.sub(off)?.extract()
}

/// An index into a 168-bin array as Python indexes one (negative from the end).
fn index(b: i64) -> PyResult<usize> {
    let n = HOURS as i64;
    if (0..n).contains(&b) {
        Ok(b as usize)
    } else if (-n..0).contains(&b) {
        Ok((b + n) as usize)
    } else {
        Err(PyIndexError::new_err("array index out of range"))
    }
}

// -- numpy's summation order (pooled_rates) -------------------------------------------------------

/// numpy's pairwise summation of a contiguous run (`pairwise_sum` in its add loop).
fn pairwise(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = -0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise(&a[..n2]) + pairwise(&a[n2..])
    }
}

/// `np.add.reduce` of a contiguous run: the identity 0.0 plus its pairwise sum.
fn np_sum(a: &[f64]) -> f64 {
    0.0 + pairwise(a)
}

/// `np.maximum(a, b)` of two floats (NaN propagates).
fn np_maximum(a: f64, b: f64) -> f64 {
    if a >= b || a.is_nan() {
        a
    } else {
        b
    }
}

/// :func:`detectors.silence.pooled_rates`: `counts`, `exposure` and `own` as 7 x 24 (day x hour).
fn pooled(counts: &Bins, exposure: &Bins, own: &Bins) -> Option<Bins> {
    let mut day_c = [0.0; 7];
    let mut day_e = [0.0; 7];
    for d in 0..7 {
        day_c[d] = np_sum(&counts[d * 24..(d + 1) * 24]);
        day_e[d] = np_sum(&exposure[d * 24..(d + 1) * 24]);
    }
    let mut hour_c = [0.0; 24];
    let mut hour_e = [0.0; 24];
    for h in 0..24 {
        let (mut c, mut e) = (0.0, 0.0);
        for d in 0..7 {
            c += counts[d * 24 + h];
            e += exposure[d * 24 + h];
        }
        hour_c[h] = c;
        hour_e[h] = e;
    }
    let (total_c, total_e) = (np_sum(counts), np_sum(exposure));
    if total_c <= 0.0 || total_e <= 0.0 {
        return None;
    }
    let overall = total_c / total_e;
    let mut out = *own;
    for d in 0..7 {
        for h in 0..24 {
            let j = d * 24 + h;
            let (c, e) = (counts[j], exposure[j]);
            let m = (day_c[d] / day_e[d]) * (hour_c[h] / hour_e[h]) / overall; // the pattern's rate
            let mu = m * e;
            if e >= 0.5 && day_c[d] > 0.0 && hour_c[h] > 0.0 && (c - mu).abs() <= 2.0 * mu.sqrt() {
                let prior = 1.0 / (1.0 / day_c[d] + 1.0 / hour_c[h]);
                let n = c + prior;
                out[j] = n / (e + prior / m) * np_maximum(1.0 - 1.5 / (n + 1.0).sqrt(), 0.0);
            }
        }
    }
    Some(out)
}

// -- the zone functions of detectors.calendar -----------------------------------------------------

struct Calendar {
    utc_offset: Py<PyAny>,
    zone: Py<PyAny>,
    zone_turn: Py<PyAny>,
    periods: Py<PyAny>,
}

static CALENDAR: GILOnceCell<Calendar> = GILOnceCell::new();

fn calendar(py: Python<'_>) -> PyResult<&'static Calendar> {
    CALENDAR.get_or_try_init(py, || {
        let m = py.import("detectors.calendar")?;
        Ok(Calendar {
            utc_offset: m.getattr("utc_offset")?.unbind(),
            zone: m.getattr("_zone")?.unbind(),
            zone_turn: m.getattr("zone_turn")?.unbind(),
            periods: m.getattr("_PERIODS")?.unbind(),
        })
    })
}

/// `calendar._zone(name)`: raises for a zone zoneinfo does not know.
fn check_zone(zone: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = zone.py();
    calendar(py)?.zone.call1(py, (zone,))?;
    zone.extract()
}

/// The constant-offset period `[start, end)` of the zone that `utc_offset` last answered for.
struct Period([AtomicU64; 3]);

impl Period {
    fn empty() -> Self {
        let nan = f64::NAN.to_bits();
        Period([AtomicU64::new(nan), AtomicU64::new(nan), AtomicU64::new(0)])
    }

    fn get(&self, i: usize) -> f64 {
        f64::from_bits(self.0[i].load(Ordering::Relaxed))
    }

    fn set(&self, start: f64, end: f64, off: f64) {
        self.0[0].store(start.to_bits(), Ordering::Relaxed);
        self.0[1].store(end.to_bits(), Ordering::Relaxed);
        self.0[2].store(off.to_bits(), Ordering::Relaxed);
    }

    fn clear(&self) {
        self.set(f64::NAN, f64::NAN, 0.0);
    }
}

// -- the model ------------------------------------------------------------------------------------

/// The rate tables: shrunk (pooled) rates, raw rates (events per hour, per bin), typical gap.
#[derive(Clone)]
struct Table {
    shrunk: Bins,
    raw: Bins,
    gap: Option<f64>,
}

/// Hour-of-week aware event rate of one workflow and the instant its silence is abnormal.
#[pyclass(module = "detectors.silence", name = "SourceRate", subclass, dict)]
pub struct SourceRate {
    #[pyo3(get, set)]
    min_events: i64,
    timezone: String,
    utc: bool, // timezone == "UTC": utc_offset's own shortcut
    #[pyo3(get, set)]
    tail_prob: f64,
    #[pyo3(get, set)]
    floor_gaps: f64,
    #[pyo3(get, set)]
    memory_weeks: f64,
    #[pyo3(get, set)]
    min_span: f64,
    #[pyo3(get, set)]
    horizon: f64,
    #[pyo3(get, set)]
    n: i64,
    #[pyo3(get, set)]
    first: Option<f64>,
    #[pyo3(get, set)]
    last: Option<f64>,
    counts: Bins,   // decayed events per hour-of-week bin
    exposure: Bins, // decayed hours each bin was observed
    #[pyo3(get, set, name = "_exposed")]
    exposed: f64, // total hours observed since the last decay
    #[pyo3(get, set, name = "_bin")]
    bin: i64, // hour-of-week bin of `last` and the instant that bin ends
    #[pyo3(get, set, name = "_bin_end")]
    bin_end: f64,
    table: Option<Table>,
    #[pyo3(get, set)]
    gaps: f64,
    exceed: [f64; 4],
    scores: [f64; 3], // gaps scored, the sum of their scores and of their squares (scores capped)
    season: [f64; 2], // events seen and expected, decayed over SEASON_SECONDS (recent_*: PACE_SECONDS)
    #[pyo3(get, set)]
    recent_seen: f64,
    #[pyo3(get, set)]
    recent_due: f64,
    period: Period, // a cache of utc_offset's, not state
}

impl Clone for SourceRate {
    fn clone(&self) -> Self {
        SourceRate {
            min_events: self.min_events,
            timezone: self.timezone.clone(),
            utc: self.utc,
            tail_prob: self.tail_prob,
            floor_gaps: self.floor_gaps,
            memory_weeks: self.memory_weeks,
            min_span: self.min_span,
            horizon: self.horizon,
            n: self.n,
            first: self.first,
            last: self.last,
            counts: self.counts,
            exposure: self.exposure,
            exposed: self.exposed,
            bin: self.bin,
            bin_end: self.bin_end,
            table: self.table.clone(),
            gaps: self.gaps,
            exceed: self.exceed,
            scores: self.scores,
            season: self.season,
            recent_seen: self.recent_seen,
            recent_due: self.recent_due,
            period: Period::empty(),
        }
    }
}

/// An int argument as Python's `int(x)` takes it.
struct IntArg(i64);

impl<'py> FromPyObject<'py> for IntArg {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        match ob.extract::<i64>() {
            Ok(v) => Ok(IntArg(v)),
            Err(_) => {
                let py = ob.py();
                Ok(IntArg(py.get_type::<pyo3::types::PyInt>().call1((ob,))?.extract()?))
            }
        }
    }
}

/// Floats from any iterable of numbers (a list, an `array("d")`, a tuple).
fn floats(ob: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let mut out = Vec::with_capacity(HOURS);
    for item in ob.try_iter()? {
        out.push(item?.extract::<f64>()?);
    }
    Ok(out)
}

fn bins(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<Bins> {
    let v = floats(ob)?;
    if v.len() != HOURS {
        return Err(PyValueError::new_err(format!("{what}: {HOURS} values expected, got {}", v.len())));
    }
    let mut out = [0.0; HOURS];
    out.copy_from_slice(&v);
    Ok(out)
}

fn levels(ob: &Bound<'_, PyAny>) -> PyResult<[f64; 4]> {
    let v = floats(ob)?;
    if v.len() != LEVELS.len() {
        return Err(PyValueError::new_err("zip() argument 2 is shorter or longer than argument 1"));
    }
    Ok([v[0], v[1], v[2], v[3]])
}

/// The pace of `seen` events where `due` were expected (see `SourceRate.pace`).
fn pace_in(seen: f64, due: f64) -> PyResult<f64> {
    if due < PACE_MIN_DUE {
        return Ok(1.0);
    }
    Ok(pmin(1.0, pmax(PACE_FLOOR, (seen + 2.0 * sqrt(seen)? + 1.0) / due)))
}

fn season(ob: &Bound<'_, PyAny>) -> PyResult<[f64; 2]> {
    match floats(ob)?[..] {
        [seen, due] => Ok([seen, due]),
        _ => Err(PyValueError::new_err("season: expected [seen, due]")),
    }
}

fn scores(ob: &Bound<'_, PyAny>) -> PyResult<[f64; 3]> {
    match floats(ob)?[..] {
        [n, sum, squares] => Ok([n, sum, squares]),
        _ => Err(PyValueError::new_err("scores: expected [gaps, sum, sum of squares]")),
    }
}

/// An `array("d")` holding `xs`.
fn array<'py>(py: Python<'py>, xs: &[f64]) -> PyResult<Bound<'py, PyAny>> {
    static ARRAY: GILOnceCell<Py<PyAny>> = GILOnceCell::new();
    let make = ARRAY.get_or_try_init(py, || Ok::<_, PyErr>(py.import("array")?.getattr("array")?.unbind()))?;
    let mut bytes = Vec::with_capacity(8 * xs.len());
    for x in xs {
        bytes.extend_from_slice(&x.to_ne_bytes());
    }
    make.bind(py).call1(("d", PyBytes::new(py, &bytes)))
}

impl SourceRate {
    #[allow(clippy::too_many_arguments)]
    fn create(
        timezone: &Bound<'_, PyAny>,
        min_events: i64,
        tail_prob: f64,
        floor_gaps: f64,
        memory_weeks: f64,
        min_span: f64,
        horizon: f64,
    ) -> PyResult<Self> {
        let timezone = check_zone(timezone)?;
        if !(0.0 < tail_prob && tail_prob < 1.0) {
            return Err(PyValueError::new_err("tail_prob must be within (0, 1)"));
        }
        Ok(SourceRate {
            min_events,
            utc: timezone == "UTC",
            timezone,
            tail_prob,
            floor_gaps,
            memory_weeks,
            min_span,
            horizon,
            n: 0,
            first: None,
            last: None,
            counts: [0.0; HOURS],
            exposure: [0.0; HOURS],
            exposed: 0.0,
            bin: -1,
            bin_end: f64::NEG_INFINITY,
            table: None,
            gaps: 0.0,
            exceed: [0.0; 4],
            scores: [0.0; 3],
            season: [0.0; 2],
            recent_seen: 0.0,
            recent_due: 0.0,
            period: Period::empty(),
        })
    }

    fn set_zone(&mut self, timezone: String) {
        self.utc = timezone == "UTC";
        self.timezone = timezone;
        self.period.clear();
    }

    /// `utc_offset(self.timezone, t)`.
    fn offset(&self, py: Python<'_>, t: f64) -> PyResult<f64> {
        if self.utc {
            return Ok(0.0);
        }
        let p = &self.period;
        if p.get(0) <= t && t < p.get(1) {
            return Ok(p.get(2));
        }
        let cal = calendar(py)?;
        let tz = PyString::new(py, &self.timezone);
        let off: f64 = cal.utc_offset.call1(py, (&tz, t))?.extract(py)?;
        // utc_offset keeps the period it answered from in _PERIODS[tz]: (start, end, offset)
        let known = cal.periods.bind(py).get_item(&tz).ok().and_then(|v| v.extract::<(f64, f64, f64)>().ok());
        match known {
            Some((start, end, o)) if o.to_bits() == off.to_bits() && start <= t && t < end => p.set(start, end, off),
            _ => p.clear(),
        }
        Ok(off)
    }

    /// `calendar.hour_of_week(self.timezone, ts)`.
    fn hour_of_week(&self, py: Python<'_>, ts: f64) -> PyResult<usize> {
        let local = ts + self.offset(py, ts)? + MONDAY_SHIFT;
        Ok(bin_of(int_check(floordiv(local, 3600.0))?))
    }

    fn locate(&mut self, py: Python<'_>, t: f64) -> PyResult<()> {
        let off = self.offset(py, t)?;
        let local = t + off;
        self.bin = self.hour_of_week(py, t)? as i64;
        self.bin_end = hour_end(py, floor_int(local / 3600.0)?, off)?;
        Ok(())
    }

    /// Add the observed time [a, b) to the bins it covers (bounded loop).
    fn expose(&mut self, py: Python<'_>, a: f64, b: f64) -> PyResult<()> {
        let mut a = a;
        let weeks = floor_int((b - a) / WEEK)?;
        if weeks != 0.0 {
            for e in self.exposure.iter_mut() {
                *e += weeks;
            }
            self.exposed += weeks * HOURS as f64;
            a += weeks * WEEK;
        }
        let mut t = a;
        for _ in 0..HOURS + 2 {
            if t >= b {
                break;
            }
            if !(self.bin_end - 3600.0 <= t && t < self.bin_end) {
                self.locate(py, t)?;
            }
            let end = pmin(b, self.bin_end);
            let j = index(self.bin)?;
            self.exposure[j] += (end - t) / 3600.0;
            self.exposed += (end - t) / 3600.0;
            t = end;
            if t >= self.bin_end {
                self.locate(py, t)?;
            }
        }
        if self.exposed >= HOURS as f64 {
            let f = exp(div(-(self.exposed / HOURS as f64), self.memory_weeks)?)?;
            for c in self.counts.iter_mut() {
                *c *= f;
            }
            for e in self.exposure.iter_mut() {
                *e *= f;
            }
            self.gaps *= f;
            for x in self.exceed.iter_mut().chain(self.scores.iter_mut()) {
                *x *= f;
            }
            self.exposed = 0.0;
        }
        Ok(())
    }

    fn observe_ts(&mut self, py: Python<'_>, ts: f64) -> PyResult<()> {
        if !ts.is_finite() {
            return Err(PyValueError::new_err("timestamp must be finite"));
        }
        let last = self.last;
        if let Some(last) = last {
            if floordiv(ts, MOMENT) == floordiv(last, MOMENT) {
                if ts > last {
                    self.expose(py, last, ts)?;
                    self.last = Some(ts);
                }
                return Ok(());
            }
        }
        self.n += 1;
        let before = self.bin;
        let b = match last {
            None => {
                self.first = Some(ts);
                self.last = Some(ts);
                self.locate(py, ts)?;
                self.bin
            }
            Some(last) if ts >= last => {
                if ts > last {
                    if self.table.is_some() && !self.is_learning() {
                        self.score_gap(py, last, ts)?;
                    }
                    self.expose(py, last, ts)?;
                    self.last = Some(ts);
                }
                self.bin
            }
            Some(_) => self.hour_of_week(py, ts)? as i64,
        };
        self.counts[index(b)?] += 1.0;
        if self.n.rem_euclid(REFRESH_EVERY) == 0 || b != before || self.n == self.min_events {
            self.table = Some(self.compute_table()?);
        }
        Ok(())
    }

    fn is_learning(&self) -> bool {
        match (self.first, self.last) {
            (Some(first), Some(last)) => self.n < self.min_events || last - first < self.min_span,
            _ => true,
        }
    }

    /// Events per hour for each bin, shrunk and raw (unobserved bins: a quarter of the quietest
    /// observed bin), and the typical gap in seconds.
    fn compute_table(&self) -> PyResult<Table> {
        let (counts, exposure) = (&self.counts, &self.exposure);
        let mut raw = [0.0; HOURS];
        let mut own = [0.0; HOURS];
        for j in 0..HOURS {
            let (c, e) = (counts[j], exposure[j]);
            if e < 0.5 {
                continue;
            }
            let r = c / e;
            let f = 1.0 - div(1.5, sqrt(c + 1.0)?)?;
            raw[j] = r;
            own[j] = r * (if f > 0.0 { f } else { 0.0 });
        }
        let mut shrunk = pooled(counts, exposure, &own).unwrap_or(own);
        let total = psum(counts.iter().copied());
        if pmin_all(exposure.iter().copied()).map_or(false, |m| m < 0.5) {
            let seen: Vec<bool> = exposure.iter().map(|&e| !(e < 0.5)).collect();
            let (fill_raw, fill_shrunk) = if seen.iter().any(|&s| s) {
                let pick = |xs: &Bins| pmin_all((0..HOURS).filter(|&j| seen[j]).map(|j| xs[j])).unwrap_or(0.0);
                (0.25 * pick(&raw), 0.25 * pick(&shrunk))
            } else {
                (0.0, 0.0)
            };
            for j in 0..HOURS {
                if !seen[j] {
                    raw[j] = fill_raw;
                    shrunk[j] = fill_shrunk;
                }
            }
        }
        let mean_rate = if total != 0.0 { psum((0..HOURS).map(|j| counts[j] * raw[j])) / total } else { 0.0 };
        let gap = if mean_rate > 0.0 { Some(3600.0 / mean_rate) } else { None };
        Ok(Table { shrunk, raw, gap })
    }

    /// The current table (refreshed by observe), computed when there is none.
    fn with_table<T>(&self, f: impl FnOnce(&Table) -> T) -> PyResult<T> {
        match &self.table {
            Some(t) => Ok(f(t)),
            None => Ok(f(&self.compute_table()?)),
        }
    }

    /// The local hours covering [a, b) as (start, end, hour-of-week bin), bounded by `horizon`;
    /// `visit` returns true to stop.
    fn hours(&self, py: Python<'_>, a: f64, b: f64, mut visit: impl FnMut(f64, f64, usize) -> PyResult<bool>) -> PyResult<()> {
        let steps = trunc_int(self.horizon / 3600.0)?.saturating_add(3);
        let mut t = a;
        let mut i: i64 = 0;
        while i < steps {
            if t >= b {
                return Ok(());
            }
            let off = self.offset(py, t)?;
            let hour = floor_int((t + off + MONDAY_SHIFT) / 3600.0)?;
            let mut end = hour_end(py, hour, off)? - MONDAY_SHIFT;
            if end > b {
                end = b;
            }
            if visit(t, end, bin_of(hour))? {
                return Ok(());
            }
            t = end;
            i += 1;
        }
        Ok(())
    }

    /// Events expected in [a, b) at `rates`, stopping once past `cap`.
    fn integrate(&self, py: Python<'_>, rates: &Bins, a: f64, b: f64, cap: f64) -> PyResult<f64> {
        let mut acc = 0.0;
        self.hours(py, a, b, |t, end, h| {
            acc += rates[h] * (end - t) / 3600.0;
            Ok(acc >= cap)
        })?;
        Ok(acc)
    }

    /// Events expected in the gap [a, b) after the latest event at `rates`.
    fn expected_in(&self, py: Python<'_>, rates: &Bins, a: f64, b: f64) -> PyResult<f64> {
        if b <= self.bin_end {
            // within the current hour bin: the common case, no loop
            Ok(rates[index(self.bin)?] * (b - a) / 3600.0)
        } else {
            self.integrate(py, rates, a, b, LEVELS[LEVELS.len() - 1])
        }
    }

    /// Count the gap [a, b) between two events by how many events the model expected in it.
    fn score_gap(&mut self, py: Python<'_>, a: f64, b: f64) -> PyResult<()> {
        self.gaps += 1.0;
        let expected = match &self.table {
            Some(t) => self.expected_in(py, &t.shrunk, a, b)?,
            None => self.expected_in(py, &self.compute_table()?.shrunk, a, b)?,
        };
        for (k, level) in LEVELS.iter().enumerate() {
            if expected < *level {
                break;
            }
            self.exceed[k] += 1.0;
        }
        if self.first.map_or(false, |first| a - first >= WEEK) && !self.was_silence(expected)? {
            // the spread from the second week on: a first week's rates, still forming, score gaps
            // widely apart (business-hours traffic: 3-20 in its first days, 0.8-0.9 once known).
            // Not a gap the limit called a silence: one outage of a Poisson source of 5 events a day
            // made its spread 3.1 for weeks (its next silence not called at all), where the
            // frequencies above ignore it (they need 5 such gaps)
            let capped = pmin(expected, SCORE_CAP);
            self.scores[0] += 1.0;
            self.scores[1] += capped;
            self.scores[2] += capped * capped;
        }
        let f = exp(-(b - a) / PACE_SECONDS)?;
        self.recent_seen = self.recent_seen * f + 1.0;
        self.recent_due = self.recent_due * f + expected;
        let f = exp(-(b - a) / SEASON_SECONDS)?;
        self.season = [self.season[0] * f + 1.0, self.season[1] * f + expected];
        Ok(())
    }

    fn tail_events(&self) -> PyResult<f64> {
        log(div(1.0, self.tail_prob)?)
    }

    /// Expected events in a gap that make it a silence: the Poisson tail, widened and paced.
    fn need(&self) -> PyResult<f64> {
        self.need_with(self.dispersion_of()?, self.pace_of()?)
    }

    /// ``need`` at a given spread and pace (a subclass's own, see `need_of`).
    fn need_with(&self, dispersion: f64, pace: f64) -> PyResult<f64> {
        div(self.tail_events()? * dispersion, pace)
    }

    /// Whether a gap worth `expected` events reached the silence limit as the source stands.
    fn was_silence(&self, expected: f64) -> PyResult<bool> {
        Ok(expected >= self.tail_events()? && expected >= self.need()?)
    }

    fn pace_of(&self) -> PyResult<f64> {
        Ok(pmin(pace_in(self.recent_seen, self.recent_due)?, pace_in(self.season[0], self.season[1])?))
    }

    fn dispersion_of(&self) -> PyResult<f64> {
        let mut worst = 1.0;
        let total = self.gaps;
        for (level, &count) in LEVELS.iter().zip(self.exceed.iter()) {
            if count >= MIN_EXCEED && count < total {
                worst = pmax(worst, div(*level, log(total / count)?)?);
            }
        }
        // Gaps scored in expected events are exponential with mean 1 for Poisson traffic: E[s^2] = 2 E[s]^2.
        // Traffic in clumps of b events (an item's steps a few minutes apart, a job's batch) has
        // 1/b of its gaps between clumps, b times longer: E[s^2] ~ 2 b E[s]^2. Where clumps are
        // the rule, the gaps above are too few to show it (50 small workflows of ~6 events a day
        // in ~1.3 clumps: dispersion 1.0-1.2, silence paged on 2-5 day gaps; this: 2-4).
        let [n, sum, squares] = self.scores;
        if n >= MIN_SCORED && sum > 0.0 {
            let spread = div(squares * n, 2.0 * sum * sum)?;
            if spread >= BURSTY {
                worst = pmax(worst, spread);
            }
        }
        Ok(pmin(worst, MAX_DISPERSION))
    }

    fn expected_gap_at(&self, py: Python<'_>, now: f64) -> PyResult<Option<f64>> {
        if self.is_learning() {
            return Ok(None);
        }
        let h = self.hour_of_week(py, now)?;
        let r = self.with_table(|t| t.raw[h])?;
        Ok(Some(if r > 0.0 { 3600.0 / r } else { f64::INFINITY }))
    }

    fn rezone_to(&mut self, py: Python<'_>, timezone: &Bound<'_, PyAny>, turn: Option<i64>) -> PyResult<()> {
        let timezone = check_zone(timezone)?;
        if timezone == self.timezone {
            return Ok(());
        }
        let old = std::mem::take(&mut self.timezone);
        self.set_zone(timezone);
        let last = match self.last {
            Some(last) => last,
            None => return Ok(()),
        };
        let turn = match turn {
            Some(t) => t,
            None => calendar(py)?.zone_turn.call1(py, (old, &self.timezone, last))?.extract(py)?,
        };
        let shift = turn.rem_euclid(HOURS as i64) as usize;
        if shift != 0 {
            self.counts.rotate_right(shift);
            self.exposure.rotate_right(shift);
        }
        self.locate(py, last)?;
        if self.table.is_some() {
            self.table = Some(self.compute_table()?);
        }
        Ok(())
    }

    fn table_tuple<'py>(py: Python<'py>, t: &Table) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, [array(py, &t.shrunk)?, array(py, &t.raw)?, t.gap.into_pyobject(py)?.into_any()])
    }

    fn snapshot_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("min_events", self.min_events)?;
        d.set_item("timezone", &self.timezone)?;
        d.set_item("tail_prob", self.tail_prob)?;
        d.set_item("floor_gaps", self.floor_gaps)?;
        d.set_item("memory_weeks", self.memory_weeks)?;
        d.set_item("min_span", self.min_span)?;
        d.set_item("horizon", self.horizon)?;
        d.set_item("n", self.n)?;
        d.set_item("first", self.first)?;
        d.set_item("last", self.last)?;
        d.set_item("_exposed", self.exposed)?;
        d.set_item("_bin", self.bin)?;
        d.set_item("_bin_end", if self.bin_end.is_infinite() { None } else { Some(self.bin_end) })?;
        d.set_item("gaps", self.gaps)?;
        d.set_item("recent_seen", self.recent_seen)?;
        d.set_item("recent_due", self.recent_due)?;
        d.set_item("counts", self.counts.to_vec())?;
        d.set_item("exceed", self.exceed.to_vec())?;
        d.set_item("scores", self.scores.to_vec())?;
        d.set_item("season", self.season.to_vec())?;
        d.set_item("exposure", self.exposure.to_vec())?;
        match &self.table {
            None => d.set_item("table", py.None())?,
            Some(t) => {
                let list = PyList::new(py, [
                    PyList::new(py, t.shrunk.iter())?.into_any(),
                    PyList::new(py, t.raw.iter())?.into_any(),
                    t.gap.into_pyobject(py)?.into_any(),
                ])?;
                d.set_item("table", list)?;
            }
        }
        Ok(d)
    }

    /// The old Python class's `__getstate__` (its `__dict__` but the per-bin cache), any attributes
    /// set on the instance included.
    fn state_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let this = slf.borrow();
        let d = PyDict::new(py);
        d.set_item("min_events", this.min_events)?;
        d.set_item("timezone", &this.timezone)?;
        d.set_item("tail_prob", this.tail_prob)?;
        d.set_item("floor_gaps", this.floor_gaps)?;
        d.set_item("memory_weeks", this.memory_weeks)?;
        d.set_item("min_span", this.min_span)?;
        d.set_item("horizon", this.horizon)?;
        d.set_item("n", this.n)?;
        d.set_item("first", this.first)?;
        d.set_item("last", this.last)?;
        d.set_item("counts", array(py, &this.counts)?)?;
        d.set_item("exposure", array(py, &this.exposure)?)?;
        d.set_item("_exposed", this.exposed)?;
        d.set_item("_bin", this.bin)?;
        d.set_item("_bin_end", this.bin_end)?;
        match &this.table {
            None => d.set_item("_table", py.None())?,
            Some(t) => d.set_item("_table", SourceRate::table_tuple(py, t)?)?,
        }
        d.set_item("gaps", this.gaps)?;
        d.set_item("exceed", array(py, &this.exceed)?)?;
        d.set_item("scores", this.scores.to_vec())?;
        d.set_item("season", this.season.to_vec())?;
        d.set_item("recent_seen", this.recent_seen)?;
        d.set_item("recent_due", this.recent_due)?;
        drop(this);
        if let Ok(extra) = slf.getattr("__dict__") {
            if let Ok(extra) = extra.downcast::<PyDict>() {
                for (k, v) in extra.iter() {
                    d.set_item(k, v)?;
                }
            }
        }
        Ok(d)
    }

    fn table_from(ob: &Bound<'_, PyAny>) -> PyResult<Option<Table>> {
        if ob.is_none() {
            return Ok(None);
        }
        let gap = ob.get_item(2)?;
        Ok(Some(Table {
            shrunk: bins(&ob.get_item(0)?, "table")?,
            raw: bins(&ob.get_item(1)?, "table")?,
            gap: if gap.is_none() { None } else { Some(gap.extract()?) },
        }))
    }
}

/// What `silent_after_combined` asks of each share: whether it is learning, its dispersion and
/// pace (through Python when a subclass may have redefined them).
fn learning_of(p: &Bound<'_, SourceRate>, exact: bool) -> PyResult<bool> {
    if exact {
        Ok(p.borrow().is_learning())
    } else {
        p.call_method0("learning")?.is_truthy()
    }
}

fn need_of(p: &Bound<'_, SourceRate>, exact: bool) -> PyResult<f64> {
    if exact {
        return p.borrow().need();
    }
    let (dispersion, pace): (f64, f64) = (p.call_method0("dispersion")?.extract()?, p.call_method0("pace")?.extract()?);
    p.borrow().need_with(dispersion, pace)
}

/// `silent_after_combined(parts, last_ts)`.
fn combined_limit(py: Python<'_>, parts: &[Bound<'_, SourceRate>], last_ts: f64) -> PyResult<Option<f64>> {
    let base = py.get_type::<SourceRate>();
    let mut ready = Vec::with_capacity(parts.len());
    for p in parts {
        let exact = p.get_type().is(&base);
        if !learning_of(p, exact)? {
            ready.push((p, exact));
        }
    }
    if ready.is_empty() {
        return Ok(None);
    }
    let mut need = need_of(ready[0].0, ready[0].1)?;
    for &(p, exact) in &ready[1..] {
        need = pmax(need, need_of(p, exact)?);
    }
    let first = ready[0].0.borrow();
    let (rates, gap) = if ready.len() == 1 {
        first.with_table(|t| (t.shrunk, t.gap))?
    } else {
        let mut rates = [0.0; HOURS];
        let mut inverse: Option<f64> = None;
        for &(p, _) in &ready {
            let (shrunk, g) = p.borrow().with_table(|t| (t.shrunk, t.gap))?;
            for j in 0..HOURS {
                rates[j] += shrunk[j];
            }
            if let Some(g) = g {
                if g != 0.0 {
                    inverse = Some(inverse.unwrap_or(0.0) + 1.0 / g);
                }
            }
        }
        (rates, inverse.and_then(|i| if i > 0.0 { Some(1.0 / i) } else { None }))
    };
    if !rates.iter().any(|&r| r != 0.0) {
        return Ok(None);
    }
    let floor = match gap {
        Some(g) => last_ts + first.floor_gaps * g,
        None => last_ts,
    };
    let mut acc = 0.0;
    let mut limit = None;
    first.hours(py, last_ts, last_ts + first.horizon, |t, end, h| {
        let r = rates[h] / 3600.0;
        let gain = r * (end - t);
        if acc + gain >= need {
            limit = Some(pmax(t + div(need - acc, r)?, floor));
            return Ok(true);
        }
        acc += gain;
        Ok(false)
    })?;
    Ok(limit)
}

#[pymethods]
impl SourceRate {
    #[new]
    #[pyo3(signature = (min_events = IntArg(200), timezone = None, tail_prob = 1e-6, floor_gaps = 10.0,
                        memory_weeks = 8.0, min_span = 86400.0, horizon = 14.0 * 86400.0),
           text_signature = "(min_events=200, timezone='UTC', tail_prob=1e-06, floor_gaps=10.0, memory_weeks=8.0, min_span=86400.0, horizon=1209600.0)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        min_events: IntArg,
        timezone: Option<&Bound<'_, PyAny>>,
        tail_prob: f64,
        floor_gaps: f64,
        memory_weeks: f64,
        min_span: f64,
        horizon: f64,
    ) -> PyResult<Self> {
        let utc = PyString::new(py, "UTC");
        let zone = timezone.unwrap_or_else(|| utc.as_any());
        SourceRate::create(zone, min_events.0, tail_prob, floor_gaps, memory_weeks, min_span, horizon)
    }

    #[classattr]
    #[pyo3(name = "_PARAMS")]
    fn params(py: Python<'_>) -> PyResult<Py<PyTuple>> {
        Ok(PyTuple::new(py, PARAMS)?.unbind())
    }

    #[classattr]
    #[pyo3(name = "_STATE")]
    fn state_names(py: Python<'_>) -> PyResult<Py<PyTuple>> {
        Ok(PyTuple::new(py, STATE)?.unbind())
    }

    #[getter]
    fn timezone(&self) -> &str {
        &self.timezone
    }

    #[setter]
    fn set_timezone(&mut self, timezone: String) {
        self.set_zone(timezone);
    }

    #[getter]
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        array(py, &self.counts)
    }

    #[setter]
    fn set_counts(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.counts = bins(value, "counts")?;
        Ok(())
    }

    #[getter]
    fn exposure<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        array(py, &self.exposure)
    }

    #[setter]
    fn set_exposure(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.exposure = bins(value, "exposure")?;
        Ok(())
    }

    #[getter]
    fn exceed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        array(py, &self.exceed)
    }

    #[setter]
    fn set_exceed(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.exceed = levels(value)?;
        Ok(())
    }

    #[getter(_table)]
    fn table_value<'py>(&self, py: Python<'py>) -> PyResult<PyObject> {
        match &self.table {
            None => Ok(py.None()),
            Some(t) => Ok(SourceRate::table_tuple(py, t)?.into_any().unbind()),
        }
    }

    #[setter(_table)]
    fn set_table_value(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.table = SourceRate::table_from(value)?;
        Ok(())
    }

    /// Bin in another time zone from now on, keeping what was learned at the same instants: the
    /// hour-of-week bins turn by the difference of the two zones' UTC offsets at the latest event
    /// (whole hours; a half-hour zone lands in the nearer bin), or by ``turn`` hours when given. A zone
    /// corrected in the settings, or found from the timestamps, neither starts the rates over nor
    /// reads Monday 9:00 as Monday 8:00.
    #[pyo3(signature = (timezone, turn = None))]
    fn rezone(&mut self, py: Python<'_>, timezone: &Bound<'_, PyAny>, turn: Option<i64>) -> PyResult<()> {
        self.rezone_to(py, timezone, turn)
    }

    /// Take one event at event time ``ts`` (time does not go back). It counts as a moment of
    /// activity unless it falls in the same minute as the latest event (late events are counted).
    fn observe(&mut self, py: Python<'_>, ts: f64) -> PyResult<()> {
        self.observe_ts(py, ts)
    }

    fn learning(&self) -> bool {
        self.is_learning()
    }

    /// Events per hour for each bin, shrunk and raw (unobserved bins: a quarter of the quietest
    /// observed bin), and the typical gap in seconds.
    fn _compute_table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        SourceRate::table_tuple(py, &self.compute_table()?)
    }

    fn _tables<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        match &self.table {
            Some(t) => SourceRate::table_tuple(py, t),
            None => SourceRate::table_tuple(py, &self.compute_table()?),
        }
    }

    /// Seconds between events at the rate an average event sees; None while learning.
    fn typical_gap(&self) -> PyResult<Option<f64>> {
        if self.is_learning() {
            return Ok(None);
        }
        self.with_table(|t| t.gap)
    }

    /// Typical gap (seconds) between events at this hour of the week; ``inf`` in quiet hours;
    /// None while learning.
    fn expected_gap(&self, py: Python<'_>, now: f64) -> PyResult<Option<f64>> {
        self.expected_gap_at(py, now)
    }

    /// How the last hours' (or, the slower of the two, the last days') traffic compares with the
    /// learned rates, when clearly slower: the upper end of its Poisson range (seen + 2 sqrt(seen)
    /// + 1) over the events expected, in [_PACE_FLOOR, 1]; 1.0 at the usual pace or while too little
    /// was expected to tell. A source of ~100 events a day expects too few in its last hours to
    /// show its pace at night; over days it does.
    ///
    /// A source whose volume fell (a season ends, an export thins out at the end of a log) has
    /// every longer gap read as silence against rates learned over weeks: on a public loan-offer
    /// log whose last month held a fifth of the usual events, 44 silences paged in that month.
    /// The limit is stretched by 1 / pace, so a slower source is called silent for a gap that is
    /// long at its own current pace. A sudden stop is judged on the traffic before it, which was
    /// at the usual pace: it is called as soon as before.
    fn pace(&self) -> PyResult<f64> {
        self.pace_of()
    }

    /// How much burstier than a Poisson stream the source is (1.0 = Poisson, the floor).
    ///
    /// Under the rate model a Poisson source shows a gap worth ``L`` expected events with
    /// probability ``e^-L``; a source whose gaps reach ``L`` with frequency ``p`` behaves like one
    /// with ``L / ln(1/p)`` times fewer independent arrivals (bursts: a clerk works through a pile,
    /// then nothing for hours). The widest such factor over the levels seen often enough scales
    /// the silence limit, so a bursty source is called silent only for a gap it has rarely shown.
    fn dispersion(&self) -> PyResult<f64> {
        self.dispersion_of()
    }

    /// The instant after which no event since ``last_ts`` means the source is silent.
    ///
    /// None while learning, or when even ``horizon`` seconds of silence would be unremarkable.
    fn silent_after(slf: &Bound<'_, Self>, last_ts: f64) -> PyResult<Option<f64>> {
        combined_limit(slf.py(), std::slice::from_ref(slf), last_ts)
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.snapshot_dict(py)
    }

    #[classmethod]
    fn restore<'py>(cls: &Bound<'py, PyType>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let kwargs = PyDict::new(py);
        for p in PARAMS {
            if data.contains(p)? {
                kwargs.set_item(p, data.get_item(p)?)?;
            }
        }
        let obj = cls.call((), Some(&kwargs))?;
        {
            let s = obj.downcast::<SourceRate>()?;
            let mut s = s.borrow_mut();
            let get = |key: &str| -> PyResult<Option<Bound<'py, PyAny>>> {
                if data.contains(key)? {
                    Ok(Some(data.get_item(key)?))
                } else {
                    Ok(None)
                }
            };
            if let Some(v) = get("n")? {
                s.n = as_int(&v)?;
            }
            if let Some(v) = get("first")? {
                s.first = v.extract()?;
            }
            if let Some(v) = get("last")? {
                s.last = v.extract()?;
            }
            if let Some(v) = get("_exposed")? {
                s.exposed = v.extract()?;
            }
            if let Some(v) = get("_bin")? {
                s.bin = as_int(&v)?;
            }
            if let Some(v) = get("gaps")? {
                s.gaps = v.extract()?;
            }
            if let Some(v) = get("recent_seen")? {
                s.recent_seen = v.extract()?;
            }
            if let Some(v) = get("recent_due")? {
                s.recent_due = v.extract()?;
            }
            if let Some(v) = get("exceed")? {
                s.exceed = levels(&v)?;
            }
            if let Some(v) = get("scores")? {
                s.scores = scores(&v)?;
            }
            if let Some(v) = get("season")? {
                s.season = season(&v)?;
            }
            let bin_end = data.get_item("_bin_end")?;
            s.bin_end = if bin_end.is_none() { f64::NEG_INFINITY } else { bin_end.extract()? };
            s.counts = bins(&data.get_item("counts")?, "counts")?;
            s.exposure = bins(&data.get_item("exposure")?, "exposure")?;
            s.table = match get("table")? {
                Some(t) => SourceRate::table_from(&t)?,
                None => None,
            };
        }
        Ok(obj)
    }

    fn __getstate__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        SourceRate::state_dict(slf)
    }

    /// The state of `__getstate__`, or of a pickle of the Python class this replaced (whose
    /// oldest states lack the recent pace and the gap dispersion: they start now).
    fn __setstate__(slf: &Bound<'_, Self>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let state = state.downcast::<PyDict>()?;
        let mut extra = Vec::new();
        {
            let mut s = slf.borrow_mut();
            for (k, v) in state.iter() {
                let key: String = match k.extract() {
                    Ok(key) => key,
                    Err(_) => {
                        extra.push((k, v));
                        continue;
                    }
                };
                match key.as_str() {
                    "min_events" => s.min_events = as_int(&v)?,
                    "timezone" => {
                        let tz: String = v.extract()?;
                        s.set_zone(tz);
                    }
                    "tail_prob" => s.tail_prob = v.extract()?,
                    "floor_gaps" => s.floor_gaps = v.extract()?,
                    "memory_weeks" => s.memory_weeks = v.extract()?,
                    "min_span" => s.min_span = v.extract()?,
                    "horizon" => s.horizon = v.extract()?,
                    "n" => s.n = as_int(&v)?,
                    "first" => s.first = v.extract()?,
                    "last" => s.last = v.extract()?,
                    "counts" => s.counts = bins(&v, "counts")?,
                    "exposure" => s.exposure = bins(&v, "exposure")?,
                    "_exposed" => s.exposed = v.extract()?,
                    "_bin" => s.bin = as_int(&v)?,
                    "_bin_end" => s.bin_end = v.extract()?,
                    "_table" => s.table = SourceRate::table_from(&v)?,
                    "gaps" => s.gaps = v.extract()?,
                    "exceed" => s.exceed = levels(&v)?,
                    "scores" => s.scores = scores(&v)?,
                    "season" => s.season = season(&v)?,
                    "recent_seen" => s.recent_seen = v.extract()?,
                    "recent_due" => s.recent_due = v.extract()?,
                    "_rates" | "_dirty" => {} // the old per-bin cache: rebuilt (here: not kept)
                    _ => extra.push((k, v)),
                }
            }
            if !state.contains("recent_seen")? {
                s.recent_seen = 0.0;
                s.recent_due = 0.0;
            }
            if !state.contains("gaps")? {
                s.gaps = 0.0;
                s.exceed = [0.0; 4];
            }
            if !state.contains("scores")? {
                s.scores = [0.0; 3];
            }
            if !state.contains("season")? {
                s.season = [0.0; 2];
            }
        }
        if !extra.is_empty() {
            let dict = slf.getattr("__dict__")?;
            for (k, v) in extra {
                dict.set_item(k, v)?;
            }
        }
        Ok(())
    }

    /// Pickled as ``SourceRate(<parameters>)`` + its state, at every protocol.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let args = {
            let s = slf.borrow();
            PyTuple::new(py, [
                s.min_events.into_pyobject(py)?.into_any(),
                PyString::new(py, &s.timezone).into_any(),
                PyFloat::new(py, s.tail_prob).into_any(),
                PyFloat::new(py, s.floor_gaps).into_any(),
                PyFloat::new(py, s.memory_weeks).into_any(),
                PyFloat::new(py, s.min_span).into_any(),
                PyFloat::new(py, s.horizon).into_any(),
            ])?
        };
        let state = SourceRate::state_dict(slf)?;
        PyTuple::new(py, [slf.get_type().into_any(), args.into_any(), state.into_any()])
    }
}

/// :meth:`SourceRate.silent_after` of one source whose events are split over several detectors (one
/// per Kafka partition, each seeing a share of the items): the events expected after ``last_ts`` (the
/// latest event of any share) add up over the shares, the burstiest share's dispersion and the slowest
/// one's pace set how many must be missing, and the first share's hours (its time zone) bin the time.
/// With one detector it is exactly that detector's own limit. None while every share is learning.
#[pyfunction]
pub fn silent_after_combined(parts: &Bound<'_, PyAny>, last_ts: f64) -> PyResult<Option<f64>> {
    let py = parts.py();
    let mut shares = Vec::new();
    for p in parts.try_iter()? {
        let p = p?;
        match p.downcast_into::<SourceRate>() {
            Ok(p) => shares.push(p),
            Err(e) => return Err(PyTypeError::new_err(format!("silent_after_combined: {e}"))),
        }
    }
    combined_limit(py, &shares, last_ts)
}

/// Lower-bound rates per hour-of-week bin that borrow strength from the weekly pattern.
///
/// One bin holds a few dozen events at most (eight decayed weeks of one hour), so its own lower
/// bound (``own``: the rate shrunk by ``1 - 1.5 / sqrt(count + 1)``) is loose and noisy: at ten
/// events an hour, ~20 % below the true rate, and a bin that happened to be quiet is quieter
/// still. The pattern of day-of-week times hour-of-day (``m = day rate x hour rate / overall
/// rate``) is estimated from whole rows and columns of the week, worth
/// ``1 / (1 / day count + 1 / hour count)`` events (~5 bins' worth). Where the bin's own count
/// agrees with the pattern (within two Poisson standard deviations of ``m x exposure``), the
/// pattern enters as a gamma prior worth that many events; where it does not (Friday afternoons
/// off while other afternoons work, a nightly batch hour), the bin keeps its own bound. Bins
/// not yet observed keep ``own`` (0.0, filled by the caller).
#[pyfunction]
pub fn pooled_rates<'py>(counts: &Bound<'py, PyAny>, exposure: &Bound<'py, PyAny>, own: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = counts.py();
    let (c, e, o) = (bins(counts, "counts")?, bins(exposure, "exposure")?, bins(own, "own")?);
    match pooled(&c, &e, &o) {
        Some(out) => array(py, &out),
        None => Ok(own.clone()),
    }
}
