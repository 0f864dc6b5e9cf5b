"""Progress bars (rich, as nerfstudio uses), one style for every long step of the project."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

Item = TypeVar("Item")


@contextlib.contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A bar of ``total`` steps; yields ``advance(count=1)``, which any thread may call."""
    columns = (TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not enabled) as progress:
        task = progress.add_task(description, total=total)
        yield lambda count=1: progress.advance(task, count)


def track(items: Iterable[Item], description: str, total: int | None = None, enabled: bool = True) -> Iterator[Item]:
    """``items`` with a progress bar (``total`` defaults to ``len(items)``)."""
    with progress_bar(description, len(items) if total is None else total, enabled) as advance:  # type: ignore[arg-type]
        for item in items:
            yield item
            advance()
