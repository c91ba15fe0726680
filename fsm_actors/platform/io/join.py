"""Joining part files into one output, atomically (through ``writers.atomic_write``).

``join_parts`` joins parts written by ``ArrowWriter(fragment=True)`` (or Parquet
files) into one output that way: byte formats by concatenation inside the format's frame
(each compressed part is its own gzip member or zstd frame, which readers take as one
stream), Parquet by copying row groups (``stitch_parquet``) when the parts agree, else by
rewriting them under one schema (``unify_schemas`` / ``conform``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fsm_actors.platform.io.arrow_schema import conform, unify_schemas
from fsm_actors.platform.io.errors import FormatError
from fsm_actors.platform.io.parquet_stitch import stitch_parquet
from fsm_actors.platform.io.readers import normalize_compression, normalize_format, open_input
from fsm_actors.platform.io.writers import ArrowWriter, atomic_write, compress_bytes, document_frame


def join_parts(
    target: str | os.PathLike,
    parts: Sequence[str | os.PathLike],
    fmt: str,
    *,
    compression: str | None = None,
    columns: Sequence[Sequence[str]] | None = None,
    csv_delimiter: str | None = None,
    xml_root: str = "records",
    fsync: bool = True,
) -> None:
    """Join ``parts`` (in the order given) into ``target`` with ``atomic_write``.

    Byte formats: ``compression`` is the parts' compression (they are joined as bytes), and
    ``columns`` the CSV/TSV header of each part; parts with different headers are re-read as
    text and written under the union of their columns. Parquet: ``compression`` is the page
    codec wanted (``None``: keep the parts' pages); parts with one schema and that codec are
    stitched without decoding, others rewritten under ``unify_schemas``. No parts: an empty
    document (a header-only CSV when ``columns`` has one entry).
    """
    fmt = normalize_format(fmt)
    paths = [Path(p) for p in parts]
    if fmt == "parquet":
        atomic_write(target, lambda tmp: _join_parquet(tmp, paths, compression), fsync=fsync)
        return
    compression = normalize_compression(compression)
    schema = None
    if fmt in ("csv", "tsv"):
        headers = [list(c) for c in columns] if columns is not None else None
        if headers and any(h != headers[0] for h in headers):
            atomic_write(
                target,
                lambda tmp: _rewrite_csv(tmp, paths, headers, fmt, compression, csv_delimiter),
                fsync=fsync,
            )
            return
        if headers:
            schema = pa.schema([(n, pa.string()) for n in headers[0]])
    prologue, separator, epilogue = document_frame(
        fmt, schema, csv_delimiter=csv_delimiter, xml_root=xml_root
    )

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            concat_parts(out, paths, prologue, separator, epilogue, compression)

    atomic_write(target, write, fsync=fsync)


def concat_parts(
    out: BinaryIO,
    parts: Sequence[Path],
    prologue: bytes,
    separator: bytes,
    epilogue: bytes,
    compression: str | None,
) -> None:
    """Write ``prologue``, the parts' bytes with ``separator`` between them, and
    ``epilogue`` to ``out``; the frame pieces compressed like the parts."""
    out.write(compress_bytes(prologue, compression))
    between = compress_bytes(separator, compression)
    for i, part in enumerate(parts):
        if i and between:
            out.write(between)
        with open(part, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
    out.write(compress_bytes(epilogue, compression))


def _join_parquet(tmp: Path, parts: list[Path], compression: str | None) -> None:
    codec = None if compression is None else _parquet_codec(compression)
    nonempty = [p for p in parts if pq.read_metadata(p).num_columns]
    if nonempty:
        try:
            stitch_parquet(tmp, nonempty, codec)
            return
        except FormatError:  # parts that differ: rewrite them under one schema
            pass
    schema = unify_schemas(pq.read_schema(p) for p in nonempty)
    with pq.ParquetWriter(tmp, schema, compression=codec or "snappy") as writer:
        for part in nonempty:
            writer.write_table(conform(pq.read_table(part), schema))


def _parquet_codec(compression: str) -> str:
    name = str(getattr(compression, "value", compression)).lower()
    return {"gz": "gzip", "zst": "zstd", "uncompressed": "none"}.get(name, name)


def _rewrite_csv(
    tmp: Path,
    parts: list[Path],
    headers: list[list[str]],
    fmt: str,
    compression: str | None,
    delimiter: str | None,
) -> None:
    union = list(dict.fromkeys(c for h in headers for c in h))
    delim = delimiter or ("\t" if fmt == "tsv" else ",")
    with ArrowWriter(tmp, fmt, compression=compression, csv_delimiter=delim) as writer:
        text = pa.schema([(c, pa.string()) for c in union])
        for part, header in zip(parts, headers, strict=True):
            with open_input(part, compression) as stream:
                data = stream.read()
            if not data:
                continue
            table = pacsv.read_csv(
                pa.BufferReader(data),
                pacsv.ReadOptions(column_names=header),
                pacsv.ParseOptions(delimiter=delim, newlines_in_values=True),
                pacsv.ConvertOptions(column_types={c: pa.string() for c in header}),
            )
            writer.write(conform(table, text))
