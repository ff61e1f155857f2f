//! `detectors._core`: the detector models whose per-event cost matters, compiled, and the common
//! case of event validation (`events.rs`, for `monitor.events`).
//!
//! Each class keeps the Python API, snapshot format and pickling of the module it lives in
//! (`detectors.baseline.DurationBaseline`, `detectors.silence.SourceRate`,
//! `detectors.throughput.FlowTracker`, `detectors.drift.ShiftDetector`), and the same
//! floating-point results: the same operations in the same order, and the C library's
//! `log`/`exp`/`erfc` that CPython's `math` calls.

use pyo3::prelude::*;

mod baseline;
mod drift;
mod events;
mod heap;
mod py;
mod silence;
mod throughput;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<baseline::DurationBaseline>()?;
    m.add("INSTANT_SECONDS", baseline::INSTANT_SECONDS)?;
    m.add_class::<silence::SourceRate>()?;
    m.add_function(wrap_pyfunction!(silence::silent_after_combined, m)?)?;
    m.add_function(wrap_pyfunction!(silence::pooled_rates, m)?)?;
    m.add_class::<throughput::FlowTracker>()?;
    m.add_class::<drift::ShiftDetector>()?;
    m.add_class::<events::FastEvent>()?;
    m.add_class::<heap::DeadlineHeap>()?;
    Ok(())
}
