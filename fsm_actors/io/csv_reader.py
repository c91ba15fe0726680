"""CSV/TSV to Arrow with typed columns, skipping malformed rows instead of failing.

Built on pyarrow's streaming reader (constant memory, one block at a time, single-threaded so
the rows it rejects are reported in file order and land in the same chunk on every re-read).
Three kinds of bad input are tolerated:

* a row with the wrong number of fields is skipped and reported with its row number;
* bytes that are not valid UTF-8 make their row a reported error, the rest of the batch stays;
* a value that does not fit the type inferred from the first block (``"n/a"`` in an int
  column) restarts the read with that column as strings, skipping the records already
  returned, so the file's remaining records come through (the column's type changes from
  that batch on; writers unify such schemas).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from fsm_actors.io.chunks import Piece
from fsm_actors.io.errors import RowError, raw_text

DEFAULT_BLOCK_SIZE = 1 << 20
_CONVERSION = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error")


def read_csv_pieces(
    open_stream: Callable[[], BinaryIO],
    name: str | None,
    *,
    delimiter: str = ",",
    has_header: bool = True,
    encoding: str = "utf-8",
    skip_empty_lines: bool = True,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Iterator[Piece]:
    """Pieces of a CSV stream; ``open_stream`` is called again for each restart."""
    state = _ReadState()
    options = (name, delimiter, has_header, encoding, skip_empty_lines, block_size)
    while True:
        outcome = yield from _read_once(open_stream(), state, *options)
        if outcome is None:
            return
        state.as_string.add(outcome)


class _ReadState:
    """What survives a restart: columns forced to strings, rows already returned or reported."""

    def __init__(self) -> None:
        self.as_string: set[str] = set()
        self.reported: set[int] = set()
        self.returned = 0


def _read_once(
    stream: BinaryIO,
    state: _ReadState,
    name,
    delimiter,
    has_header,
    encoding,
    skip_empty_lines,
    block_size,
):
    """Yield pieces; return the column to read as strings on a restart, else ``None``."""
    pending: list[RowError] = []

    def on_invalid(row) -> str:
        if row.number is None or row.number not in state.reported:
            if row.number is not None:
                state.reported.add(row.number)
            pending.append(
                RowError(
                    name,
                    f"expected {row.expected_columns} fields, got {row.actual_columns}",
                    raw_text(row.text),
                    line=row.number,
                )
            )
        return "skip"

    read_opts = pacsv.ReadOptions(
        use_threads=False,
        block_size=block_size,
        encoding=encoding,
        autogenerate_column_names=not has_header,
    )
    parse_opts = pacsv.ParseOptions(
        delimiter=delimiter,
        newlines_in_values=True,
        ignore_empty_lines=skip_empty_lines,
        invalid_row_handler=on_invalid,
    )
    utf8 = encoding.lower().replace("-", "").replace("_", "") == "utf8"
    convert_opts = pacsv.ConvertOptions(
        check_utf8=not utf8, column_types={c: pa.string() for c in state.as_string}
    )
    skip = state.returned
    try:
        try:
            reader = pacsv.open_csv(stream, read_opts, parse_opts, convert_opts)
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" not in str(exc):
                yield Piece(None, [RowError(name, f"unreadable CSV: {exc}")])
            return None
        columns = reader.schema.names
        for batch in reader:
            errors, pending[:] = list(pending), []
            if skip:
                dropped = min(skip, batch.num_rows)
                batch, skip = batch.slice(dropped), skip - dropped
            state.returned += batch.num_rows
            if utf8:
                batch = _drop_bad_utf8(batch, name, delimiter, errors)
            yield Piece(batch, errors)
    except pa.ArrowInvalid as exc:
        match = _CONVERSION.search(str(exc))
        column = columns[int(match.group(1))] if match else None
        if column is None or column in state.as_string:
            yield Piece(None, [*pending, RowError(name, f"CSV read stopped: {exc}")])
            return None
        for error in pending:  # not yielded: the re-read must report them again
            state.reported.discard(error.line)
        return column
    finally:
        stream.close()
    if pending:
        yield Piece(None, list(pending))
    return None


def _drop_bad_utf8(
    batch: pa.RecordBatch, name: str | None, delimiter: str, errors: list[RowError]
) -> pa.RecordBatch:
    bad: set[int] = set()
    for column in batch.columns:
        if not pa.types.is_string(column.type):
            continue
        try:
            column.validate(full=True)
        except pa.ArrowInvalid:
            for i, value in enumerate(column.cast(pa.binary()).to_pylist()):
                if value is not None:
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError:
                        bad.add(i)
    if not bad:
        return batch
    rows = sorted(bad)
    binary = [c.cast(pa.binary()) if pa.types.is_string(c.type) else c for c in batch.columns]
    for i in rows:
        values = [b"" if c[i].as_py() is None else _as_bytes(c[i].as_py()) for c in binary]
        errors.append(
            RowError(name, "invalid UTF-8 bytes", raw_text(delimiter.encode().join(values)))
        )
    keep = pa.array([i not in bad for i in range(batch.num_rows)])
    return pc.filter(batch, keep)


def _as_bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def open_csv_source(path: str | os.PathLike, compression: str | None) -> Callable[[], BinaryIO]:
    """A re-openable stream factory for ``read_csv_pieces``."""
    from fsm_actors.io.detect import open_input

    return lambda: open_input(path, compression)
