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
import pyarrow.compute as pc

from fsm_actors.platform.io.errors import RowError

_SEQUENCE = pa.array([0], pa.int64())


def consecutive(first: int, n: int) -> pa.Array:
    """``first, first + 1, ..., first + n - 1`` as int64 (a reader's line numbers), by Arrow
    kernels over one shared ``0..`` sequence (``pa.array(range(...))`` walks a Python range:
    about a millisecond per 10,000 records)."""
    global _SEQUENCE
    sequence = _SEQUENCE
    while len(sequence) < n:
        sequence = pa.concat_arrays([sequence, pc.add(sequence, len(sequence))])
    _SEQUENCE = sequence
    return pc.add(sequence.slice(0, n), pa.scalar(first, pa.int64()))


@dataclass
class Piece:
    """What a format reader yields: good records as Arrow, and the rows it rejected."""

    batch: pa.RecordBatch | pa.Table | None
    errors: list[RowError] = field(default_factory=list)
    #: the file line of each good record, when the reader knows it (CSV)
    lines: pa.Array | None = None


@dataclass
class Chunk:
    """``batch`` holds up to ``chunk_size`` good records; ``first_record`` is the 0-based ordinal
    of its first record in the file. ``errors`` are the bad rows met since the previous chunk.
    The last chunk of a file may hold no records (only trailing errors)."""

    index: int
    batch: pa.RecordBatch
    errors: list[RowError]
    first_record: int
    #: the file line of each record of ``batch`` when the reader knows it (CSV), else None
    lines: pa.Array | None = None

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

    lines: list[pa.Array] | None = []  # None once a piece came without line numbers

    def emit(n: int) -> Chunk:
        nonlocal buffered, rows, errors, index, first, lines
        whole = pa.concat_batches(buffered) if len(buffered) > 1 else buffered[0]
        out, rest = whole.slice(0, n), whole.slice(n)
        buffered = [rest] if rest.num_rows else []
        out_lines = None
        if lines is not None:
            joined = pa.concat_arrays(lines) if len(lines) != 1 else lines[0]
            out_lines, rest_lines = joined.slice(0, n), joined.slice(n)
            lines = [rest_lines] if len(rest_lines) else []
        rows -= n
        chunk = Chunk(index, out, errors, first, out_lines)
        errors, index, first = [], index + 1, first + n
        return chunk

    for piece in pieces:
        errors.extend(piece.errors)
        batches = _batches(piece.batch)
        if lines is not None and piece.lines is None and batches:
            lines = None
        offset = 0
        for batch in batches:
            if schema is not None and rows and not batch.schema.equals(schema):
                yield emit(rows)
            schema = batch.schema
            buffered.append(batch)
            if lines is not None:
                lines.append(piece.lines.slice(offset, batch.num_rows))  # type: ignore[union-attr]
            offset += batch.num_rows
            rows += batch.num_rows
            while rows >= chunk_size:
                yield emit(chunk_size)
    if rows:
        yield emit(rows)
    if errors or index == 0:
        empty = pa.RecordBatch.from_pylist([], schema=schema) if schema else pa.record_batch([])
        yield Chunk(index, empty, errors, first)
