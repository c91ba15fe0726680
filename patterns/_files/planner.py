"""From a config to a plan: the input files, their formats, the output layout (plain core).

Raises ``PatternError`` naming the file for inputs that do not exist or whose format cannot
be told, before any work starts.
"""

from __future__ import annotations

import glob
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from fsm_actors.io import (
    FormatError,
    ReadOptions,
    detect_compression,
    detect_format,
    normalize_compression,
    split_extensions,
)
from patterns._files.config import FileProcessingConfig, ProcessingMode
from patterns._files.parts import OutputSpec
from patterns.errors import PatternError

DEFAULT_CHUNK = 65536
SMALL_FILE = 8 << 20
BYTES_PER_WORKER = 16 << 20
IN_FLIGHT = {ProcessingMode.STREAM: 2, ProcessingMode.BATCH: 4, ProcessingMode.WHOLE: 1}


@dataclass(frozen=True)
class InputFile:
    """One input: its position in the run, path, format and version (size, mtime)."""

    index: int
    path: str
    format: str
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> dict[str, int]:
        return {"size": self.size, "mtime_ns": self.mtime_ns}


@dataclass
class Plan:
    """Everything the driver decides before starting workers."""

    run_id: str
    inputs: list[InputFile]
    read: ReadOptions
    output_kind: str  # none | single | per_file | partitioned
    output_path: Path | None
    outputs: dict[int, OutputSpec]
    staging: Path
    checkpoint_dir: Path
    error_file: Path
    chunk_size: int | None
    max_in_flight: int
    worker_read: set[int] = field(default_factory=set)

    def output_for(self, item: InputFile) -> Path:
        """The output file of one input in the ``per_file`` layout."""
        assert self.output_path is not None
        stems = [Path(i.path).name.split(".")[0] for i in self.inputs]
        stem = Path(item.path).name.split(".")[0]
        if stems.count(stem) > 1:
            stem = f"{item.index:04d}-{stem}"
        return self.output_path / f"{stem}{self.outputs[item.index].ext}"

    @property
    def output_format(self) -> str | None:
        """The output format (of the first input's output), ``None`` without output."""
        return self.outputs[0].format if self.outputs else None

    def workers(self, cluster_cpus: int, requested: int | None) -> int:
        """``requested``, else one per 16 MB of input (one per small file), capped by CPUs."""
        if requested:
            return requested
        units = sum(
            1 if i.index in self.worker_read else math.ceil(max(i.size, 1) / BYTES_PER_WORKER)
            for i in self.inputs
        )
        return max(1, min(cluster_cpus, units))


def resolve_inputs(spec: str | list[str]) -> list[str]:
    """Files named by a path, directory, glob or list of those, in a stable order."""
    found: list[str] = []
    for entry in [spec] if isinstance(spec, str) else spec:
        if any(ch in entry for ch in "*?["):
            found += sorted(p for p in glob.glob(entry, recursive=True) if os.path.isfile(p))
        elif os.path.isdir(entry):
            found += sorted(
                str(p)
                for p in Path(entry).rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(entry).parts)
            )
        elif os.path.isfile(entry):
            found.append(entry)
        else:
            raise PatternError(
                f"input {entry!r} does not exist: give an existing file, a directory or a glob",
                pattern="file_processing",
                file=entry,
            )
    if not found:
        raise PatternError(f"no input files match {spec!r}", pattern="file_processing")
    return list(dict.fromkeys(os.path.abspath(p) for p in found))


def make_plan(config: FileProcessingConfig, run_id: str) -> Plan:
    """The plan for ``config``; see the module docstring for errors."""
    inputs = []
    for index, path in enumerate(resolve_inputs(config.input_path)):
        fmt = config.format.value if config.format else _detect(path)
        if fmt == "binary":
            raise PatternError(
                f"{path}: BINARY files cannot be split into records; give format= one of "
                "csv, tsv, json, jsonl, xml, parquet, text, log",
                pattern="file_processing",
                file=path,
            )
        stat = os.stat(path)
        inputs.append(InputFile(index, path, fmt, stat.st_size, stat.st_mtime_ns))
    read = ReadOptions(
        format=None,
        encoding=config.encoding,
        csv_delimiter=config.csv_delimiter,
        csv_has_header=config.csv_has_header,
        skip_empty_lines=config.skip_empty_lines,
        text_field_name=config.text_field_name,
        log_patterns=tuple(config.log_config.get("patterns") or ()),
        xml_record_element=config.xml_record_element,
    )
    kind, out, outputs = _output(config, inputs)
    base = out if kind in ("per_file", "partitioned") else out.parent if out else Path.cwd()
    state_dir = Path(base).absolute() / ".fsm_actors"
    error_file = (
        Path(config.error_file)
        if config.error_file
        else (
            Path(f"{out}.errors.jsonl")
            if kind == "single"
            else out / "_errors.jsonl"
            if out is not None
            else Path.cwd() / f"file_processing-{run_id}.errors.jsonl"
        )
    )
    whole = config.mode is ProcessingMode.WHOLE
    chunk = None if whole else (config.chunk_size or DEFAULT_CHUNK)
    small = {i.index for i in inputs if i.size < SMALL_FILE} if len(inputs) > 1 else set()
    return Plan(
        run_id=run_id,
        inputs=inputs,
        read=read,
        output_kind=kind,
        output_path=out,
        outputs=outputs,
        staging=state_dir / f"run-{run_id}",
        checkpoint_dir=Path(config.checkpoint_dir)
        if config.checkpoint_dir
        else state_dir / "checkpoints",
        error_file=error_file.absolute(),
        chunk_size=chunk,
        max_in_flight=IN_FLIGHT[config.mode],
        worker_read={i.index for i in inputs} if whole else small,
    )


def _detect(path: str) -> str:
    try:
        return detect_format(path)
    except FormatError as exc:
        raise PatternError(str(exc), pattern="file_processing", file=path) from exc


def _output(
    config: FileProcessingConfig, inputs: list[InputFile]
) -> tuple[str, Path | None, dict[int, OutputSpec]]:
    """The layout, the output path and each input's ``OutputSpec``. In the per-file layout
    without ``output_format`` every output keeps its input's format and compression."""
    if config.output_path is None:
        return "none", None, {}
    out = Path(config.output_path).absolute()
    ext_format, ext_compression = split_extensions(out)
    compression = normalize_compression(config.compression) or ext_compression
    if config.partition_by:
        kind = "partitioned"
    elif out.is_dir() or config.output_path.endswith(("/", os.sep)):
        kind = "per_file"
    elif ext_format is None and len(inputs) > 1:
        kind = "per_file"
    else:
        kind = "single"
    fmt = config.output_format.value if config.output_format else None
    if fmt is None and kind == "single":
        fmt = ext_format
    if fmt == "binary":
        raise PatternError(
            "output_format BINARY cannot be written; pick a record format",
            pattern="file_processing",
        )
    if fmt is None and kind == "per_file":
        return (
            kind,
            out,
            {
                i.index: _spec(config, i.format, compression or detect_compression(i.path))
                for i in inputs
            },
        )
    if fmt is None:
        formats = {i.format for i in inputs}
        fmt = formats.pop() if len(formats) == 1 else "jsonl"
    spec = _spec(config, fmt, compression)
    return kind, out, {i.index: spec for i in inputs}


def _spec(config: FileProcessingConfig, fmt: str, compression: str | None) -> OutputSpec:
    delimiter = config.csv_delimiter if fmt == "csv" else None
    return OutputSpec(fmt, compression, delimiter)
