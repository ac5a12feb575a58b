"""Progress of long work on stderr: a rich bar on a terminal, nothing when piped.

`decode` of a large capture and `export` of a large store take minutes; a bar
tells a person it is moving. Scripts and pipes see nothing of it: the bar is
drawn only when stderr is a terminal, and it is transient (gone when done).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

REFRESH = 0.2
"""Seconds between updates: updating per item would cost more than the work."""


class Ticker(Protocol):
    def __call__(self, completed: float) -> None: ...


def _quiet(completed: float) -> None:
    """The ticker when nothing is drawn."""


def shown() -> bool:
    """Whether a progress bar would be drawn (stderr is a terminal)."""
    return sys.stderr.isatty()


@contextmanager
def progress(description: str, total: float | None) -> Iterator[Ticker]:
    """A ticker to call with how much is done (of `total`); draws only on a terminal."""
    if not total or not shown():
        yield _quiet
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                   TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    task = bar.add_task(description, total=total)
    last = 0.0

    def tick(completed: float) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= REFRESH:
            last = now
            bar.update(task, completed=completed)

    with bar:
        yield tick
