"""Offsets of a partition that never reached the worker (``streams.holes.missing``)."""

from __future__ import annotations

from streams.holes import TailWatch, missing


def test_the_next_offset_or_a_replayed_one_is_no_hole():
    assert missing(None, 7) is None  # nothing applied yet: no reference point
    assert missing(9, 10) is None
    assert missing(9, 3) is None  # a replayed record: the applied check skips it


def test_a_record_past_the_next_offset_reveals_the_offsets_in_between():
    assert missing(601, 603) == (602, 603)
    assert missing(7, 19) == (8, 19)


def test_a_partition_whose_last_records_stay_undelivered_is_due_after_the_wait():
    w = TailWatch(after=30.0, most=1000)
    p = ("ev", 0)
    assert not w.due(p, 787, 789, now=0.0)  # one record left: start watching
    assert not w.due(p, 787, 789, now=29.0)
    assert w.due(p, 787, 789, now=30.5)
    assert not w.due(p, 787, 789, now=31.0)  # asked once; watching again from now
    assert w.due(p, 787, 789, now=61.0)


def test_progress_a_caught_up_partition_or_a_backlog_is_not_a_skipped_tail():
    w = TailWatch(after=30.0, most=1000)
    p = ("ev", 1)
    assert not w.due(p, 10, 13, now=0.0)
    assert not w.due(p, 11, 13, now=40.0)  # progress: the wait starts over
    assert not w.due(p, 11, 13, now=69.0) and w.due(p, 11, 13, now=71.0)
    assert not w.due(p, 11, 13, now=80.0)  # asked at 71: watching again from 80
    assert w.due(p, 11, 13, now=110.0)
    q = ("ev", 2)
    for t in (0.0, 100.0, 200.0):
        assert not w.due(q, 50, 51, now=t)  # caught up: nothing left
        assert not w.due(("ev", 3), 50, 5000, now=t)  # a backlog being worked through
        assert not w.due(("ev", 4), None, 60, now=t)  # nothing applied yet
