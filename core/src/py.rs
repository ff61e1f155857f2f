//! Python's float semantics, for ports that must give CPython's results bit for bit: `max`/`min`
//! tie rules, `sum()` (3.11: plain left-to-right addition), `//`, `int()`, `math.log/exp/sqrt/erfc`
//! (the C library's functions, the symbols CPython's `math` calls) with CPython's errors, and the
//! conversions a snapshot's fields get in Python (`int(x)`, `float(x)`).

use pyo3::exceptions::{PyOverflowError, PyValueError, PyZeroDivisionError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt};

/// `if key in data: target.field = conv(data[key])`: one field of a snapshot dict, which older
/// snapshots may lack (then the field keeps what it has).
macro_rules! load_field {
    ($data:expr, $target:expr, $key:literal, |$v:ident| $conv:expr, $field:ident) => {
        if $data.contains(pyo3::intern!($data.py(), $key))? {
            let $v = $data.get_item(pyo3::intern!($data.py(), $key))?;
            $target.$field = $conv;
        }
    };
}
pub(crate) use load_field;

extern "C" {
    #[link_name = "erfc"]
    fn c_erfc(x: f64) -> f64;
}

/// `math.erfc` (no std wrapper; `f64::ln`/`f64::exp` lower to the same `log`/`exp` symbols).
pub fn erfc(x: f64) -> f64 {
    // SAFETY: a pure libm function of one double
    unsafe { c_erfc(x) }
}

/// Python's `max(a, b)` (the first unless the second is greater) and `min(a, b)`.
pub fn pmax(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

pub fn pmin(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

/// Python's `sum()` of floats (3.11: plain left-to-right addition, from the int 0).
pub fn psum<I: IntoIterator<Item = f64>>(xs: I) -> f64 {
    xs.into_iter().fold(0.0, |acc, x| acc + x)
}

/// Python's `min()` over a non-empty run of floats.
pub fn pmin_all<I: IntoIterator<Item = f64>>(xs: I) -> Option<f64> {
    let mut it = xs.into_iter();
    let first = it.next()?;
    Some(it.fold(first, pmin))
}

/// Python's float `vx // wx` (CPython `_float_div_mod`).
pub fn floordiv(vx: f64, wx: f64) -> f64 {
    let m = vx % wx;
    let mut div = (vx - m) / wx;
    if m != 0.0 && (wx < 0.0) != (m < 0.0) {
        div -= 1.0;
    }
    if div != 0.0 {
        let mut f = div.floor();
        if div - f > 0.5 {
            f += 1.0;
        }
        f
    } else {
        0.0f64.copysign(vx / wx)
    }
}

/// The checks of Python's float -> int conversion (`int()`, `math.floor()`).
pub fn int_check(x: f64) -> PyResult<f64> {
    if x.is_nan() {
        Err(PyValueError::new_err("cannot convert float NaN to integer"))
    } else if x.is_infinite() {
        Err(PyOverflowError::new_err("cannot convert float infinity to integer"))
    } else {
        Ok(x)
    }
}

/// Float `/` as Python does it (a zero divisor raises).
pub fn div(a: f64, b: f64) -> PyResult<f64> {
    if b == 0.0 {
        Err(PyZeroDivisionError::new_err("float division by zero"))
    } else {
        Ok(a / b)
    }
}

fn domain_error() -> PyErr {
    PyValueError::new_err("math domain error")
}

/// `math.log`, `math.sqrt`, `math.exp`: the C library's, with CPython's errors.
pub fn log(x: f64) -> PyResult<f64> {
    if x <= 0.0 {
        Err(domain_error())
    } else {
        Ok(x.ln())
    }
}

pub fn sqrt(x: f64) -> PyResult<f64> {
    if x < 0.0 {
        Err(domain_error())
    } else {
        Ok(x.sqrt())
    }
}

pub fn exp(x: f64) -> PyResult<f64> {
    let r = x.exp();
    if r.is_infinite() && x.is_finite() {
        Err(PyOverflowError::new_err("math range error"))
    } else {
        Ok(r)
    }
}

/// `repr()` of a float where Rust's formatting differs (nan, inf); finite values as `{:?}`.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{x:?}")
    }
}

/// Python's `int(x)`.
pub fn py_int(ob: &Bound<'_, PyAny>) -> PyResult<i64> {
    if ob.downcast_exact::<PyInt>().is_ok() {
        return ob.extract();
    }
    ob.py().get_type::<PyInt>().call1((ob,))?.extract()
}

/// Python's `float(x)`.
pub fn py_float(ob: &Bound<'_, PyAny>) -> PyResult<f64> {
    if let Ok(f) = ob.downcast_exact::<PyFloat>() {
        return Ok(f.value());
    }
    ob.py().get_type::<PyFloat>().call1((ob,))?.extract()
}

/// A stored count (an int; a float from a hand-written or JSON snapshot is truncated).
pub fn as_int(value: &Bound<'_, PyAny>) -> PyResult<i64> {
    match value.extract::<i64>() {
        Ok(v) => Ok(v),
        Err(_) => Ok(value.extract::<f64>()? as i64),
    }
}

/// `math.log(min(max(seconds, lo), hi))`: a duration's log, clamped to what the models keep.
pub fn clamp_log(seconds: f64, lo: f64, hi: f64) -> f64 {
    pmin(pmax(seconds, lo), hi).ln()
}

/// A constructor argument as given (or left out), converted in the constructor's body as the Python
/// class did (`int(x)`, `float(x)`, or kept as the object), so a bad one raises Python's own error, not
/// one about argument extraction.
pub enum Arg<'py> {
    Given(Bound<'py, PyAny>),
    Default,
}

impl<'py> FromPyObject<'py> for Arg<'py> {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        Ok(Arg::Given(ob.clone()))
    }
}

impl<'py> Arg<'py> {
    pub fn int(&self, default: i64) -> PyResult<i64> {
        match self {
            Arg::Default => Ok(default),
            Arg::Given(ob) => py_int(ob),
        }
    }

    pub fn float(&self, default: f64) -> PyResult<f64> {
        match self {
            Arg::Default => Ok(default),
            Arg::Given(ob) => py_float(ob),
        }
    }

    pub fn object(&self, default: &Bound<'py, PyAny>) -> Bound<'py, PyAny> {
        match self {
            Arg::Given(ob) => ob.clone(),
            Arg::Default => default.clone(),
        }
    }
}
