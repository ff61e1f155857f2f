//! The common case of `monitor.events._validate_wire`, compiled: a decoded `WireEvent` whose fields
//! need no repair becomes an `Event` without running Python. Anything else (text that is not plain
//! printable ASCII, a timestamp that is not an aware datetime or a float, attributes to convert, a
//! value out of bounds) gives `None`, and the Python function decides: it validates, repairs or
//! rejects with its reason. So this never decides differently from it, it only decides less.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyString};

/// Holds what `_validate_wire` uses: the `Event` type, `datetime`, `derive_event_id` and the bounds
/// of `monitor.events` (passed in, defined there once).
#[pyclass(module = "detectors._core", frozen)]
pub struct FastEvent {
    event_type: PyObject,
    datetime_type: PyObject,
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

impl FastEvent {
    /// (epoch seconds, UTC offset) as `_validate_wire` takes them, or None for Python to decide.
    fn instant(&self, ts: &Bound<'_, PyAny>) -> PyResult<Option<(f64, Option<f64>)>> {
        let py = ts.py();
        if ts.get_type().is(self.datetime_type.bind(py)) {
            if ts.getattr(intern!(py, "tzinfo"))?.is_none() {
                return Ok(None);
            }
            let t: f64 = ts.call_method0(intern!(py, "timestamp"))?.extract()?;
            if !(self.min_timestamp <= t && t < self.max_timestamp) {
                return Ok(None);
            }
            let offset: f64 = ts
                .call_method0(intern!(py, "utcoffset"))?
                .call_method0(intern!(py, "total_seconds"))?
                .extract()?;
            return Ok(Some((t, Some(offset))));
        }
        // parse_instant of a float: NaN refused, epoch milliseconds above the threshold, then the bounds
        let mut t = match ts.downcast_exact::<PyFloat>() {
            Ok(f) => f.value(),
            Err(_) => return Ok(None),
        };
        if t.is_nan() {
            return Ok(None);
        }
        if t.abs() >= self.epoch_ms_threshold {
            t /= 1000.0;
        }
        if !(self.min_timestamp <= t && t < self.max_timestamp) {
            return Ok(None);
        }
        Ok(Some((t, None)))
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
        let (t, offset) = match self.instant(&w.getattr(intern!(py, "timestamp"))?)? {
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
        let waiting_on = if waiting.is_none() {
            None
        } else if waiting
            .downcast_exact::<PyString>()
            .map_or(false, |s| s.to_str().map_or(false, str::is_empty))
        {
            None
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
        datetime_type: PyObject,
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
            datetime_type,
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
