"""The step of every file job: run a chunk through a record stage and stage its parts.

Plain core. ``FileStep.run`` takes one chunk (an Arrow batch or a list of dicts, with the
parse errors met while reading it), applies the job's ``RecordStage`` (the file-processing
functions, or an FSM machine), writes the chunk's output, error and side parts to the
staging directory (fsynced, under names fixed by file and batch number) and returns small
counts. It is idempotent per (file, batch): the pool may send a chunk again after an actor
died. A task without a batch number reads the whole file on the worker and does the same
per chunk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import pyarrow as pa

from fsm_actors.platform.io import Chunk, FormatError, ReadOptions, RowError, iter_chunks
from fsm_actors.platform.jobs import progress
from fsm_actors.platform.jobs.model import StepContext, Task, TaskResult
from fsm_actors.platform.jobs.parts import OutputSpec, Staging, split_partitions

Batch = pa.Table | list[dict[str, Any]]


@dataclass
class StageOutput:
    """What a stage made of one batch: ``table`` (Arrow) or ``records`` (dicts) to write,
    the rows it was given, the rows it dropped on purpose, and the rejected ones."""

    table: pa.Table | None
    rows_in: int
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    records: list[dict[str, Any]] | None = None

    @property
    def rows_out(self) -> int:
        if self.records is not None:
            return len(self.records)
        return self.table.num_rows if self.table is not None else 0


class RecordStage(Protocol):
    """The per-record work of a file job, shipped to each worker (picklable).

    ``wants_records``: the stage takes dicts exactly as the input held them (JSON inputs are
    then read as dicts, not through Arrow). ``side(out, file_index, batch)`` may return a
    partial aggregate table and/or a small dict (whole-file results) for the driver."""

    wants_records: bool

    def apply(self, batch: Batch, file: str, first_record: int) -> StageOutput: ...


@dataclass
class FileStepSpec:
    """Everything a file worker needs, shipped once when the actor starts: ``read`` is the
    job's read options as they are (text and XML output use its ``text_field_name`` and
    ``xml_record_element`` too)."""

    read: ReadOptions
    outputs: dict[int, OutputSpec]
    stage: Any
    partition_by: Sequence[str] = ()

    def build(self, context: StepContext) -> FileStep:
        assert context.staging is not None
        return FileStep(self, Staging(context.staging))


class FileStep:
    """Runs chunks through the stage and writes their parts. Not thread-safe."""

    def __init__(self, spec: FileStepSpec, staging: Staging) -> None:
        self.spec = spec
        self.staging = staging
        self.stage = spec.stage
        opener = getattr(self.stage, "open", None)
        if callable(opener):
            opener()

    def run(self, task: Task) -> TaskResult:
        """One chunk (``task.seq`` set, batch in ``task.payload``) or a whole file."""
        index = task.meta["file_index"]
        path = task.meta.get("path", task.partition)
        if task.seq is not None:
            counts, side = self._process(
                index, path, task.seq, task.first_record, task.payload,
                list(task.meta.get("errors", ())), task.meta.get("lines"),
            )
            sides = {task.seq: side} if side is not None else None
            return TaskResult(task.partition, {task.seq: counts}, side=sides)
        size = task.meta.get("chunk_size") or (1 << 62)
        skip = task.meta.get("skip", frozenset())
        read = replace(self.spec.read, format=task.meta["format"])
        batches: dict[int, dict[str, int]] = {}
        sides: dict[int, Any] = {}
        total = 0
        if "range" in task.meta:
            chunks = range_chunks(path, read, size, task.meta["range"], task.meta["types"])
        else:
            chunks = safe_chunks(path, read, size, self._as_records(read.format))
        for chunk in chunks:
            total = chunk.index + 1
            if chunk.index in skip:
                continue
            counts, side = self._process(
                index, path, chunk.index, chunk.first_record, chunk.batch, chunk.errors,
                chunk.lines,
            )
            batches[chunk.index] = counts
            if side is not None:
                sides[chunk.index] = side
        return TaskResult(task.partition, batches, total_batches=total, side=sides or None)

    def close(self) -> None:
        closer = getattr(self.stage, "close", None)
        if callable(closer):
            closer()

    def _as_records(self, fmt: str | None) -> bool:
        return bool(getattr(self.stage, "wants_records", False)) and fmt in ("json", "jsonl")

    def _process(
        self,
        file_index: int,
        file: str,
        batch_no: int,
        first_record: int,
        batch: Any,
        errors: list[RowError],
        lines: pa.Array | None = None,
    ) -> tuple[dict[str, int], Any]:
        spec = self.spec
        parse_errors = len(errors)
        if isinstance(batch, pa.RecordBatch):
            batch = pa.Table.from_batches([batch])
        rows_in = len(batch) if isinstance(batch, list) else batch.num_rows
        result: StageOutput = self.stage.apply(batch, file, first_record)
        errors = errors + _with_lines(result.errors, first_record, lines)
        written = result.rows_out
        if file_index in spec.outputs and written:
            self._write(file_index, batch_no, result)
        side = None
        side_fn = getattr(self.stage, "side", None)
        if callable(side_fn):
            partial, side = side_fn(result)
            if partial is not None:
                self.staging.write_partial(file_index, batch_no, partial)
        if errors:
            self.staging.write_errors(file_index, batch_no, errors)
        counts = {
            "read": rows_in + parse_errors,
            "processed": rows_in - len(result.errors),
            "written": written,
            "skipped": result.skipped,
            "errors": len(errors),
        }
        progress.batch_done(counts, getattr(result, "counts", None))
        # Hand freed Arrow buffers back to the OS so a long stream keeps a flat footprint.
        pa.default_memory_pool().release_unused()
        return counts, side

    def _write(self, file_index: int, batch_no: int, result: StageOutput) -> None:
        spec = self.spec
        output = spec.outputs[file_index]
        if result.records is not None and output.format == "jsonl" and not spec.partition_by:
            self.staging.write_records(
                file_index, batch_no, result.records, output.ext, compression=output.compression
            )
            return
        table = result.table
        if table is None:
            from fsm_actors.platform.io import records_to_table

            table = records_to_table(result.records or [])
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
                text_field_name=spec.read.text_field_name,
                xml_record=spec.read.xml_record_element or "record",
            )


def _with_lines(
    errors: list[RowError], first_record: int, lines: pa.Array | None
) -> list[RowError]:
    """Rejected records with the file line the reader gave their record, when it gave one."""
    if lines is None or not errors:
        return errors
    out = []
    for error in errors:
        at = (error.record or 0) - 1 - first_record
        if error.line is None and error.record is not None and 0 <= at < len(lines):
            error = replace(error, line=lines[at].as_py())
        out.append(error)
    return out


def safe_chunks(
    path: str, read: ReadOptions, size: int, as_records: bool = False
) -> Iterator[Chunk]:
    """Chunks of a file; a file that turns out unreadable ends with one error chunk.

    ``as_records``: JSON inputs come as lists of dicts, exactly as written in the file."""
    index = 0
    try:
        chunks = iter_record_chunks(path, read, size) if as_records else iter_chunks(
            path, read, size
        )
        for chunk in chunks:
            index = chunk.index + 1
            yield chunk
    except (FormatError, OSError) as exc:
        yield Chunk(index, pa.record_batch([]), [RowError(path, _reason(exc))], 0)


def range_chunks(
    path: str, read: ReadOptions, size: int, byte_range: tuple[int, int, int], types: Any
) -> Iterator[Chunk]:
    """Chunks of one byte range of a CSV file (see ``fsm_actors.platform.io.csv_ranges``)."""
    from fsm_actors.platform.io import read_csv_range

    start, end, first_line = byte_range
    column_types, multiline = types
    index = 0
    try:
        for chunk in read_csv_range(
            path, start, end, read, first_line=first_line, types=column_types,
            multiline=multiline, chunk_size=size,
        ):
            index = chunk.index + 1
            yield chunk
    except (FormatError, OSError) as exc:
        yield Chunk(index, pa.record_batch([]), [RowError(path, _reason(exc))], 0)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, OSError) and not isinstance(exc, FormatError):
        return f"the file cannot be read to its end ({text}); records before it were kept"
    return text


def iter_record_chunks(path: str, read: ReadOptions, size: int) -> Iterator[Chunk]:
    """JSON Lines / JSON array input as chunks of ``size`` dicts (no Arrow round trip, so
    missing keys stay missing and mixed types stay mixed); bad lines become ``RowError``s."""
    from fsm_actors.platform.io.json_records import iter_json_records

    index = first = 0
    records: list[dict[str, Any]] = []
    errors: list[RowError] = []
    for item in iter_json_records(path, read):
        if isinstance(item, RowError):
            errors.append(item)
            continue
        records.append(item)
        if len(records) >= size:
            yield Chunk(index, records, errors, first)  # type: ignore[arg-type]
            index, first = index + 1, first + len(records)
            records, errors = [], []
    if records or errors or index == 0:
        yield Chunk(index, records, errors, first)  # type: ignore[arg-type]
