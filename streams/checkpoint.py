"""A partition engine's checkpoint in the state table, and its recovery.

Keys of partition ``p`` in the table (and its Kafka changelog):

- ``p/i/<entity_id>``: one open item; once it closed, when and its latest event ids while the engine
  remembers it among the recently closed (its duplicates are no reopening); then absent;
- ``p/learned/<gen>/<i>``: chunk ``i`` of generation ``gen``: the learned state *and the items changed
  since the previous checkpoint* (the delta), compressed;
- ``p/learned``: the manifest: generation, chunk count, the input offsets the checkpoint covers.

A checkpoint's records go to one changelog partition in this order: the new generation's chunks, the
manifest (the commit point), the changed items under their own keys, then the deletion of the old
generation. Kafka keeps that order and a crash loses only a suffix, so a recovery finds either the old
manifest with its complete old generation (the new chunks are ignored, no item key was touched yet),
or the new manifest with its complete generation, whose delta is laid over item keys that may not have
been written yet. Never items ahead of the learned state: replaying the events after the covered
offsets then rebuilds exactly what the crash lost. (Items written before the manifest, as this worker
once did, made a replayed event look like a duplicate: it was not learned again.)
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

CHUNK = 512 * 1024  # changelog record size for the learned state (Kafka's default limit is 1 MiB)
FORMAT = 2  # 1: the chunks held the learned state only


def item_key(partition: int, entity_id: str) -> bytes:
    return f"{partition}/i/{entity_id}".encode()


def checkpoint_records(
    partition: int,
    gen: int,
    old: tuple[int, int],
    learned: bytes,
    delta: list[tuple[str, bytes | None]],
    manifest: dict[str, Any],
) -> tuple[list[tuple[bytes, bytes | None]], int]:
    """The records of generation ``gen`` in write order, and its number of chunks. ``old`` is the
    (generation, chunks) in force, deleted last; ``manifest`` carries the covered offsets and clock."""
    blob = zlib.compress(msgspec.msgpack.encode([learned, delta]), 3)
    chunks = [blob[i : i + CHUNK] for i in range(0, len(blob), CHUNK)] or [b""]
    p = partition
    records: list[tuple[bytes, bytes | None]] = [(f"{p}/learned/{gen}/{i}".encode(), c) for i, c in enumerate(chunks)]
    records.append((f"{p}/learned".encode(),
                    msgspec.msgpack.encode({**manifest, "chunks": len(chunks), "gen": gen, "v": FORMAT})))
    records.extend((item_key(p, entity_id), value) for entity_id, value in delta)
    old_gen, old_n = old
    records.extend((f"{p}/learned/{old_gen}/{i}".encode(), None) for i in range(old_n))
    return records, len(chunks)


@dataclass
class Recovered:
    learned: bytes | None = None  # None: nothing learned yet, or unreadable (see ``problem``)
    items: dict[str, bytes] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None  # with "applied" and "clock" when ``learned`` is usable
    generation: tuple[int, int] = (0, 0)  # (gen, chunks) in force
    problem: str | None = None


def recover(partition: int, entries: Iterable[tuple[Any, bytes | None]]) -> Recovered:
    """Read partition ``partition``'s checkpoint back from the table's (key, value) pairs."""
    prefix = f"{partition}/".encode()
    out = Recovered()
    chunks: dict[tuple[int, int], bytes] = {}
    for key, value in entries:
        if not isinstance(key, bytes) or not key.startswith(prefix) or value is None:
            continue
        rest = key[len(prefix):].decode()
        if rest.startswith("i/"):
            out.items[rest[2:]] = value
        elif rest == "learned":
            out.manifest = msgspec.msgpack.decode(value)
        elif rest.startswith("learned/"):
            gen, _, i = rest[8:].partition("/")
            chunks[(int(gen), int(i))] = value
    m = out.manifest
    if m is None:
        return out
    n, gen = m["chunks"], m["gen"]
    out.generation = (gen, n)
    missing = sum(1 for i in range(n) if (gen, i) not in chunks)
    if missing:
        out.problem = f"learned state incomplete ({missing} of {n} chunks missing)"
        out.manifest = None
        return out
    try:
        raw = zlib.decompress(b"".join(chunks[(gen, i)] for i in range(n)))
    except zlib.error as exc:
        out.problem = f"learned state unreadable ({exc})"
        out.manifest = None
        return out
    if m.get("v", 1) == 1:
        out.learned = raw
        return out
    learned, delta = msgspec.msgpack.decode(raw)
    out.learned = learned
    for entity_id, value in delta:
        if value is None:
            out.items.pop(entity_id, None)
        else:
            out.items[entity_id] = value
    return out
