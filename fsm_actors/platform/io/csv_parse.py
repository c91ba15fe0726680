"""Parsing CSV bytes into text batches: the header, record boundaries, and the parser loop.

``string_batches`` yields every record of a CSV stream once, in order, as text columns, with
the rows the parser rejected and each batch's first record ordinal (every record counted:
blank, bad and good), so a caller can give each record its file line. A field larger than the
parser's block grows the block and reads again, skipping what was delivered; corrupt
compressed data reads again up to the last whole line before it.
"""

from __future__ import annotations

import csv
import io
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from fsm_actors.platform.io.detect import end_at_last_line
from fsm_actors.platform.io.errors import CorruptStreamError

if TYPE_CHECKING:
    from fsm_actors.platform.io.readers import ReadOptions

DEFAULT_BLOCK_SIZE = 1 << 20
MAX_BLOCK_SIZE = 1 << 30
_HEAD_READ = 1 << 16


@dataclass
class Header:
    """The column names of a CSV file and where its data starts."""

    names: list[str]
    data_offset: int  # bytes of the header record (0 without a header)
    data_line: int  # the file line of the first data record


def read_header(
    open_stream: Callable[[], BinaryIO], opts: ReadOptions, name: str | None
) -> Header | None:
    """The header of the stream (``None`` for an empty stream)."""
    stream = open_stream()
    try:
        head, record = _first_record(stream)
    finally:
        stream.close()
    if not head.strip(b"\r\n\xef\xbb\xbf"):
        return None
    bom = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    text = record[bom:].decode(opts.encoding, errors="replace")
    fields = next(csv.reader(io.StringIO(text), delimiter=opts.delimiter), [])
    if not opts.csv_has_header:
        return Header([f"f{i}" for i in range(len(fields))], bom, 1)
    return Header(list(fields), len(record), 1 + record.count(b"\n"))


def _first_record(stream: BinaryIO) -> tuple[bytes, bytes]:
    """``(bytes read, the first record with its line end)``: the first line end outside
    quotes ends it."""
    head = b""
    while True:
        data = stream.read(_HEAD_READ)
        head += data
        end = record_end(head, 0)
        if end is not None:
            return head, head[:end]
        if not data:
            return head, head


def record_end(data: bytes | mmap.mmap, start: int, quotes: int = 0) -> int | None:
    """The offset just past the first ``\\n`` at or after ``start`` that is outside quotes
    (``quotes``: the quote characters before ``start``), or ``None``."""
    pos = start
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return None
        quotes += data[pos:nl].count(b'"')  # a slice: mmaps have no count()
        if quotes % 2 == 0:
            return nl + 1
        pos = nl + 1


@dataclass
class RawBatch:
    """A text batch and the invalid rows met with it; ``first`` is the ordinal (1-based,
    every record of the data counted, blank and bad ones too) of its first record."""

    batch: pa.RecordBatch | None
    invalid: list[tuple[int, str, str]] = field(default_factory=list)  # ordinal, text, reason
    first: int = 1
    stopped: str | None = None

    @property
    def end(self) -> int:
        return (
            self.first + (self.batch.num_rows if self.batch is not None else 0) + len(self.invalid)
        )


def string_batches(
    data: Callable[[], BinaryIO], header: Header, opts: ReadOptions, name: str | None
) -> Iterator[RawBatch]:
    """Text batches of ``data`` in order, each record delivered once; the block grows when a
    field does not fit it. A read that cannot go on ends with a ``RawBatch`` whose ``stopped``
    says why."""
    block = opts.csv_block_size
    done = 1
    stopped: str | None = None
    while True:
        stream = data()
        if stopped is not None and not end_at_last_line(stream):
            stream.close()
            break
        try:
            for raw in _one_pass(stream, header, opts, block):
                if raw.end <= done:
                    continue
                yield _trim(raw, done) if raw.first < done else raw
                done = raw.end
            break
        except pa.ArrowInvalid as exc:
            if "straddl" in str(exc) and block < MAX_BLOCK_SIZE:
                block *= 4
                continue
            stopped = f"CSV read stopped: {exc}"
            break
        except (CorruptStreamError, OSError) as exc:
            if stopped is not None:
                break
            # The parser reads ahead: read again up to the last whole line before the bad
            # data so that every record before it is kept.
            stopped = f"read stopped: {exc}"
    if stopped is not None:
        yield RawBatch(None, [], done, stopped)


def _one_pass(stream: BinaryIO, header: Header, opts: ReadOptions, block: int) -> Iterator[RawBatch]:
    invalid: list[tuple[int, str, str]] = []

    def on_invalid(row) -> str:
        reason = f"expected {row.expected_columns} fields, got {row.actual_columns}"
        invalid.append((row.number, row.text, reason))
        return "skip"

    read_opts = pacsv.ReadOptions(
        use_threads=False, block_size=block, encoding=opts.encoding, column_names=header.names
    )
    parse_opts = pacsv.ParseOptions(
        delimiter=opts.delimiter,
        newlines_in_values=True,
        ignore_empty_lines=False,
        invalid_row_handler=on_invalid,
    )
    utf8 = opts.encoding.lower().replace("-", "").replace("_", "") == "utf8"
    convert_opts = pacsv.ConvertOptions(
        check_utf8=not utf8, column_types={c: pa.string() for c in header.names}
    )
    first = 1
    try:
        try:
            reader = pacsv.open_csv(stream, read_opts, parse_opts, convert_opts)
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                return
            raise
        for batch in reader:
            # The parser reports bad rows a block ahead of the batch it yields: give each
            # batch the bad rows whose ordinals fall among its records.
            invalid.sort()
            end, mine = first + batch.num_rows, 0
            while mine < len(invalid) and invalid[mine][0] < end:
                end, mine = end + 1, mine + 1
            raw = RawBatch(batch, invalid[:mine], first)
            del invalid[:mine]
            first = raw.end
            yield raw
        if invalid:
            yield RawBatch(None, sorted(invalid), first)
    finally:
        stream.close()


def _trim(raw: RawBatch, done: int) -> RawBatch:
    """``raw`` without the records before ordinal ``done``."""
    bad = {o for o, _, _ in raw.invalid}
    ordinals = valid_ordinals(raw.first, raw.batch.num_rows if raw.batch else 0, bad)
    keep = sum(1 for o in ordinals if o < done)
    batch = raw.batch.slice(keep) if raw.batch is not None else None
    return RawBatch(batch, [i for i in raw.invalid if i[0] >= done], done, raw.stopped)


def valid_ordinals(first: int, n_valid: int, bad: set[int]) -> list[int]:
    out: list[int] = []
    ordinal = first
    while len(out) < n_valid:
        if ordinal not in bad:
            out.append(ordinal)
        ordinal += 1
    return out


def skip_bytes(stream: BinaryIO, offset: int) -> BinaryIO:
    """``stream`` positioned ``offset`` bytes in."""
    remaining = offset
    while remaining > 0:
        data = stream.read(min(remaining, 1 << 20))
        if not data:
            break
        remaining -= len(data)
    return stream


class RecordText:
    """The text of records as written in the file, found by file line, for error entries.

    A second, forward-only read of ``data`` (opened on first use; ``first_line`` is the
    file line where it starts): asked for records in line order, it reads the data at most
    once. ``text`` gives a record's bytes as written (quotes kept, the line end dropped)
    when they parse back to the record's fields, else the fields written as minimal CSV,
    which parse back to the same fields too (always so without ``data``).
    """

    _READ = 1 << 20

    def __init__(
        self, data: Callable[[], BinaryIO] | None, first_line: int, opts: ReadOptions
    ) -> None:
        self._data = data
        self._opts = opts
        self._stream: BinaryIO | None = None
        self._failed = data is None
        self._buf = b""
        self._at = 0  # the start of file line ``_line`` in ``_buf``
        self._line = first_line

    def text(self, line: int, fields: list[bytes]) -> str:
        """The record at file ``line`` whose fields (as the parser gave them, UTF-8) are
        ``fields``; bytes that do not decode are backslash escapes."""
        lines = 1 + sum(f.count(b"\n") for f in fields)
        original = self._lines(line, lines)
        if original is not None and self._same(original, fields):
            return original.decode(self._opts.encoding, errors="backslashreplace")
        return csv_text(fields, self._opts.delimiter)

    def _lines(self, line: int, count: int) -> bytes | None:
        if self._failed or line < self._line:
            return None
        try:
            if self._stream is None:
                assert self._data is not None
                self._stream = self._data()
            if not self._skip_to(line):
                return None
            end = self._at
            for _ in range(count):
                nl = self._buf.find(b"\n", end)
                while nl < 0:
                    more = self._stream.read(self._READ)
                    if not more:
                        nl = len(self._buf)
                        break
                    self._buf += more
                    nl = self._buf.find(b"\n", end)
                end = nl + 1
        except (OSError, ValueError):  # corrupt data, a closed stream: fields as CSV instead
            self.close()
            self._failed = True
            return None
        text = self._buf[self._at : end]
        if text.endswith(b"\n"):
            text = text[:-2] if text.endswith(b"\r\n") else text[:-1]
        return text

    def _skip_to(self, line: int) -> bool:
        """Move to the start of file ``line``; ``False`` past the end of the data."""
        assert self._stream is not None
        while True:
            ahead = self._buf.count(b"\n", self._at)
            if self._line + ahead >= line:
                break
            self._line += ahead
            last = self._buf.rfind(b"\n", self._at)
            self._buf, self._at = self._buf[max(last + 1, self._at) :], 0
            more = self._stream.read(self._READ)
            if not more:
                return False
            self._buf += more
        while self._line < line:
            self._at = self._buf.index(b"\n", self._at) + 1
            self._line += 1
        # Keep memory bounded: drop the lines before this one.
        self._buf, self._at = self._buf[self._at :], 0
        return True

    def _same(self, original: bytes, fields: list[bytes]) -> bool:
        text = original.decode(self._opts.encoding, errors="surrogateescape")
        parsed = list(csv.reader(io.StringIO(text, newline=""), delimiter=self._opts.delimiter))
        return parsed == [[f.decode("utf-8", errors="surrogateescape") for f in fields]]

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def csv_text(fields: list[bytes], delimiter: str = ",") -> str:
    """``fields`` (UTF-8) as one CSV record, quoted where needed, without a line end;
    bytes that do not decode are backslash escapes."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([f.decode("utf-8", errors="surrogateescape") for f in fields])
    text = out.getvalue()[:-2]
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", "backslashreplace")
