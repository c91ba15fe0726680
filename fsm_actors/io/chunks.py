"""Cutting a reader's pieces into chunks of exactly ``chunk_size`` records.

Every reader yields ``Piece``s (a batch of good records plus the bad ones it skipped); the
``rechunk`` generator turns them into ``Chunk``s. Chunk boundaries depend only on the file and
``chunk_size``, so re-reading a file gives the same chunk numbers: the part files of a crashed
run can be matched to chunks again (exactly-once output relies on this).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from fsm_actors.io.errors import RowError


@dataclass
class Piece:
    """What a format reader yields: good records as Arrow, and the rows it rejected."""

    batch: pa.RecordBatch | pa.Table | None
    errors: list[RowError] = field(default_factory=list)


@dataclass
class Chunk:
    """``batch`` holds up to ``chunk_size`` good records; ``first_record`` is the 0-based ordinal
    of its first record in the file. ``errors`` are the bad rows met since the previous chunk.
    The last chunk of a file may hold no records (only trailing errors)."""

    index: int
    batch: pa.RecordBatch
    errors: list[RowError]
    first_record: int

    @property
    def rows_read(self) -> int:
        """Good plus bad records this chunk accounts for."""
        return self.batch.num_rows + len(self.errors)


def _batches(data: pa.RecordBatch | pa.Table | None) -> list[pa.RecordBatch]:
    if data is None:
        return []
    if isinstance(data, pa.Table):
        return [b for b in data.to_batches() if b.num_rows]
    return [data] if data.num_rows else []


def rechunk(pieces: Iterable[Piece], chunk_size: int) -> Iterator[Chunk]:
    """Chunks of exactly ``chunk_size`` records (the last one, or one before a schema change,
    may be shorter). Errors travel with the next chunk emitted after they were met."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    buffered: list[pa.RecordBatch] = []
    rows = 0
    errors: list[RowError] = []
    index = 0
    first = 0
    schema: pa.Schema | None = None

    def emit(n: int) -> Chunk:
        nonlocal buffered, rows, errors, index, first
        whole = pa.concat_batches(buffered) if len(buffered) > 1 else buffered[0]
        out, rest = whole.slice(0, n), whole.slice(n)
        buffered = [rest] if rest.num_rows else []
        rows -= n
        chunk = Chunk(index, out, errors, first)
        errors, index, first = [], index + 1, first + n
        return chunk

    for piece in pieces:
        errors.extend(piece.errors)
        for batch in _batches(piece.batch):
            if schema is not None and rows and not batch.schema.equals(schema):
                yield emit(rows)
            schema = batch.schema
            buffered.append(batch)
            rows += batch.num_rows
            while rows >= chunk_size:
                yield emit(chunk_size)
    if rows:
        yield emit(rows)
    if errors or index == 0:
        empty = pa.RecordBatch.from_pylist([], schema=schema) if schema else pa.record_batch([])
        yield Chunk(index, empty, errors, first)
