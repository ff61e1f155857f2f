"""Progress display for long replays (stderr, so stdout stays clean for data)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def count_progress(records: Iterable[T], _summary: Any = None, every: int = 20_000) -> Iterator[T]:
    """Wrap an iterable with a live counter and rate; updates every ``every`` records."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.completed:,.0f} records"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("replay", total=None)
        n = 0
        for rec in records:
            yield rec
            n += 1
            if n % every == 0:
                bar.update(task, completed=n)
        bar.update(task, completed=n)
