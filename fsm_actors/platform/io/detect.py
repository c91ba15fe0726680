"""Format and compression detection, opening (de)compressed byte streams, and compressing
bytes as whole gzip members / zstd frames (``compress_bytes``).

Formats are plain strings: ``csv``, ``tsv``, ``json`` (one array or one object), ``jsonl``,
``xml``, ``parquet``, ``text`` and ``log`` (one record per line). Compression is ``gzip``,
``zstd`` or ``None``; it is a property of the byte stream, independent of the format (a
Parquet file compresses its pages itself, so a ``compression`` given for Parquet is the page
codec).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from fsm_actors.platform.io import storage
from fsm_actors.platform.io.errors import CorruptStreamError, FormatError

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


def end_at_last_line(stream: BinaryIO) -> bool:
    """Make a stream of ``open_input`` end cleanly at the last whole line before corrupt or
    truncated data instead of raising (a re-read that keeps every record before a cut).
    Call before the read reaches the bad data; ``False`` for streams it cannot change."""
    raw = getattr(stream, "raw", None)
    if isinstance(raw, _ArrowRaw):
        raw.quiet = True
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


def open_output(path: str | os.PathLike, compression: str | None = None) -> BinaryIO:
    """A writable binary stream to ``path`` that compresses with ``compression`` if given."""
    raw = pa.OSFile(os.fspath(path), mode="w")
    if compression is None:
        return raw
    return pa.CompressedOutputStream(raw, _codec(compression))


def _codec(compression: str) -> str:
    name = {"gz": "gzip", "zst": "zstd"}.get(compression.lower(), compression.lower())
    if name not in COMPRESSIONS:
        raise FormatError(
            f"unsupported compression {compression!r}; expected one of {', '.join(COMPRESSIONS)}"
        )
    return name


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


def normalize_compression(compression: str | None) -> str | None:
    """``gzip``/``zstd``/``None`` for user spellings (``gz``, ``zst``, enum values)."""
    if compression is None:
        return None
    return _codec(str(getattr(compression, "value", compression)))


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
