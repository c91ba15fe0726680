"""Part files and their commit: the exactly-once half of file processing (plain core).

A run stages everything under one directory: ``data/[<partition>/]f<file>-b<batch><ext>``
(output), ``errors/f<file>-b<batch>.jsonl`` (rejected records), ``agg/...arrow`` (partial
aggregates) and, for CSV, ``...columns.json`` (the part's header). Every part is written to a
temp name and renamed, so a part exists only complete; the same file and batch always give
the same part, so writing it twice (a retried batch) changes nothing. The ``commit`` module
joins them into the final files.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq

from fsm_actors.platform.io import (
    COMPRESSION_EXTENSION,
    FORMAT_EXTENSION,
    ArrowWriter,
    RowError,
    atomic_write,
    compress_bytes,
)
from fsm_actors.platform.io.json_encode import json_default

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
    """The staging directory of one run."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def data_dir(self, partition: str | None = None) -> Path:
        return self.root / "data" / partition if partition else self.root / "data"

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
                pq.write_table(table, tmp, compression=compression or "snappy")
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
            atomic_write(directory / f"{stem}.columns.json", lambda tmp: tmp.write_bytes(columns))
        atomic_write(directory / f"{stem}{ext}", write)

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
        atomic_write(path, lambda tmp: tmp.write_bytes(compress_bytes(data, compression)))

    def write_errors(self, file_index: int, batch: int, errors: Sequence[RowError]) -> None:
        """Write the rejected records of one batch as JSON Lines."""
        text = "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in errors)
        path = self.root / "errors" / f"{part_stem(file_index, batch)}.jsonl"
        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def write_partial(self, file_index: int, batch: int, table: pa.Table) -> None:
        """Write one batch's partial aggregate."""
        path = self.root / "agg" / f"{part_stem(file_index, batch)}.arrow"
        atomic_write(
            path, lambda tmp: feather.write_feather(table, tmp, compression="uncompressed")
        )

    def partials(self) -> list[pa.Table]:
        """Every partial aggregate written."""
        return [feather.read_table(p) for p in sorted((self.root / "agg").glob("*.arrow"))]

    def error_parts(self) -> list[Path]:
        """Error parts in (file, batch) order."""
        return sorted((self.root / "errors").glob("*.jsonl"))

    def partitions(self) -> list[str]:
        """Partition sub-paths (``col=value[/col2=value2]``) that hold parts."""
        base = self.data_dir()
        found = {p.parent.relative_to(base).as_posix() for p in base.rglob("f*-b*") if p.is_file()}
        return sorted(found - {"."})

    def data_parts(
        self, ext: str, partition: str | None = None, file_index: int | None = None
    ) -> list[Path]:
        """Output parts in (file, batch) order, of one partition and/or one input file."""
        pattern = f"f{file_index:06d}-b*{ext}" if file_index is not None else f"f*-b*{ext}"
        return sorted(self.data_dir(partition).glob(pattern))

    def drop_file(self, file_index: int) -> None:
        """Delete every part of one input file (its input changed since the checkpoint)."""
        for path in self.root.rglob(f"f{file_index:06d}-b*"):
            path.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the staging directory."""
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
