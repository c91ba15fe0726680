"""Writing Arrow batches (``ArrowWriter``) or lists of dicts (``RecordWriter``) to any format,
and making a file appear durably (``atomic_write``, ``fsync_path``).

``atomic_write`` is the one way an output or part file appears: written to a temp name in
the target's directory, fsynced, renamed, and the directory fsynced, so after a crash the
name holds either the old file or the complete new one, and a checkpoint written after it can
vouch for it.

Output is UTF-8. A writer opened with ``fragment=True`` writes only the body of a document
(CSV without header, JSON array elements without brackets, XML elements without the root), so
independently written fragments can be joined later with ``document_frame``'s prologue,
separator and epilogue; with compression every fragment is its own gzip member or zstd frame,
and the joined bytes are still one valid compressed file.

JSON Lines and JSON arrays are encoded at Arrow speed (``encode_rows``): one JSON object per
row, built column by column. Flat columns (numbers, bools, strings, dates, timestamps) are
encoded with pyarrow compute; nested, binary and other columns fall back to ``json.dumps`` per
value. Output is compact (``{"a":1,"b":"x"}``); floats keep a decimal point (``2.0``),
non-finite floats are written as Python's ``json`` writes them (``NaN``, ``Infinity``),
timestamps as ISO 8601.
"""

from __future__ import annotations

import io
import json
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fsm_actors.platform.io.arrow_schema import conform
from fsm_actors.platform.io.convert import dumps_value, records_to_table
from fsm_actors.platform.io.errors import FormatError
from fsm_actors.platform.io.readers import (
    COMPRESSION_EXTENSION,
    normalize_compression,
    normalize_format,
    split_extensions,
)
from fsm_actors.platform.io.xml_io import record_to_xml, xml_epilogue, xml_name, xml_prologue

_JSON_SEPARATOR = b",\n"


def fsync_path(path: str | os.PathLike) -> None:
    """Flush ``path`` (a file or a directory) to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: str | os.PathLike, write: Callable[[Path], None], *, fsync: bool = True
) -> None:
    """Call ``write(tmp)`` (which creates and closes ``tmp``), then fsync it, rename it to
    ``path`` and fsync the directory. On any error ``tmp`` is removed and ``path`` untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        if fsync:
            fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_path(path.parent)


def document_frame(
    fmt: str,
    schema: pa.Schema | None = None,
    *,
    csv_delimiter: str | None = None,
    xml_root: str = "records",
) -> tuple[bytes, bytes, bytes]:
    """``(prologue, separator, epilogue)`` that join body fragments of ``fmt`` into a document.

    ``schema`` gives the CSV header. Parquet has no byte-level frame (raises ``FormatError``).
    """
    fmt = normalize_format(fmt)
    if fmt in ("csv", "tsv"):
        header = b""
        if schema is not None and len(schema):
            sink = io.BytesIO()
            pacsv.write_csv(
                _csv_ready(pa.table({n: pa.array([], pa.string()) for n in schema.names})),
                sink,
                pacsv.WriteOptions(delimiter=_delimiter(fmt, csv_delimiter)),
            )
            header = sink.getvalue()
        return header, b"", b""
    if fmt == "json":
        return b"[\n", _JSON_SEPARATOR, b"\n]\n"
    if fmt == "xml":
        return xml_prologue(xml_root).encode(), b"", xml_epilogue(xml_root).encode()
    if fmt == "parquet":
        raise FormatError("Parquet files are merged by row groups, not joined as bytes")
    return b"", b"", b""


def _delimiter(fmt: str, delimiter: str | None) -> str:
    return delimiter or ("\t" if fmt == "tsv" else ",")


def _csv_ready(table: pa.Table) -> pa.Table:
    """Nested and binary columns as JSON text: CSV holds only flat values."""
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            column = pa.array([dumps_value(v) for v in column.to_pylist()], pa.string())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


class ArrowWriter:
    """Writes Arrow tables/batches to one file (or binary stream) in ``fmt``.

    Not thread-safe. The first write fixes the columns of CSV and the schema of Parquet; later
    writes are matched to them by column name with ``conform`` (a missing column is written
    empty; a new column raises ``FormatError``). ``schema`` fixes them before the first write
    instead (one type per column for the whole file). Call ``close`` (or use ``with``) to
    finish the file; with ``fsync=True`` a path target is on stable storage when ``close``
    returns (what a part file needs before a checkpoint vouches for it).
    """

    def __init__(
        self,
        target: str | os.PathLike | BinaryIO,
        fmt: str,
        *,
        compression: str | None = None,
        fragment: bool = False,
        csv_delimiter: str | None = None,
        text_field_name: str = "text",
        xml_root: str = "records",
        xml_record: str = "record",
        schema: pa.Schema | None = None,
        fsync: bool = False,
    ) -> None:
        self.format = normalize_format(fmt)
        self.compression = normalize_compression(compression)
        self.fragment = fragment
        self.fsync = fsync
        self.rows_written = 0
        self._delimiter = _delimiter(self.format, csv_delimiter)
        self._text_field = text_field_name
        self._xml_root = xml_root
        self._xml_record = xml_name(xml_record) if self.format == "xml" else xml_record
        self._schema: pa.Schema | None = schema
        self._declared = schema is not None
        self._started = False
        self._parquet: pq.ParquetWriter | None = None
        self._target = target
        if self.format == "parquet":
            self._stream = None
        elif isinstance(target, str | os.PathLike):
            self._stream = open_output(target, self.compression)
        else:
            self._stream = target
        if not fragment and self.format in ("json", "xml"):
            self._stream.write(document_frame(self.format, xml_root=xml_root)[0])

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        """Append the rows of ``data``."""
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        if table.num_rows == 0 and self._schema is not None and not self._declared:
            return
        first = self.rows_written == 0 and not self._started
        self._started = True
        if self._schema is None:
            self._schema = table.schema
        if self._declared or (self.format == "parquet" and not first):
            table = self._conform(table, types=True)
        elif self.format in ("csv", "tsv") and table.column_names != self._schema.names:
            table = self._conform(table, types=False)
        if self.format == "parquet":
            self._write_parquet(table)
        elif self.format in ("csv", "tsv"):
            self._write_csv(table, first)
        elif self.format == "jsonl":
            self._stream.write(encode_rows(table, "\n"))
        elif self.format == "json":
            self._write_json_array(table)
        elif self.format == "xml":
            text = "".join(record_to_xml(r, self._xml_record) + "\n" for r in table.to_pylist())
            self._stream.write(text.encode())
        else:
            self._write_text(table)
        self.rows_written += table.num_rows

    def _conform(self, table: pa.Table, *, types: bool) -> pa.Table:
        """``table`` under the fixed columns (and, with ``types``, their types)."""
        assert self._schema is not None
        extra = [n for n in table.column_names if n not in self._schema.names]
        if extra:
            raise FormatError(
                f"{self._name()}: columns {extra} appear after the {self.format} columns were "
                f"fixed ({self._schema.names}); write every column in the first batch, "
                "declare the schema, or use JSON Lines output",
                self._name(),
            )
        if types:
            try:
                return conform(table, self._schema)
            except FormatError as exc:
                raise FormatError(
                    f"{self._name()}: a batch does not fit the {self.format} schema fixed by "
                    f"the first batch or declared: {exc}",
                    self._name(),
                ) from exc
        names = self._schema.names
        return pa.table(
            [
                table[n] if n in table.column_names else pa.nulls(table.num_rows, f.type)
                for n, f in zip(names, self._schema, strict=True)
            ],
            names=names,
        )

    def _write_parquet(self, table: pa.Table) -> None:
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(
                self._target, table.schema, compression=self.compression or "snappy"
            )
        self._parquet.write_table(table)

    def _write_csv(self, table: pa.Table, first: bool) -> None:
        options = pacsv.WriteOptions(
            include_header=first and not self.fragment, delimiter=self._delimiter
        )
        pacsv.write_csv(_csv_ready(table), self._stream, options)

    def _write_json_array(self, table: pa.Table) -> None:
        body = encode_rows(table, ",\n")
        if body.size == 0:
            return
        if self.rows_written:
            self._stream.write(_JSON_SEPARATOR)
        self._stream.write(body[: body.size - len(_JSON_SEPARATOR)])

    def _write_text(self, table: pa.Table) -> None:
        if self._text_field in table.column_names:
            lines = [("" if v is None else str(v)) for v in table[self._text_field].to_pylist()]
            self._stream.write(("\n".join(lines) + "\n").encode() if lines else b"")
        else:
            self._stream.write(encode_rows(table, "\n"))

    def _name(self) -> str:
        target = self._target
        return os.fspath(target) if isinstance(target, str | os.PathLike) else repr(target)

    def close(self) -> None:
        """Finish the document (closing brackets, root tag, Parquet footer) and the file
        (fsynced with ``fsync=True``). A declared schema with no rows still gives the header
        (CSV) or the columns (Parquet)."""
        if self._declared and not self._started:
            self.write(self._schema.empty_table())
        if self.format == "parquet":
            if self._parquet is None:
                pq.write_table(pa.table({}), self._target)
            else:
                self._parquet.close()
        else:
            if not self.fragment and self.format in ("json", "xml"):
                self._stream.write(document_frame(self.format, xml_root=self._xml_root)[2])
            if isinstance(self._target, str | os.PathLike):
                self._stream.close()
            else:
                self._stream.flush()
        if self.fsync:
            self._sync()

    def _sync(self) -> None:
        target = self._target
        if isinstance(target, str | os.PathLike):
            fsync_path(target)
            return
        fileno = getattr(target, "fileno", None)
        if fileno is not None:
            try:
                os.fsync(fileno())
            except (OSError, ValueError, io.UnsupportedOperation):
                pass  # not a file (a pipe, BytesIO): nothing on disk to flush

    def __enter__(self) -> ArrowWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class RecordWriter:
    """Writes lists of dicts to ``path``; the format comes from ``format`` or the extension
    (``out.jsonl.gz`` is gzip-compressed JSON Lines). See ``ArrowWriter`` for the column rules.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        format: str | None = None,
        *,
        compression: str | None = None,
        csv_delimiter: str | None = None,
        text_field_name: str = "text",
        fsync: bool = False,
    ) -> None:
        ext_format, _ = split_extensions(path)
        fmt = format if format not in (None, "auto") else ext_format
        if fmt is None:
            raise FormatError(
                f"cannot tell the output format of {os.fspath(path)!r}: pass format=",
                os.fspath(path),
            )
        self.path = os.fspath(path)
        self._writer = ArrowWriter(
            path,
            fmt,
            compression=output_compression(path, compression, fmt),
            csv_delimiter=csv_delimiter,
            text_field_name=text_field_name,
            fsync=fsync,
        )

    @property
    def records_written(self) -> int:
        """Records written so far."""
        return self._writer.rows_written

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append ``records`` (an empty list is a no-op)."""
        if records:
            self._writer.write(records_to_table(records))

    def close(self) -> None:
        """Finish and close the file."""
        self._writer.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# JSON text of Arrow rows, column by column (JSON Lines and JSON array bodies).

_CONTROL = re.compile(rb"[\x00-\x1f]")
_NEEDS_ESCAPE = re.compile(rb'[\x00-\x1f"\\]')


def encode_rows(data: pa.Table | pa.RecordBatch, suffix: str) -> pa.Buffer:
    """The rows of ``data`` as JSON objects, each followed by ``suffix``, in one buffer."""
    if data.num_rows == 0:
        return pa.py_buffer(b"")
    if isinstance(data, pa.Table):
        data = data.combine_chunks()
    parts: list[Any] = []
    for i, (name, column) in enumerate(zip(data.column_names, data.columns, strict=True)):
        key = json.dumps(str(name), ensure_ascii=False)
        parts.append(("{" if i == 0 else ",") + key + ":")
        parts.append(pc.fill_null(_encode_column(_one_chunk(column)), "null"))
    parts.append("}" + suffix if parts else "{}" + suffix)
    if len(parts) == 1:
        return pa.py_buffer(parts[0].encode() * data.num_rows)
    joined = pc.binary_join_element_wise(*parts, "")
    return _values_buffer(joined)


def _one_chunk(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _values_buffer(strings: pa.Array) -> pa.Buffer:
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    _, offsets_buf, data_buf = strings.buffers()
    offsets = pa.Array.from_buffers(
        pa.int32(), len(strings) + 1, [None, offsets_buf], offset=strings.offset
    )
    return data_buf[offsets[0].as_py() : offsets[-1].as_py()]


def _encode_column(column: pa.Array) -> pa.Array:
    kind = column.type
    if pa.types.is_dictionary(kind):
        return _encode_column(column.cast(kind.value_type))
    if pa.types.is_null(kind):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        return column.cast(pa.string())
    if pa.types.is_floating(kind):
        text = column.cast(pa.string())
        marked = pc.or_(pc.match_substring(text, "."), pc.match_substring(text, "e"))
        if not pc.all(pc.is_finite(column)).as_py():
            marked = pc.or_(marked, pc.match_substring(text, "n"))
            text = pc.replace_substring(text, "inf", "Infinity")
            text = pc.replace_substring(text, "nan", "NaN")
        return pc.if_else(marked, text, pc.binary_join_element_wise(text, ".0", ""))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _quote(column.cast(pa.string()))
    if pa.types.is_timestamp(kind):
        text = pc.replace_substring(column.cast(pa.string()), " ", "T", max_replacements=1)
        return _quote(pc.replace_substring_regex(text, r"\.0+(Z?)$", r"\1"))
    if pa.types.is_date(kind) or pa.types.is_time(kind):
        return _quote(column.cast(pa.string()))
    return pa.array([dumps_value(v) for v in column.to_pylist()], pa.string())


def _quote(text: pa.Array) -> pa.Array:
    if len(text) and _NEEDS_ESCAPE.search(memoryview(_values_buffer(text))):
        escaped = pc.replace_substring(text, "\\", "\\\\")
        escaped = pc.replace_substring(escaped, '"', '\\"')
        for char, code in (("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
            escaped = pc.replace_substring(escaped, char, code)
        if _CONTROL.search(memoryview(_values_buffer(escaped))):
            return pa.array([dumps_value(v) for v in text.to_pylist()], pa.string())
        text = escaped
    return pc.binary_join_element_wise('"', text, '"', "")


# Compressed output.


def open_output(path: str | os.PathLike, compression: str | None = None) -> BinaryIO:
    """A writable binary stream to ``path`` that compresses with ``compression`` if given."""
    raw = pa.OSFile(os.fspath(path), mode="w")
    codec = normalize_compression(compression)
    if codec is None:
        return raw
    return pa.CompressedOutputStream(raw, codec)


def output_compression(
    path: str | os.PathLike, compression: str | None, fmt: str | None = None
) -> str | None:
    """The compression to write ``path`` with: ``compression`` if given, else what the name
    says (``out.jsonl.gz`` -> ``gzip``).

    A name whose compression extension names another codec than ``compression``
    (``compression="zstd"`` for ``out.jsonl.gz``) raises ``FormatError``: nothing could read
    the file by its name. Parquet compresses its pages, so its ``compression`` is the page
    codec and is not checked against the name.
    """
    _, named = split_extensions(path)
    if fmt is not None and normalize_format(fmt) == "parquet":
        return compression
    wanted = normalize_compression(compression)
    if wanted is not None and named is not None and wanted != named:
        suffix = Path(path).suffix
        raise FormatError(
            f"{os.fspath(path)}: compression={compression!r} but the name ends in {suffix!r} "
            f"({named}); name the output ...{COMPRESSION_EXTENSION[wanted]}, or drop "
            "compression= to follow the name",
            os.fspath(path),
        )
    return wanted or named


def compress_bytes(data: bytes, compression: str | None) -> bytes:
    """``data`` as one complete gzip member or zstd frame (unchanged without compression;
    empty stays empty, so an empty frame piece adds nothing to a joined file)."""
    compression = normalize_compression(compression)
    if not data or compression is None:
        return data
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, compression) as stream:
        stream.write(data)
    return sink.getvalue().to_pybytes()


class QuietStderr(io.TextIOWrapper):
    """Line-buffered text on file descriptor 2 that drops what it cannot write once its
    reader is gone (``2>&1 | head``): a user's ``print`` must not fail their record."""

    def __init__(self) -> None:
        super().__init__(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                         errors="backslashreplace", line_buffering=True)

    def write(self, text: str) -> int:
        try:
            return super().write(text)
        except BrokenPipeError:
            return len(text)

    def flush(self) -> None:
        try:
            super().flush()
        except BrokenPipeError:
            pass
