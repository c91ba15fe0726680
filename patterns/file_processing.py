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
from typing import Any

import pyarrow.compute as pc

from fsm_actors.platform.event_loop import run_sync
from fsm_actors.platform.jobs import JobError, resolve_inputs
from fsm_actors.platform.jobs import JobProgress as FileProgress
from patterns._files.config import FileFormat, FileProcessingConfig, ProcessingMode
from patterns._files.job import FileJob
from patterns._records import Vectorized, vectorized
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
        those that still fail make the new error file; see ``patterns._files.redrive``."""
        from fsm_actors.platform import runtime
        from patterns._files.redrive import redrive_run

        runtime.ensure_ray(self.address)
        return run_sync(redrive_run(self.config, error_file=error_file, address=self.address))


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
