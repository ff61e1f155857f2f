//! `DeadlineHeap`: the engine's deadline index, a min-heap of `(due, seq, obj)` entries.
//!
//! It is `heapq` on a list of such tuples, compiled: the same sift algorithm as CPython's
//! `_heapq` (`heappush`, `heappop`), the same order of comparisons, and the same `<` as Python's
//! tuple comparison of a float and an int (equal `due`s fall back to `seq`; the engine's `seq`s are
//! unique, so `obj` is never compared). So entries come out in exactly the order `heapq` gave.
//! What changes is the cost: with a few hundred thousand open items `heappop` compared tuples
//! through Python's generic comparison ~40 times, 13 % of a backtest.
//!
//! `due` is never NaN (event times and limits are finite, an idle deadline may be `inf`): Python
//! would take one NaN object for equal to itself, this takes no NaN for equal to anything.

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

struct Entry {
    due: f64,
    seq: i64,
    obj: Py<PyAny>,
}

/// `(a.due, a.seq) < (b.due, b.seq)` as Python compares those tuples.
#[inline]
fn lt(a: &Entry, b: &Entry) -> bool {
    if a.due == b.due {
        a.seq < b.seq
    } else {
        a.due < b.due
    }
}

#[pyclass(module = "detectors._core")]
pub struct DeadlineHeap {
    heap: Vec<Entry>,
}

impl DeadlineHeap {
    /// `_heapq.siftdown`: move the entry at `pos` up towards `start` while it is smaller than its parent.
    fn sift_down(&mut self, start: usize, mut pos: usize) {
        let h = &mut self.heap;
        while pos > start {
            let parent = (pos - 1) >> 1;
            if !lt(&h[pos], &h[parent]) {
                break;
            }
            h.swap(pos, parent);
            pos = parent;
        }
    }

    /// `_heapq.siftup`: bubble the smaller child up to a leaf, then sift the entry down from there.
    fn sift_up(&mut self, mut pos: usize) {
        let end = self.heap.len();
        let start = pos;
        let limit = end >> 1;
        while pos < limit {
            let mut child = 2 * pos + 1;
            if child + 1 < end && !lt(&self.heap[child], &self.heap[child + 1]) {
                child += 1;
            }
            self.heap.swap(pos, child);
            pos = child;
        }
        self.sift_down(start, pos);
    }

    fn entry_tuple<'py>(py: Python<'py>, e: &Entry) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(
            py,
            [
                e.due.into_pyobject(py)?.into_any(),
                e.seq.into_pyobject(py)?.into_any(),
                e.obj.bind(py).clone(),
            ],
        )
    }
}

#[pymethods]
impl DeadlineHeap {
    /// An empty heap, or one holding ``entries`` (``(due, seq, obj)`` tuples already in heap order,
    /// as :meth:`entries` gives them and as the engine's snapshots held its ``heapq`` list).
    #[new]
    #[pyo3(signature = (entries=None))]
    fn new(entries: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let mut heap = Vec::new();
        if let Some(entries) = entries {
            for e in entries.try_iter()? {
                let (due, seq, obj): (f64, i64, Py<PyAny>) = e?.extract()?;
                if due.is_nan() {
                    return Err(PyValueError::new_err("a deadline cannot be NaN"));
                }
                heap.push(Entry { due, seq, obj });
            }
        }
        Ok(DeadlineHeap { heap })
    }

    /// ``heapq.heappush(heap, (due, seq, obj))``.
    fn push(&mut self, due: f64, seq: i64, obj: Py<PyAny>) -> PyResult<()> {
        if due.is_nan() {
            return Err(PyValueError::new_err("a deadline cannot be NaN"));
        }
        self.heap.push(Entry { due, seq, obj });
        let last = self.heap.len() - 1;
        self.sift_down(0, last);
        Ok(())
    }

    /// ``heapq.heappop(heap)`` when the first entry is due by ``now`` (``due <= now``), else None.
    fn pop_due<'py>(&mut self, py: Python<'py>, now: f64) -> PyResult<Option<Bound<'py, PyTuple>>> {
        match self.heap.first() {
            Some(first) if first.due <= now => {}
            _ => return Ok(None),
        }
        let last = self
            .heap
            .pop()
            .ok_or_else(|| PyIndexError::new_err("pop from an empty heap"))?;
        let top = if self.heap.is_empty() {
            last
        } else {
            let top = std::mem::replace(&mut self.heap[0], last);
            self.sift_up(0);
            top
        };
        Ok(Some(Self::entry_tuple(py, &top)?))
    }

    /// The first entry's ``due`` (``inf`` when empty): nothing is due before it.
    fn first_due(&self) -> f64 {
        self.heap.first().map_or(f64::INFINITY, |e| e.due)
    }

    /// The entries as ``(due, seq, obj)`` tuples, in heap order.
    fn entries<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .heap
            .iter()
            .map(|e| Self::entry_tuple(py, e))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    fn __len__(&self) -> usize {
        self.heap.len()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let entries = slf.borrow().entries(py)?;
        PyTuple::new(
            py,
            [
                slf.get_type().into_any(),
                PyTuple::new(py, [entries])?.into_any(),
            ],
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for e in &self.heap {
            visit.call(&e.obj)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.heap.clear();
    }
}
