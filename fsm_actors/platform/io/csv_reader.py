"""CSV/TSV to Arrow with one type per column for the whole file, skipping malformed rows.

Two halves: parsing bytes into text batches (``read_header``, ``string_batches``: record
boundaries, the parser loop, ``RecordText`` for the text of rejected records as written) and
typing them (``read_csv_pieces``, ``file_types``, ``typed_pieces``); the type rules are the
pure core ``fsm_actors.platform.io.csv_types``. Every option comes from one ``ReadOptions``.

Built on pyarrow's streaming reader (constant memory, one block at a time, single-threaded so
rejected rows are reported in file order and land in the same chunk on every re-read). Every
field is parsed as text; types come from ``fsm_actors.platform.io.csv_types``:

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
"""

from __future__ import annotations

import csv
import io
import mmap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from fsm_actors.platform.io.chunks import Piece, consecutive
from fsm_actors.platform.io.csv_types import convert_column, declared_types, kind_type, kinds_of
from fsm_actors.platform.io.detect import end_at_last_line
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
