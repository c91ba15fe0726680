"""ETL into a file: batches as the job layer's parts, one atomic commit (plain core).

Each partition writes its batches as parts ``f<partition>-b<batch>`` of the run's staging
directory (temp name, rename: a part exists only whole) and its rejects as error parts. The
driver's checkpoint (with a ``checkpoint_id``) records finished partitions; a partition that
was cut short is written again from its start (its old parts dropped first), so the same
rows give the same parts. ``ETLFileJob.commit`` joins the parts in (partition, batch) order
into the target through the format layer (temp file, fsync, rename): readers see the old file
or the whole new one, never a part of it.

Modes: FULL_REFRESH replaces the file; APPEND writes a file that does not exist yet. UPSERT
and INCREMENTAL match rows by key in a table: they need a database target.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from pathlib import Path
from typing import Any

from fsm_actors.platform.io import atomic_write, storage
from fsm_actors.platform.io.readers import normalize_format, split_extensions
from fsm_actors.platform.jobs.parts import OutputSpec, Staging, commit
from patterns._etl.config import ETLMode
from patterns._etl.endpoints import FileEndpoint
from patterns._etl.kind import PartitionedETL, etl_counts
from patterns.errors import ErrorThresholdExceeded, PatternError

WRITABLE = ("jsonl", "json", "csv", "tsv", "parquet", "xml")


def output_of(target: FileEndpoint, mode: ETLMode) -> OutputSpec:
    """The format and compression to write ``target`` in; ``PatternError`` for a mode or a
    format a file cannot take, or an APPEND onto a file that exists."""
    if mode in (ETLMode.UPSERT, ETLMode.INCREMENTAL):
        raise PatternError(
            f"{mode.name} matches rows by key, which a file target cannot do: load into a "
            "database table, or write the file with mode FULL_REFRESH (replace it) or APPEND "
            "(a new file)", pattern="etl")
    if mode is ETLMode.APPEND and storage.exists(target.path):
        raise PatternError(
            f"APPEND into file {storage.redact(target.path)!r}: the file exists, and file targets are written "
            "whole; write to a new path, remove the file, or use FULL_REFRESH to replace it",
            pattern="etl")
    ext_format, compression = split_extensions(target.path)
    fmt = normalize_format(target.format or ext_format or "jsonl")
    if fmt not in WRITABLE:
        raise PatternError(f"cannot write ETL output as {fmt!r}; use one of "
                           f"{', '.join(WRITABLE)}", pattern="etl")
    compression = target.options.get("compression", compression)
    delimiter = target.options.get("delimiter") if fmt == "csv" else None
    return OutputSpec(fmt, compression if fmt != "parquet" else None, delimiter)


def work_dir(target: FileEndpoint, given: str | None) -> Path | str:
    """Where a run into ``target`` keeps its staging, checkpoint and error file: ``given``,
    else ``.fsm_actors/etl`` beside the target (one filesystem or store, so the commit
    stays whole); a URI (a prefix in the target's store) for a remote target, so nothing
    is written to the local working directory."""
    where = given or storage.join(storage.parent(target.path), ".fsm_actors", "etl")
    return where if storage.is_remote(where) else Path(where)


def _under(work: Path | str, *names: str) -> Path | str:
    return storage.join(work, *names) if isinstance(work, str) else work.joinpath(*names)


def source_files(path: str) -> list[str]:
    """The files of a file source: a directory's or prefix's files, a glob's matches, or
    the one file (absolute paths, or URIs as given); ``[]`` when nothing is there."""
    if storage.is_remote(path):
        if any(c in path for c in "*?["):
            return storage.glob(path)
        if storage.is_file(path):
            return [path]
        return storage.list_files(path)
    path = storage.local_path(path)
    if os.path.isdir(path):
        return sorted(str(p.absolute()) for p in Path(path).rglob("*") if p.is_file())
    if any(c in path for c in "*?["):
        return sorted(os.path.abspath(p) for p in glob.glob(path, recursive=True))
    return [os.path.abspath(path)] if os.path.exists(path) else []


def result_path(work: Path | str, run_id: str) -> Path | str:
    return _under(work, f"{run_id}.result.json")


def finished_result(work: Path | str, run_id: str,
                    settings: dict[str, Any]) -> dict[str, Any] | None:
    """The result of the run ``run_id`` that finished with ``settings``, or None."""
    try:
        record = json.loads(storage.read_bytes(str(result_path(work, run_id))))
    except (OSError, ValueError):
        return None
    return record["result"] if record.get("settings") == settings else None


class ETLFileJob(PartitionedETL):
    """An ETL run into a file (built by ``patterns._etl.runner.plan_run``)."""

    def __init__(self, *, run_id: str, spec: Any, partitions: list[dict[str, Any]],
                 settings: dict[str, Any], target: FileEndpoint, output: OutputSpec,
                 work: Path | str, workers: int | None, keep_checkpoint: bool, label: str) -> None:
        self.run_id = run_id
        self.spec = spec
        self._partitions = partitions
        self.settings = settings
        self.target = target
        self.output = output
        self._workers = workers
        self.label = label
        self.staging = _under(work, run_id, "staging")
        self.checkpoint_dir = _under(work, run_id, "checkpoint") if keep_checkpoint else None
        # beside the output, as every file job's (<output>.errors.jsonl), not in the work dir
        self.error_file = (f"{target.path}.errors.jsonl" if storage.is_remote(target.path)
                           else Path(f"{target.path}.errors.jsonl").absolute())
        self.result_file = result_path(work, run_id)
        spec.staging = str(self.staging)

    def fingerprint(self) -> dict[str, Any]:
        return dict(self.settings)

    def error(self, message: str, *, threshold: bool = False, **context: Any) -> Exception:
        known = {k: context[k] for k in ("file", "line", "record", "error_file") if k in context}
        cls = ErrorThresholdExceeded if threshold else PatternError
        return cls(message, pattern="etl", run_id=self.run_id, **known)

    def cleanup(self) -> None:
        """After the commit (or a failed run nothing can resume): the run's directory goes."""
        if isinstance(self.staging, str):
            storage.delete_tree(storage.parent(self.staging))
        else:
            shutil.rmtree(self.staging.parent, ignore_errors=True)

    def commit(self, counts: dict[str, int], meta: dict[str, Any]) -> dict[str, Any]:
        """Join the parts into the target file (atomically); returns the ETL result keys."""
        staging, out = Staging(self.staging), self.output
        parts = [p for i in range(len(self._partitions))
                 for p in staging.data_parts(out.ext, file_index=i)]
        def join(tmp: Path) -> None:
            commit(tmp, parts, out.format, compression=out.compression,
                   csv_delimiter=out.csv_delimiter)

        if storage.is_remote(self.target.path):  # joined here, put whole (or not at all)
            storage.write_via_local(self.target.path, join)
            shown = storage.redact(self.target.path)
        else:
            target = Path(storage.local_path(self.target.path))
            target.parent.mkdir(parents=True, exist_ok=True)
            join(target)
            shown = str(target)
        keys = etl_counts(counts)
        if self.checkpoint_dir is not None:  # what a re-run with this checkpoint_id answers
            record = json.dumps({"settings": self.settings, "result": keys}).encode()
            if isinstance(self.result_file, str):
                storage.put_bytes(self.result_file, record)
            else:
                atomic_write(self.result_file, lambda tmp: tmp.write_bytes(record))
        return {**keys, "output_path": shown}
