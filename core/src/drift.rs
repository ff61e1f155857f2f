//! `ShiftDetector`: a bottleneck shift of one (workflow, stage), found by River's two-sided
//! Page-Hinkley test on robust standardized log-durations. The model and the reasons behind it are
//! described in `detectors/drift.py`; this is its implementation, operation for operation (Python's
//! `max`/`min` tie rules, `sorted` + median, int/int true division, and Python's errors).
//!
//! The change test stays River's `river.drift.PageHinkley` object: this struct holds it and, per
//! update, sets its `delta`/`threshold`, calls its `update` and reads its statistics; everything else
//! (lag buffer, robust reference, residuals, confirmation) is native. `Shift` stays the Python
//! dataclass of `detectors/drift.py`, built only when a shift is declared.

use pyo3::exceptions::{
    PyAssertionError, PyIndexError, PyMemoryError, PyOverflowError, PyValueError, PyZeroDivisionError,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use crate::py::{as_int, clamp_log, div, exp, load_field, pmax, pmin, py_float, py_int, Arg};

const MIN_SECONDS: f64 = 1e-3;
const MAX_SECONDS: f64 = 1e10;
const MIN_SIGMA: f64 = 0.05;
const MAD_TO_SIGMA: f64 = 1.4826;
const MEAN_ABS_TO_SIGMA: f64 = 1.2533;
const HUBER_SCALE: f64 = 0.6827; // P(|Z| < 1): E[psi'] of the Huber function with c = 1 at the normal

const PARAMS: [&str; 8] = [
    "min_samples",
    "min_ratio",
    "threshold_sigmas",
    "slack_sigmas",
    "clip",
    "buffer",
    "ref_window",
    "confirm",
];
const STATE: [&str; 12] = [
    "n",
    "shifts",
    "_learn_from",
    "_armed_at",
    "_m",
    "_s",
    "_mad",
    "_ref_n",
    "_n_up",
    "_n_dn",
    "_pending",
    "_pending_len",
];

static PAGE_HINKLEY: GILOnceCell<Py<PyType>> = GILOnceCell::new();
static SHIFT: GILOnceCell<Py<PyType>> = GILOnceCell::new();
static DEEPCOPY: GILOnceCell<PyObject> = GILOnceCell::new();

/// `a / b` of two Python ints (true division; exact for ints below 2**53, as CPython's fast path).
fn int_div(a: i64, b: i64) -> PyResult<f64> {
    if b == 0 {
        Err(PyZeroDivisionError::new_err("division by zero"))
    } else {
        Ok(a as f64 / b as f64)
    }
}

/// A change of `log_ratio` against the stage's flow: a slowdown while more leave than arrive (the
/// slow items of an earlier burst of arrivals finishing: a real slowdown holds items back, so work
/// piles up), a speedup while more arrive than leave (a burst's quick items finishing first).
fn against_the_flow(log_ratio: f64, inflow: f64) -> bool {
    (log_ratio > 0.0 && inflow < 0.0) || (log_ratio < 0.0 && inflow > 0.0)
}

/// The module's `_median`: `sorted`, then the middle item or the mean of the middle two
/// (an empty list raises as indexing it did).
fn median(xs: &[f64]) -> PyResult<f64> {
    if xs.is_empty() {
        return Err(PyIndexError::new_err("list index out of range"));
    }
    let mut s = xs.to_vec();
    // stable, as Python's sort; the data hold no NaN (log-durations of clamped finite values)
    s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let m = s.len() / 2;
    Ok(if s.len() % 2 == 1 {
        s[m]
    } else {
        0.5 * (s[m - 1] + s[m])
    })
}

fn opt_int(value: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    if value.is_none() {
        Ok(None)
    } else {
        as_int(value).map(Some)
    }
}

// -- River PageHinkley: the only place that knows its fields (river 0.26: a Mean of the inputs, the
// cumulative sums and their running min / max). A rename in River fails the round-trip tests.

/// `PageHinkley(min_instances=1, delta=0.0, threshold=1.0, alpha=1.0, mode="both")`.
fn ph_blank(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let cls = PAGE_HINKLEY.import(py, "river.drift", "PageHinkley")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "min_instances"), 1)?;
    kwargs.set_item(intern!(py, "delta"), 0.0)?;
    kwargs.set_item(intern!(py, "threshold"), 1.0)?;
    kwargs.set_item(intern!(py, "alpha"), 1.0)?;
    kwargs.set_item(intern!(py, "mode"), intern!(py, "both"))?;
    Ok(cls.call((), Some(&kwargs))?.unbind())
}

/// Two-sided Page-Hinkley without forgetting; its running mean starts at residual 0 (the
/// reference) with the weight of ``prior_weight`` items (River's `Mean.update(0.0, w=prior_weight)`).
fn ph_new(py: Python<'_>, prior_weight: i64) -> PyResult<Py<PyAny>> {
    let ph = ph_blank(py)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "w"), prior_weight)?;
    ph.bind(py)
        .getattr(intern!(py, "_x_mean"))?
        .call_method(intern!(py, "update"), (0.0,), Some(&kwargs))?;
    Ok(ph)
}

/// Keep the test's statistics past an alarm (River resets them on the next update otherwise).
fn ph_clear_alarm(ph: &Bound<'_, PyAny>) -> PyResult<()> {
    ph.setattr(intern!(ph.py(), "_drift_detected"), false)
}

fn get_f64(ph: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> PyResult<f64> {
    let v = ph.getattr(name)?;
    match v.downcast_exact::<PyFloat>() {
        Ok(f) => Ok(f.value()),
        Err(_) => v.extract(), // `_max_decrease` is the int -1 until the statistic first rises
    }
}

/// The upward and downward Page-Hinkley statistics (0 until an update moved them).
fn ph_stats(ph: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    let py = ph.py();
    let up = get_f64(ph, intern!(py, "_sum_increase"))? - get_f64(ph, intern!(py, "_min_increase"))?;
    let dn = get_f64(ph, intern!(py, "_max_decrease"))? - get_f64(ph, intern!(py, "_sum_decrease"))?;
    Ok((pmax(up, 0.0), pmax(dn, 0.0)))
}

/// `math.isfinite(v)` of an attribute as River keeps it (a float, or an int).
fn is_finite(v: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(match v.downcast_exact::<PyFloat>() {
        Ok(f) => f.value().is_finite(),
        Err(_) => v.extract::<f64>()?.is_finite(),
    })
}

/// Strict JSON: inf (never updated) -> None; the values as River holds them (floats, or ints).
fn ph_state<'py>(ph: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    let py = ph.py();
    let m = ph.getattr(intern!(py, "_x_mean"))?;
    let vals = [
        m.getattr(intern!(py, "n"))?,
        m.getattr(intern!(py, "_mean"))?,
        ph.getattr(intern!(py, "_sum_increase"))?,
        ph.getattr(intern!(py, "_min_increase"))?,
        ph.getattr(intern!(py, "_sum_decrease"))?,
        ph.getattr(intern!(py, "_max_decrease"))?,
    ];
    let out = PyList::empty(py);
    for v in vals {
        if is_finite(&v)? {
            out.append(v)?;
        } else {
            out.append(py.None())?;
        }
    }
    Ok(out)
}

fn ph_load(state: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let py = state.py();
    let ph = ph_blank(py)?;
    let mut vals: Vec<Bound<'_, PyAny>> = Vec::new();
    for v in state.try_iter()? {
        vals.push(v?);
        if vals.len() > 6 {
            return Err(PyValueError::new_err("too many values to unpack (expected 6)"));
        }
    }
    if vals.len() < 6 {
        return Err(PyValueError::new_err(format!(
            "not enough values to unpack (expected 6, got {})",
            vals.len()
        )));
    }
    // float(v or 0.0)
    let or_zero = |v: &Bound<'_, PyAny>| -> PyResult<f64> {
        if v.is_truthy()? {
            py_float(v)
        } else {
            Ok(0.0)
        }
    };
    let (n, mean) = (or_zero(&vals[0])?, or_zero(&vals[1])?);
    let b = ph.bind(py);
    let m = b.getattr(intern!(py, "_x_mean"))?;
    m.setattr(intern!(py, "n"), n)?;
    m.setattr(intern!(py, "_mean"), mean)?;
    let (s_inc, s_dec) = (or_zero(&vals[2])?, or_zero(&vals[4])?);
    b.setattr(intern!(py, "_sum_increase"), s_inc)?;
    b.setattr(intern!(py, "_sum_decrease"), s_dec)?;
    let min_inc = if vals[3].is_none() { f64::INFINITY } else { py_float(&vals[3])? };
    b.setattr(intern!(py, "_min_increase"), min_inc)?;
    let max_dec = if vals[5].is_none() { -1.0 } else { py_float(&vals[5])? };
    b.setattr(intern!(py, "_max_decrease"), max_dec)?;
    Ok(ph)
}

/// Two-sided River Page-Hinkley on robust standardized log-durations of one (workflow, stage).
#[pyclass(module = "detectors.drift", name = "ShiftDetector")]
pub struct ShiftDetector {
    #[pyo3(get)]
    min_samples: i64,
    #[pyo3(get)]
    min_ratio: f64,
    #[pyo3(get)]
    threshold_sigmas: f64,
    #[pyo3(get)]
    slack_sigmas: f64,
    #[pyo3(get)]
    clip: f64,
    #[pyo3(get)]
    buffer: i64,
    #[pyo3(get)]
    ref_window: i64,
    #[pyo3(get)]
    confirm: i64,
    buf: Vec<f64>, // ring of raw log-durations
    /// items seen
    #[pyo3(get)]
    n: i64,
    /// shifts reported
    #[pyo3(get)]
    shifts: i64,
    #[pyo3(get, name = "_learn_from")]
    learn_from: i64, // index of the first item of the current regime
    #[pyo3(get, name = "_armed_at")]
    armed_at: Option<i64>, // index from which items are absorbed into the reference
    #[pyo3(get, name = "_m")]
    m: f64,
    #[pyo3(get, name = "_s")]
    s: f64,
    #[pyo3(get, name = "_mad")]
    mad: f64,
    #[pyo3(get, name = "_ref_n")]
    ref_n: i64,
    ph: Option<Py<PyAny>>, // the change test, while armed
    #[pyo3(get, name = "_n_up")]
    n_up: i64, // items since the upward statistic was last 0
    #[pyo3(get, name = "_n_dn")]
    n_dn: i64, // ... the downward one
    #[pyo3(get, name = "_pending")]
    pending: Option<i64>, // item index of an alarm whose new level awaits `confirm` items
    #[pyo3(get, name = "_pending_len")]
    pending_len: i64, // items after the change point at that alarm
}

impl ShiftDetector {
    #[allow(clippy::too_many_arguments)]
    fn create<'py>(
        py: Python<'py>,
        min_samples: Arg<'py>,
        min_ratio: Arg<'py>,
        threshold_sigmas: Arg<'py>,
        slack_sigmas: Arg<'py>,
        clip: Arg<'py>,
        buffer: Arg<'py>,
        ref_window: Arg<'py>,
        confirm: Arg<'py>,
    ) -> PyResult<Self> {
        let int = |v: i64| -> PyResult<Bound<'py, PyAny>> { Ok(v.into_pyobject(py)?.into_any()) };
        let float = |v: f64| -> PyResult<Bound<'py, PyAny>> { Ok(v.into_pyobject(py)?.into_any()) };
        let min_samples = min_samples.object(&int(30)?);
        let min_ratio = min_ratio.object(&float(1.5)?);
        let threshold_sigmas = threshold_sigmas.object(&float(15.0)?);
        let slack_sigmas = slack_sigmas.object(&float(0.4)?);
        let clip = clip.object(&float(3.0)?);
        let buffer = buffer.object(&int(64)?);
        let ref_window = ref_window.object(&int(1000)?);
        let confirm = confirm.object(&int(5)?);
        if min_samples.lt(5)? || buffer.lt(&min_samples)? || min_ratio.le(1.0)? {
            return Err(PyValueError::new_err(
                "ShiftDetector: need min_samples >= 5, buffer >= min_samples, min_ratio > 1",
            ));
        }
        let min_samples = py_int(&min_samples)?;
        let min_ratio = py_float(&min_ratio)?;
        let threshold_sigmas = py_float(&threshold_sigmas)?;
        let slack_sigmas = py_float(&slack_sigmas)?;
        let clip = py_float(&clip)?;
        let buffer = py_int(&buffer)?;
        let ref_window = py_int(&ref_window)?;
        let confirm = py_int(&confirm)?;
        let mut buf = Vec::new();
        if buf.try_reserve_exact(buffer as usize).is_err() {
            return Err(PyMemoryError::new_err(""));
        }
        buf.resize(buffer as usize, 0.0);
        Ok(ShiftDetector {
            min_samples,
            min_ratio,
            threshold_sigmas,
            slack_sigmas,
            clip,
            buffer,
            ref_window,
            confirm,
            buf,
            n: 0,
            shifts: 0,
            learn_from: 0,
            armed_at: None,
            m: 0.0,
            s: 1.0,
            mad: 0.0,
            ref_n: 0,
            ph: None,
            n_up: 0,
            n_dn: 0,
            pending: None,
            pending_len: 0,
        })
    }

    /// The ring's item `i` (`array` indexing: a ring restored shorter than `buffer` raises).
    fn at(&self, i: i64) -> PyResult<f64> {
        match self.buf.get(i as usize) {
            Some(&v) if i >= 0 => Ok(v),
            _ => Err(PyIndexError::new_err("array index out of range")),
        }
    }

    /// The last ``k`` raw log-durations, oldest first.
    fn last(&self, k: i64) -> PyResult<Vec<f64>> {
        let k = k.min(self.n).min(self.buffer);
        let (r, n) = (self.buffer, self.n);
        let mut out = Vec::with_capacity(k.max(0) as usize);
        for j in 0..k {
            out.push(self.at((n - k + j).rem_euclid(r))?);
        }
        Ok(out)
    }

    fn arm(&mut self, py: Python<'_>) -> PyResult<()> {
        let xs = self.last(self.n - self.learn_from)?;
        let m = median(&xs)?;
        let dev: Vec<f64> = xs.iter().map(|x| (x - m).abs()).collect();
        let s = pmax(MAD_TO_SIGMA * median(&dev)?, self.floor_sigma());
        self.m = m;
        self.s = s;
        self.mad = s / MEAN_ABS_TO_SIGMA;
        self.ref_n = xs.len() as i64;
        self.armed_at = Some(self.n);
        self.restart(py)
    }

    fn restart(&mut self, py: Python<'_>) -> PyResult<()> {
        self.ph = Some(ph_new(py, self.ref_window)?);
        self.n_up = 0;
        self.n_dn = 0;
        Ok(())
    }

    /// The items after the most likely change point among the last ``since`` (max of
    /// suffix_sum^2 / length of the winsorized deviations).
    fn after_change(&self, since: i64) -> PyResult<Vec<f64>> {
        let xs = self.last(since)?;
        let len = xs.len();
        let c = self.clip * self.s;
        let (mut best_len, mut best, mut acc) = (len, -1.0_f64, 0.0_f64);
        let at_least = len.min(3);
        for length in 1..=len {
            acc += pmin(pmax(xs[len - length] - self.m, -c), c);
            let score = acc * acc / length as f64;
            if length >= at_least && score > best {
                best = score;
                best_len = length;
            }
        }
        Ok(xs[len - best_len..].to_vec())
    }

    fn absorb(&mut self, x: f64) -> PyResult<()> {
        self.ref_n += 1;
        let a = div(1.0, self.ref_n.min(self.ref_window) as f64)?;
        let s = self.s;
        self.m += a * pmin(pmax(x - self.m, -s), s) / HUBER_SCALE;
        let c = self.clip * s;
        self.mad += a * (pmin((x - self.m).abs(), c) - self.mad);
        self.s = pmax(MEAN_ABS_TO_SIGMA * self.mad, self.floor_sigma());
        Ok(())
    }

    /// The log-duration's deviation from the reference in sigmas, winsorized at ``clip``.
    fn residual(&self, x: f64) -> PyResult<f64> {
        Ok(pmin(pmax(div(x - self.m, self.s)?, -self.clip), self.clip))
    }

    /// The least spread the reference is given (log units): at ``clip`` of it, a change of the
    /// meaningful factor. A stage of near-constant durations (a system's step, dates without a time:
    /// most items one day) has no spread of its own to speak of; at the 0.05 floor its deviations
    /// were winsorized below the test's slack, and a change from one day to three was never called.
    fn floor_sigma(&self) -> f64 {
        if self.clip > 0.0 {
            pmax(MIN_SIGMA, self.min_ratio.ln() / self.clip)
        } else {
            MIN_SIGMA
        }
    }

    /// Set slack and decision limit on the test; returns the limit.
    fn configure(&self, ph: &Bound<'_, PyAny>) -> PyResult<f64> {
        let py = ph.py();
        let delta = pmax(self.slack_sigmas, div(0.5 * self.min_ratio.ln(), self.s)?);
        ph.setattr(intern!(py, "delta"), delta)?;
        let threshold = self.threshold_sigmas * (1.0 + int_div(self.min_samples, self.ref_n)?);
        ph.setattr(intern!(py, "threshold"), threshold)?;
        Ok(threshold)
    }

    fn step(&mut self, py: Python<'_>, seconds: &Bound<'_, PyAny>, ts: &Bound<'_, PyAny>, inflow: f64) -> PyResult<PyObject> {
        let value: f64 = match seconds.downcast_exact::<PyFloat>() {
            Ok(f) => f.value(),
            Err(_) => seconds.extract()?,
        };
        if !value.is_finite() {
            return Err(PyValueError::new_err(format!("duration must be finite, got {}", seconds.repr()?)));
        }
        let x = clamp_log(value, MIN_SECONDS, MAX_SECONDS);
        let slot = self.n.rem_euclid(self.buffer);
        let old_index = self.n - self.buffer;
        let old = self.at(slot)?;
        self.buf[slot as usize] = x;
        self.n += 1;
        let armed_at = match self.armed_at {
            None => {
                if self.n - self.learn_from >= self.min_samples {
                    self.arm(py)?;
                }
                return Ok(py.None());
            }
            Some(a) => a,
        };
        if old_index >= armed_at {
            self.absorb(old)?;
        }
        let ph = match &self.ph {
            Some(ph) => ph.clone_ref(py).into_bound(py),
            None => return Err(PyAssertionError::new_err(())),
        };
        let threshold = self.configure(&ph)?;
        let r = self.residual(x)?;
        ph.call_method1(intern!(py, "update"), (r,))?;
        let (up, dn) = ph_stats(&ph)?;
        self.n_up = if up > 0.0 { self.n_up + 1 } else { 0 };
        self.n_dn = if dn > 0.0 { self.n_dn + 1 } else { 0 };
        if let Some(pending) = self.pending {
            // an alarm's new level awaits confirmation; the test goes on
            ph_clear_alarm(&ph)?;
            return if self.n - pending >= self.confirm {
                self.confirmed(py, ts, inflow)
            } else {
                Ok(py.None())
            };
        }
        if !ph.getattr(intern!(py, "drift_detected"))?.is_truthy()? {
            return Ok(py.None());
        }
        let since = if up > threshold { self.n_up } else { self.n_dn };
        let changed = self.after_change(since)?;
        let after = median(&changed)?;
        let before = self.m;
        if (after - before).abs() < self.min_ratio.ln() * 0.9 {
            // accumulated, but the new level is not a meaningful factor away: start over quietly
            self.restart(py)?;
            return Ok(py.None());
        }
        if self.confirm > 0 {
            ph_clear_alarm(&ph)?;
            self.pending = Some(self.n);
            self.pending_len = changed.len() as i64;
            return Ok(py.None());
        }
        if against_the_flow(after - before, inflow) {
            return Ok(py.None());
        }
        self.declare(py, after, ts)
    }

    /// ``confirm`` items after an alarm: the new level holds if they too lie on its side of the
    /// old one, and they and the new level (the alarm's items with them) at least half the
    /// meaningful factor away.
    fn confirmed(&mut self, py: Python<'_>, ts: &Bound<'_, PyAny>, inflow: f64) -> PyResult<PyObject> {
        self.pending = None;
        let before = self.m;
        let check = median(&self.last(self.confirm)?)? - before;
        let after = median(&self.last((self.pending_len + self.confirm).min(self.buffer))?)?;
        let half = 0.5 * self.min_ratio.ln();
        // the new level too (the alarm's items with the confirming ones): a "1.1x slower" ticket is none
        if check.abs() < half || (after - before).abs() < half || check * (after - before) <= 0.0 {
            return Ok(py.None());
        }
        if against_the_flow(after - before, inflow) {
            return Ok(py.None());
        }
        self.declare(py, after, ts)
    }

    fn declare(&mut self, py: Python<'_>, after: f64, ts: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        let before = self.m;
        self.shifts += 1;
        self.learn_from = self.n; // re-arm on the new level: a fresh reference from the next items
        self.armed_at = None;
        self.ph = None;
        self.n_up = 0;
        self.n_dn = 0;
        let cls = SHIFT.import(py, "detectors.drift", "Shift")?;
        let args = (exp(before)?, exp(after)?, exp(after - before)?, ts);
        Ok(cls.call1(args)?.unbind())
    }

    fn snapshot_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item(intern!(py, "min_samples"), self.min_samples)?;
        d.set_item(intern!(py, "min_ratio"), self.min_ratio)?;
        d.set_item(intern!(py, "threshold_sigmas"), self.threshold_sigmas)?;
        d.set_item(intern!(py, "slack_sigmas"), self.slack_sigmas)?;
        d.set_item(intern!(py, "clip"), self.clip)?;
        d.set_item(intern!(py, "buffer"), self.buffer)?;
        d.set_item(intern!(py, "ref_window"), self.ref_window)?;
        d.set_item(intern!(py, "confirm"), self.confirm)?;
        d.set_item(intern!(py, "n"), self.n)?;
        d.set_item(intern!(py, "shifts"), self.shifts)?;
        d.set_item(intern!(py, "_learn_from"), self.learn_from)?;
        d.set_item(intern!(py, "_armed_at"), self.armed_at)?;
        d.set_item(intern!(py, "_m"), self.m)?;
        d.set_item(intern!(py, "_s"), self.s)?;
        d.set_item(intern!(py, "_mad"), self.mad)?;
        d.set_item(intern!(py, "_ref_n"), self.ref_n)?;
        d.set_item(intern!(py, "_n_up"), self.n_up)?;
        d.set_item(intern!(py, "_n_dn"), self.n_dn)?;
        d.set_item(intern!(py, "_pending"), self.pending)?;
        d.set_item(intern!(py, "_pending_len"), self.pending_len)?;
        d.set_item(intern!(py, "buf"), PyList::new(py, &self.buf)?)?;
        match &self.ph {
            None => d.set_item(intern!(py, "ph"), py.None())?,
            Some(ph) => d.set_item(intern!(py, "ph"), ph_state(ph.bind(py))?)?,
        }
        Ok(d)
    }

    /// `cls(**{p: data[p] for p in _PARAMS if p in data})` ("confirm": newer than some snapshots),
    /// then the state attributes found in `data`, the lag buffer and the test.
    fn restore_from(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = data.py();
        let arg = |key: &str| -> PyResult<Arg<'_>> {
            let key = PyString::new(py, key);
            Ok(if data.contains(&key)? {
                Arg::Given(data.get_item(&key)?)
            } else {
                Arg::Default
            })
        };
        let mut d = ShiftDetector::create(
            py,
            arg(PARAMS[0])?,
            arg(PARAMS[1])?,
            arg(PARAMS[2])?,
            arg(PARAMS[3])?,
            arg(PARAMS[4])?,
            arg(PARAMS[5])?,
            arg(PARAMS[6])?,
            arg(PARAMS[7])?,
        )?;
        macro_rules! field {
            ($($t:tt)*) => { load_field!(data, d, $($t)*) };
        }
        field!("n", |v| as_int(&v)?, n);
        field!("shifts", |v| as_int(&v)?, shifts);
        field!("_learn_from", |v| as_int(&v)?, learn_from);
        field!("_armed_at", |v| opt_int(&v)?, armed_at);
        field!("_m", |v| v.extract()?, m);
        field!("_s", |v| v.extract()?, s);
        field!("_mad", |v| v.extract()?, mad);
        field!("_ref_n", |v| as_int(&v)?, ref_n);
        field!("_n_up", |v| as_int(&v)?, n_up);
        field!("_n_dn", |v| as_int(&v)?, n_dn);
        field!("_pending", |v| opt_int(&v)?, pending);
        field!("_pending_len", |v| as_int(&v)?, pending_len);
        d.buf = data.get_item(intern!(py, "buf"))?.extract()?;
        let ph = data.get_item(intern!(py, "ph"))?;
        d.ph = if ph.is_none() { None } else { Some(ph_load(&ph)?) };
        Ok(d)
    }
}

#[pymethods]
impl ShiftDetector {
    #[new]
    #[pyo3(
        signature = (
            min_samples = Arg::Default,
            min_ratio = Arg::Default,
            threshold_sigmas = Arg::Default,
            slack_sigmas = Arg::Default,
            clip = Arg::Default,
            buffer = Arg::Default,
            ref_window = Arg::Default,
            confirm = Arg::Default,
        ),
        text_signature = "(min_samples=30, min_ratio=1.5, threshold_sigmas=15.0, slack_sigmas=0.4, clip=3.0, \
                          buffer=64, ref_window=1000, confirm=5)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new<'py>(
        py: Python<'py>,
        min_samples: Arg<'py>,
        min_ratio: Arg<'py>,
        threshold_sigmas: Arg<'py>,
        slack_sigmas: Arg<'py>,
        clip: Arg<'py>,
        buffer: Arg<'py>,
        ref_window: Arg<'py>,
        confirm: Arg<'py>,
    ) -> PyResult<Self> {
        ShiftDetector::create(
            py,
            min_samples,
            min_ratio,
            threshold_sigmas,
            slack_sigmas,
            clip,
            buffer,
            ref_window,
            confirm,
        )
    }

    #[classattr]
    #[pyo3(name = "_PARAMS")]
    fn params_names(py: Python<'_>) -> PyResult<Py<PyTuple>> {
        Ok(PyTuple::new(py, PARAMS)?.unbind())
    }

    #[classattr]
    #[pyo3(name = "_STATE")]
    fn state_names(py: Python<'_>) -> PyResult<Py<PyTuple>> {
        Ok(PyTuple::new(py, STATE)?.unbind())
    }

    /// Feed one completed (unclipped) duration; a :class:`Shift` once per detected change.
    /// ``inflow``: the stage's net inflow as a share, -1..1 (``FlowTracker.inflow_share``; 0:
    /// unknown). A slowdown is not called while work drains from the stage, nor a speedup while it
    /// piles up: completions then come from an earlier burst of arrivals, its quick items first
    /// and its slow ones after, at durations unchanged.
    #[pyo3(signature = (seconds, ts, inflow = 0.0))]
    fn update(&mut self, py: Python<'_>, seconds: &Bound<'_, PyAny>, ts: &Bound<'_, PyAny>, inflow: f64) -> PyResult<PyObject> {
        self.step(py, seconds, ts, inflow)
    }

    /// The last ``k`` durations in seconds (oldest first), to seed ``DurationBaseline.reset``.
    fn recent(&self, k: i64) -> PyResult<Vec<f64>> {
        self.last(k)?.into_iter().map(exp).collect()
    }

    /// The current reference typical duration in seconds (None while learning).
    fn level(&self) -> PyResult<Option<f64>> {
        match self.armed_at {
            Some(_) => Ok(Some(exp(self.m)?)),
            None => Ok(None),
        }
    }

    /// 0..1: how far the upward or downward Page-Hinkley statistic would be towards a shift
    /// alarm if ``seconds`` were fed next (pure: a copy of the test is updated).
    fn score_one(&self, py: Python<'_>, seconds: &Bound<'_, PyAny>) -> PyResult<f64> {
        let ph = match &self.ph {
            None => return Ok(0.0),
            Some(ph) => ph.bind(py),
        };
        if !seconds.gt(0)? {
            return Ok(0.0);
        }
        let value: f64 = match seconds.extract::<f64>() {
            Ok(v) => v,
            // an int too large for a float is past _MAX_SECONDS (the comparisons are exact)
            Err(e) if seconds.is_instance_of::<PyInt>() && e.is_instance_of::<PyOverflowError>(py) => f64::INFINITY,
            Err(e) => return Err(e),
        };
        let x = clamp_log(value, MIN_SECONDS, MAX_SECONDS);
        let deepcopy = DEEPCOPY.get_or_try_init(py, || -> PyResult<PyObject> {
            Ok(py.import("copy")?.getattr("deepcopy")?.unbind())
        })?;
        let ph = deepcopy.bind(py).call1((ph,))?;
        let threshold = self.configure(&ph)?;
        ph.call_method1(intern!(py, "update"), (self.residual(x)?,))?;
        let (up, dn) = ph_stats(&ph)?;
        Ok(pmin(1.0, div(pmax(up, dn), threshold)?))
    }

    /// Plain data (JSON-safe): parameters, reference, lag buffer and the Page-Hinkley state.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.snapshot_dict(py)
    }

    #[classmethod]
    fn restore(_cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        ShiftDetector::restore_from(data)
    }

    /// The change test (River's ``PageHinkley``) while armed, else None.
    #[getter(_ph)]
    fn ph_object(&self, py: Python<'_>) -> Option<PyObject> {
        self.ph.as_ref().map(|ph| ph.clone_ref(py))
    }

    /// The ring of raw log-durations (a copy).
    #[getter(_buf)]
    fn buf_array<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("array")?.getattr("array")?.call1(("d", PyList::new(py, &self.buf)?))
    }

    // pickles (the engine's snapshots) carry the plain snapshot, not River objects
    fn __getstate__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.snapshot_dict(py)
    }

    /// Takes a snapshot: this class's pickles, and the Python class's (protocol 2 and up).
    fn __setstate__(&mut self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        *self = ShiftDetector::restore_from(state)?;
        Ok(())
    }

    /// Pickled as ``ShiftDetector()`` + its snapshot (parameters included), at every protocol.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let state = slf.borrow().snapshot_dict(py)?;
        PyTuple::new(
            py,
            [
                slf.get_type().into_any(),
                PyTuple::empty(py).into_any(),
                state.into_any(),
            ],
        )
    }

    /// As the Python class copied (through its pickled state): a restored snapshot.
    fn __copy__(&self, py: Python<'_>) -> PyResult<Self> {
        ShiftDetector::restore_from(self.snapshot_dict(py)?.as_any())
    }

    fn __deepcopy__(&self, py: Python<'_>, _memo: &Bound<'_, PyAny>) -> PyResult<Self> {
        ShiftDetector::restore_from(self.snapshot_dict(py)?.as_any())
    }
}
