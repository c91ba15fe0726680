"""Joining part files into final outputs, always through a temp file and a rename.

``commit`` joins a list of parts at the end of a run. ``Joiner`` does the same for one output
file while the run goes: it appends each part as soon as every part before it in (file,
batch) order is durable, so little is left to do at the end. Byte formats are concatenated
(each compressed part is its own gzip member or zstd frame); Parquet parts are rewritten
into one file; parts whose CSV columns or Parquet schemas differ are unified.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import zstandard

from fsm_actors.io import ArrowWriter, document_frame, open_input
from fsm_actors.jobs.parts import OutputSpec, Staging, atomic_write, part_stem

log = logging.getLogger(__name__)


def compress(data: bytes, compression: str | None) -> bytes:
    if not data or compression is None:
        return data
    if compression == "gzip":
        return gzip.compress(data)
    return zstandard.ZstdCompressor().compress(data)


def commit(
    target: Path,
    parts: Sequence[Path],
    fmt: str,
    *,
    compression: str | None = None,
    csv_delimiter: str | None = None,
    xml_root: str = "records",
) -> None:
    """Join ``parts`` (in the given order) into ``target``, atomically."""
    if fmt == "parquet":
        atomic_write(target, lambda tmp: _merge_parquet(tmp, parts, compression))
        return
    schema = None
    if fmt in ("csv", "tsv"):
        headers = [_columns(p) for p in parts]
        if any(h != headers[0] for h in headers):
            atomic_write(
                target,
                lambda tmp: _rewrite_csv(tmp, parts, headers, fmt, compression, csv_delimiter),
            )
            return
        schema = pa.schema([(n, pa.string()) for n in headers[0]]) if headers else None
    prologue, separator, epilogue = document_frame(
        fmt, schema, csv_delimiter=csv_delimiter, xml_root=xml_root
    )
    separator = compress(separator, compression)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            out.write(compress(prologue, compression))
            for i, part in enumerate(parts):
                if i and separator:
                    out.write(separator)
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            out.write(compress(epilogue, compression))
            out.flush()
            os.fsync(out.fileno())

    atomic_write(target, write)


def _columns(part: Path) -> list[str]:
    sidecar = part.with_name(part.name.split(".", 1)[0] + ".columns.json")
    return json.loads(sidecar.read_text())


def _rewrite_csv(
    tmp: Path,
    parts: Sequence[Path],
    headers: list[list[str]],
    fmt: str,
    compression: str | None,
    delimiter: str | None,
) -> None:
    """Parts with different columns: read each as text and write them under the union."""
    union = list(dict.fromkeys(c for h in headers for c in h))
    delim = delimiter or ("\t" if fmt == "tsv" else ",")
    with ArrowWriter(tmp, fmt, compression=compression, csv_delimiter=delim) as writer:
        for part, header in zip(parts, headers, strict=True):
            table = pacsv.read_csv(
                open_input(part, compression),
                pacsv.ReadOptions(column_names=header),
                pacsv.ParseOptions(delimiter=delim, newlines_in_values=True),
                pacsv.ConvertOptions(column_types={c: pa.string() for c in header}),
            )
            writer.write(
                pa.table(
                    [
                        table[c] if c in header else pa.nulls(table.num_rows, pa.string())
                        for c in union
                    ],
                    names=union,
                )
            )


def _merge_parquet(tmp: Path, parts: Sequence[Path], compression: str | None) -> None:
    target = _unified(pq.read_schema(p) for p in parts)
    with pq.ParquetWriter(tmp, target, compression=compression or "snappy") as writer:
        for part in parts:
            writer.write_table(_conform(pq.read_table(part), target))


def _unified(schemas: Iterable[pa.Schema]) -> pa.Schema:
    schemas = [s for s in schemas if len(s)]
    if not schemas:
        return pa.schema([])
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        names = list(dict.fromkeys(f.name for s in schemas for f in s))
        fields = []
        for name in names:
            types = {s.field(name).type for s in schemas if name in s.names}
            fields.append(pa.field(name, types.pop() if len(types) == 1 else pa.string()))
        return pa.schema(fields)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table[field.name]
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                column = pa.array(
                    [
                        None
                        if v is None
                        else json.dumps(v, default=str)
                        if not isinstance(v, str)
                        else v
                        for v in column.to_pylist()
                    ],
                    field.type,
                )
        columns.append(column)
    return pa.table(columns, schema=schema)


def concat_errors(target: Path, parts: Sequence[Path]) -> int:
    """Join error parts into one JSON Lines file; returns the number of errors."""
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with open(tmp, "wb") as out:
            for part in parts:
                data = part.read_bytes()
                count += data.count(b"\n")
                out.write(data)

    atomic_write(target, write)
    return count


class Joiner:
    """Builds one output file from the parts of ``files`` (input indices, in output order)
    while the run goes. Not thread-safe; call from one thread.

    ``advance(is_done, total_batches)`` appends every part that is next in order and done.
    A part that does not fit what was already written (other CSV columns, a Parquet schema
    that does not cast) makes the joiner stand down; ``finish`` then joins every part with
    ``commit``. ``abort`` drops the temp file.
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
        self.failed = False
        self._tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._file = 0
        self._batch = 0
        self._out = None
        self._parquet: pq.ParquetWriter | None = None
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
        if self.output.format == "parquet":
            self._append_parquet(part)
            return
        fmt, compression = self.output.format, self.output.compression
        schema = None
        if fmt in ("csv", "tsv"):
            columns = _columns(part)
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
            self._out.write(compress(prologue, compression))
        elif separator:
            self._out.write(compress(separator, compression))
        with open(part, "rb") as src:
            shutil.copyfileobj(src, self._out, 1 << 20)
        self._parts += 1

    def _append_parquet(self, part: Path) -> None:
        table = pq.read_table(part)
        if self._parquet is None:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self._parquet = pq.ParquetWriter(
                self._tmp, table.schema, compression=self.output.compression or "snappy"
            )
        elif not table.schema.equals(self._parquet.schema):
            schema = self._parquet.schema
            if set(table.column_names) - set(schema.names):
                self.failed = True
                return
            try:
                table = pa.table(
                    [
                        table[f.name].cast(f.type)
                        if f.name in table.column_names
                        else pa.nulls(table.num_rows, f.type)
                        for f in schema
                    ],
                    schema=schema,
                )
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                self.failed = True
                return
        self._parquet.write_table(table)
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
        if self._parquet is not None:
            self._parquet.close()
        else:
            _, _, epilogue = document_frame(self.output.format, xml_root=self.xml_root)
            self._out.write(compress(epilogue, self.output.compression))
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
        os.replace(self._tmp, self.target)

    def abort(self) -> None:
        """Close and delete the temp file."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._out is not None:
            self._out.close()
            self._out = None
        self._tmp.unlink(missing_ok=True)
