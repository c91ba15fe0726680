"""Byte ranges of one large CSV file, so several workers can parse it at once.

The contract (exactly-once output relies on it):

* ``plan_byte_ranges(path, n)`` cuts the data of an uncompressed CSV file (everything after
  the header record) into at most ``n`` ranges ``[start, end)`` that cover it without gap or
  overlap. Every cut is at the start of a record: just past a line end that is outside
  quotes, found by counting quote characters from the start of the file (RFC 4180 quoting:
  a field is quoted as a whole, a quote inside is doubled). The cuts depend only on the
  file's bytes, ``n`` and ``min_bytes``, so planning the same file again gives the same
  ranges, and each record belongs to exactly one range: the one holding its first byte.
* ``read_csv_range`` reads the records of one range with the file's header (column names
  from its first record), in chunks whose boundaries depend only on the range and
  ``chunk_size``; ``RowError.line`` is the line in the whole file.
* One type per column for the whole file: pass the types of ``csv_file_types`` (or of
  ``merge_scans`` over ``scan_csv_range`` of every range, which workers can run in
  parallel) as ``types``; without them ``read_csv_range`` scans the whole file itself.

Only ASCII-compatible encodings (UTF-8, Latin-1, cp1252...) can be cut by bytes.
"""

from __future__ import annotations

import codecs
import io
import mmap
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from fsm_actors.platform.io import storage
from fsm_actors.platform.io.chunks import Chunk, Piece, consecutive, rechunk
from fsm_actors.platform.io.csv_reader import (
    NULL_SPELLINGS,
    Header,
    declared_types,
    file_types,
    kind_type,
    read_header,
    record_end,
    scan_kinds,
    typed_pieces,
    unify_kinds,
)
from fsm_actors.platform.io.errors import FormatError
from fsm_actors.platform.io.readers import ReadOptions, detect_compression

MIN_RANGE_BYTES = 4 << 20
#: ranges whose first block a ``infer="sample"`` type scan of a large file reads
SAMPLED_RANGES = 8
#: threads of a whole-file type scan (each scans one byte range)
SCAN_THREADS = 4


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``[start, end)`` of a CSV file; ``first_line`` is the file line at ``start``
    (``None`` on an object store: the worker reading the range counts it)."""

    index: int
    start: int
    end: int
    first_line: int | None


@dataclass(frozen=True)
class RangeScan:
    """What a scan of one range found: each column's kind, and whether a value holds a line
    break."""

    kinds: dict[str, str]
    multiline: bool


def _check(path: str | os.PathLike, opts: ReadOptions) -> str:
    name = os.fspath(path)
    if detect_compression(path) is not None:
        raise FormatError(
            f"{name}: a compressed file cannot be cut into byte ranges; read it whole", name
        )
    if '"\n,\t'.encode(opts.encoding) != b'"\n,\t':
        raise FormatError(
            f"{name}: encoding {opts.encoding!r} is not ASCII-compatible; read it whole", name
        )
    codecs.lookup(opts.encoding)
    return name


def _header(path: str | os.PathLike, opts: ReadOptions) -> Header | None:
    return read_header(lambda: storage.open_input(os.fspath(path)), opts, os.fspath(path))


def plan_byte_ranges(
    path: str | os.PathLike,
    n: int,
    options: ReadOptions | None = None,
    *,
    min_bytes: int = MIN_RANGE_BYTES,
) -> list[ByteRange]:
    """At most ``n`` ranges (each at least ``min_bytes`` but the last) covering the data of
    ``path``; see the module docstring. An empty file or a header alone gives ``[]``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    opts = options if options is not None else ReadOptions()
    _check(path, opts)
    header = _header(path, opts)
    size = _size(path)
    if header is None or header.data_offset >= size:
        return []
    start = header.data_offset
    n = max(1, min(n, (size - start) // max(min_bytes, 1)))
    cuts: list[tuple[int, int | None]] = [(start, header.data_line)]
    if n > 1 and storage.is_remote(os.fspath(path)):  # ranged reads around each cut only
        cuts += _remote_cuts(os.fspath(path), start, size, n, header, opts)
    elif n > 1:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            cuts += _cuts(mm, start, header.data_line, size, n)
    bounds = [*cuts, (size, 0)]
    return [
        ByteRange(i, s, e, line)
        for i, ((s, line), (e, _)) in enumerate(zip(bounds, bounds[1:], strict=False))
        if e > s
    ]


def _size(path: str | os.PathLike) -> int:
    return storage.stat(os.fspath(path))[0]


def _cuts(mm: mmap.mmap | bytes, start: int, line: int, size: int, n: int) -> list[tuple[int, int]]:
    """``(offset, line)`` of the record starts at or after each of ``n - 1`` even targets."""
    step = (size - start) / n
    pos, quotes, lines = start, 0, line
    cuts: list[tuple[int, int]] = []
    for k in range(1, n):
        target = int(start + k * step)
        if target <= pos:
            continue
        span = mm[pos:target]
        quotes += span.count(b'"')
        lines += span.count(b"\n")
        end = record_end(mm, target, quotes)
        if end is None or end >= size:
            break
        tail = mm[target:end]
        quotes += tail.count(b'"')
        lines += tail.count(b"\n")
        pos = end
        cuts.append((end, lines))
    return cuts


#: bytes read around a cut on an object store (grown while the record start is ambiguous)
_PROBE = 1 << 20
_MAX_PROBE = 64 << 20


def _maybe_blank(batch: pa.RecordBatch) -> bool:
    """Whether a row may be a blank line (Arrow gives it as a row of nulls and empty
    texts; the exact path tells it from a row of null spellings)."""
    if not batch.num_rows:
        return False
    mask = None
    for column in batch.columns:
        empty = (pc.equal(column, "") if pa.types.is_string(column.type)
                 else pc.is_null(column))
        mask = empty if mask is None else pc.and_(mask, empty)
    return bool(pc.any(pc.fill_null(mask, False)).as_py())


def _remote_cuts(
    path: str, start: int, size: int, n: int, header: Header, opts: ReadOptions
) -> list[tuple[int, int | None]]:
    """The cuts of ``_cuts`` on an object store without reading the object: at each target,
    a ranged read, and the record start under each quoting state (outside or inside a
    quoted field) parsed on: the one state whose records all have the header's field count
    wins (a quoted value that outlasts the probe counts as failing: values longer than
    ``_PROBE`` = 1 MB across a cut are not supported on object stores). Ambiguous even at
    ``_MAX_PROBE`` bytes (bad records in every probe): quotes counted from ``start`` by a
    streamed read of the bytes before the target."""
    step = (size - start) / n
    cuts: list[tuple[int, int | None]] = []
    pos = start
    for k in range(1, n):
        target = int(start + k * step)
        if target <= pos:
            continue
        end = _remote_cut(path, target, size, len(header.names), opts)
        if end is None:
            end = _counted_cut(path, start, target)
        if end is None or end >= size:
            break
        pos = end
        cuts.append((end, None))
    return cuts


def _remote_cut(path: str, target: int, size: int, fields: int, opts: ReadOptions) -> int | None:
    probe = _PROBE
    while True:
        window = storage.read_range(path, target, min(size, target + probe))
        whole = target + len(window) >= size
        found = {e for e in (_start_if(window, q, fields, opts, whole) for q in (0, 1)) if e}
        if len(found) == 1:
            return target + found.pop()
        if probe >= _MAX_PROBE or whole:
            return None
        probe *= 4


def _start_if(window: bytes, quotes: int, fields: int, opts: ReadOptions,
              whole: bool) -> int | None:
    """The record start in ``window`` if it began with ``quotes`` open quotes, when the
    records after it parse with ``fields`` fields each (else ``None``)."""
    import pyarrow.csv as pacsv

    end = record_end(window, 0, quotes)
    if end is None:
        return None
    body = window[end:]
    if not whole:  # up to the last record end (a line end after an even count of quotes)
        total, last = body.count(b'"'), len(body)
        for _ in range(256):
            last = body.rfind(b"\n", 0, last) + 1
            if last <= 0 or (total - body.count(b'"', last)) % 2 == 0:
                break
            last -= 1
        body = body[:max(last, 0)]
    if not body.strip():
        return end if whole and end == len(window) else None
    if body.count(b'"') % 2:
        return None  # the sample ends inside a quoted field: parse on from a wider window
    bad = 0

    def invalid(row: Any) -> str:
        nonlocal bad
        bad += 1
        return "skip"

    try:
        pacsv.read_csv(
            pa.BufferReader(body),
            read_options=pacsv.ReadOptions(column_names=[f"c{i}" for i in range(fields)],
                                           use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=opts.delimiter, newlines_in_values=True,
                                             invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(column_types={
                f"c{i}": pa.string() for i in range(fields)}),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    return end if bad == 0 else None


def _counted_cut(path: str, start: int, target: int) -> int | None:
    """The exact cut at ``target``: the quotes before it counted by a streamed read."""
    quotes, pos = 0, start
    with storage.open_input(path) as fh:
        fh.read(start)
        while pos < target:
            data = fh.read(min(8 << 20, target - pos))
            if not data:
                return None
            quotes += data.count(b'"')
            pos += len(data)
    window = storage.read_range(path, target, min(storage.stat(path)[0], target + _MAX_PROBE))
    end = record_end(window, 0, quotes)
    return None if end is None else target + end


#: a remote window bigger than this is streamed in ranged reads, not held in memory whole
_WHOLE_WINDOW = 64 << 20


class _RangeStream(io.RawIOBase):
    """Bytes ``[start, end)`` of a store's object, read on demand (ranged reads of the
    sizes the parser asks for): a whole-file type scan holds one block, not the object."""

    def __init__(self, path: str, start: int, end: int) -> None:
        super().__init__()
        self._file = storage.open_input(path, random_access=True)
        self._pos, self._end = start, end

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._end - self._pos)
        if want <= 0:
            return 0
        data = self._file.read_at(want, self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def _window(path: str | os.PathLike, start: int, end: int) -> BinaryIO:
    """Bytes ``[start, end)`` of a file as a native stream over a memory map (no copies, no
    Python in the parser's read loop); on an object store, one ranged read (streamed in
    ranged reads past ``_WHOLE_WINDOW`` bytes)."""
    if storage.is_remote(os.fspath(path)):
        if end - start > _WHOLE_WINDOW:
            return io.BufferedReader(_RangeStream(os.fspath(path), start, end), 8 << 20)
        return pa.BufferReader(storage.read_range(os.fspath(path), start, end))
    mapped = pa.memory_map(os.fspath(path))
    try:
        return pa.BufferReader(mapped.read_at(end - start, start))
    finally:
        mapped.close()


def scan_csv_range(path: str | os.PathLike, start: int, end: int, options: ReadOptions | None = None) -> RangeScan:
    """The kinds of the undeclared columns over one range (a worker's share of the type
    scan; with ``infer="sample"`` over the range's first block only)."""
    opts = options if options is not None else ReadOptions()
    _check(path, opts)
    header = _header(path, opts)
    if header is None:
        return RangeScan({}, False)
    kinds, multiline = scan_kinds(
        lambda: _window(path, start, end), header, opts, skip=declared_types(opts.csv_column_types)
    )
    return RangeScan(kinds, multiline)


def merge_scans(
    scans: Sequence[RangeScan], names: Sequence[str], options: ReadOptions | None = None
) -> tuple[dict[str, pa.DataType], bool]:
    """One type per column of ``names`` from every range's scan (declared types win), and
    whether any value holds a line break."""
    opts = options if options is not None else ReadOptions()
    declared = declared_types(opts.csv_column_types)
    kinds: dict[str, str] = {}
    for scan in scans:
        for column, kind in scan.kinds.items():
            kinds[column] = unify_kinds(kinds.get(column, "null"), kind)
    fallback = "null" if opts.csv_infer != "text" else "string"
    types = {c: declared.get(c) or kind_type(kinds.get(c, fallback)) for c in names}
    return types, any(s.multiline for s in scans)


def csv_file_types(
    path: str | os.PathLike, options: ReadOptions | None = None
) -> tuple[list[str], dict[str, pa.DataType], bool]:
    """``(column names, one type per column, any line break in a value)`` for the whole
    file, from one scan in this process (of a large uncompressed file: its byte ranges
    scanned by up to ``SCAN_THREADS`` threads, merged: the same types). With
    ``infer="sample"``, the first block of each
    of up to ``SAMPLED_RANGES`` ranges of a large uncompressed file (not only the file's
    first block), merged: the types of values all through the file, read in a fraction."""
    opts = options if options is not None else ReadOptions()
    header = _header(path, opts)
    if header is None:
        return [], {}, False
    big = (_size(path) - header.data_offset >= 2 * MIN_RANGE_BYTES
           and detect_compression(path) is None)
    if big and opts.csv_infer == "sample":
        file_types(lambda: pa.BufferReader(b""), header, opts, os.fspath(path))  # checks
        ranges = plan_byte_ranges(path, SAMPLED_RANGES, opts)
        scans = [scan_csv_range(path, r.start, r.end, opts) for r in ranges]
        types, _ = merge_scans(scans, header.names, opts)
        return header.names, types, True
    threads = min(SCAN_THREADS, len(os.sched_getaffinity(0)))
    undeclared = len(declared_types(opts.csv_column_types)) < len(header.names)
    if big and opts.csv_infer == "file" and threads > 1 and undeclared:
        # the same scan over byte ranges at once: Arrow's parser and kernels leave the GIL
        file_types(lambda: pa.BufferReader(b""), header, opts, os.fspath(path))  # checks
        ranges = plan_byte_ranges(path, threads, opts)
        with ThreadPoolExecutor(len(ranges)) as pool:
            scans = list(pool.map(lambda r: scan_csv_range(path, r.start, r.end, opts), ranges))
        types, multiline = merge_scans(scans, header.names, opts)
        return header.names, types, multiline
    data = lambda: _window(path, header.data_offset, _size(path))  # noqa: E731
    types, multiline = file_types(data, header, opts, os.fspath(path))
    return header.names, types, multiline


def read_csv_range(
    path: str | os.PathLike,
    start: int,
    end: int,
    options: ReadOptions | None = None,
    *,
    first_line: int | None = None,
    types: Mapping[str, pa.DataType] | None = None,
    multiline: bool = True,
    chunk_size: int = 65536,
) -> Iterator[Chunk]:
    """Chunks of the records in bytes ``[start, end)`` (a ``ByteRange`` of
    ``plan_byte_ranges``) with the file's header and ``types`` (see the module docstring).
    ``first_line`` is the range's ``first_line`` (counted here when not given); pass
    ``multiline=False`` when a scan found no line break in any value (saves counting)."""
    opts = options if options is not None else ReadOptions()
    name = _check(path, opts)
    header = _header(path, opts)
    if header is None or end <= start:
        return iter(())
    if types is None:
        _, types, multiline = csv_file_types(path, opts)
    if first_line is None:
        first_line = _line_at(path, start)
    local = Header(header.names, start, first_line)
    fast = _typed_fast(path, start, end, local, opts, types) if not multiline else None
    if fast is not None:
        return rechunk(iter(fast), chunk_size)
    pieces = typed_pieces(lambda: _window(path, start, end), local, opts, name, types, multiline)
    return rechunk(pieces, chunk_size)


#: parse a clean range with Arrow's typed CSV reader (see ``_typed_fast``)
FAST_RANGES = True
_FAST_TYPES = (pa.int64(), pa.float64(), pa.bool_(), pa.string(), pa.null())


def _typed_fast(
    path: str | os.PathLike, start: int, end: int, header: Header, opts: ReadOptions,
    types: Mapping[str, pa.DataType],
) -> list[Piece] | None:
    """The pieces of a range parsed by Arrow's CSV reader with the given types (C++
    conversion, no text columns in between), or ``None`` when the range needs the exact
    path: a type other than int64/float64/bool/string/null, a bad row (wrong field count,
    a blank line, bytes that are not UTF-8) or a value Arrow does not convert. Types from a
    whole-file scan fit every value exactly, and Arrow's int/float parsing is the cast the
    exact path uses, so both give the same records; lines are counted from the range's
    first line (no value holds a line break: ``multiline=False``)."""
    import pyarrow.csv as pacsv

    names = header.names
    if (not FAST_RANGES or len(names) < 2
            or any(types[c] not in _FAST_TYPES for c in names)):
        return None
    bad = False

    def invalid(row: Any) -> str:
        nonlocal bad
        bad = True
        return "skip"

    utf8 = opts.encoding.lower().replace("-", "").replace("_", "") == "utf8"
    try:
        reader = pacsv.open_csv(
            _window(path, start, end),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=opts.csv_block_size,
                                           encoding=opts.encoding, column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=opts.delimiter,
                                             ignore_empty_lines=False,
                                             invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(
                check_utf8=utf8, column_types={c: types[c] for c in names},
                null_values=NULL_SPELLINGS.to_pylist(), strings_can_be_null=False,
                true_values=["true", "True", "TRUE"], false_values=["false", "False", "FALSE"]),
        )
        batches = list(reader)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return None
    if bad or any(_maybe_blank(batch) for batch in batches):
        return None
    pieces, line = [], header.data_line
    for batch in batches:
        lines = consecutive(line, batch.num_rows)
        line += batch.num_rows
        pieces.append(Piece(batch, [], lines))
    return pieces


def _line_at(path: str | os.PathLike, offset: int) -> int:
    """The 1-based line number of the byte at ``offset``."""
    lines = 1
    with storage.open_input(os.fspath(path)) as fh:
        remaining = offset
        while remaining > 0:
            data = fh.read(min(remaining, 8 << 20))
            if not data:
                break
            lines += data.count(b"\n")
            remaining -= len(data)
    return lines
