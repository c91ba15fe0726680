"""Several small CSV inputs in one folder (a job with one task per file)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def csv_parts(folder: Path, files: int, rows: int, header: str = "a,b",
              row: Callable[[int, int, int], str] = lambda n, f, i: f"{n},{i}") -> Path:
    """``folder/p<f>.csv`` for ``f < files``, each ``rows`` lines of ``row(n, f, i)`` (``n``
    counts records across the files, ``i`` within one) under ``header``; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        lines = [header] + [row(f * rows + i, f, i) for i in range(rows)]
        (folder / f"p{f}.csv").write_text("\n".join(lines) + "\n")
    return folder
