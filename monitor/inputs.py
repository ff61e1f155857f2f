"""The files a command reads, and what to say when one cannot be read: one line, never a traceback.

The counterpart of :mod:`monitor.outputs` (the files a command writes). Each command prints these lines in
its own way and exits 2 (bad usage: a missing file, a directory, a file it may not open), or 1 when not one
record of the events could be read (:func:`nothing_read`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.backtest import BacktestSummary


def input_problem(*paths: Path | None) -> str | None:
    """Why the first of ``paths`` that cannot be read as an input file cannot be, or None (a None path:
    an optional input not given); checked before anything is read or written."""
    for path in paths:
        if path is None:
            continue
        if path.is_dir():
            return f"{path}: a directory, not a file"
        if not path.exists():
            return f"{path}: no such file"
    return None


def read_problem(exc: BaseException, path: str | Path) -> str:
    """One line for an error met reading ``path`` (``monitor.readers.READ_ERRORS``, a ValueError): an
    OSError names the file it is about (one that may not be opened, or written), anything else is
    ``path``'s (a .gz that is not gzip, no time column in a CSV)."""
    if isinstance(exc, OSError) and exc.filename:
        return f"cannot read or write {exc.filename}: {exc.strerror}"
    if isinstance(exc, OSError) and exc.errno is not None:  # a failed write (a full disk) names no file
        return f"cannot read {path} or write the outputs: {exc.strerror or exc}"
    said = str(exc)
    return said if said.startswith(str(path)) else f"cannot read {path}: {said}"


def nothing_read(path: str | Path, events: int, invalid: int, first_invalid: str | None,
                 not_replayed: str | None = None) -> str | None:
    """A file of which not one record could be read (every one invalid, or skipped by its lifecycle
    transition) is an error: every command says so and exits 1 (a script must not take it for a replay).
    An empty file is not one."""
    if events:
        return None
    if invalid:
        return f"not one of the {invalid:,} records of {path} could be read; the first: {first_invalid}"
    if not_replayed:  # ReadStats.not_replayed: the events skipped for their lifecycle transition
        return f"not one event of {path} was replayed: {not_replayed}"
    return None


def nothing_replayed(path: str | Path, summary: BacktestSummary) -> str | None:
    """:func:`nothing_read` for a replay, from its summary."""
    return nothing_read(path, summary.events_read, summary.invalid, summary.first_invalid,
                        summary.reading.not_replayed())
