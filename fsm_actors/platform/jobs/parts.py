"""Part files and their commit: the exactly-once half of file processing (plain core).

A run stages everything under one directory: ``data/[<partition>/]f<file>-b<batch><ext>``
(output), ``errors/f<file>-b<batch>.jsonl`` (rejected records), ``agg/...arrow`` (partial
aggregates) and, for CSV, ``...columns.json`` (the part's header). Every part is written to a
temp name and renamed, so a part exists only complete; the same file and batch always give
the same part, so writing it twice (a retried batch) changes nothing.

The commit joins them into the final outputs: ``commit`` joins a list of parts at the end of
a run through the format layer's ``join_parts`` (temp file, fsync, rename; Parquet row groups
stitched without re-encoding). ``Joiner`` does the same for one byte-format output while the
run goes: it appends each part as soon as every part before it in (file, batch) order is
durable, so little is left to do at the end. Parquet output is stitched at the end instead
(a byte copy).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from fsm_actors.platform.io import (
    COMPRESSION_EXTENSION,
    FORMAT_EXTENSION,
    ArrowWriter,
    RowError,
    atomic_write,
    compress_bytes,
    document_frame,
    fsync_path,
    join_parts,
    storage,
    write_parquet_part,
)
from fsm_actors.platform.io.convert import json_default

log = logging.getLogger(__name__)

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


@dataclass(frozen=True)
class OutputSpec:
    """How one input's records are written: format, compression, file extension."""

    format: str
    compression: str | None = None
    csv_delimiter: str | None = None

    @property
    def ext(self) -> str:
        ext = FORMAT_EXTENSION[self.format]
        if self.compression and self.format != "parquet":
            ext += COMPRESSION_EXTENSION[self.compression]
        return ext


def part_stem(file_index: int, batch: int) -> str:
    """``f000001-b000000042``: sorts in (file, batch) order."""
    return f"f{file_index:06d}-b{batch:09d}"


class Staging:
    """The staging directory of one run: a local directory, or a prefix on an object store
    (a URI). Remote parts are written through a local temp file and uploaded whole; the
    listing methods download the parts they return into a local cache (a part never
    changes once written), so joining reads local files either way."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.uri = os.fspath(root) if storage.is_remote(os.fspath(root)) else None
        self.root: Path | str = self.uri or Path(root)
        self._cache: Path | None = None

    @property
    def local(self) -> Path:
        """The local directory parts are read from (the cache for a remote staging)."""
        if self.uri is None:
            return Path(self.root)
        if self._cache is None:
            self._cache = Path(tempfile.mkdtemp(prefix="fsm_actors-staging-"))
        return self._cache

    def data_dir(self, partition: str | None = None) -> Path:
        return self.local / "data" / partition if partition else self.local / "data"

    def _write(self, path: Path, write: Any) -> None:
        """``atomic_write`` locally; on a store, the same through a temp file and upload."""
        if self.uri is None:
            atomic_write(path, write)
            return
        relative = path.relative_to(self.local).as_posix()
        storage.write_via_local(storage.join(self.uri, relative), write)

    def _sync(self, sub: str) -> None:
        """Download the remote parts under ``sub`` that the cache does not hold yet."""
        if self.uri is None:
            return
        base = storage.join(self.uri, sub)
        for uri in storage.list_files(base):
            relative = uri[len(self.uri.rstrip("/")) + 1:]
            if relative.rpartition("/")[2].startswith("."):
                continue  # an upload in progress
            local = self.local / relative
            if not local.exists():
                tmp = local.with_name(f".{local.name}.dl")
                storage.download(uri, tmp)
                os.replace(tmp, local)

    def write_data(
        self,
        file_index: int,
        batch: int,
        table: pa.Table,
        fmt: str,
        ext: str,
        *,
        partition: str | None = None,
        compression: str | None = None,
        csv_delimiter: str | None = None,
        text_field_name: str = "text",
        xml_record: str = "record",
    ) -> None:
        """Write one output part (and its header sidecar for CSV/TSV). ``compression``
        applies to byte formats; Parquet parts are uncompressed until they are joined."""
        stem = part_stem(file_index, batch)
        directory = self.data_dir(partition)

        def write(tmp: Path) -> None:
            if fmt == "parquet":  # pages in the output's codec: the join copies them as they are
                write_parquet_part(table, tmp, compression or "snappy")
                return
            with ArrowWriter(
                tmp,
                fmt,
                compression=compression,
                fragment=True,
                csv_delimiter=csv_delimiter,
                text_field_name=text_field_name,
                xml_record=xml_record,
            ) as writer:
                writer.write(table)

        if fmt in ("csv", "tsv"):
            columns = json.dumps(table.column_names).encode()
            self._write(directory / f"{stem}.columns.json", lambda tmp: tmp.write_bytes(columns))
        self._write(directory / f"{stem}{ext}", write)

    def write_records(
        self,
        file_index: int,
        batch: int,
        records: Sequence[dict],
        ext: str,
        *,
        compression: str | None = None,
    ) -> None:
        """Write one JSON Lines output part from dicts, each exactly as given."""
        data = "".join(
            json.dumps(r, ensure_ascii=False, default=json_default) + "\n" for r in records
        ).encode("utf-8")
        path = self.data_dir() / f"{part_stem(file_index, batch)}{ext}"
        self._write(path, lambda tmp: tmp.write_bytes(compress_bytes(data, compression)))

    def write_errors(self, file_index: int, batch: int, errors: Sequence[RowError]) -> None:
        """Write the rejected records of one batch as JSON Lines."""
        text = "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in errors)
        path = self.local / "errors" / f"{part_stem(file_index, batch)}.jsonl"
        self._write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def write_partial(self, file_index: int, batch: int, table: pa.Table) -> None:
        """Write one batch's partial aggregate."""
        path = self.local / "agg" / f"{part_stem(file_index, batch)}.arrow"
        self._write(
            path, lambda tmp: feather.write_feather(table, tmp, compression="uncompressed")
        )

    def partials(self) -> list[pa.Table]:
        """Every partial aggregate written."""
        self._sync("agg")
        return [feather.read_table(p) for p in sorted((self.local / "agg").glob("*.arrow"))]

    def error_parts(self) -> list[Path]:
        """Error parts in (file, batch) order."""
        self._sync("errors")
        return sorted((self.local / "errors").glob("*.jsonl"))

    def partitions(self) -> list[str]:
        """Partition sub-paths (``col=value[/col2=value2]``) that hold parts."""
        self._sync("data")
        base = self.data_dir()
        found = {p.parent.relative_to(base).as_posix() for p in base.rglob("f*-b*") if p.is_file()}
        return sorted(found - {"."})

    def data_parts(
        self, ext: str, partition: str | None = None, file_index: int | None = None
    ) -> list[Path]:
        """Output parts in (file, batch) order, of one partition and/or one input file."""
        pattern = f"f{file_index:06d}-b*{ext}" if file_index is not None else f"f*-b*{ext}"
        self._sync(f"data/{partition}" if partition else "data")
        return sorted(self.data_dir(partition).glob(pattern))

    def drop_file(self, file_index: int) -> None:
        """Delete every part of one input file (its input changed since the checkpoint)."""
        if self.uri is not None:
            stem = f"f{file_index:06d}-b"
            for uri in storage.list_files(self.uri):
                if uri.rpartition("/")[2].startswith(stem):
                    storage.delete(uri)
        for path in self.local.rglob(f"f{file_index:06d}-b*"):
            path.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the staging directory (and the local cache of a remote one)."""
        if self.uri is not None:
            storage.delete_tree(self.uri)
            if self._cache is not None:
                shutil.rmtree(self._cache, ignore_errors=True)
                self._cache = None
            return
        shutil.rmtree(self.root, ignore_errors=True)


def partition_path(columns: Sequence[str], values: Sequence[object]) -> str:
    """``col=value/col2=value2`` with values quoted for file names."""
    parts = []
    for column, value in zip(columns, values, strict=True):
        text = NULL_PARTITION if value is None else quote(str(value), safe="")
        parts.append(f"{quote(str(column), safe='')}={text}")
    return "/".join(parts)


def split_partitions(table: pa.Table, columns: Sequence[str]) -> list[tuple[str, pa.Table]]:
    """``table`` cut by the values of ``columns`` (missing columns count as null)."""
    for column in columns:
        if column not in table.column_names:
            table = table.append_column(column, pa.nulls(table.num_rows, pa.string()))
    keys = table.select(list(columns)).group_by(list(columns)).aggregate([]).to_pylist()
    out = []
    for key in keys:
        mask = None
        for column in columns:
            value = key[column]
            test = pc.is_null(table[column]) if value is None else pc.equal(table[column], value)
            test = pc.fill_null(test, False)
            mask = test if mask is None else pc.and_(mask, test)
        out.append((partition_path(columns, [key[c] for c in columns]), table.filter(mask)))
    return out


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
