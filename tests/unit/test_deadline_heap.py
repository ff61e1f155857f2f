"""``DeadlineHeap`` (core/src/heap.rs) gives exactly what ``heapq`` gave on ``(due, seq, obj)`` tuples:
the same entries in the same heap order after any pushes and pops, so the engine judges items in the
same order as before it replaced its ``heapq`` list; snapshots of either form load."""

from __future__ import annotations

import heapq
import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors._core import DeadlineHeap
from monitor.engine import Engine
from monitor.events import Event

# few distinct dues, so ties (broken by seq) are common; inf is an idle deadline that never comes
dues = st.sampled_from([0.0, 1.5, 2.0, 2.0 + 1e-9, 60.0, 3600.0, -5.0, math.inf])
ops = st.lists(st.one_of(st.tuples(st.just("push"), dues), st.tuples(st.just("pop"), dues)), max_size=300)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_same_order_and_layout_as_heapq(script: list[tuple[str, float]]) -> None:
    ref: list[tuple[float, int, object]] = []
    heap = DeadlineHeap()
    seq = 0
    for op, x in script:
        if op == "push":
            seq += 1
            obj = object()
            heapq.heappush(ref, (x, seq, obj))
            heap.push(x, seq, obj)
        else:  # pop what is due by x, as Engine.tick does
            want = heapq.heappop(ref) if ref and ref[0][0] <= x else None
            got = heap.pop_due(x)
            assert got == want
        assert heap.entries() == ref  # the same array, not only the same minimum
        assert len(heap) == len(ref)
        assert heap.first_due() == (ref[0][0] if ref else math.inf)


def test_pickles_and_loads_a_heapq_list() -> None:
    ref: list[tuple[float, int, str]] = []
    for i, due in enumerate([5.0, 1.0, 3.0, 1.0, 9.0, 2.0]):
        heapq.heappush(ref, (due, i, f"item-{i}"))
    heap = DeadlineHeap(ref)  # a snapshot's list, already in heap order
    assert heap.entries() == ref
    again = pickle.loads(pickle.dumps(heap, protocol=pickle.HIGHEST_PROTOCOL))
    assert again.entries() == ref
    popped = [again.pop_due(math.inf) for _ in range(len(ref))]
    assert popped == [heapq.heappop(ref) for _ in range(len(popped))]
    assert again.pop_due(math.inf) is None and not again


def test_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        DeadlineHeap().push(math.nan, 1, None)
    with pytest.raises(ValueError, match="NaN"):
        DeadlineHeap([(math.nan, 1, None)])


def test_engine_snapshot_with_a_heapq_list_restores() -> None:
    """Snapshots written before the heap was compiled held a plain ``heapq`` list."""
    eng = Engine()
    for i in range(20):
        eng.process(Event(f"e{i}", "wf", f"d{i}", "lead", 1_700_000_000.0 + i, {}))
    eng.flush()
    state = eng._state_dict(with_items=True)
    state["heap"] = eng.heap.entries()  # the old form
    old = Engine()
    old._load_state(state)
    old._rebind()
    assert isinstance(old.heap, DeadlineHeap)
    assert old.heap.entries() == eng.heap.entries()
    assert old.next_due() == eng.next_due()
