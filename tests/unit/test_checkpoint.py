"""Checkpoint records of a partition engine: a crash after any prefix of a checkpoint's records
recovers the previous checkpoint or this one, never items of one with the learned state of the other."""

from __future__ import annotations

import random
import zlib

import msgspec
import pytest

from streams.checkpoint import CHUNK, checkpoint_records, item_key, recover

P = 3


def apply(table: dict[bytes, bytes], records: list[tuple[bytes, bytes | None]]) -> dict[bytes, bytes]:
    out = dict(table)
    for key, value in records:
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def state(table: dict[bytes, bytes]) -> tuple[bytes | None, dict[str, bytes], object]:
    rec = recover(P, table.items())
    assert rec.problem is None
    return rec.learned, rec.items, rec.manifest and rec.manifest["applied"]


@pytest.mark.parametrize(("learned_size", "chunks"), [(10, 1), (3 * CHUNK, 4)])
def test_a_crash_after_any_record_of_a_checkpoint_recovers_one_whole_checkpoint(learned_size, chunks):
    rnd = random.Random(learned_size)  # random bytes do not compress: the blob really spans chunks
    learned_a = b"A" + rnd.randbytes(learned_size)
    learned_b = b"B" + rnd.randbytes(learned_size)
    other = {item_key(P + 1, "x"): b"another partition's item"}
    records_a, n_a = checkpoint_records(P, 1, (0, 0), learned_a, [("x", b"x1"), ("y", b"y1")], {"applied": {"ev": 10}})
    assert n_a == chunks
    table_a = apply(other, records_a)
    a = (learned_a, {"x": b"x1", "y": b"y1"}, {"ev": 10})
    assert state(table_a) == a
    # the next checkpoint: x changed, y closed, z opened
    records_b, _ = checkpoint_records(P, 2, (1, n_a), learned_b, [("x", b"x2"), ("y", None), ("z", b"z2")],
                                      {"applied": {"ev": 20}})
    b = (learned_b, {"x": b"x2", "z": b"z2"}, {"ev": 20})
    seen = []
    for k in range(len(records_b) + 1):
        got = state(apply(table_a, records_b[:k]))
        assert got in (a, b), f"crash after {k} of {len(records_b)} records recovered a mix"
        seen.append(got == b)
    assert seen[0] is False and seen[-1] is True
    assert seen == sorted(seen), "once the new checkpoint is in force it stays in force"
    final = apply(table_a, records_b)
    assert not any(k.startswith(f"{P}/learned/1/".encode()) for k in final), "the old generation is deleted"
    assert final[item_key(P + 1, "x")] == b"another partition's item"


def test_a_manifest_whose_chunks_are_missing_is_reported_not_used():
    records, _ = checkpoint_records(P, 1, (0, 0), b"L", [("x", b"x1")], {"applied": {"ev": 5}})
    table = apply({}, [r for r in records if b"/learned/" not in r[0]])
    rec = recover(P, table.items())
    assert rec.learned is None and rec.manifest is None and "1 of 1 chunks missing" in (rec.problem or "")


def test_a_first_format_checkpoint_still_recovers():
    """Before the delta, the chunks held only the learned state and the manifest had no version."""
    table = {
        f"{P}/learned/4/0".encode(): zlib.compress(b"learned v1"),
        f"{P}/learned".encode(): msgspec.msgpack.encode({"chunks": 1, "gen": 4, "applied": {"ev": 7}}),
        item_key(P, "x"): b"x-old-format",
    }
    rec = recover(P, table.items())
    assert (rec.learned, rec.items, rec.generation) == (b"learned v1", {"x": b"x-old-format"}, (4, 1))
