"""File processing on Ray actors: read any format, transform and filter, write exactly once.

Public API (the names of dataknobs-fsm's ``patterns.file_processing``)::

    from patterns.file_processing import FileProcessor, FileProcessingConfig, ProcessingMode
    processor = FileProcessor(FileProcessingConfig(input_path="data.csv",
                                                   output_path="processed.json"))
    result = await processor.process()      # or processor.run() from sync code

The result dict has ``lines_read, records_processed, records_written, errors, skipped,
files, duration, throughput, error_file`` (plus ``output_path``, ``run_id`` and
``aggregations`` when configured). Invariants: ``lines_read == records_processed + errors``
and ``records_processed == records_written + skipped``.

Transformations and filters are per-record callables on dicts, or batch-level: ``Vectorized``
/ ``@vectorized`` callables on ``pyarrow.Table``, pyarrow compute expressions as filters, and
``{column: expression}`` as transformations. Output and checkpoints go through the staging
directory ``.fsm_actors/`` next to the output; on a cluster, inputs and output must be on
storage every node sees.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Sequence
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fsm_actors.platform.event_loop import run_sync
from fsm_actors.platform.io import ReadOptions
from fsm_actors.platform.io.storage import StorageOptions, storage_options_for
from fsm_actors.platform.jobs import JobError, resolve_inputs
from fsm_actors.platform.jobs import JobProgress as FileProgress
from patterns._files.job import FileJob
from patterns._records import Vectorized, make_validator, vectorized
from patterns.errors import ErrorThresholdExceeded, PatternError

__all__ = [
    "ErrorThresholdExceeded",
    "FileFormat",
    "FileProcessingConfig",
    "FileProcessor",
    "FileProgress",
    "PatternError",
    "ProcessingMode",
    "Vectorized",
    "create_batch_file_processor",
    "create_csv_processor",
    "create_file_processor",
    "create_json_processor",
    "create_json_stream_processor",
    "create_log_analyzer",
    "create_log_processor",
    "vectorized",
]


# The configuration of a run: enums and the pydantic model.


class FileFormat(StrEnum):
    """File formats (values are the lower-case names; ``txt``, ``ndjson`` are accepted too)."""

    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"
    TSV = "tsv"
    XML = "xml"
    PARQUET = "parquet"
    TEXT = "text"
    LOG = "log"
    BINARY = "binary"


class ProcessingMode(StrEnum):
    """STREAM: constant memory, bounded read-ahead. BATCH: chunks of ``chunk_size`` with
    deeper read-ahead. WHOLE: each file as one in-memory table (small files; callable
    aggregations that need every record)."""

    STREAM = "stream"
    BATCH = "batch"
    WHOLE = "whole"


_FORMAT_ALIASES = {"txt": "text", "ndjson": "jsonl", "pq": "parquet", "tab": "tsv"}


def _format(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Enum):
        name = value.lower().lstrip(".")
        if name == "auto":
            return None
        return _FORMAT_ALIASES.get(name, name)
    return value


def _names(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class FileProcessingConfig(BaseModel):
    """What to read, what to do to each record, and where to write it.

    ``input_path``: a file, a directory (its files, recursively), a glob, or a list of those.
    ``output_path``: a file (every input joined in order), a directory (one output per input,
    or partitions with ``partition_by``), or ``None`` (count and aggregate only). Formats are
    detected from extensions and, failing that, content; ``compression`` (gzip/zstd; for
    Parquet the page codec) applies to the output, input compression is detected.
    ``chunk_size`` counts records (default 65,536; WHOLE: the whole file); ``workers`` (alias
    ``parallel_chunks``) is the number of worker actors (default: the cluster's CPUs, fewer
    for small inputs). ``error_threshold``: a count (>= 1) or a share (< 1) of rejected
    records past which the run stops; ``None`` never stops. ``checkpoint_id`` makes the run
    resumable after a crash. ``storage_options``: arguments of the object store's filesystem
    (``pyarrow.fs.S3FileSystem`` for ``s3://``: ``access_key``, ``secret_key``,
    ``endpoint_override``, ``region``, ...) for the stores the paths name; without them the
    store's environment decides (``AWS_*``). Never shown in reprs, logs, errors or results.
    ``shared_fs``: every node of the cluster sees the same local paths (no warning about
    local paths on a multi-node cluster).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", frozen=True)

    input_path: str | list[str]
    output_path: str | None = None
    format: FileFormat | None = None
    output_format: FileFormat | None = None
    mode: ProcessingMode = ProcessingMode.STREAM
    chunk_size: int | None = Field(default=None, ge=1)
    workers: int | None = Field(default=None, ge=1)
    parallel_chunks: int | None = Field(default=None, ge=1)
    encoding: str = "utf-8"
    compression: str | None = None
    validation_schema: Any = None
    transformations: list[Any] | None = None
    filters: list[Any] | None = None
    aggregations: dict[str, Any] | None = None
    group_by: list[str] | None = None
    partition_by: list[str] | None = None
    json_config: dict[str, Any] = Field(default_factory=dict)
    log_config: dict[str, Any] = Field(default_factory=dict)
    csv_delimiter: str | None = None
    csv_has_header: bool = True
    skip_empty_lines: bool = True
    text_field_name: str = "text"
    xml_record_element: str | None = None
    xml_root_element: str = "records"
    error_file: str | None = None
    error_threshold: float | None = Field(default=None, gt=0)
    checkpoint_id: str | None = None
    checkpoint_dir: str | None = None
    storage_options: StorageOptions | None = None
    shared_fs: bool | None = None

    @field_validator("input_path", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [os.fspath(v) for v in value]
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("output_path", "error_file", "checkpoint_dir", mode="before")
    @classmethod
    def _path(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("format", "output_format", mode="before")
    @classmethod
    def _format_alias(cls, value: Any) -> Any:
        return _format(value)

    @field_validator("validation_schema")
    @classmethod
    def _schema_compiles(cls, value: Any) -> Any:
        make_validator(value)  # a malformed JSON schema fails here, not in every worker
        return value

    @field_validator("group_by", "partition_by", mode="before")
    @classmethod
    def _name_list(cls, value: Any) -> Any:
        return _names(value)

    @field_validator("storage_options", mode="before")
    @classmethod
    def _options_mapping(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict | StorageOptions):
            raise ValueError("storage_options must be a mapping of the store's filesystem "
                             f"arguments, got {type(value).__name__}")
        return StorageOptions(value) if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _options_for_paths(self) -> FileProcessingConfig:
        """``storage_options`` registered for the stores of every path the run uses."""
        if self.storage_options is not None:
            inputs = [self.input_path] if isinstance(self.input_path, str) else self.input_path
            paths = [*inputs, self.output_path, self.error_file, self.checkpoint_dir]
            scoped = storage_options_for(self.storage_options, [p for p in paths if p])
            object.__setattr__(self, "storage_options", scoped)
        return self

    @property
    def worker_count(self) -> int | None:
        """``workers``, else ``parallel_chunks``, else ``None`` (automatic)."""
        return self.workers or self.parallel_chunks

    def read_options(self, csv_block_size: int | None = None) -> ReadOptions:
        """How to read the inputs: the one ``ReadOptions`` the job, its plan and every
        worker's reader use unchanged (``csv_block_size``: a pipeline file's
        ``options.buffer_size``)."""
        extra = {} if csv_block_size is None else {"csv_block_size": csv_block_size}
        return ReadOptions(
            format=self.format.value if self.format else None,
            encoding=self.encoding,
            csv_delimiter=self.csv_delimiter,
            csv_has_header=self.csv_has_header,
            skip_empty_lines=self.skip_empty_lines,
            text_field_name=self.text_field_name,
            log_patterns=tuple(self.log_config.get("patterns") or ()),
            xml_record_element=self.xml_record_element,
            storage_options=self.storage_options,
            **extra,
        )


ProgressCallback = Callable[[FileProgress], Any]


class FileProcessor:
    """Runs one ``FileProcessingConfig`` (a config object, or a dict of its fields).

    ``address`` picks the Ray cluster (default: ``runtime.ensure_ray``'s rules). One async
    implementation; ``run`` is its synchronous form. Raises ``PatternError`` for bad inputs
    or config (naming the file), ``ErrorThresholdExceeded`` past ``error_threshold``.
    """

    def __init__(
        self, config: FileProcessingConfig | dict[str, Any], *, address: str | None = None
    ) -> None:
        self.config = (
            config if isinstance(config, FileProcessingConfig) else FileProcessingConfig(**config)
        )
        self.address = address

    @property
    def resolved_format(self) -> FileFormat:
        """The input format (of the first input when there are several)."""
        return FileFormat(self._job().plan.inputs[0].format)

    @property
    def resolved_output_format(self) -> FileFormat | None:
        """The output format, ``None`` without output."""
        fmt = self._job().plan.output_format
        return FileFormat(fmt) if fmt else None

    def _job(self, checkpoint_id: str | None = None, on_progress=None) -> FileJob:
        return FileJob(
            self.config, checkpoint_id=checkpoint_id, on_progress=on_progress, address=self.address
        )

    async def process(
        self, checkpoint_id: str | None = None, on_progress: ProgressCallback | None = None
    ) -> dict[str, Any]:
        """Process every input; with ``checkpoint_id`` (or the config's) resume a crashed run
        without losing or duplicating records. ``on_progress`` gets a ``FileProgress``."""
        return await self._job(checkpoint_id, on_progress).run()

    def run(
        self, checkpoint_id: str | None = None, on_progress: ProgressCallback | None = None
    ) -> dict[str, Any]:
        """Synchronous ``process``."""
        from fsm_actors.platform import runtime

        # connect on the caller's thread: Ray installs its signal handlers only there
        runtime.ensure_ray(self.address)
        return run_sync(self.process(checkpoint_id, on_progress))

    def redrive(self, error_file: str | None = None) -> dict[str, Any]:
        """Re-run exactly the records a finished run rejected (its error file, or
        ``error_file``) with this config: those that now pass are added to the output once,
        those that still fail make the new error file; see ``_redrive_run``."""
        from fsm_actors.platform import runtime

        runtime.ensure_ray(self.address)
        return run_sync(_redrive_run(self.config, error_file=error_file, address=self.address))


async def _redrive_run(
    config: FileProcessingConfig,
    *,
    error_file: str | Path | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """Redrive the run of ``config`` (its error file, or ``error_file``); returns
    ``{redriven, succeeded, still_failing, not_redrivable, output_path, error_file}``.

    The run's error file is turned back into records (``fsm_actors.redrive``), those records
    go through the same config (its current filters, transformations and validation) as a job
    of their own, and the ones that now pass are added to the run's single output file,
    atomically and exactly once; the ones that still fail make the new error file."""
    from fsm_actors.redrive import RedriveError, csv_header, redrive

    plan = FileJob(config, address=address).plan
    if plan.output_kind != "single" or plan.output_path is None:
        raise PatternError(
            "redrive adds records to one output file; this run writes "
            f"{'no output' if plan.output_path is None else 'a folder of outputs'}",
            pattern="file_processing",
        )
    source = plan.inputs[0]
    delimiter = config.csv_delimiter or ("\t" if source.format == "tsv" else ",")
    header = (
        csv_header(source.path, delimiter, config.encoding or "utf-8")
        if source.format in ("csv", "tsv") and config.csv_has_header else None
    )
    fmt = plan.output_format or "jsonl"

    async def run(records: Path, out: Path, errors: Path, run_id: str) -> dict[str, Any]:
        again = config.model_copy(update={
            "input_path": str(records), "output_path": str(out), "format": FileFormat.JSONL,
            "output_format": FileFormat(fmt), "error_file": str(errors),
            "checkpoint_id": run_id, "checkpoint_dir": None, "compression": None,
            "partition_by": None, "error_threshold": None,
        })
        return await FileJob(again, checkpoint_id=run_id, address=address).run()

    try:
        return await redrive(
            plan.output_path, error_file or plan.error_file, run, output_format=fmt,
            input_format=source.format, csv_delimiter=delimiter, header=header,
            compression=config.compression,
        )
    except RedriveError as exc:
        raise PatternError(exc.message, pattern="file_processing") from None


def _make(**fields: Any) -> FileProcessor:
    address = fields.pop("address", None)
    return FileProcessor(
        FileProcessingConfig(**{k: v for k, v in fields.items() if v is not None}),
        address=address,
    )


def create_csv_processor(
    input_file: str,
    output_file: str | None = None,
    transformations: list[Any] | None = None,
    filters: list[Any] | None = None,
    **options: Any,
) -> FileProcessor:
    """CSV in (typed values), STREAM mode; output format from ``output_file``'s extension."""
    options.setdefault("mode", ProcessingMode.STREAM)
    return _make(
        input_path=input_file,
        output_path=output_file,
        format=FileFormat.CSV,
        transformations=transformations,
        filters=filters,
        **options,
    )


def create_json_processor(
    input_path: str,
    output_path: str | None,
    pretty_print: bool = False,
    array_processing: bool = False,
    **options: Any,
) -> FileProcessor:
    """JSON (array or lines, detected) in WHOLE mode. Arrays are always read element by
    element; ``pretty_print`` and ``array_processing`` are kept in ``json_config``."""
    options.setdefault("mode", ProcessingMode.WHOLE)
    json_config = {"pretty_print": pretty_print, "array_processing": array_processing}
    return _make(input_path=input_path, output_path=output_path, json_config=json_config, **options)


def create_json_stream_processor(
    input_file: str,
    output_file: str | None = None,
    validation_schema: Any = None,
    chunk_size: int | None = None,
    **options: Any,
) -> FileProcessor:
    """JSON Lines (or JSON array) in STREAM mode; invalid records go to the error file."""
    options.setdefault("mode", ProcessingMode.STREAM)
    return _make(
        input_path=input_file,
        output_path=output_file,
        validation_schema=validation_schema,
        chunk_size=chunk_size,
        **options,
    )


TIMESTAMP_PATTERN = (
    r"^(?P<timestamp>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
    r"\s+(?:\[?(?P<level>TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|CRITICAL|FATAL)\]?\s+)?"
    r"(?P<message>.*)$"
)
ERROR_LINES = r"(?i)\b(error|critical|fatal|exception|traceback)\b"


def create_log_analyzer(
    log_file: str,
    output_file: str | None = None,
    patterns: list[str] | None = None,
    aggregations: dict[str, Any] | None = None,
    **options: Any,
) -> FileProcessor:
    """Log lines split by regex named groups (first matching pattern wins) and aggregated.

    Mergeable aggregations (``"count"``, ``"max:status"``...) run in STREAM mode; callable
    aggregations need every record, so they switch the run to WHOLE mode.
    """
    needs_all = any(callable(a) for a in (aggregations or {}).values())
    options.setdefault("mode", ProcessingMode.WHOLE if needs_all else ProcessingMode.STREAM)
    return _make(
        input_path=log_file,
        output_path=output_file,
        format=FileFormat.LOG,
        log_config={"patterns": list(patterns or [])},
        aggregations=aggregations,
        **options,
    )


def create_log_processor(
    input_path: str,
    output_path: str | None,
    parse_timestamps: bool = False,
    extract_errors: bool = False,
    **options: Any,
) -> FileProcessor:
    """Log lines to records. ``parse_timestamps`` splits a leading ISO timestamp, an
    optional level and the message into fields; ``extract_errors`` keeps only lines that
    mention an error (error, critical, fatal, exception, traceback)."""
    options.setdefault("mode", ProcessingMode.STREAM)
    patterns = [TIMESTAMP_PATTERN] if parse_timestamps else []
    field = options.get("text_field_name", "text")
    filters = list(options.pop("filters", None) or [])
    if extract_errors:
        filters.insert(0, pc.match_substring_regex(pc.field(field), ERROR_LINES))
    return _make(
        input_path=input_path,
        output_path=output_path,
        format=FileFormat.LOG,
        log_config={
            "patterns": patterns,
            "parse_timestamps": parse_timestamps,
            "extract_errors": extract_errors,
        },
        filters=filters or None,
        **options,
    )


def create_batch_file_processor(
    input_paths: Sequence[str],
    output_path: str | None,
    patterns: list[str] | None = None,
    batch_size: int | None = None,
    **options: Any,
) -> FileProcessor:
    """Many files in BATCH mode, spread across the worker actors. ``patterns`` are file-name
    globs (``["*.csv", "*.json"]``) that select files under directory inputs; ``batch_size``
    is the chunk size in records. A directory ``output_path`` gets one output per input."""
    options.setdefault("mode", ProcessingMode.BATCH)
    return _make(
        input_path=_select(list(input_paths), patterns),
        output_path=output_path,
        chunk_size=batch_size,
        **options,
    )


def create_file_processor(
    input_path: str,
    output_path: str | None,
    pattern: str = "*",
    mode: ProcessingMode = ProcessingMode.WHOLE,
    transformations: list[Any] | None = None,
    **options: Any,
) -> FileProcessor:
    """Generic processor; ``pattern`` selects files when ``input_path`` is a directory."""
    return _make(
        input_path=_select([input_path], [pattern]),
        output_path=output_path,
        mode=mode,
        transformations=transformations,
        **options,
    )


def _select(paths: list[str], patterns: list[str] | None) -> list[str]:
    if not patterns or patterns == ["*"]:
        return paths
    selected = []
    for path in paths:
        if os.path.isdir(path):
            try:
                found = resolve_inputs(path)
            except JobError as exc:
                raise PatternError(exc.message, pattern="file_processing", file=exc.file) from None
            selected += [
                f for f in found if any(fnmatch.fnmatch(os.path.basename(f), p) for p in patterns)
            ]
        else:
            selected.append(path)
    if not selected:
        raise PatternError(f"no files under {paths} match {patterns}", pattern="file_processing")
    return selected
