"""``OffsetGuard``: no record is applied past a hole in a partition's offsets (a record the Kafka client
never handed over), and a real gap (a transaction marker) does not stall the partition."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.order import OffsetGuard

TP = ("ev", 0)


class Partition:
    """Replays what the worker sees: a stream of offsets, the guard, and ``applied``."""

    def __init__(self, guard: OffsetGuard, applied: int | None) -> None:
        self.guard = guard
        self.applied = applied
        self.handled: list[int] = []

    def feed(self, offsets: list[int], now: float = 0.0) -> None:
        for off in offsets:
            if self.guard.admit(TP, off, self.applied, now) and (self.applied is None or off > self.applied):
                self.handled.append(off)
                self.applied = off


def test_in_order_records_pass_and_duplicates_are_left_to_the_applied_check():
    p = Partition(OffsetGuard(), applied=9)
    p.feed([5, 9, 10, 11, 12])
    assert p.handled == [10, 11, 12] and not p.guard.seeks


def test_a_skipped_record_is_read_again_and_nothing_past_it_is_applied_before_it():
    p = Partition(OffsetGuard(), applied=601)
    p.feed([603, 604, 605])  # 602 never came
    assert p.handled == [] and p.guard.take_seeks() == [(TP, 602)]
    p.feed([606, 607])  # buffered before the seek: still dropped
    p.feed([602, 603, 604, 605, 606, 607, 608])  # the re-read
    assert p.handled == list(range(602, 609)) and not p.guard.holes


def test_a_record_that_comes_late_after_its_successors_is_applied_in_order():
    p = Partition(OffsetGuard(), applied=601)
    p.feed([603, 602])  # reordered delivery: 602 is the re-read's start
    assert p.handled == [602]
    p.feed([603, 604])
    assert p.handled == [602, 603, 604]


def test_a_real_gap_is_accepted_once_two_re_reads_start_at_the_same_offset():
    p = Partition(OffsetGuard(), applied=99)
    p.feed([101, 102])  # 100 is a transaction marker: it does not exist as a record
    p.feed([101, 102])  # first re-read starts past the hole: read once more
    assert p.handled == [] and [o for _tp, o in p.guard.take_seeks()] == [100, 100]
    p.feed([101, 102, 103])
    assert p.handled == [101, 102, 103] and not p.guard.holes


def test_a_re_read_that_does_not_begin_is_asked_for_again():
    g: OffsetGuard = OffsetGuard(reseek_after=5.0)
    assert not g.admit(TP, 12, 10, now=100.0)
    g.take_seeks()
    g.overdue(102.0)
    assert g.take_seeks() == []
    g.overdue(105.5)
    assert g.take_seeks() == [(TP, 11)]
    g.forget(TP)
    g.overdue(200.0)
    assert g.take_seeks() == [] and g.admit(TP, 12, 10, now=200.0) is False  # a new hole after a forget


@given(st.integers(0, 50), st.data())
def test_whatever_the_client_skips_the_applied_offsets_stay_contiguous(start, data):
    """The client delivers increasing runs and may skip records anywhere, except that a re-read it
    was asked for begins where it was asked to (a skip is a rare race, not the rule): whatever is
    handled is exactly applied+1, applied+2, ... with no hole, and the partition gets to its end."""
    end = start + 30
    p = Partition(OffsetGuard(), applied=start)
    last = start
    for _ in range(200):
        seeks = p.guard.take_seeks()
        pos = seeks[-1][1] if seeks else last + 1 + data.draw(st.integers(0, 2))
        if pos > end:
            if p.applied == end:
                break
            continue
        run = [pos]
        for off in range(pos + 1, min(end, pos + data.draw(st.integers(0, 8))) + 1):
            if data.draw(st.integers(0, 4)) > 0:  # now and then a record is skipped
                run.append(off)
        p.feed(run)
        last = run[-1]
    assert p.handled == list(range(start + 1, end + 1))
