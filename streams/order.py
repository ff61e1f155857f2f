"""Records of a partition are applied in offset order, or not at all.

The worker skips a record whose offset is at or below the last one applied (it is already part of the
recovered state). That is only sound if the Kafka client hands records over in offset order without
holes, and Faust does not always: after a SIGKILL restart a CI run here had the first record after the
committed offset never reach the agent while the next ones did (faust-streaming#216 reports the same
after rebalances); the checkpoint then covered the hole and the record was lost for good.

``OffsetGuard`` notices a hole (a record past ``applied + 1``), drops the records from there and asks
for the partition to be read again from the hole. Records the client had already buffered keep coming
in increasing order and are dropped too; the re-read is recognised by the offset going back. If the
re-read starts past the hole twice at the same offset, nothing exists in between (a transaction marker
or a compacted record) and that start is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

TP = TypeVar("TP")

RESEEK_AFTER = 5.0  # seconds without a re-read before the seek is asked for again


@dataclass
class _Hole:
    first: int  # the first offset not applied
    prev: int  # the offset of the last record seen (dropped)
    sought: float  # when the re-read was last asked for
    start: int | None = None  # where the previous re-read began, when it began past the hole


class OffsetGuard(Generic[TP]):
    def __init__(self, reseek_after: float = RESEEK_AFTER) -> None:
        self.holes: dict[TP, _Hole] = {}
        self.seeks: list[tuple[TP, int]] = []  # (partition, offset) to read again from; taken by the worker
        self.reseek_after = reseek_after

    def admit(self, tp: TP, offset: int, applied: int | None, now: float) -> bool:
        """True: handle this record. False: drop it; it will be delivered again."""
        hole = self.holes.get(tp)
        if hole is None:
            if applied is None or offset <= applied + 1:
                return True
            self.holes[tp] = _Hole(applied + 1, offset, now)
            self.seeks.append((tp, applied + 1))
            return False
        if offset > hole.prev:  # still the records fetched before the seek
            hole.prev = offset
            return False
        # the offset went back: this is the re-read
        if offset <= hole.first or offset == hole.start:
            del self.holes[tp]
            return True
        # the re-read began past the hole: the client may have skipped again; read once more to be sure
        hole.start = hole.prev = offset
        hole.sought = now
        self.seeks.append((tp, hole.first))
        return False

    def overdue(self, now: float) -> None:
        """Ask again for re-reads that have not begun (a lost seek, or no record since)."""
        for tp, hole in self.holes.items():
            if now - hole.sought >= self.reseek_after:
                hole.sought = now
                self.seeks.append((tp, hole.first))

    def take_seeks(self) -> list[tuple[TP, int]]:
        seeks, self.seeks = self.seeks, []
        return seeks

    def forget(self, tp: TP) -> None:
        """The partition was revoked: its next owner starts from the committed offset."""
        self.holes.pop(tp, None)
