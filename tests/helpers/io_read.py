"""Reading a whole file through the platform readers, for the IO tests."""

from __future__ import annotations

from typing import Any

from fsm_actors.platform.io import ReadOptions, RowError, iter_chunks


def read_chunks(path: Any, chunk_size: int = 65536,
                **options: Any) -> tuple[list[dict], list[RowError], set[Any]]:
    """Every chunk of ``path`` read with ``ReadOptions(**options)``: ``(rows, row errors, the
    distinct schemas of the non-empty batches)``."""
    rows: list[dict] = []
    errors: list[RowError] = []
    schemas = set()
    for chunk in iter_chunks(path, ReadOptions(**options), chunk_size):
        errors += chunk.errors
        if chunk.batch.num_rows:
            schemas.add(chunk.batch.schema)
        rows += chunk.batch.to_pylist()
    return rows, errors, schemas
