"""Offsets of a partition that never reached the worker (``streams.holes.missing``)."""

from __future__ import annotations

from streams.holes import missing


def test_the_next_offset_or_a_replayed_one_is_no_hole():
    assert missing(None, 7) is None  # nothing applied yet: no reference point
    assert missing(9, 10) is None
    assert missing(9, 3) is None  # a replayed record: the applied check skips it


def test_a_record_past_the_next_offset_reveals_the_offsets_in_between():
    assert missing(601, 603) == (602, 603)
    assert missing(7, 19) == (8, 19)
