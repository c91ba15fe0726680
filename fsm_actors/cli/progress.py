"""A rich progress bar fed by ``on_progress`` callbacks of long runs."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def stream_progress_bar(
    enabled: bool = True, label: str = "records", total: int | None = None
) -> Iterator[Callable[[Any], None] | None]:
    """Yield a callback that moves a bar to ``progress.records_processed`` (or ``.completed``).

    Yields None when disabled or when stderr is not a terminal, so runs in CI stay quiet.
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>10.0f} rec/s"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(label, total=total, rate=0.0)

        def update(progress: Any) -> None:
            done = getattr(progress, "records_processed", None)
            if done is None:
                done = getattr(progress, "completed", 0)
            elapsed = getattr(progress, "elapsed", 0.0) or 0.0
            bar.update(task, completed=done, rate=done / elapsed if elapsed else 0.0)

        yield update
