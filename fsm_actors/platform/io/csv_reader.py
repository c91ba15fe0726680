"""CSV/TSV to Arrow with one type per column for the whole file, skipping malformed rows.

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

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from fsm_actors.platform.io.chunks import Piece, consecutive
from fsm_actors.platform.io.csv_parse import (
    Header,
    RawBatch,
    RecordText,
    read_header,
    skip_bytes,
    string_batches,
    valid_ordinals,
)
from fsm_actors.platform.io.csv_types import convert_column, declared_types, kind_type, kinds_of
from fsm_actors.platform.io.errors import FormatError, RowError, raw_text

if TYPE_CHECKING:
    from fsm_actors.platform.io.readers import ReadOptions


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
