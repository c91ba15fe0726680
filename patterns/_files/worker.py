"""The file-processing worker: a plain core and the thin Ray actor that hosts it.

``FileWorkerCore.process_chunk`` takes one chunk (the Arrow batch plus the parse errors met
while reading it), runs the pipeline, writes the chunk's parts to the staging directory and
returns small ``BatchStats``. It is idempotent per (file, batch): the actor pool may send the
same chunk again after an actor died. ``process_file`` reads a whole input file on the worker
(many small files, WHOLE mode) and does the same per chunk.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import ray

from fsm_actors.io import Chunk, FormatError, ReadOptions, RowError, iter_chunks
from patterns._files.aggregate import AggSpec, partial
from patterns._files.functions import BatchPipeline
from patterns._files.parts import OutputSpec, Staging, split_partitions
from patterns._files.validation import make_validator


@dataclass
class WorkerSpec:
    """Everything a worker needs, shipped once when the actor starts."""

    staging: str
    read: ReadOptions
    outputs: dict[int, OutputSpec]
    text_field_name: str = "text"
    xml_record: str = "record"
    partition_by: Sequence[str] = ()
    filters: Sequence[Any] = ()
    transformations: Sequence[Any] = ()
    validation_schema: Any = None
    agg_specs: Sequence[AggSpec] = ()
    group_by: Sequence[str] = ()
    whole_aggregations: dict[str, Callable[[list[dict]], Any]] = field(default_factory=dict)


@dataclass
class ChunkTask:
    """One chunk read by the driver; the batch itself travels as an ObjectRef next to it."""

    file_index: int
    file: str
    batch: int
    first_record: int
    errors: list[RowError]


@dataclass
class FileTask:
    """One input file for a worker to read itself, in chunks of ``chunk_size`` (``None``:
    the whole file as one chunk)."""

    file_index: int
    file: str
    format: str
    chunk_size: int | None
    skip_batches: frozenset[int] = frozenset()


@dataclass
class BatchStats:
    """What one chunk did; ``rows_read`` = good + malformed input records."""

    file_index: int
    batch: int
    rows_read: int = 0
    processed: int = 0
    written: int = 0
    skipped: int = 0
    errors: int = 0
    whole_aggregations: dict[str, Any] | None = None

    def counts(self) -> dict[str, int]:
        return {
            "rows_read": self.rows_read,
            "processed": self.processed,
            "written": self.written,
            "skipped": self.skipped,
            "errors": self.errors,
        }


@dataclass
class FileResult:
    """What a ``FileTask`` did: per-chunk stats and the file's number of chunks."""

    file_index: int
    batches: list[BatchStats]
    total_batches: int


class FileWorkerCore:
    """Runs chunks through the pipeline and writes their parts. Not thread-safe."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.staging = Staging(spec.staging)
        self.pipeline = BatchPipeline(
            spec.filters, spec.transformations, make_validator(spec.validation_schema)
        )
        self.batches_done = 0
        self.rows_done = 0
        self.errors = 0
        self.current: str | None = None

    def process_chunk(self, task: ChunkTask, batch: pa.RecordBatch) -> BatchStats:
        """Process one chunk; safe to call again for the same chunk."""
        self.current = f"{os.path.basename(task.file)}#{task.batch}"
        try:
            return self._process(
                task.file_index, task.file, task.batch, task.first_record, batch, list(task.errors)
            )
        finally:
            self.current = None

    def process_file(self, task: FileTask) -> FileResult:
        """Read ``task.file`` here and process each chunk not in ``skip_batches``."""
        size = task.chunk_size or (1 << 62)
        stats: list[BatchStats] = []
        total = 0
        self.current = os.path.basename(task.file)
        try:
            for chunk in safe_chunks(task.file, replace(self.spec.read, format=task.format), size):
                total = chunk.index + 1
                if chunk.index in task.skip_batches:
                    continue
                stats.append(
                    self._process(
                        task.file_index,
                        task.file,
                        chunk.index,
                        chunk.first_record,
                        chunk.batch,
                        chunk.errors,
                    )
                )
        finally:
            self.current = None
        return FileResult(task.file_index, stats, total)

    def _process(
        self,
        file_index: int,
        file: str,
        batch_no: int,
        first_record: int,
        batch: pa.RecordBatch,
        errors: list[RowError],
    ) -> BatchStats:
        spec = self.spec
        parse_errors = len(errors)
        table = pa.Table.from_batches([batch])
        result = self.pipeline.apply(table, file, first_record)
        errors = errors + result.errors
        out = result.table
        if file_index in spec.outputs and out.num_rows:
            self._write(file_index, batch_no, out)
        if spec.agg_specs:
            self.staging.write_partial(
                file_index, batch_no, partial(out, spec.agg_specs, spec.group_by)
            )
        if errors:
            self.staging.write_errors(file_index, batch_no, errors)
        whole = None
        if spec.whole_aggregations:
            records = out.to_pylist()
            whole = {name: fn(records) for name, fn in spec.whole_aggregations.items()}
        stats = BatchStats(
            file_index,
            batch_no,
            rows_read=batch.num_rows + parse_errors,
            processed=batch.num_rows - len(result.errors),
            written=out.num_rows,
            skipped=result.skipped,
            errors=len(errors),
            whole_aggregations=whole,
        )
        self.batches_done += 1
        self.rows_done += batch.num_rows
        self.errors += len(errors)
        # Hand freed Arrow buffers back to the OS so a long stream keeps a flat footprint.
        pa.default_memory_pool().release_unused()
        return stats

    def _write(self, file_index: int, batch_no: int, table: pa.Table) -> None:
        spec = self.spec
        output = spec.outputs[file_index]
        pieces = (
            split_partitions(table, spec.partition_by) if spec.partition_by else [(None, table)]
        )
        for partition, piece in pieces:
            self.staging.write_data(
                file_index,
                batch_no,
                piece,
                output.format,
                output.ext,
                partition=partition,
                compression=output.compression,
                csv_delimiter=output.csv_delimiter,
                text_field_name=spec.text_field_name,
                xml_record=spec.xml_record,
            )


def safe_chunks(path: str, read: ReadOptions, size: int) -> Iterator[Chunk]:
    """Chunks of a file; a file that turns out unreadable ends with one error chunk."""
    index = 0
    try:
        for chunk in iter_chunks(path, read, size):
            index = chunk.index + 1
            yield chunk
    except FormatError as exc:
        yield Chunk(index, pa.record_batch([]), [RowError(path, str(exc))], 0)


class FileWorker:
    """Ray actor shell around ``FileWorkerCore``; its repr shows live progress."""

    def __init__(self, spec: WorkerSpec, name: str) -> None:
        self.core = FileWorkerCore(spec)
        self.name = name

    def process_chunk(self, task: ChunkTask, batch: pa.RecordBatch) -> BatchStats:
        return self.core.process_chunk(task, batch)

    def process_file(self, task: FileTask) -> FileResult:
        return self.core.process_file(task)

    def __repr__(self) -> str:
        core = self.core
        doing = f", at {core.current}" if core.current else ""
        return (
            f"FileWorker({self.name}: {core.batches_done} batches, {core.rows_done} rows, "
            f"{core.errors} errors{doing})"
        )


RemoteFileWorker = ray.remote(FileWorker)
