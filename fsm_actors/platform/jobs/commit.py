"""Joining a run's part files into its final outputs (plain core).

``commit`` joins a list of parts at the end of a run through the format layer's
``join_parts`` (temp file, fsync, rename; Parquet row groups stitched without re-encoding).
``Joiner`` does the same for one byte-format output while the run goes: it appends each
part as soon as every part before it in (file, batch) order is durable, so little is left
to do at the end. Parquet output is stitched at the end instead (a byte copy).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa

from fsm_actors.platform.io import (
    atomic_write,
    compress_bytes,
    document_frame,
    fsync_path,
    join_parts,
    storage,
)
from fsm_actors.platform.jobs.parts import OutputSpec, Staging, part_stem

log = logging.getLogger(__name__)


def commit(
    target: Path,
    parts: Sequence[Path],
    fmt: str,
    *,
    compression: str | None = None,
    csv_delimiter: str | None = None,
    xml_root: str = "records",
) -> None:
    """Join ``parts`` (in the given order) into ``target``, atomically and durably."""
    columns = [part_columns(p) for p in parts] if fmt in ("csv", "tsv") else None
    join_parts(
        target,
        parts,
        fmt,
        compression=compression or ("snappy" if fmt == "parquet" else None),
        columns=columns,
        csv_delimiter=csv_delimiter,
        xml_root=xml_root,
    )


def part_columns(part: Path) -> list[str]:
    """The CSV header a part was written with (its sidecar)."""
    sidecar = part.with_name(part.name.split(".", 1)[0] + ".columns.json")
    return json.loads(sidecar.read_text())


def concat_errors(target: Path | str, parts: Sequence[Path]) -> int:
    """Join error parts into one JSON Lines file (or object: a URI, written whole);
    returns the number of errors."""
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with open(tmp, "wb") as out:
            for part in parts:
                data = part.read_bytes()
                count += data.count(b"\n")
                out.write(data)

    if storage.is_remote(str(target)):
        storage.write_via_local(str(target), write)
    else:
        atomic_write(target, write)
    return count


class Joiner:
    """Builds one byte-format output file from the parts of ``files`` (input indices, in
    output order) while the run goes. Not thread-safe; call from one thread.

    ``advance(is_done, total_batches)`` appends every part that is next in order and done.
    A CSV part with other columns than those already written makes the joiner stand down;
    ``finish`` then joins every part with ``commit``. Parquet output is never joined early
    (``finish`` stitches the parts). ``abort`` drops the temp file.
    """

    def __init__(
        self,
        target: Path,
        output: OutputSpec,
        staging: Staging,
        files: Sequence[int],
        xml_root: str = "records",
    ) -> None:
        self.target = target
        self.output = output
        self.staging = staging
        self.files = list(files)
        self.xml_root = xml_root
        self.failed = output.format == "parquet"
        self._tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._file = 0
        self._batch = 0
        self._out = None
        self._columns: list[str] | None = None
        self._parts = 0

    def advance(
        self, is_done: Callable[[int, int], bool], total_batches: Callable[[int], int | None]
    ) -> None:
        """Append the parts that are next in order and durable."""
        while not self.failed and self._file < len(self.files):
            index = self.files[self._file]
            total = total_batches(index)
            if total is not None and self._batch >= total:
                self._file, self._batch = self._file + 1, 0
                continue
            if not is_done(index, self._batch):
                return
            part = self.staging.data_dir() / f"{part_stem(index, self._batch)}{self.output.ext}"
            if part.exists():
                try:
                    self._append(part)
                except Exception:  # e.g. a full disk: ``finish`` retries with a full commit
                    log.warning(
                        "joining %s failed; joining every part at the end", part, exc_info=True
                    )
                    self.failed = True
                    return
            self._batch += 1

    def _append(self, part: Path) -> None:
        fmt, compression = self.output.format, self.output.compression
        schema = None
        if fmt in ("csv", "tsv"):
            columns = part_columns(part)
            if self._columns is not None and columns != self._columns:
                self.failed = True
                return
            self._columns = columns
            schema = pa.schema([(n, pa.string()) for n in columns])
        prologue, separator, _ = document_frame(
            fmt, schema, csv_delimiter=self.output.csv_delimiter, xml_root=self.xml_root
        )
        if self._out is None:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self._out = open(self._tmp, "wb")  # noqa: SIM115 - closed in finish/abort
            self._out.write(compress_bytes(prologue, compression))
        elif separator:
            self._out.write(compress_bytes(separator, compression))
        with open(part, "rb") as src:
            shutil.copyfileobj(src, self._out, 1 << 20)
        self._parts += 1

    def finish(self, is_done: Callable[[int, int], bool], total_batches) -> None:
        """Append what is left and rename the file into place (or ``commit`` every part)."""
        self.advance(is_done, total_batches)
        if self.failed or self._parts == 0:
            self.abort()
            parts = [
                p
                for i in self.files
                for p in self.staging.data_parts(self.output.ext, file_index=i)
            ]
            commit(
                self.target,
                parts,
                self.output.format,
                compression=self.output.compression,
                csv_delimiter=self.output.csv_delimiter,
                xml_root=self.xml_root,
            )
            return
        _, _, epilogue = document_frame(self.output.format, xml_root=self.xml_root)
        self._out.write(compress_bytes(epilogue, self.output.compression))
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        os.replace(self._tmp, self.target)
        fsync_path(self.target.parent)

    def abort(self) -> None:
        """Close and delete the temp file."""
        if self._out is not None:
            self._out.close()
            self._out = None
        self._tmp.unlink(missing_ok=True)
