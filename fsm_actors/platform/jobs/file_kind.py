"""File jobs as a job kind: the plan of the inputs and outputs, and the kind that runs it.

Plain core (the driver runs it). ``FileJobSpec`` is what any file job needs (the
file-processing pattern and the FSM stream both build one); ``make_plan`` turns it into a
``Plan`` (the input files, their formats, byte ranges of a large CSV, the output layout) and
raises ``JobError`` naming the file for inputs that do not exist or whose format cannot be
told, before any work starts. ``FileJobKind`` runs a plan: it reads chunks on the driver (or
has workers read whole small files or byte ranges), ships them to ``FileStep``s, joins
single-file output while the run goes (``Joiner``) and commits per-file and partitioned
outputs at the end, always through a temp file and a rename. The file-processing pattern and
the FSM stream are both this kind with another stage.
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from fsm_actors.platform.io import (
    FormatError,
    ReadOptions,
    detect_compression,
    detect_format,
    normalize_compression,
    split_extensions,
    storage,
)
from fsm_actors.platform.jobs.errors import JobError
from fsm_actors.platform.jobs.file_step import FileStepSpec, safe_chunks
from fsm_actors.platform.jobs.model import DoneSet, JobKind, PartitionTotal, Task, TaskResult
from fsm_actors.platform.jobs.parts import Joiner, OutputSpec, Staging, commit

# The plan: what to read, where to write, how to cut it.

DEFAULT_CHUNK = 65536
#: the partition name of records given as an iterable
RECORDS_INPUT = "<records>"
SMALL_FILE = 8 << 20
BYTES_PER_WORKER = 16 << 20
#: an uncompressed CSV at least this big is parsed by the workers, one byte range each
RANGE_FILE = 32 << 20


@dataclass(frozen=True)
class FileJobSpec:
    """The file side of a job: what to read, where to write, how to cut it.

    ``output_path``: a file (every input joined in order), a directory (one output per
    input, or partitions with ``partition_by``), or ``None`` (no output). ``whole``: each
    input is one chunk read by a worker. ``in_flight``: calls queued per worker. The CSV
    delimiter and XML record element of the output are those of ``read``.
    """

    input_path: str | list[str]
    output_path: str | None = None
    #: how to read the inputs (``read.format``: the input format, ``None`` detects it per
    #: file); handed unchanged to the plan and the workers
    read: ReadOptions = field(default_factory=ReadOptions)
    output_format: str | None = None
    compression: str | None = None
    partition_by: tuple[str, ...] = ()
    chunk_size: int | None = None
    whole: bool = False
    in_flight: int = 2
    xml_root_element: str = "records"
    error_file: str | None = None
    checkpoint_dir: str | None = None
    workers: int | None = None
    pattern: str = "file_processing"
    #: records from an iterable instead of files (``input_path`` is then only a label)
    records: object = None
    #: large uncompressed CSVs are cut into byte ranges that workers parse themselves
    byte_ranges: bool = True
    #: every node sees the same local paths (no local-paths warning on a cluster)
    shared_fs: bool | None = None


@dataclass(frozen=True)
class InputFile:
    """One input: its position in the run, path, format and version (size, mtime)."""

    index: int
    path: str
    format: str
    size: int
    mtime_ns: int
    #: a byte range ``(start, end, first line)`` of a large CSV, read by one worker
    byte_range: tuple[int, int, int] | None = None

    @property
    def fingerprint(self) -> dict[str, int]:
        return {"size": self.size, "mtime_ns": self.mtime_ns}

    @property
    def key(self) -> str:
        """The partition id: the path, or ``path@start-end`` for a byte range."""
        if self.byte_range is None:
            return self.path
        return f"{self.path}@{self.byte_range[0]}-{self.byte_range[1]}"


@dataclass
class Plan:
    """Everything the driver decides before starting workers."""

    run_id: str
    inputs: list[InputFile]
    read: ReadOptions
    output_kind: str  # none | single | per_file | partitioned
    #: where outputs are joined: the output itself, or for an object-store output a local
    #: temp directory on the driver (uploaded to ``output_uri`` at the commit)
    output_path: Path | None
    outputs: dict[int, OutputSpec]
    #: staging, checkpoints and the error file: local ``Path``s, or URIs beside a remote
    #: output (so workers on any node write parts there and a resumed driver finds them)
    staging: Path | str
    checkpoint_dir: Path | str
    error_file: Path | str
    chunk_size: int | None
    max_in_flight: int
    worker_read: set[int] = field(default_factory=set)
    output_uri: str | None = None

    def output_for(self, item: InputFile) -> Path:
        """The output file of one input in the ``per_file`` layout."""
        assert self.output_path is not None
        stems = [Path(p).name.split(".")[0] for p in dict.fromkeys(i.path for i in self.inputs)]
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
            1
            if i.index in self.worker_read or i.byte_range is not None
            else math.ceil(max(i.size, 1) / BYTES_PER_WORKER)
            for i in self.inputs
        )
        return max(1, min(cluster_cpus, units))


def resolve_inputs(spec: str | list[str], pattern: str = "file_processing") -> list[str]:
    """Files named by a path, directory, glob or list of those, in a stable order."""
    found: list[str] = []
    for entry in [spec] if isinstance(spec, str) else spec:
        if storage.is_remote(entry):
            found += _remote_inputs(entry)
            continue
        entry = storage.local_path(entry)
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
            raise JobError(
                f"input {entry!r} does not exist: give an existing file, a directory or a glob",
                file=entry,
            )
    if not found:
        raise JobError(
            f"no input files match {_shown(spec)!r}: check the path or the glob"
        )
    return list(dict.fromkeys(storage.absolute(p) for p in found))


def _shown(spec: str | list[str]) -> str | list[str]:
    return storage.redact(spec) if isinstance(spec, str) else [storage.redact(s) for s in spec]


def _remote_inputs(entry: str) -> list[str]:
    """Objects named by a URI: a glob (the bucket listed), an object, or a prefix."""
    try:
        if any(ch in entry for ch in "*?["):
            return storage.glob(entry)
        if storage.is_file(entry):
            return [entry]
        found = [
            uri for uri in storage.list_files(entry)
            if not any(p.startswith(".") for p in uri[len(entry.rstrip("/")):].split("/"))
        ]
    except OSError as exc:
        raise JobError(str(exc), file=storage.redact(entry)) from None
    if not found:
        raise JobError(
            f"input {storage.redact(entry)!r} does not exist: give an existing object, a "
            "prefix or a glob",
            file=storage.redact(entry),
        )
    return found


def make_plan(spec: FileJobSpec, run_id: str) -> Plan:
    """The plan for ``spec``; see the module docstring for errors."""
    inputs = []
    paths = [] if spec.records is not None else resolve_inputs(spec.input_path, spec.pattern)
    if spec.records is not None:
        inputs.append(InputFile(0, RECORDS_INPUT, "records", 0, 0))
    for index, path in enumerate(paths):
        fmt = spec.read.format or _detect(path)
        if fmt == "binary":
            raise JobError(
                f"{path}: BINARY files cannot be split into records; give format= one of "
                "csv, tsv, json, jsonl, xml, parquet, text, log",
                file=path,
            )
        size, mtime_ns = storage.stat(path)
        inputs.append(InputFile(index, path, fmt, size, mtime_ns))
    read = spec.read
    if spec.byte_ranges and not spec.whole:
        inputs = _split_ranges(inputs, read)
    kind, out, outputs = _output(spec, inputs)
    if spec.output_path is not None and storage.is_remote(spec.output_path):
        places = _remote_places(spec, run_id, inputs, kind, out)
    else:
        places = _local_places(spec, run_id, inputs, kind, out)
    small = {i.index for i in inputs if i.size < SMALL_FILE} if len(inputs) > 1 else set()
    return Plan(
        run_id=run_id,
        inputs=inputs,
        read=read,
        output_kind=kind,
        outputs=outputs,
        chunk_size=None if spec.whole else (spec.chunk_size or DEFAULT_CHUNK),
        max_in_flight=spec.in_flight,
        worker_read={i.index for i in inputs} if spec.whole else small,
        **places,
    )


def _local_places(
    spec: FileJobSpec, run_id: str, inputs: list[InputFile], kind: str, out: Path | None
) -> dict[str, Any]:
    """``Plan``'s output path, staging, checkpoint directory and error file for a local (or
    no) output: beside the output, else in the working directory."""
    if out is not None:
        for item in inputs:
            if kind == "single" and os.path.abspath(item.path) == str(out):
                raise JobError(
                    f"{item.path} is both an input and the output: write the output to "
                    "another path (the input would be overwritten while it is read)",
                    file=item.path,
                )
    base = out if kind in ("per_file", "partitioned") else out.parent if out else Path.cwd()
    state_dir = Path(base).absolute() / ".fsm_actors"
    error_file = (
        Path(spec.error_file)
        if spec.error_file
        else (
            Path(f"{out}.errors.jsonl")
            if kind == "single"
            else out / "_errors.jsonl"
            if out is not None
            else Path.cwd() / f"{spec.pattern}-{run_id}.errors.jsonl"
        )
    )
    return {
        "output_path": out,
        "staging": state_dir / f"run-{run_id}",
        "checkpoint_dir": Path(spec.checkpoint_dir)
        if spec.checkpoint_dir
        else state_dir / "checkpoints",
        "error_file": error_file.absolute(),
    }


def _remote_places(
    spec: FileJobSpec, run_id: str, inputs: list[InputFile], kind: str, mirror: Path | None
) -> dict[str, Any]:
    """``Plan``'s places for an object-store output URI: staging, checkpoints and the error
    file beside the output; the outputs joined in a local temp directory (``mirror``)."""
    uri = storage.absolute(spec.output_path or "")
    if kind == "single" and uri in {i.path for i in inputs}:
        raise JobError(
            f"{storage.redact(uri)} is both an input and the output: write the output to "
            "another path",
            file=storage.redact(uri),
        )
    base = uri if kind in ("per_file", "partitioned") else storage.parent(uri)
    state_dir = storage.join(base, ".fsm_actors")
    error_file = spec.error_file or (
        f"{uri}.errors.jsonl" if kind == "single" else storage.join(uri, "_errors.jsonl")
    )
    return {
        "output_path": mirror,
        "staging": storage.join(state_dir, f"run-{run_id}"),
        "checkpoint_dir": spec.checkpoint_dir or storage.join(state_dir, "checkpoints"),
        "error_file": error_file if storage.is_remote(error_file) else Path(error_file).absolute(),
        "output_uri": uri,
    }


def _split_ranges(inputs: list[InputFile], read: ReadOptions) -> list[InputFile]:
    """Large uncompressed CSV inputs as byte ranges (in order), the others as they are."""
    from dataclasses import replace as _replace

    from fsm_actors.platform.io import detect_compression, plan_byte_ranges

    out: list[InputFile] = []
    for item in inputs:
        if (
            item.format in ("csv", "tsv")
            and item.size >= RANGE_FILE
            and detect_compression(item.path) is None
        ):
            options = _replace(read, format=item.format)
            n = math.ceil(item.size / BYTES_PER_WORKER)
            n += n % 2  # an even count: two workers (or lanes) finish together
            ranges = plan_byte_ranges(item.path, n, options, min_bytes=BYTES_PER_WORKER // 2)
            if len(ranges) > 1:
                out += [
                    _replace(item, byte_range=(r.start, r.end, r.first_line)) for r in ranges
                ]
                continue
        out.append(item)
    return [_replace(item, index=i) for i, item in enumerate(out)]


def _detect(path: str) -> str:
    try:
        return detect_format(path)
    except FormatError as exc:
        raise JobError(str(exc), file=path) from exc


def _output(
    spec: FileJobSpec, inputs: list[InputFile]
) -> tuple[str, Path | None, dict[int, OutputSpec]]:
    """The layout, the output path and each input's ``OutputSpec``. In the per-file layout
    without ``output_format`` every output keeps its input's format and compression."""
    if spec.output_path is None:
        return "none", None, {}
    remote = storage.is_remote(spec.output_path)
    if remote:  # joined in a local temp directory on the driver, uploaded at the commit
        import tempfile

        name = storage.basename(storage.absolute(spec.output_path))
        out = Path(tempfile.mkdtemp(prefix="fsm_actors-out-")) / name
    else:
        out = Path(storage.local_path(spec.output_path)).absolute()
    ext_format, ext_compression = split_extensions(out)
    compression = normalize_compression(spec.compression)
    if compression and ext_compression and compression != ext_compression:
        raise JobError(
            f"compression={compression!r} conflicts with the output name {out.name!r} "
            f"({ext_compression}): name the file for the compression you want, or drop "
            "compression= to follow the extension",
            file=str(out),
        )
    compression = compression or ext_compression
    if spec.partition_by:
        kind = "partitioned"
    elif (
        spec.output_path.endswith(("/", os.sep))
        or (storage.is_dir(spec.output_path) if remote else out.is_dir())
    ):
        kind = "per_file"
    elif ext_format is None and len(inputs) > 1:
        kind = "per_file"
    else:
        kind = "single"
    fmt = spec.output_format
    if fmt is None and kind == "single":
        fmt = ext_format
    if fmt == "binary":
        raise JobError("output_format BINARY cannot be written; pick a record format")
    if fmt is None and kind == "per_file":
        return (
            kind,
            out,
            {
                i.index: _out_spec(spec, i.format, compression or detect_compression(i.path))
                for i in inputs
            },
        )
    if fmt is None:
        formats = {i.format for i in inputs} - {"records"}
        fmt = formats.pop() if len(formats) == 1 else "jsonl"
    out_spec = _out_spec(spec, fmt, compression)
    return kind, out, {i.index: out_spec for i in inputs}


def _out_spec(spec: FileJobSpec, fmt: str, compression: str | None) -> OutputSpec:
    delimiter = spec.read.csv_delimiter if fmt == "csv" else None
    return OutputSpec(fmt, compression, delimiter)


# The kind: running a plan.

#: ``finish(staging, meta) -> extra result keys``: e.g. merging partial aggregates
Finish = Callable[[Staging, dict[str, Any]], dict[str, Any]]


class FileJobKind(JobKind):
    """One file job. Use once."""

    def __init__(
        self,
        spec: FileJobSpec,
        stage: Any,
        run_id: str,
        *,
        label: str = "",
        finish: Finish | None = None,
        identity: Any = None,
        error: Callable[..., Exception] | None = None,
    ) -> None:
        self.spec = spec
        self.stage = stage
        self.pattern = spec.pattern
        self.run_id = run_id
        self.label = label or spec.pattern
        self.plan: Plan = make_plan(spec, run_id)
        self.staging = self.plan.staging
        self.checkpoint_dir = self.plan.checkpoint_dir
        self.error_file = self.plan.error_file
        self.max_in_flight = self.plan.max_in_flight
        cpus = len(os.sched_getaffinity(0))
        if getattr(stage, "runs_user_code", True):
            self.forked_lanes = min(cpus, self.workers(cpus))
        else:  # Arrow kernels only: threads
            self.local_lanes = min(cpus, self.workers(cpus))
        self._finish = finish
        self._identity = identity
        self._error = error
        self._stage_dir = Staging(self.plan.staging)
        self._done: Any = None
        self._joiner: Joiner | None = None
        self._join_thread: ThreadPoolExecutor | None = None
        self._by_key = {item.key: item for item in self.plan.inputs}
        self._types: dict[str, Any] = {}

    # -- planning --------------------------------------------------------------------------
    def local_paths(self) -> list[str]:
        if self.spec.shared_fs:  # declared seen alike by every node
            return []
        plan = self.plan
        paths = [i.path for i in plan.inputs if i.path != RECORDS_INPUT]
        if plan.output_uri is None and plan.output_path is not None:
            paths.append(str(plan.output_path))
        paths.append(str(plan.staging))
        return [p for p in dict.fromkeys(paths) if not storage.is_remote(p)]

    def fingerprint(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "inputs": [item.key for item in plan.inputs],
            "chunk_size": plan.chunk_size,
            "worker_read": sorted(plan.worker_read),
            "output": plan.output_uri or (str(plan.output_path) if plan.output_path else None),
            "layout": plan.output_kind,
            "outputs": {str(k): asdict(v) for k, v in plan.outputs.items()},
            "partition_by": list(self.spec.partition_by),
            "read": {k: v for k, v in asdict(plan.read).items() if k != "format"},
            "steps": self._identity,
        }

    def partitions(self) -> dict[str, dict[str, Any]]:
        return {item.key: item.fingerprint for item in self.plan.inputs}

    def workers(self, cluster_cpus: int) -> int:
        return self.plan.workers(cluster_cpus, self.spec.workers)

    def step_spec(self) -> FileStepSpec:
        return FileStepSpec(
            read=self.plan.read,
            outputs=self.plan.outputs,
            stage=self.stage,
            partition_by=tuple(self.spec.partition_by),
        )

    def error(self, message: str, *, threshold: bool = False, **context: Any) -> Exception:
        if self._error is not None:
            return self._error(message, threshold=threshold, **context)
        return super().error(message, threshold=threshold, **context)

    # -- running ---------------------------------------------------------------------------
    def tasks(self, done: DoneSet) -> Iterator[Any]:
        self._start(done)
        plan = self.plan
        as_records = bool(getattr(self.stage, "wants_records", False))
        for item in plan.inputs:
            key = item.key
            if done.complete(key):
                continue
            if item.path == RECORDS_INPUT:
                yield from self._record_tasks(done, plan.chunk_size or DEFAULT_CHUNK)
                continue
            meta = {"file_index": item.index, "path": item.path}
            if item.byte_range is not None or item.index in plan.worker_read:
                meta.update(
                    format=item.format,
                    chunk_size=plan.chunk_size,
                    skip=done.done_batches(key),  # type: ignore[attr-defined]
                )
                if item.byte_range is not None:
                    meta.update(range=item.byte_range, types=self._file_types(item))
                yield Task(key, None, meta=meta)
                continue
            total = 0
            options = replace(plan.read, format=item.format)
            records = as_records and item.format in ("json", "jsonl")
            for chunk in safe_chunks(item.path, options, plan.chunk_size or 1 << 62, records):
                total = chunk.index + 1
                if done.is_done(key, chunk.index):
                    continue
                yield Task(
                    key,
                    chunk.index,
                    chunk.batch,
                    chunk.first_record,
                    meta={**meta, "errors": chunk.errors, "lines": chunk.lines},
                )
            yield PartitionTotal(key, total)

    def _file_types(self, item: Any) -> Any:
        """One type per column for the whole file, scanned once, shared by its ranges."""
        if item.path not in self._types:
            from fsm_actors.platform.io import csv_file_types
            from fsm_actors.platform.jobs.heartbeat import notice

            options = replace(self.plan.read, format=item.format)
            where = str(item.path)
            size = None if storage.is_remote(where) else os.path.getsize(where)
            notice(f"reading all of {storage.redact(str(item.path))}"
                   + (f" ({size / 1e6:,.0f} MB)" if size else "")
                   + " once for one type per column (csv_infer: sample reads its first "
                   "block only)")
            started = time.monotonic()
            with _every(10.0, lambda: notice(
                    f"still reading {storage.redact(str(item.path))} for column types "
                    f"({time.monotonic() - started:.0f} s)")):
                _, types, multiline = csv_file_types(item.path, options)
            notice(f"column types of {storage.redact(str(item.path))} known after "
                   f"{time.monotonic() - started:.1f} s")
            self._types[item.path] = (types, multiline)
        return self._types[item.path]

    def _record_tasks(self, done: DoneSet, size: int) -> Iterator[Any]:
        """Chunks of the iterable given as input, each a list of its items as they are."""
        chunk: list[Any] = []
        index = first = 0
        for record in self.spec.records:  # type: ignore[attr-defined]
            chunk.append(record)
            if len(chunk) >= size:
                if not done.is_done(RECORDS_INPUT, index):
                    yield Task(RECORDS_INPUT, index, chunk, first, meta={"file_index": 0})
                index, first, chunk = index + 1, first + len(chunk), []
        if chunk or index == 0:
            if not done.is_done(RECORDS_INPUT, index):
                yield Task(RECORDS_INPUT, index, chunk, first, meta={"file_index": 0})
            index += 1
        yield PartitionTotal(RECORDS_INPUT, index)

    def _start(self, done: Any) -> None:
        self._done = done
        plan = self.plan
        if plan.output_kind == "single":
            files = [item.index for item in plan.inputs]
            self._joiner = Joiner(
                plan.output_path, plan.outputs[0], self._stage_dir, files,
                self.spec.xml_root_element,
            )
            # The joiner reads and writes whole parts: its own thread keeps the loop free.
            self._join_thread = ThreadPoolExecutor(1, thread_name_prefix="file-join")

    def on_result(self, result: TaskResult) -> None:
        if result.side:
            sides = result.side if isinstance(result.side, dict) else {}
            whole = self._done.cp.meta.setdefault("whole", {})  # type: ignore[union-attr]
            for batch, value in sides.items():
                # plain JSON types, so the checkpoint can hold them for a resumed run
                whole.setdefault(result.partition, {})[str(batch)] = json.loads(
                    json.dumps(value, default=str)
                )
        if self._joiner is not None and self._join_thread is not None:
            self._join_thread.submit(self._joiner.advance, *self._progress_of())

    def partition_changed(self, partition: str) -> None:
        self._stage_dir.drop_file(self._by_key[partition].index)

    def _progress_of(self):
        paths = [item.key for item in self.plan.inputs]
        parts = self._done.cp.partitions  # type: ignore[union-attr]

        def is_done(index: int, batch: int) -> bool:
            return parts[paths[index]].is_done(batch)

        def total(index: int) -> int | None:
            return parts[paths[index]].total_batches

        return is_done, total

    # -- finishing -------------------------------------------------------------------------
    def commit(self, counts: dict[str, int], meta: dict[str, Any]) -> dict[str, Any]:
        plan = self.plan
        self._stop_joining()
        if self._joiner is not None:
            self._joiner.finish(*self._progress_of())
        elif plan.output_kind == "per_file":
            by_path: dict[str, list[Any]] = {}
            for item in plan.inputs:
                by_path.setdefault(item.path, []).append(item)
            for items in by_path.values():
                output = plan.outputs[items[0].index]
                parts = [
                    p
                    for item in items
                    for p in self._stage_dir.data_parts(output.ext, file_index=item.index)
                ]
                self._join(plan.output_for(items[0]), parts, output)
        elif plan.output_kind == "partitioned":
            self._commit_partitions()
        if plan.output_uri is not None:
            self._upload()
        extra: dict[str, Any] = {
            "files": len(plan.inputs),
            "output_path": storage.redact(plan.output_uri)
            if plan.output_uri
            else (str(plan.output_path) if plan.output_path else None),
        }
        if self._finish is not None:
            extra.update(self._finish(self._stage_dir, meta))
        return extra

    def _commit_partitions(self) -> None:
        plan = self.plan
        output = plan.outputs[0]
        produced = self._stage_dir.partitions()
        assert plan.output_path is not None
        for partition in produced:
            self._join(
                plan.output_path / partition / f"data{output.ext}",
                self._stage_dir.data_parts(output.ext, partition=partition),
                output,
            )
        # The output of a run is what that run produced: partitions of an earlier run that
        # this one did not produce go.
        keep = {p.split("/")[0] for p in produced}
        if plan.output_uri is not None:
            return  # the upload drops the old remote partitions
        for old in plan.output_path.glob("*=*"):
            if old.is_dir() and old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)

    def _upload(self) -> None:
        """Put the outputs joined in the local temp directory onto the store, each object
        whole; a partitioned output's partitions this run did not produce go."""
        plan = self.plan
        assert plan.output_uri is not None and plan.output_path is not None
        if plan.output_kind == "single":
            storage.put_file(plan.output_path, plan.output_uri)
            return
        written = set(storage.upload_tree(plan.output_path, plan.output_uri))
        if plan.output_kind == "partitioned":
            base = plan.output_uri.rstrip("/") + "/"
            for uri in storage.list_files(plan.output_uri):
                first = uri[len(base):].split("/")[0]
                if "=" in first and uri not in written:
                    storage.delete(uri)

    def _drop_mirror(self) -> None:
        if self.plan.output_uri is not None and self.plan.output_path is not None:
            shutil.rmtree(self.plan.output_path.parent, ignore_errors=True)

    def _join(self, target: Path, parts: list[Path], output: Any) -> None:
        commit(
            target,
            parts,
            output.format,
            compression=output.compression,
            csv_delimiter=output.csv_delimiter,
            xml_root=self.spec.xml_root_element,
        )

    def _stop_joining(self) -> None:
        if self._join_thread is not None:
            self._join_thread.shutdown(wait=True)
            self._join_thread = None

    def abort(self) -> None:
        self._stop_joining()
        if self._joiner is not None:
            self._joiner.abort()
        self._drop_mirror()

    def cleanup(self) -> None:
        self._drop_mirror()
        if not isinstance(self.plan.staging, Path):
            return  # a prefix on a store: nothing left once its objects are gone
        state_dir = self.plan.staging.parent
        for path in (state_dir / "checkpoints", state_dir):
            with contextlib.suppress(OSError):
                path.rmdir()


@contextlib.contextmanager
def _every(seconds: float, say: Callable[[], None]) -> Iterator[None]:
    """Call ``say`` every ``seconds`` in a daemon thread while the block runs."""
    import threading

    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            say()

    thread = threading.Thread(target=loop, name="fsm-actors-every", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
