//! `FlowTracker`: arrivals, departures and WIP of one (workflow, stage); detects durable backlog
//! growth. The model and the reasons behind it are described in `detectors/throughput.py`; this is
//! its implementation, operation for operation (Python's `max`/`min` tie rules, int counts compared
//! with floats exactly, and Python's errors: a float division by zero, `math.exp` overflowing,
//! `math.sqrt` of a negative number raise as they did).
//!
//! `Backlog` stays the Python dataclass of `detectors/throughput.py`: it is built only while an
//! episode is ongoing and asked for, and keeps its equality, hashing, repr and immutability as they were.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};
use crate::py::{as_int, div, exp, load_field, pmax, pmin, py_int, sqrt, Arg};

static BACKLOG: GILOnceCell<Py<PyType>> = GILOnceCell::new();

/// Arrivals, departures and WIP of one stage; detects durable backlog growth.
#[pyclass(module = "detectors.throughput", name = "FlowTracker")]
#[derive(Clone)]
pub struct FlowTracker {
    #[pyo3(get, set)]
    min_departures: i64,
    #[pyo3(get, set)]
    windows: i64,
    #[pyo3(get, set)]
    growth_factor: f64,
    #[pyo3(get, set)]
    end_factor: f64,
    #[pyo3(get, set)]
    rate_windows: f64,
    #[pyo3(get, set)]
    min_window: f64,
    #[pyo3(get, set)]
    duration_alpha: f64,
    #[pyo3(get, set)]
    min_window_events: f64,
    #[pyo3(get, set)]
    settle_durations: f64,
    #[pyo3(get, set)]
    wip: i64,
    #[pyo3(get, set)]
    arrivals: i64,
    #[pyo3(get, set)]
    departures: i64,
    mean_d: Option<f64>, // EWMA of time in stage (seconds)
    slow_d: Option<f64>, // the same, 10x slower: the normal before a queue builds up
    t: Option<f64>,      // event time of the latest update
    t0: Option<f64>,     // first event time
    ra: f64,             // decayed arrival count
    rd: f64,             // decayed departure count
    wip_avg: f64,        // time-weighted decayed mean WIP
    win_start: Option<f64>,
    win_len: f64,
    win_a: i64,
    win_d: i64,
    closed: Vec<(i64, i64)>, // last `windows` closed windows: (arrivals, departures)
    growing: Option<bool>,   // the window test on `closed`; None (unknown) once a window closes
    since: Option<f64>,      // start of the current episode
    ref_expected: f64,       // Little's-law WIP when the episode started
    settled: bool,           // past the start-up period
}

impl FlowTracker {
    #[allow(clippy::too_many_arguments)]
    fn create(
        min_departures: i64,
        windows: i64,
        growth_factor: f64,
        end_factor: f64,
        rate_windows: f64,
        min_window: f64,
        duration_alpha: f64,
        min_window_events: f64,
        settle_durations: f64,
    ) -> Self {
        FlowTracker {
            min_departures,
            windows,
            growth_factor,
            end_factor,
            rate_windows,
            min_window,
            duration_alpha,
            min_window_events,
            settle_durations,
            wip: 0,
            arrivals: 0,
            departures: 0,
            mean_d: None,
            slow_d: None,
            t: None,
            t0: None,
            ra: 0.0,
            rd: 0.0,
            wip_avg: 0.0,
            win_start: None,
            win_len: 0.0,
            win_a: 0,
            win_d: 0,
            closed: Vec::new(),
            growing: None,
            since: None,
            ref_expected: 0.0,
            settled: false,
        }
    }

    // -- time -----------------------------------------------------------------------------------

    /// Mean time in stage as it normally is: a queue building up lengthens the fast EWMA first.
    fn normal_d(&self) -> f64 {
        match (self.mean_d, self.slow_d) {
            (Some(m), Some(s)) => pmin(m, s),
            _ => 0.0,
        }
    }

    fn tau(&self) -> f64 {
        self.rate_windows * pmax(self.normal_d(), self.min_window)
    }

    /// One typical duration, but long enough to hold ~`min_window_events` arrivals.
    fn window_length(&self) -> PyResult<f64> {
        let rate = self.arrival_rate_of()?;
        let by_count = if rate > 0.0 {
            div(self.min_window_events, rate)?
        } else {
            0.0
        };
        Ok(pmax(pmax(self.normal_d(), self.min_window), by_count))
    }

    /// Move the clock to `t` (late events are counted at the current clock).
    fn advance(&mut self, t: f64) -> PyResult<()> {
        let last = match self.t {
            None => {
                self.t = Some(t);
                self.t0 = Some(t);
                return Ok(());
            }
            Some(last) => last,
        };
        if t <= last {
            return Ok(());
        }
        let dt = t - last;
        // the Python code inlines tau() here, with its own tie rules (`m if m < s else s`)
        let d = match (self.mean_d, self.slow_d) {
            (Some(m), Some(s)) => {
                if m < s {
                    m
                } else {
                    s
                }
            }
            _ => 0.0,
        };
        let mw = self.min_window;
        let f = exp(div(-dt, self.rate_windows * (if mw > d { mw } else { d }))?)?;
        self.ra *= f;
        self.rd *= f;
        self.wip_avg = self.wip_avg * f + self.wip as f64 * (1.0 - f);
        self.t = Some(t);
        if let Some(start) = self.win_start {
            if t >= start + self.win_len {
                // a window closes
                self.growing = None;
                let mut broke = false;
                let mut i: i64 = 0;
                while i < self.windows + 1 {
                    // bounded: older windows fall out anyway
                    let start = self.win_start.unwrap_or(start);
                    if t < start + self.win_len {
                        broke = true;
                        break;
                    }
                    self.closed.push((self.win_a, self.win_d));
                    // `del closed[:-windows]`: keeps the last `windows` (all of them when windows == 0;
                    // the loop does not run at all when windows < 0)
                    if self.windows > 0 {
                        let keep = self.windows as usize;
                        if self.closed.len() > keep {
                            let drop = self.closed.len() - keep;
                            self.closed.drain(..drop);
                        }
                    }
                    self.win_a = 0;
                    self.win_d = 0;
                    self.win_start = Some(start + self.win_len);
                    self.win_len = self.window_length()?;
                    i += 1;
                }
                if !broke {
                    // a long gap: restart windows at t
                    self.win_start = Some(t);
                }
            }
        }
        Ok(())
    }

    // -- updates --------------------------------------------------------------------------------

    fn arrive_at(&mut self, ts: f64) -> PyResult<()> {
        self.advance(ts)?;
        self.arrivals += 1;
        self.wip += 1;
        self.ra += 1.0;
        self.win_a += 1;
        Ok(())
    }

    fn depart_at(&mut self, ts: f64, duration: f64) -> PyResult<()> {
        self.advance(ts)?;
        self.departures += 1;
        self.wip = if self.wip - 1 > 0 { self.wip - 1 } else { 0 };
        self.rd += 1.0;
        self.win_d += 1;
        if duration >= 0.0 && duration.is_finite() {
            match (self.mean_d, self.slow_d) {
                (Some(m), Some(s)) => {
                    let n = self.departures as f64;
                    self.mean_d = Some(m + pmax(self.duration_alpha, div(1.0, n)?) * (duration - m));
                    self.slow_d = Some(s + pmax(self.duration_alpha / 10.0, div(1.0, n)?) * (duration - s));
                }
                _ => {
                    self.mean_d = Some(duration);
                    self.slow_d = Some(duration);
                }
            }
        }
        if self.win_start.is_none() && self.departures >= self.min_departures {
            self.win_start = Some(ts);
            self.win_len = self.window_length()?;
            self.win_a = 0; // the first window starts now, not with the stream
            self.win_d = 0;
        }
        Ok(())
    }

    // -- queries --------------------------------------------------------------------------------

    fn rate(&self, decayed: f64) -> PyResult<f64> {
        let (t, t0) = match (self.t, self.t0) {
            (Some(t), Some(t0)) => (t, t0),
            _ => return Ok(0.0),
        };
        let tau = self.tau();
        let span = t - t0;
        if span > 0.0 {
            div(decayed, tau * (1.0 - exp(div(-span, tau)?)?))
        } else {
            Ok(0.0)
        }
    }

    fn arrival_rate_of(&self) -> PyResult<f64> {
        self.rate(self.ra)
    }

    fn excess(&self, factor: f64, sigmas: f64, expected: f64) -> PyResult<bool> {
        let wip = self.wip as f64; // exact: Python compares the int with the float exactly
        let above = wip > factor * expected; // false for NaN, as in Python
        if !above {
            return Ok(false); // `and`: no sqrt (nor its error) unless the first test holds
        }
        Ok(wip > expected + sigmas * sqrt(expected)? + 3.0)
    }

    /// Net inflow beyond what Poisson noise in the two counts explains.
    fn significant_inflow(arrivals: i64, departures: i64) -> PyResult<bool> {
        Ok(((arrivals - departures) as f64) > 2.5 * sqrt((arrivals + departures) as f64)? + 2.0)
    }

    /// The window test: net inflow in all but at most one of the last closed windows, significant
    /// as a Poisson count.
    fn windows_growing(&self) -> PyResult<bool> {
        if (self.closed.len() as i64) < self.windows {
            return Ok(false);
        }
        let (mut a, mut d, mut growing) = (0i64, 0i64, 0i64);
        for &(wa, wd) in &self.closed {
            a += wa;
            d += wd;
            growing += (wa > wd) as i64;
        }
        Ok(growing >= self.windows - 1 && FlowTracker::significant_inflow(a, d)?)
    }

    /// Departures kept up with arrivals over the last closed windows (none of them idle) and the
    /// window still open shows no significant net inflow.
    fn caught_up(&self) -> PyResult<bool> {
        if (self.closed.len() as i64) < self.windows || !self.closed.iter().all(|&(a, d)| a + d != 0) {
            return Ok(false);
        }
        let deps: i64 = self.closed.iter().map(|w| w.1).sum();
        let arrs: i64 = self.closed.iter().map(|w| w.0).sum();
        Ok(deps >= arrs && !FlowTracker::significant_inflow(self.win_a, self.win_d)?)
    }

    fn judge(&mut self, now: f64) -> PyResult<bool> {
        self.advance(now)?;
        let (mean_d, t0) = match (self.mean_d, self.t0) {
            (Some(m), Some(t0)) if self.departures >= self.min_departures => (m, t0),
            _ => return Ok(false),
        };
        if !self.settled {
            if now - t0 < self.settle_durations * mean_d {
                return Ok(false); // start-up: WIP not in steady state, early departures are the short ones
            }
            self.settled = true;
        }
        if self.since.is_none() {
            let growing = match self.growing {
                Some(g) => g,
                None => {
                    // a window closed since the last check
                    let g = self.windows_growing()?;
                    self.growing = Some(g);
                    g
                }
            };
            if !growing {
                return Ok(false);
            }
        }
        let expected = self.arrival_rate_of()? * self.normal_d();
        if self.since.is_some() {
            // judged against the normal WIP frozen at the start
            if !self.excess(self.end_factor, 2.0, pmin(expected, self.ref_expected))? || self.caught_up()? {
                self.since = None;
                return Ok(false);
            }
        } else {
            if !self.excess(self.growth_factor, 4.0, expected)? {
                return Ok(false);
            }
            self.since = Some(now);
            self.ref_expected = expected;
        }
        Ok(true)
    }

    fn describe(&self, py: Python<'_>) -> PyResult<PyObject> {
        let since = match self.since {
            None => return Ok(py.None()),
            Some(since) => since,
        };
        let rate = self.arrival_rate_of()?;
        let normal = self.normal_d();
        let expected = rate * normal;
        let departure_rate = self.rate(self.rd)?;
        let wip = self.wip;
        let ratio = if expected > 0.0 {
            wip as f64 / expected
        } else {
            f64::INFINITY
        };
        let cls = BACKLOG.import(py, "detectors.throughput", "Backlog")?;
        Ok(cls
            .call1((wip, expected, rate, departure_rate, ratio, since, normal))?
            .unbind())
    }

    fn closed_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for &(a, d) in &self.closed {
            list.append(PyList::new(py, [a, d])?)?;
        }
        Ok(list)
    }

    /// `cls(**{p: data[p] for p in PARAMS if p in data})`: the parameters found in `data`, defaults
    /// for the others.
    fn from_params<'py>(data: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = data.py();
        let arg = |key: &Bound<'py, PyString>| -> PyResult<Arg<'py>> {
            Ok(if data.contains(key)? {
                Arg::Given(data.get_item(key)?)
            } else {
                Arg::Default
            })
        };
        FlowTracker::new(
            arg(intern!(py, "min_departures"))?,
            arg(intern!(py, "windows"))?,
            arg(intern!(py, "growth_factor"))?,
            arg(intern!(py, "end_factor"))?,
            arg(intern!(py, "rate_windows"))?,
            arg(intern!(py, "min_window"))?,
            arg(intern!(py, "duration_alpha"))?,
            arg(intern!(py, "min_window_events"))?,
            arg(intern!(py, "settle_durations"))?,
        )
    }

    /// Set the state attributes found in `data` (keys as the Python class named its attributes);
    /// with `raw_params`, also the parameters as stored (`__setstate__`), not through int()/float().
    fn set_state(&mut self, data: &Bound<'_, PyAny>, raw_params: bool) -> PyResult<()> {
        macro_rules! field {
            ($($t:tt)*) => { load_field!(data, self, $($t)*) };
        }
        if raw_params {
            field!("min_departures", |v| as_int(&v)?, min_departures);
            field!("windows", |v| as_int(&v)?, windows);
            field!("growth_factor", |v| v.extract()?, growth_factor);
            field!("end_factor", |v| v.extract()?, end_factor);
            field!("rate_windows", |v| v.extract()?, rate_windows);
            field!("min_window", |v| v.extract()?, min_window);
            field!("duration_alpha", |v| v.extract()?, duration_alpha);
            field!("min_window_events", |v| v.extract()?, min_window_events);
            field!("settle_durations", |v| v.extract()?, settle_durations);
        }
        field!("wip", |v| as_int(&v)?, wip);
        field!("arrivals", |v| as_int(&v)?, arrivals);
        field!("departures", |v| as_int(&v)?, departures);
        field!("_mean_d", |v| v.extract()?, mean_d);
        field!("_slow_d", |v| v.extract()?, slow_d);
        field!("_t", |v| v.extract()?, t);
        field!("_t0", |v| v.extract()?, t0);
        field!("_ra", |v| v.extract()?, ra);
        field!("_rd", |v| v.extract()?, rd);
        field!("_wip_avg", |v| v.extract()?, wip_avg);
        field!("_win_start", |v| v.extract()?, win_start);
        field!("_win_len", |v| v.extract()?, win_len);
        field!("_win_a", |v| as_int(&v)?, win_a);
        field!("_win_d", |v| as_int(&v)?, win_d);
        field!("_since", |v| v.extract()?, since);
        field!("_ref_expected", |v| v.extract()?, ref_expected);
        field!("_settled", |v| v.is_truthy()?, settled);
        Ok(())
    }

    fn read_closed(
        windows: &Bound<'_, PyAny>,
        int_of: fn(&Bound<'_, PyAny>) -> PyResult<i64>,
    ) -> PyResult<Vec<(i64, i64)>> {
        let mut out = Vec::new();
        for w in windows.try_iter()? {
            let w = w?;
            out.push((int_of(&w.get_item(0)?)?, int_of(&w.get_item(1)?)?));
        }
        Ok(out)
    }

    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item(intern!(py, "min_departures"), self.min_departures)?;
        d.set_item(intern!(py, "windows"), self.windows)?;
        d.set_item(intern!(py, "growth_factor"), self.growth_factor)?;
        d.set_item(intern!(py, "end_factor"), self.end_factor)?;
        d.set_item(intern!(py, "rate_windows"), self.rate_windows)?;
        d.set_item(intern!(py, "min_window"), self.min_window)?;
        d.set_item(intern!(py, "duration_alpha"), self.duration_alpha)?;
        d.set_item(intern!(py, "min_window_events"), self.min_window_events)?;
        d.set_item(intern!(py, "settle_durations"), self.settle_durations)?;
        d.set_item(intern!(py, "wip"), self.wip)?;
        d.set_item(intern!(py, "arrivals"), self.arrivals)?;
        d.set_item(intern!(py, "departures"), self.departures)?;
        d.set_item(intern!(py, "_mean_d"), self.mean_d)?;
        d.set_item(intern!(py, "_slow_d"), self.slow_d)?;
        d.set_item(intern!(py, "_t"), self.t)?;
        d.set_item(intern!(py, "_t0"), self.t0)?;
        d.set_item(intern!(py, "_ra"), self.ra)?;
        d.set_item(intern!(py, "_rd"), self.rd)?;
        d.set_item(intern!(py, "_wip_avg"), self.wip_avg)?;
        d.set_item(intern!(py, "_win_start"), self.win_start)?;
        d.set_item(intern!(py, "_win_len"), self.win_len)?;
        d.set_item(intern!(py, "_win_a"), self.win_a)?;
        d.set_item(intern!(py, "_win_d"), self.win_d)?;
        Ok(d)
    }
}

#[pymethods]
impl FlowTracker {
    #[new]
    #[pyo3(
        signature = (
            min_departures = Arg::Default,
            windows = Arg::Default,
            growth_factor = Arg::Default,
            end_factor = Arg::Default,
            rate_windows = Arg::Default,
            min_window = Arg::Default,
            duration_alpha = Arg::Default,
            min_window_events = Arg::Default,
            settle_durations = Arg::Default,
        ),
        text_signature = "(min_departures=30, windows=3, growth_factor=1.5, end_factor=1.2, rate_windows=3.0, \
                          min_window=60.0, duration_alpha=0.02, min_window_events=20.0, settle_durations=5.0)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        min_departures: Arg<'_>,
        windows: Arg<'_>,
        growth_factor: Arg<'_>,
        end_factor: Arg<'_>,
        rate_windows: Arg<'_>,
        min_window: Arg<'_>,
        duration_alpha: Arg<'_>,
        min_window_events: Arg<'_>,
        settle_durations: Arg<'_>,
    ) -> PyResult<Self> {
        // the Python class's defaults, converted in its order
        Ok(FlowTracker::create(
            min_departures.int(30)?,
            windows.int(3)?,
            growth_factor.float(1.5)?,
            end_factor.float(1.2)?,
            rate_windows.float(3.0)?,
            min_window.float(60.0)?,
            duration_alpha.float(0.02)?,
            min_window_events.float(20.0)?,
            settle_durations.float(5.0)?,
        ))
    }

    /// One item entered the stage at event time ``ts``.
    fn arrive(&mut self, ts: f64) -> PyResult<()> {
        self.arrive_at(ts)
    }

    /// One item left the stage at ``ts`` after ``duration`` seconds in it (NaN or negative: none learned).
    fn depart(&mut self, ts: f64, duration: f64) -> PyResult<()> {
        self.depart_at(ts, duration)
    }

    /// Arrivals per second, exponentially decayed.
    fn arrival_rate(&self) -> PyResult<f64> {
        self.arrival_rate_of()
    }

    /// Departures per second, exponentially decayed.
    fn departure_rate(&self) -> PyResult<f64> {
        self.rate(self.rd)
    }

    /// Net inflow as a share, -1..1: (arrivals - departures) / (arrivals + departures), decayed
    /// rates; 0 while nothing moved. Above 0 work piles up in the stage, below it drains.
    fn inflow_share(&self) -> PyResult<f64> {
        let (a, d) = (self.arrival_rate_of()?, self.rate(self.rd)?);
        Ok(if a + d > 0.0 { (a - d) / (a + d) } else { 0.0 })
    }

    /// (observed time-weighted mean WIP, arrival rate x mean time in stage).
    fn littles_law(&self) -> PyResult<(f64, f64)> {
        Ok((self.wip_avg, self.arrival_rate_of()? * self.normal_d()))
    }

    /// Move the clock to ``now`` and judge: True while a backlog episode is ongoing.
    /// Idempotent for the same ``now``; :meth:`backlog` describes the episode.
    fn in_backlog(&mut self, now: f64) -> PyResult<bool> {
        self.judge(now)
    }

    /// The ongoing backlog episode as of the latest :meth:`in_backlog`, or None (pure).
    fn backlog(&self, py: Python<'_>) -> PyResult<PyObject> {
        self.describe(py)
    }

    /// The ongoing backlog episode, or None. Idempotent for the same ``now``.
    fn check(&mut self, py: Python<'_>, now: f64) -> PyResult<PyObject> {
        if self.judge(now)? {
            self.describe(py)
        } else {
            Ok(py.None())
        }
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = self.state_dict(py)?;
        d.set_item(intern!(py, "_since"), self.since)?;
        d.set_item(intern!(py, "_ref_expected"), self.ref_expected)?;
        d.set_item(intern!(py, "_settled"), self.settled)?;
        d.set_item(intern!(py, "closed"), self.closed_list(py)?)?;
        Ok(d)
    }

    /// A tracker from :meth:`snapshot` (older snapshots: missing fields keep their defaults).
    #[classmethod]
    fn restore(_cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = data.py();
        let mut f = FlowTracker::from_params(data)?;
        f.set_state(data, false)?;
        if !data.contains(intern!(py, "_slow_d"))? {
            f.slow_d = f.mean_d;
        }
        let closed = data.get_item(intern!(py, "closed"))?;
        f.closed = FlowTracker::read_closed(&closed, py_int)?;
        Ok(f)
    }

    /// The state as the Python class kept it in its ``__dict__``: what it pickles.
    fn __getstate__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = self.state_dict(py)?;
        d.set_item(intern!(py, "_closed"), self.closed_list(py)?)?;
        d.set_item(intern!(py, "_growing"), self.growing)?;
        d.set_item(intern!(py, "_since"), self.since)?;
        d.set_item(intern!(py, "_ref_expected"), self.ref_expected)?;
        d.set_item(intern!(py, "_settled"), self.settled)?;
        Ok(d)
    }

    /// Takes a pickled state: this class's, or the Python class's ``__dict__`` (protocol 2 and up),
    /// with or without the cached window test (``_growing``).
    fn __setstate__(&mut self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = state.py();
        self.set_state(state, true)?;
        if state.contains(intern!(py, "_closed"))? {
            self.closed = FlowTracker::read_closed(&state.get_item(intern!(py, "_closed"))?, as_int)?;
        }
        if state.contains(intern!(py, "_growing"))? {
            let g = state.get_item(intern!(py, "_growing"))?;
            self.growing = if g.is_none() { None } else { Some(g.is_truthy()?) };
        }
        Ok(())
    }

    /// Pickled as ``FlowTracker()`` + the Python class's ``__dict__``, at every protocol.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let state = slf.borrow().__getstate__(py)?;
        PyTuple::new(
            py,
            [
                slf.get_type().into_any(),
                PyTuple::empty(py).into_any(),
                state.into_any(),
            ],
        )
    }

    fn __copy__(&self) -> Self {
        self.clone()
    }

    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        self.clone()
    }
}
