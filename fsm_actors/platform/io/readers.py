"""One entry point for reading any supported file as Arrow chunks or as lists of dicts, and
how the reader is chosen: a file's format and compression, and its decompressed bytes.

``iter_chunks`` is what pipelines use: exact ``chunk_size`` chunks with the bad rows met on
the way. ``read_arrow_batches`` and ``read_record_batches`` are the simple forms: they hand bad
rows to ``on_error`` (or raise ``MalformedRecordError`` when there is none).

Formats are plain strings: ``csv``, ``tsv``, ``json`` (one array or one object), ``jsonl``,
``xml``, ``parquet``, ``text`` and ``log`` (one record per line); ``detect_format`` tells
them by extension, then by the first bytes. Compression is ``gzip``, ``zstd`` or ``None``;
it is a property of the byte stream, independent of the format (a Parquet file compresses its
pages itself, so a ``compression`` given for Parquet is the page codec). ``open_input`` gives
the decompressed bytes of a file; the writing side (``open_output``, ``compress_bytes``) is in
``fsm_actors.platform.io.writers``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from fsm_actors.platform.io import storage
from fsm_actors.platform.io.chunks import Chunk, Piece, rechunk
from fsm_actors.platform.io.csv_reader import DEFAULT_BLOCK_SIZE, read_csv_pieces
from fsm_actors.platform.io.errors import (
    CorruptStreamError,
    FormatError,
    MalformedRecordError,
    RowError,
)
from fsm_actors.platform.io.json_reader import read_json_pieces, read_jsonl_pieces
from fsm_actors.platform.io.text_reader import read_text_pieces
from fsm_actors.platform.io.xml_io import read_xml_pieces

Source = str | os.PathLike | BinaryIO | io.TextIOBase

FORMATS = ("csv", "tsv", "json", "jsonl", "xml", "parquet", "text", "log")
COMPRESSIONS = ("gzip", "zstd")

EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".xml": "xml",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "text",
    ".text": "text",
    ".log": "log",
}
COMPRESSION_EXTENSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
FORMAT_EXTENSION = {
    "csv": ".csv",
    "tsv": ".tsv",
    "json": ".json",
    "jsonl": ".jsonl",
    "xml": ".xml",
    "parquet": ".parquet",
    "text": ".txt",
    "log": ".log",
}
COMPRESSION_EXTENSION = {"gzip": ".gz", "zstd": ".zst"}

_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
_SNIFF_BYTES = 64 * 1024
_RAW_READ = 64 * 1024


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file: the one options object from a run's config to the format readers.

    Built once (``FileProcessingConfig.read_options()``, the FSM stream's arguments), held by
    ``FileJobSpec``, the plan and each worker's ``FileStepSpec``, and handed unchanged to the
    readers (with ``format`` set once it is known). ``None`` fields are detected or defaulted
    per format. ``csv_delimiter`` ``None``: ``,``, tab for TSV (see ``delimiter``).
    ``csv_column_types`` declares CSV column types (``{"zip": "string", "n": "int64"}``);
    ``csv_infer`` is ``"file"`` (one type per column from a scan of the whole file),
    ``"sample"`` (from the first block; later misfits are rejected rows) or ``"text"``
    (undeclared columns stay text); see ``fsm_actors.platform.io.csv_reader``.
    ``text_field_name`` and ``xml_record_element`` name the field of a text line and the
    element of an XML record, read and written alike.
    """

    format: str | None = None
    compression: str | None = "detect"
    encoding: str = "utf-8"
    csv_delimiter: str | None = None
    csv_has_header: bool = True
    skip_empty_lines: bool = True
    text_field_name: str = "text"
    log_patterns: Sequence[str] = field(default_factory=tuple)
    xml_record_element: str | None = None
    csv_column_types: Mapping[str, Any] | None = None
    csv_infer: str = "file"
    csv_block_size: int = DEFAULT_BLOCK_SIZE
    #: ``storage.StorageOptions`` of the stores read (shipped with the options to workers,
    #: where unpickling registers them)
    storage_options: Any = None

    def __post_init__(self) -> None:
        if self.csv_infer not in ("file", "sample", "text"):
            raise FormatError(
                f"csv infer={self.csv_infer!r}: expected 'file', 'sample' or 'text'")

    @property
    def delimiter(self) -> str:
        """The CSV field delimiter: ``csv_delimiter``, else tab for TSV, else ``,``."""
        if self.csv_delimiter:
            return self.csv_delimiter
        fmt = self.format
        return "\t" if str(getattr(fmt, "value", fmt) or "").lower() == "tsv" else ","


def iter_chunks(source: Source, options: ReadOptions, chunk_size: int) -> Iterator[Chunk]:
    """Chunks of ``source`` (a path, or a binary or text file object) of ``chunk_size`` records.

    Raises ``FormatError`` naming the file when its format is unknown or unreadable as a whole;
    malformed records inside a readable file are reported in the chunks' ``errors``.
    """
    return rechunk(_guarded(_pieces(source, options, chunk_size), _name(source)), chunk_size)


def _guarded(pieces: Iterator[Piece], name: str | None) -> Iterator[Piece]:
    """``pieces``, ended by a ``RowError`` instead of an exception when the bytes run out
    or turn bad mid-read (a truncated gzip/zstd file): the records before stay read."""
    try:
        yield from pieces
    except (CorruptStreamError, OSError) as exc:
        reason = str(exc) if isinstance(exc, FormatError) else f"{name}: read failed: {exc}"
        yield Piece(None, [RowError(name, f"read stopped: {reason}")])


def _pieces(source: Source, options: ReadOptions, chunk_size: int) -> Iterator[Piece]:
    name = _name(source)
    fmt = _resolve_format(source, options.format, name)
    is_path = isinstance(source, str | os.PathLike)
    compression = options.compression
    if is_path and compression == "detect":
        compression = detect_compression(source)

    def open_stream() -> BinaryIO:
        if is_path:
            return open_input(source, compression)
        return _binary(source)

    batch_rows = max(1, min(chunk_size, 65536))
    if fmt in ("csv", "tsv"):
        if not is_path and not _seekable(source):
            data = open_stream().read()
            reopen = lambda: pa.BufferReader(data)  # noqa: E731 - a restart re-reads the bytes
        else:
            reopen = open_stream if is_path else _rewinding(source)
        return read_csv_pieces(
            reopen,
            name,
            options if options.format == fmt else replace(options, format=fmt),
            # A caller's file object has one position: it cannot be read twice at once.
            concurrent_reads=is_path or not _seekable(source),
        )
    if fmt == "jsonl":
        return read_jsonl_pieces(open_stream(), name, options.encoding)
    if fmt == "json":
        return read_json_pieces(open_stream(), name, options.encoding, batch_rows)
    if fmt == "xml":
        return read_xml_pieces(
            open_stream(),
            name,
            encoding=options.encoding,
            record_element=options.xml_record_element,
            batch_rows=batch_rows,
        )
    if fmt in ("text", "log"):
        return read_text_pieces(
            open_stream(),
            name,
            encoding=options.encoding,
            skip_empty_lines=options.skip_empty_lines,
            text_field_name=options.text_field_name,
            patterns=options.log_patterns,
        )
    if is_path and storage.is_remote(os.fspath(source)) and not compression:
        source = storage.open_input(os.fspath(source), random_access=True)
        is_path = False
        compression = None
        return _parquet_pieces(source, name, batch_rows)
    return _parquet_pieces(
        source if is_path and not compression else open_stream(), name, batch_rows
    )


def _parquet_pieces(source: Any, name: str | None, batch_rows: int) -> Iterator[Piece]:
    try:
        if not isinstance(source, str | os.PathLike) and not _seekable(source):
            source = pa.BufferReader(source.read())
        parquet = pq.ParquetFile(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FormatError(f"{name}: not a readable Parquet file: {exc}", name) from exc
    try:
        for batch in parquet.iter_batches(batch_size=batch_rows):
            yield Piece(batch)
    except (pa.ArrowInvalid, OSError) as exc:
        yield Piece(None, [RowError(name, f"Parquet read stopped: {exc}")])


def _resolve_format(source: Source, fmt: str | None, name: str | None) -> str:
    if fmt is not None and str(getattr(fmt, "value", fmt)).lower() != "auto":
        return normalize_format(fmt)
    if isinstance(source, str | os.PathLike):
        return detect_format(source)
    if name:
        guessed, _ = split_extensions(name)
        if guessed:
            return guessed
    raise FormatError(f"cannot tell the format of stream {name or source!r}: pass format=", name)


def _name(source: Source) -> str | None:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else None


def _seekable(source: Any) -> bool:
    try:
        return bool(source.seekable())
    except (AttributeError, ValueError):
        return False


def _rewinding(source: Any) -> Callable[[], BinaryIO]:
    start = source.tell()

    def reopen() -> BinaryIO:
        source.seek(start)
        return _NoClose(_binary(source))

    return reopen


def _binary(source: Any) -> BinaryIO:
    if isinstance(source, io.TextIOBase):
        return _TextAsBytes(source)
    return source


class _NoClose(io.RawIOBase):
    """A caller's file object that a reader may 'close' without closing it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _TextAsBytes(io.RawIOBase):
    """A text file object read as UTF-8 bytes."""

    def __init__(self, inner: io.TextIOBase) -> None:
        self._inner = inner
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while len(self._pending) < len(buffer):
            text = self._inner.read(1 << 16)
            if not text:
                break
            self._pending += text.encode("utf-8")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _deliver(errors: list[RowError], on_error: Callable[[RowError], Any] | None) -> None:
    for error in errors:
        if on_error is None:
            raise MalformedRecordError(error)
        on_error(error)


def read_arrow_batches(
    source: Source,
    format: str | None = None,
    *,
    chunk_size: int = 65536,
    on_error: Callable[[RowError], Any] | None = None,
    **options: Any,
) -> Iterator[pa.RecordBatch]:
    """Record batches of ``source`` of ``chunk_size`` rows; ``options`` are ``ReadOptions``
    fields. Bad rows go to ``on_error``; without it the first one raises
    ``MalformedRecordError``."""
    for chunk in iter_chunks(source, ReadOptions(format=format, **options), chunk_size):
        _deliver(chunk.errors, on_error)
        if chunk.batch.num_rows:
            yield chunk.batch


def read_record_batches(
    path_or_file: Source,
    format: str | None = None,
    *,
    chunk_size: int = 1000,
    encoding: str = "utf-8",
    csv_delimiter: str = ",",
    csv_has_header: bool = True,
    skip_empty_lines: bool = True,
    text_field_name: str = "text",
    on_error: Callable[[RowError], Any] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Lists of up to ``chunk_size`` dicts with typed values (CSV ``"1"`` comes out as ``1``).

    CSV/TSV, JSON array, JSON Lines, XML, Parquet, text (one ``{text_field_name: line}`` per
    line); gzip/zstd detected from the name or first bytes. ``format`` ``None``/``"auto"``
    detects it. A ``csv_delimiter`` of ``","`` on a TSV file means tab.
    """
    options = ReadOptions(
        format=format,
        encoding=encoding,
        csv_delimiter=None if csv_delimiter == "," else csv_delimiter,
        csv_has_header=csv_has_header,
        skip_empty_lines=skip_empty_lines,
        text_field_name=text_field_name,
    )
    pending: list[dict[str, Any]] = []
    for chunk in iter_chunks(path_or_file, options, chunk_size):
        _deliver(chunk.errors, on_error)
        # Chunks end early where a field changes type; lists of dicts need not.
        pending.extend(chunk.batch.to_pylist())
        while len(pending) >= chunk_size:
            yield pending[:chunk_size]
            pending = pending[chunk_size:]
    if pending:
        yield pending


# Choosing the reader: a file's format and compression, and its decompressed bytes.


def normalize_format(fmt: str) -> str:
    """The canonical name of ``fmt`` (accepts enum values and aliases such as ``txt``)."""
    name = str(getattr(fmt, "value", fmt)).lower().lstrip(".")
    name = {"txt": "text", "ndjson": "jsonl", "pq": "parquet", "tab": "tsv"}.get(name, name)
    if name not in FORMATS:
        raise FormatError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return name


def split_extensions(path: str | os.PathLike) -> tuple[str | None, str | None]:
    """``(format, compression)`` from the file name alone (``a.csv.gz`` -> ``("csv", "gzip")``)."""
    suffixes = [s.lower() for s in Path(storage.basename(os.fspath(path))).suffixes]
    compression = None
    if suffixes and suffixes[-1] in COMPRESSION_EXTENSIONS:
        compression = COMPRESSION_EXTENSIONS[suffixes.pop()]
    fmt = EXTENSIONS.get(suffixes[-1]) if suffixes else None
    return fmt, compression


def detect_compression(path: str | os.PathLike) -> str | None:
    """``gzip``/``zstd``/``None`` for an existing file, from its extension or first bytes."""
    _, compression = split_extensions(path)
    if compression is not None or not storage.is_file(os.fspath(path)):
        return compression
    with storage.open_input(os.fspath(path)) as fh:
        head = fh.read(4)
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def detect_format(path: str | os.PathLike) -> str:
    """The format of ``path`` from its extension and, failing that, from its first bytes.

    A ``.json`` file whose content is one object per line is reported as ``jsonl``. Raises
    ``FormatError`` naming the file when neither the name nor the content says the format.
    """
    fmt, _ = split_extensions(path)
    exists = storage.is_file(os.fspath(path))
    if fmt == "json" and exists:
        return _sniff(path) or fmt
    if fmt is not None:
        return fmt
    if exists:
        sniffed = _sniff(path)
        if sniffed is not None:
            return sniffed
    raise FormatError(
        f"cannot tell the format of {os.fspath(path)!r}: give a known extension "
        f"({', '.join(sorted(EXTENSIONS))}) or pass format= explicitly",
        os.fspath(path),
    )


def _sniff(path: str | os.PathLike) -> str | None:
    try:
        with open_input(path) as stream:
            head = stream.read(_SNIFF_BYTES)
    except CorruptStreamError:  # truncated compressed data: the extension has to tell
        return None
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    if not text:
        return None
    if text[0] == "<":
        return "xml"
    if text[0] == "[":
        return "json"
    if text[0] == "{":
        return "jsonl" if _looks_like_jsonl(text) else "json"
    if b"\x00" in head:
        return None
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    if len(lines) >= 2:
        for delim, name in (("\t", "tsv"), (",", "csv")):
            counts = {ln.count(delim) for ln in lines[:-1]}
            if len(counts) == 1 and counts != {0}:
                return name
    return "text"


def _looks_like_jsonl(text: str) -> bool:
    first, _, rest = text.partition("\n")
    try:
        json.loads(first)
    except ValueError:
        return False
    return rest.lstrip().startswith("{") or not rest.strip()


def normalize_compression(compression: str | None) -> str | None:
    """``gzip``/``zstd``/``None`` for user spellings (``gz``, ``zst``, enum values)."""
    if compression is None:
        return None
    return _codec(str(getattr(compression, "value", compression)))


def _codec(compression: str) -> str:
    name = {"gz": "gzip", "zst": "zstd"}.get(compression.lower(), compression.lower())
    if name not in COMPRESSIONS:
        raise FormatError(
            f"unsupported compression {compression!r}; expected one of {', '.join(COMPRESSIONS)}"
        )
    return name


def open_input(path: str | os.PathLike, compression: str | None = "detect") -> BinaryIO:
    """A readable binary stream of the decompressed bytes of ``path``.

    ``compression="detect"`` uses ``detect_compression``; gzip members and zstd frames that
    were concatenated are read as one stream. The stream is a Python file object on purpose:
    handed a native Arrow stream, pyarrow's CSV reader reads ~40 MB ahead of the parser.
    """
    if compression == "detect":
        compression = detect_compression(path)
    if compression is None:
        return storage.open_input(os.fspath(path))
    codec = _codec(compression)
    raw = (
        storage.open_input(os.fspath(path))
        if storage.is_remote(os.fspath(path))
        else pa.OSFile(os.fspath(path), mode="r")
    )
    native = pa.CompressedInputStream(raw, codec)
    return _CheckedReader(_ArrowRaw(native, os.fspath(path), codec), 1 << 20)


class _CheckedReader(io.BufferedReader):
    """A buffered reader that raises its raw stream's failure instead of ending quietly: a
    read that gets nothing because the data turned bad raises the ``FormatError``."""

    def read(self, size: int | None = -1) -> bytes:
        return self._checked(super().read(size))

    def read1(self, size: int = -1) -> bytes:
        return self._checked(super().read1(size))

    def readline(self, size: int | None = -1) -> bytes:
        return self._checked(super().readline(size))

    def _checked(self, data: bytes) -> bytes:
        failed = self.raw.failed
        if failed is not None and not data and not self.raw.quiet:
            raise failed
        return data

    def end_at_last_line(self) -> bool:
        """Make this stream end cleanly at the last whole line before corrupt or truncated
        data instead of raising (a re-read that keeps every record before a cut). Call
        before the read reaches the bad data; ``False`` for a stream it cannot change."""
        if isinstance(self.raw, _ArrowRaw):
            self.raw.quiet = True
            return True
        return False


class _ArrowRaw(io.RawIOBase):
    """A native Arrow input stream seen as a Python raw stream. Corrupt or truncated
    compressed data raises ``FormatError`` naming the file (readers turn it into a row error
    after the records read before it); with ``quiet`` it ends at the last line end before
    the bad data instead."""

    def __init__(self, stream: Any, name: str, codec: str) -> None:
        self._stream = stream
        self._name = name
        self._codec = codec
        self._failed: CorruptStreamError | None = None
        self.quiet = False
        self._ready = b""
        self._pending = b""
        self._done = False

    @property
    def failed(self) -> CorruptStreamError | None:
        """Why the data stopped, once it has."""
        return self._failed

    def readable(self) -> bool:
        return True

    def _native(self) -> bytes | None:
        """The next decompressed bytes (``b""`` at the end), ``None`` once they turn bad."""
        try:
            # Small reads: a read that fails loses its data, so lose little before a cut.
            return self._stream.read(_RAW_READ)
        except (OSError, pa.ArrowInvalid) as exc:
            self._failed = CorruptStreamError(
                f"{self._name}: {self._codec} data is truncated or corrupt ({exc})", self._name
            )
            return None

    def readinto(self, buffer: Any) -> int:
        if self.quiet:
            return self._quiet_readinto(buffer)
        if not self._ready:
            if self._failed is not None:
                raise self._failed
            data = self._native()
            if data is None:
                return 0  # the caller gets what was read so far, then the error
            self._ready = data
        n = min(len(buffer), len(self._ready))
        buffer[:n] = self._ready[:n]
        self._ready = self._ready[n:]
        return n

    def _quiet_readinto(self, buffer: Any) -> int:
        while not self._ready and not self._done:
            data = self._native()
            if data is None:  # drop the cut line
                self._pending, self._done = b"", True
            elif not data:
                self._ready, self._pending, self._done = self._pending, b"", True
            else:
                block = self._pending + data
                cut = block.rfind(b"\n") + 1
                self._ready, self._pending = block[:cut], block[cut:]
        n = min(len(buffer), len(self._ready))
        buffer[:n] = self._ready[:n]
        self._ready = self._ready[n:]
        return n

    def close(self) -> None:
        self._stream.close()
        super().close()
