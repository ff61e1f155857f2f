//! The common case of `monitor.events._validate_wire`, compiled: a decoded `WireEvent` whose fields
//! need no repair becomes an `Event` without running Python. Anything else (text that is not plain
//! printable ASCII, a timestamp that is not plain RFC 3339 text or a float, attributes to convert, a
//! value out of bounds) gives `None`, and the Python function decides: it validates, repairs or
//! rejects with its reason. So this never decides differently from it, it only decides less.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyString};

/// Holds what `_validate_wire` uses: the `Event` type, `derive_event_id` and the bounds
/// of `monitor.events` (passed in, defined there once).
#[pyclass(module = "detectors._core", frozen)]
pub struct FastEvent {
    event_type: PyObject,
    derive_id: PyObject,
    max_id_len: usize,
    max_name_len: usize,
    max_attributes: usize,
    max_attr_value_len: usize,
    min_timestamp: f64,
    max_timestamp: f64,
    epoch_ms_threshold: f64,
}

/// `_clean` for plain printable ASCII (where `str.isprintable` is 0x20..=0x7E): non-empty, within
/// `limit`, no space to strip at either end. Other text is left to Python (false here).
fn clean(s: &Bound<'_, PyAny>, limit: usize) -> bool {
    // to_str reads the string's UTF-8 (for ASCII, the string's own buffer)
    let text = match s.downcast_exact::<PyString>().map(|s| s.to_str()) {
        Ok(Ok(text)) => text,
        _ => return false,
    };
    let b = text.as_bytes();
    !b.is_empty()
        && b.len() <= limit
        && b[0] != b' '
        && b[b.len() - 1] != b' '
        && b.iter().all(|&c| (0x20..=0x7e).contains(&c))
}

/// The RFC 3339 text msgspec decodes into a datetime, in its plain form only: `YYYY-MM-DDTHH:MM:SS`,
/// up to six fraction digits, then `Z` or `+HH:MM`/`-HH:MM`. (microseconds since the epoch, UTC offset
/// in seconds), from 1970 on; anything else (a lower-case `t`, a space, more digits, no colon in the
/// offset, a leap second, before 1970) is None and msgspec parses it in Python.
fn rfc3339(b: &[u8]) -> Option<(i64, i64)> {
    fn num(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    }
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (hour, minute, second) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if year < 1970 || !(1..=12).contains(&month) || day < 1 || day > month_days[month as usize - 1]
    {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if rest[0] == b'.' {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 6 {
            return None;
        }
        micros = num(&rest[1..1 + digits])? * 10i64.pow(6 - digits as u32);
        rest = &rest[1 + digits..];
    }
    let offset = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (num(&[*h1, *h2])?, num(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            (h * 3600 + m * 60) * if *sign == b'-' { -1 } else { 1 }
        }
        _ => return None,
    };
    // days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let us = ((days * 86400 + hour * 3600 + minute * 60 + second - offset) * 1_000_000) + micros;
    // exact as a double (Python divides such an integer by 10**6 the same way), and not before 1970 UTC
    (0..1i64 << 53).contains(&us).then_some((us, offset))
}

impl FastEvent {
    /// (epoch seconds, UTC offset) as `_validate_wire` takes them, or None for Python to decide.
    fn instant(&self, ts: &Bound<'_, PyAny>) -> Option<(f64, Option<f64>)> {
        if let Ok(text) = ts.downcast_exact::<PyString>() {
            let (us, offset) = rfc3339(text.to_str().ok()?.as_bytes())?;
            let t = us as f64 / 1e6; // exact integer over 10**6, rounded once: Python's total_seconds()
            return self.in_bounds(t).then_some((t, Some(offset as f64)));
        }
        // parse_instant of a float: NaN refused, epoch milliseconds above the threshold, then the bounds
        let mut t = ts.downcast_exact::<PyFloat>().ok()?.value();
        if t.is_nan() {
            return None;
        }
        if t.abs() >= self.epoch_ms_threshold {
            t /= 1000.0;
        }
        self.in_bounds(t).then_some((t, None))
    }

    fn in_bounds(&self, t: f64) -> bool {
        self.min_timestamp <= t && t < self.max_timestamp
    }

    fn build(&self, py: Python<'_>, w: &Bound<'_, PyAny>) -> PyResult<Option<PyObject>> {
        let workflow = w.getattr(intern!(py, "workflow"))?;
        let entity_id = w.getattr(intern!(py, "entity_id"))?;
        let stage = w.getattr(intern!(py, "stage"))?;
        if !(clean(&workflow, self.max_name_len)
            && clean(&entity_id, self.max_id_len)
            && clean(&stage, self.max_name_len))
        {
            return Ok(None);
        }
        let (t, offset) = match self.instant(&w.getattr(intern!(py, "timestamp"))?) {
            Some(instant) => instant,
            None => return Ok(None),
        };
        let mut event_id = w.getattr(intern!(py, "event_id"))?;
        if event_id.is_none() {
            event_id = self
                .derive_id
                .bind(py)
                .call1((&workflow, &entity_id, &stage, t))?;
        } else if !clean(&event_id, self.max_id_len) {
            return Ok(None);
        }
        let waiting = w.getattr(intern!(py, "waiting_on"))?;
        let empty = waiting
            .downcast_exact::<PyString>()
            .map_or(false, |s| s.to_str().map_or(false, str::is_empty));
        let waiting_on = if waiting.is_none() || empty {
            None // "" is no one, as null
        } else if clean(&waiting, self.max_name_len) {
            Some(waiting)
        } else {
            return Ok(None);
        };
        let raw = w.getattr(intern!(py, "attributes"))?;
        let attrs = if raw.is_none() {
            PyDict::new(py).into_any()
        } else {
            let d = match raw.downcast_exact::<PyDict>() {
                Ok(d) => d,
                Err(_) => return Ok(None),
            };
            if d.len() > self.max_attributes {
                return Ok(None);
            }
            for (k, v) in d.iter() {
                let ok = match (k.downcast::<PyString>(), v.downcast_exact::<PyString>()) {
                    (Ok(k), Ok(v)) => {
                        v.len()? <= self.max_attr_value_len && k.len()? <= self.max_name_len
                    }
                    _ => false,
                };
                if !ok {
                    return Ok(None); // values to convert or drop, or a reason to reject: Python's
                }
            }
            raw
        };
        let args = (
            event_id, workflow, entity_id, stage, t, attrs, waiting_on, offset,
        );
        Ok(Some(self.event_type.bind(py).call1(args)?.unbind()))
    }
}

#[pymethods]
impl FastEvent {
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        event_type: PyObject,
        derive_id: PyObject,
        max_id_len: usize,
        max_name_len: usize,
        max_attributes: usize,
        max_attr_value_len: usize,
        min_timestamp: f64,
        max_timestamp: f64,
        epoch_ms_threshold: f64,
    ) -> Self {
        FastEvent {
            event_type,
            derive_id,
            max_id_len,
            max_name_len,
            max_attributes,
            max_attr_value_len,
            min_timestamp,
            max_timestamp,
            epoch_ms_threshold,
        }
    }

    /// The `Event` of a `WireEvent` that needs no repair, or None (then `_validate_wire` decides;
    /// also when anything here raised: it raises the same error, with its handling).
    fn __call__(&self, py: Python<'_>, w: &Bound<'_, PyAny>) -> Option<PyObject> {
        self.build(py, w).unwrap_or(None)
    }
}
