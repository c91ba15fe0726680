"""CSV/TSV to Arrow with one type per column for the whole file, skipping malformed rows.

Three parts: parsing bytes into text batches (``read_header``, ``string_batches``: record
boundaries, the parser loop, ``RecordText`` for the text of rejected records as written),
typing them (``read_csv_pieces``, ``file_types``, ``typed_pieces``), and the column type
rules they use (``column_kind``, ``fits``, ``convert_column``, ``arrow_type``: pure functions
over Arrow arrays, no I/O, also used by the XML reader and the byte-range scan). Every option
comes from one ``ReadOptions``.

Built on pyarrow's streaming reader (constant memory, one block at a time, single-threaded so
rejected rows are reported in file order and land in the same chunk on every re-read). Every
field is parsed as text; then each column gets a type:

* ``infer="file"`` (the default) reads the file once before the first record is returned and
  gives each column the one type all of its values fit without changing (a column that holds
  ``C70000`` in row 70,000 is text from row 1); ``infer="sample"`` decides the types from
  the first block alone (no scan: for speed), and a later value that does not fit its
  column's type rejects its row instead of changing the type; ``infer="text"`` keeps every
  column text;
* ``column_types`` declares types for some or all columns (declared columns are not
  inferred); a value that does not fit its declared type rejects its row.

Bad input never ends a read: a row with the wrong number of fields, or bytes that are not
valid UTF-8, is a ``RowError``; a field larger than the parser's block makes the read start
again with a larger block (up to 1 GB), skipping what was already returned. A ``RowError``'s
``line`` is the line in the file where the bad record starts, counting the lines of quoted
newlines before it; its ``raw`` is the record's text as written (quotes kept), so parsing it
again with the same options gives the same fields. A read that cannot go on (a truncated
compressed stream, an unterminated quote) ends with one ``RowError`` saying so; the records
before it are kept.

Column types are inferred so that no value changes, or declared by the user. A CSV column
is read as text and given a type only when every value of the column (across the whole
file) reads back as the same text, so nothing is rewritten silently:

* ``int64`` when every value is an integer written the canonical way: ``00501`` (a zip
  code), ``+4917612345`` (a phone number), ``-0`` and integers beyond 64 bits stay text;
* ``float64`` when every value is a plain decimal number (no leading zeros, ``+``, ``inf``
  or ``nan``) that its double prints back as: any with up to 15 significant digits
  (``2.50`` is ``2.5``), and longer ones as ``repr``/pandas (``-352334.4703336753``) or
  ``%.17g`` write them; ``12345678901234567890`` and ``1e400`` stay text;
* ``bool`` for ``true``/``false`` in any case;
* ``null`` for a column with no values at all.

Empty fields and pyarrow's null spellings (``NA``, ``NULL``, ``null``, ``N/A``...) are nulls in
typed columns (bool included) and stay as written in text columns. ``fits`` (the inference)
and ``convert_column`` (the conversion) agree: a column inferred as a kind converts without
a rejected row. Dates and times stay text: declare them
(``column_types={"day": "date32"}``) to get Arrow dates. Declared types accept any Arrow type
name (``int64``, ``float32``, ``string``, ``bool``, ``date32``, ``timestamp[ms]``,
``decimal128(12,2)``...) or ``pa.DataType``; a value that does not fit its declared type
rejects its row.
"""

from __future__ import annotations

import csv
import io
import mmap
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from fsm_actors.platform.io.chunks import Piece, consecutive
from fsm_actors.platform.io.errors import CorruptStreamError, FormatError, RowError, raw_text

if TYPE_CHECKING:
    from fsm_actors.platform.io.readers import ReadOptions

DEFAULT_BLOCK_SIZE = 1 << 20
MAX_BLOCK_SIZE = 1 << 30
_HEAD_READ = 1 << 16


def read_csv_pieces(
    open_stream: Callable[[], BinaryIO],
    name: str | None,
    opts: ReadOptions,
    *,
    concurrent_reads: bool = True,
) -> Iterator[Piece]:
    """Pieces of a CSV stream read with ``opts`` (its ``csv_*`` fields, ``encoding``,
    ``skip_empty_lines``; ``opts.delimiter`` follows ``format``); ``open_stream`` is called
    again for the type scan and for a restart with a larger block, and must give the same
    bytes each time. With ``concurrent_reads`` (two of its streams can be read at once: not
    so for a caller's file object) a rejected row's ``raw`` is its text as written, else its
    fields as CSV."""
    header = read_header(open_stream, opts, name)
    if header is None:
        return
    data = lambda: skip_bytes(open_stream(), header.data_offset)  # noqa: E731
    types, multiline = file_types(data, header, opts, name)
    yield from typed_pieces(data, header, opts, name, types, multiline, concurrent_reads)


def file_types(
    data: Callable[[], BinaryIO], header: Header, opts: ReadOptions, name: str | None
) -> tuple[dict[str, pa.DataType], bool]:
    """One type per column (declared, else from a scan of the whole file with
    ``infer="file"``, else text) and whether any text value holds a line break."""
    declared = declared_types(opts.csv_column_types)
    unknown = [c for c in declared if c not in header.names]
    if unknown:
        raise FormatError(
            f"{name}: column_types names columns {unknown} that the file does not have "
            f"(its columns: {header.names})",
            name,
        )
    if opts.csv_infer != "text" and len(declared) < len(header.names):
        kinds, multiline = scan_kinds(data, header, opts, skip=declared)
    else:
        kinds, multiline = {}, True
    types = {
        c: declared.get(c) or kind_type(kinds.get(c, "null") if opts.csv_infer != "text" else "string")
        for c in header.names
    }
    return types, multiline


def scan_kinds(
    data: Callable[[], BinaryIO],
    header: Header,
    opts: ReadOptions,
    skip: Mapping[str, Any] = {},  # noqa: B006 - read only
) -> tuple[dict[str, str], bool]:
    """The kind of every column not in ``skip`` over all of ``data`` (over its first block
    with ``infer="sample"``), and whether any value holds a line break (then record lines
    must be counted; always ``True`` for a sample)."""
    kinds: dict[str, str] = {}
    multiline = opts.csv_infer == "sample"
    for seen, raw in enumerate(string_batches(data, header, opts, None)):
        if opts.csv_infer == "sample" and seen:
            break
        batch = raw.batch
        if batch is None or not batch.num_rows:
            continue
        bad = _bad_utf8(batch, [c for c in batch.schema.names if kinds.get(c) != "string"])
        if bad:
            batch = batch.filter(pa.array([i not in bad for i in range(batch.num_rows)]))
        blank = _blank(batch) if opts.skip_empty_lines else None
        if blank is not None:
            batch = batch.filter(pc.invert(blank))
        kinds = kinds_of(batch, kinds, skip)
        if not multiline:  # typed kinds hold no line breaks: look at text columns only
            multiline = any(
                pc.any(pc.match_substring(batch.column(c), "\n")).as_py()
                for c in batch.schema.names
                if kinds.get(c, "string") == "string"
            )
    return kinds, multiline


def typed_pieces(
    data: Callable[[], BinaryIO],
    header: Header,
    opts: ReadOptions,
    name: str | None,
    types: Mapping[str, pa.DataType],
    multiline: bool = True,
    concurrent_reads: bool = True,
) -> Iterator[Piece]:
    """Pieces of ``data`` with ``types``; error lines counted from ``header.data_line``.
    A rejected row's ``raw`` is its text as written (``RecordText``, a second read of
    ``data``, with ``concurrent_reads``), else its fields written as CSV."""
    schema = pa.schema([(c, types[c]) for c in header.names])
    extra = 0  # line breaks inside the records delivered so far
    originals = RecordText(data if concurrent_reads else None, header.data_line, opts)
    try:
        for raw in string_batches(data, header, opts, name):
            if raw.stopped is not None:
                line = _line(header, raw.first, extra)
                yield Piece(None, [RowError(name, raw.stopped, line=line)])
                return
            piece, extra = _typed(raw, header, opts, name, schema, extra, multiline, originals)
            yield piece
    finally:
        originals.close()


def _line(header: Header, ordinal: int, extra: int) -> int:
    return header.data_line + ordinal - 1 + extra


def _typed(
    raw: RawBatch,
    header: Header,
    opts: ReadOptions,
    name: str | None,
    schema: pa.Schema,
    extra: int,
    multiline: bool,
    originals: RecordText,
) -> tuple[Piece, int]:
    batch = raw.batch if raw.batch is not None else _empty(header)
    breaks = _breaks(batch) if multiline and batch.num_rows else None
    invalid_breaks = [text.count("\n") for _, text, _ in raw.invalid]
    rejected: dict[int, str] = {}  # valid-row index -> reason
    # Only text columns need a UTF-8 check: a typed value that is not UTF-8 fails its cast.
    texts = [f.name for f in schema if pa.types.is_string(f.type)]
    raw_values = _bad_utf8(batch, texts)
    if raw_values:
        rejected.update((i, "invalid UTF-8 bytes") for i in raw_values)
        batch = _blank_rows(batch, raw_values)
    columns = []
    for column, target in zip(batch.columns, schema, strict=True):
        converted, bad = convert_column(column, target.type)
        for i in bad:
            value = column.cast(pa.binary())[i].as_py()
            try:
                shown = repr(value.decode("utf-8"))
            except UnicodeDecodeError:
                raw_values.setdefault(i, _row_bytes(batch, i))
                rejected.setdefault(i, "invalid UTF-8 bytes")
                continue
            rejected.setdefault(i, f"column {target.name!r}: {shown} is not {target.type}")
        columns.append(converted)
    table = pa.RecordBatch.from_arrays(columns, schema=schema)
    drop = _blank(batch) if opts.skip_empty_lines else None
    errors: list[RowError] = []
    row_lines = _valid_lines(raw, header, extra, breaks, batch.num_rows)
    if raw.invalid or rejected:
        ordinals = valid_ordinals(raw.first, batch.num_rows, {o for o, _, _ in raw.invalid})
        lines = _record_lines(raw, ordinals, breaks, invalid_breaks, header, extra)
        row_lines = pa.array(lines["valid"], pa.int64())
        for (_, text, reason), line in zip(raw.invalid, lines["invalid"], strict=True):
            errors.append(RowError(name, reason, raw_text(text), line=line))
        for i, reason in sorted(rejected.items()):
            values = raw_values.get(i) or _row_bytes(batch, i)
            line = lines["valid"][i]
            text = raw_text(originals.text(line, values))
            errors.append(RowError(name, reason, text, line=line))
        errors.sort(key=lambda e: e.line or 0)
    if rejected:
        bad = pa.array([i in rejected for i in range(batch.num_rows)], pa.bool_())
        drop = bad if drop is None else pc.or_(drop, bad)
    if drop is not None and pc.any(drop).as_py():
        keep = pc.invert(drop)
        table = table.filter(keep)
        row_lines = row_lines.filter(keep)
    total_breaks = (pc.sum(breaks).as_py() or 0 if breaks is not None else 0) + sum(invalid_breaks)
    return Piece(table, errors, row_lines), extra + total_breaks


def _valid_lines(
    raw: RawBatch, header: Header, extra: int, breaks: pa.Array | None, n: int
) -> pa.Array:
    """The file line of each row of a batch without invalid rows: its ordinal's line plus
    the line breaks inside the rows before it (``_record_lines`` handles the others)."""
    base = _line(header, raw.first, extra)
    lines = consecutive(base, n)
    if breaks is not None and n:
        before = pc.subtract(pc.cumulative_sum(breaks), breaks)
        lines = pc.add(lines, pc.cast(before, pa.int64()))
    return lines


def _record_lines(raw, ordinals, breaks, invalid_breaks, header, extra) -> dict[str, list[int]]:
    """File lines of the valid rows and of the invalid rows of ``raw``."""
    valid_breaks = breaks.to_pylist() if breaks is not None else [0] * len(ordinals)
    by_ordinal: dict[int, int] = dict(zip(ordinals, valid_breaks, strict=True))
    for (ordinal, _, _), n in zip(raw.invalid, invalid_breaks, strict=True):
        by_ordinal[ordinal] = n
    lines: dict[int, int] = {}
    seen = extra
    for ordinal in range(raw.first, raw.end):
        lines[ordinal] = _line(header, ordinal, seen)
        seen += by_ordinal.get(ordinal, 0)
    return {"valid": [lines[o] for o in ordinals], "invalid": [lines[o] for o, _, _ in raw.invalid]}


def _breaks(batch: pa.RecordBatch) -> pa.Array | None:
    """Line breaks inside each row's fields (``None`` when there are none)."""
    total = None
    for column in batch.columns:
        if not pc.any(pc.match_substring(column, "\n")).as_py():
            continue
        counts = pc.count_substring(column, "\n")
        total = counts if total is None else pc.add(total, counts)
    return pc.fill_null(total, 0) if total is not None else None


def _blank(batch: pa.RecordBatch) -> pa.Array | None:
    """Rows whose every field is empty: blank lines (or lines of only delimiters); ``None``
    when there are none."""
    if not batch.num_columns or not batch.num_rows:
        return None
    mask = pc.equal(batch.column(0), "")
    if not pc.any(mask).as_py():
        return None
    for column in batch.columns[1:]:
        mask = pc.and_(mask, pc.equal(column, ""))
    return pc.fill_null(mask, False)


def _empty(header: Header) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(
        [], schema=pa.schema([(c, pa.string()) for c in header.names])
    )


def _bad_utf8(batch: pa.RecordBatch, names: list[str]) -> dict[int, list[bytes]]:
    """Rows holding bytes that are not UTF-8 in the columns ``names``, with every field of
    the row as bytes."""
    bad: set[int] = set()
    for name in names:
        column = batch.column(name)
        try:
            column.validate(full=True)
        except pa.ArrowInvalid:
            for i, value in enumerate(column.cast(pa.binary()).to_pylist()):
                if value is not None:
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError:
                        bad.add(i)
    return {i: _row_bytes(batch, i) for i in sorted(bad)}


def _row_bytes(batch: pa.RecordBatch, i: int) -> list[bytes]:
    return [_as_bytes(c.cast(pa.binary())[i].as_py()) for c in batch.columns]


def _blank_rows(batch: pa.RecordBatch, rows: Mapping[int, Any]) -> pa.RecordBatch:
    """``batch`` with the fields of ``rows`` emptied (they are rejected, not converted)."""
    mask = pa.array([i in rows for i in range(batch.num_rows)])
    columns = [pc.if_else(mask, b"", c.cast(pa.binary())).cast(pa.string()) for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode()

# -- parsing: bytes into text batches ------------------------------------------------------
# ``string_batches`` yields every record of a CSV stream once, in order, as text columns, with
# the rows the parser rejected and each batch's first record ordinal (every record counted:
# blank, bad and good), so a caller can give each record its file line. A field larger than
# the parser's block grows the block and reads again, skipping what was delivered; corrupt
# compressed data reads again up to the last whole line before it.


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


def _end_at_last_line(stream: BinaryIO) -> bool:
    """Make a stream of ``readers.open_input`` end at the last whole line before corrupt or
    truncated data (its ``end_at_last_line``); ``False`` for a stream without it."""
    end = getattr(stream, "end_at_last_line", None)
    return bool(end is not None and end())


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
        if stopped is not None and not _end_at_last_line(stream):
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


# Column types: the rules that give a text column one type (pure, no I/O).

NULL_SPELLINGS = pa.array(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
     "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"],
)  # fmt: skip
_FLOAT = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]{1,3})?$|^-?\.[0-9]+$"
_ARROW = {
    "null": pa.null(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
}


def column_kind(column: pa.Array, known: str = "null") -> str:
    """The narrowest kind (``null``, ``int``, ``float``, ``bool``, ``string``) every value of
    the text ``column`` fits without changing. ``known`` is the kind seen so far: only kinds
    that can unify with it are tried."""
    if known == "string":
        return "string"
    values = _non_null(column)
    if not len(values):
        return "null"
    sample = values.slice(0, _SAMPLE).to_pylist()
    for kind in _CANDIDATES[known]:
        # A cheap look at the first values spares the whole-column checks (a failed cast
        # of a long text column is slow).
        if all(_SAMPLE_RE[kind].match(v) for v in sample) and fits(values, kind):
            return kind
    return "string"


_SAMPLE = 64
_INT = r"^-?[1-9][0-9]{0,18}$|^0$"
_SAMPLE_RE = {
    "int": re.compile(_INT),
    "float": re.compile(_FLOAT),
    "bool": re.compile(r"^(?i:true|false)$"),
}
_CANDIDATES = {
    "null": ("int", "float", "bool"),
    "int": ("int", "float"),
    "float": ("float",),
    "bool": ("bool",),
}


def _non_null(column: pa.Array) -> pa.Array:
    nulls = pc.is_in(column, NULL_SPELLINGS)
    return column.filter(pc.invert(nulls)) if pc.any(nulls).as_py() else column


def fits(values: pa.Array, kind: str) -> bool:
    """Whether every (non-null) text value reads as ``kind`` and back unchanged."""
    if kind == "bool":
        return pc.all(pc.is_in(pc.utf8_lower(values), pa.array(["true", "false"]))).as_py()
    # Arrow's parse does the heavy check; a few prefix tests reject what it accepts but a
    # writer would not give back: "+1", "007", "-01", "inf", "nan".
    parsed = _cast(values, pa.int64() if kind == "int" else pa.float64())
    if parsed is None:
        return False
    if pc.any(pc.starts_with(values, "+")).as_py():
        return False
    unsigned = pc.utf8_ltrim(values, "-")
    leading_zero = pc.and_(pc.starts_with(unsigned, "0"), pc.greater(pc.utf8_length(unsigned), 1))
    if kind == "int":
        return not pc.any(pc.or_(leading_zero, pc.starts_with(values, "-0"))).as_py()
    leading_zero = pc.and_(leading_zero, pc.invert(pc.starts_with(unsigned, "0.")))
    if pc.any(leading_zero).as_py() or pc.any(pc.match_substring(values, "n")).as_py():
        return False  # "n": inf, nan, Infinity, NaN in any case but upper
    if pc.any(pc.match_substring(values, "N")).as_py():
        return False
    return _prints_back(values, parsed)


def _prints_back(texts: pa.Array, doubles: pa.Array) -> bool:
    """Whether the double of each decimal text prints back as that text: the text is the
    double's shortest form (what ``repr`` and pandas write) or the double rounded to the
    text's own number of significant digits (``%.17g``), trailing fraction zeros and
    exponent form aside. Up to 15 significant digits always do; a text past the double's
    range (``1e400``, or ``1e-400`` read as 0) never does."""
    if pc.any(pc.is_inf(doubles)).as_py():
        return False
    # Only a text longer than 15 characters can hold more than 15 significant digits.
    wide = pc.greater(pc.utf8_length(texts), 15)
    zero = pc.equal(doubles, 0.0)
    if pc.any(zero).as_py():
        wide = pc.or_(wide, zero)  # 1e-400: no digits may be lost to underflow
    if not pc.any(wide).as_py():
        return True
    texts, doubles = texts.filter(wide), doubles.filter(wide)
    # Arrow prints a double's shortest form; most long texts are exactly that.
    rest = pc.invert(pc.equal(texts, pc.cast(doubles, pa.string())))
    if not pc.any(rest).as_py():
        return True
    texts, doubles = texts.filter(rest), doubles.filter(rest)
    digits = _digits(pc.replace_substring_regex(texts, r"(\.[0-9]*?)0+([eE].*)?$", r"\1"))
    lengths = pc.utf8_length(digits)
    if pc.any(pc.and_(pc.equal(doubles, 0.0), pc.greater(lengths, 0))).as_py():
        return False
    long = pc.greater(lengths, 15)
    if not pc.any(long).as_py():
        return True
    texts, doubles, digits = texts.filter(long), doubles.filter(long), digits.filter(long)
    # Other spellings of the shortest form (1.0e5): equal digits are the same number, as
    # both lie within one unit of the double's last place.
    shortest = _digits(pc.cast(doubles, pa.string()))
    rest = pc.invert(pc.equal(pc.utf8_rtrim(digits, "0"), pc.utf8_rtrim(shortest, "0")))
    if not pc.any(rest).as_py():
        return True
    return all(
        Decimal(format(value, f".{len(sig)}g")) == Decimal(text)
        for text, value, sig in zip(
            texts.filter(rest).to_pylist(),
            doubles.filter(rest).to_pylist(),
            digits.filter(rest).to_pylist(),
            strict=True,
        )
    )


def _digits(texts: pa.Array) -> pa.Array:
    """The mantissa digits of decimal texts, without sign, point and leading zeros."""
    digits = pc.replace_substring_regex(texts, r"[eE].*$|[^0-9]", "")
    return pc.replace_substring_regex(digits, r"^0+", "")


def _cast(values: pa.Array, kind: pa.DataType) -> pa.Array | None:
    try:
        return pc.cast(values, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def unify_kinds(a: str, b: str) -> str:
    """One kind for a column seen as ``a`` in one place and ``b`` in another."""
    if a == b or b == "null":
        return a
    if a == "null":
        return b
    if {a, b} == {"int", "float"}:
        return "float"
    return "string"


def kind_type(kind: str) -> pa.DataType:
    """The Arrow type of an inferred kind."""
    return _ARROW[kind]


_PARAMS = re.compile(r"^(\w+)\((\d+)\s*,\s*(\d+)\)$")
_UNIT = re.compile(r"^(timestamp|time32|time64|duration)\[(\w+)(?:,\s*(.+))?\]$")


def arrow_type(spec: Any) -> pa.DataType:
    """``spec`` (an Arrow type, or its name: ``int64``, ``decimal128(12,2)``,
    ``timestamp[ms]``, ``text``) as an Arrow type; ``FormatError`` names a bad one."""
    if isinstance(spec, pa.DataType):
        return spec
    name = str(spec).strip().lower()
    name = {"text": "string", "str": "string", "int": "int64", "integer": "int64",
            "float": "float64", "double": "float64", "boolean": "bool", "date": "date32",
            "timestamp": "timestamp[us]"}.get(name, name)  # fmt: skip
    params = _PARAMS.match(name)
    unit = _UNIT.match(name)
    try:
        if params and params.group(1) in ("decimal128", "decimal256", "decimal"):
            maker = pa.decimal256 if params.group(1) == "decimal256" else pa.decimal128
            return maker(int(params.group(2)), int(params.group(3)))
        if unit:
            maker = getattr(pa, unit.group(1))
            return maker(unit.group(2), unit.group(3)) if unit.group(3) else maker(unit.group(2))
        made = getattr(pa, {"string": "string", "bool": "bool_"}.get(name, name))()
    except (AttributeError, TypeError, ValueError) as exc:
        raise FormatError(
            f"unknown column type {spec!r}: give an Arrow type name such as int64, float64, "
            "string, bool, date32, timestamp[ms] or decimal128(12,2)"
        ) from exc
    if not isinstance(made, pa.DataType):
        raise FormatError(f"unknown column type {spec!r}")
    return made


def declared_types(spec: Mapping[str, Any] | None) -> dict[str, pa.DataType]:
    """A ``column_types`` option as Arrow types."""
    return {str(k): arrow_type(v) for k, v in (spec or {}).items()}


def convert_column(column: pa.Array, kind: pa.DataType) -> tuple[pa.Array, list[int]]:
    """The text ``column`` as ``kind``, and the indices of the values that do not fit it
    (null in the result; bytes that are not UTF-8 do not fit any type but text). Null
    spellings are null in every type but text."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.cast(kind) if not column.type.equals(kind) else column, []
    if pa.types.is_null(kind):
        return pa.nulls(len(column)), []
    try:
        nulls = pc.is_in(column, NULL_SPELLINGS)
        values = pc.if_else(nulls, None, column) if pc.any(nulls).as_py() else column
        if pa.types.is_boolean(kind):
            # ``is_in`` of a null is false, not null: only present values can misfit.
            lowered = pc.utf8_lower(values)
            known = pc.is_in(lowered, pa.array(["true", "false"]))
            bad = pc.and_(pc.is_valid(lowered), pc.invert(known))
            return _with_bad(pc.equal(lowered, "true"), bad)
        return pc.cast(values, kind), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    out: list[Any] = []
    bad_rows: list[int] = []
    spellings = set(NULL_SPELLINGS.to_pylist())
    for i, raw in enumerate(column.cast(pa.binary()).to_pylist()):
        try:
            value = raw.decode("utf-8") if raw is not None else None
            if value is None or value in spellings:
                out.append(None)
            elif pa.types.is_boolean(kind):
                if value.lower() not in ("true", "false"):
                    raise ValueError(value)
                out.append(value.lower() == "true")
            else:
                out.append(pc.cast(pa.array([value]), kind)[0].as_py())
        except (UnicodeDecodeError, ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            out.append(None)
            bad_rows.append(i)
    return pa.array(out, kind), bad_rows


def _with_bad(converted: pa.Array, bad: pa.Array) -> tuple[pa.Array, list[int]]:
    if not pc.any(bad).as_py():
        return converted, []
    rows = pc.indices_nonzero(bad).to_pylist()
    return pc.if_else(bad, None, converted), rows


def kinds_of(
    batch: pa.RecordBatch, known: Mapping[str, str], skip: Iterable[str] = ()
) -> dict[str, str]:
    """``known`` widened by the values of ``batch`` (every column but ``skip``)."""
    skipped = set(skip)
    out = dict(known)
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if name in skipped:
            continue
        seen = out.get(name, "null")
        out[name] = unify_kinds(seen, column_kind(column, seen))
    return out
