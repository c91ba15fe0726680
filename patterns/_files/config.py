"""The configuration of a file-processing run: enums and the pydantic model."""

from __future__ import annotations

import os
from enum import Enum, StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fsm_actors.platform.io import ReadOptions
from fsm_actors.platform.io.storage import StorageOptions, storage_options_for
from patterns._records import make_validator


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
