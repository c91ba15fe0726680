"""The one schema policy of the project: how column types of many batches become one.

``unify_types`` decides one type for a column seen with several: a type with itself is that
type; ``null`` (a column that was all empty) gives way to any other; integers widen to the
wider integer (a signed and an unsigned 64-bit integer: text); integers and floats give
``float64``; anything else (numbers and text, nested and flat...) is text. ``unify_schemas``
does that per column, columns in order of first appearance. ``conform`` makes a table match a
schema: missing columns are null, values are cast, and a column that becomes text keeps every
value (strings as they are, others as their JSON text). Writers, part joins and readers that
decide a file's types all use these three, so a column never gets two policies.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from fsm_actors.platform.io.convert import dumps_value
from fsm_actors.platform.io.errors import FormatError


def unify_types(types: Iterable[pa.DataType]) -> pa.DataType:
    """One type for values seen with ``types`` (see the module docstring); ``null`` if none."""
    result: pa.DataType = pa.null()
    for kind in types:
        result = _pair(result, kind)
    return result


def _pair(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    if a.equals(b):
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if pa.types.is_integer(a) and pa.types.is_integer(b):
        signed = pa.types.is_signed_integer(a) or pa.types.is_signed_integer(b)
        width = max(a.bit_width, b.bit_width)
        if signed and not (pa.types.is_signed_integer(a) and pa.types.is_signed_integer(b)):
            unsigned = b if pa.types.is_signed_integer(a) else a
            width = max(width, unsigned.bit_width * 2)
            if width > 64:
                return pa.string()
        return _INTS[(signed, width)]
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(t(a) for t in numeric) and any(t(b) for t in numeric):
        return pa.float64()
    return pa.string()


def _texty(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


_INTS = {
    (True, 8): pa.int8(),
    (True, 16): pa.int16(),
    (True, 32): pa.int32(),
    (True, 64): pa.int64(),
    (False, 8): pa.uint8(),
    (False, 16): pa.uint16(),
    (False, 32): pa.uint32(),
    (False, 64): pa.uint64(),
}


def unify_schemas(schemas: Iterable[pa.Schema]) -> pa.Schema:
    """One schema for tables of ``schemas``: every column, each with ``unify_types``."""
    types: dict[str, list[pa.DataType]] = {}
    for schema in schemas:
        for field in schema:
            types.setdefault(field.name, []).append(field.type)
    return pa.schema([pa.field(name, unify_types(kinds)) for name, kinds in types.items()])


def conform(
    table: pa.Table | pa.RecordBatch, schema: pa.Schema, *, extra: str = "error"
) -> pa.Table:
    """``table`` with exactly the columns and types of ``schema``.

    A missing column is all null. A column not in ``schema`` raises ``FormatError`` (or is
    dropped with ``extra="drop"``). A value that does not cast to its column's type raises
    ``FormatError``, except into text, which every value reaches.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if table.schema.equals(schema):
        return table
    unknown = [n for n in table.column_names if n not in schema.names]
    if unknown and extra != "drop":
        raise FormatError(
            f"columns {unknown} are not among the output's columns {schema.names}; write every "
            "column in the first batch, or use JSON Lines output"
        )
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
        else:
            columns.append(cast_column(table[field.name], field.type, field.name))
    return pa.table(columns, schema=schema)


def cast_column(
    column: pa.Array | pa.ChunkedArray, kind: pa.DataType, name: str = "?"
) -> pa.Array | pa.ChunkedArray:
    """``column`` as ``kind`` (see ``conform``)."""
    if column.type.equals(kind):
        return column
    if _texty(kind) and not _flat(column.type):
        return pa.array([dumps_value(v) for v in column.to_pylist()], kind)
    try:
        return pc.cast(column, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        if _texty(kind):
            return pa.array(
                [
                    v if v is None or isinstance(v, str) else dumps_value(v)
                    for v in column.to_pylist()
                ],
                kind,
            )
        raise FormatError(
            f"column {name!r} of type {column.type} does not fit {kind} ({exc}); declare the "
            "column's type, or let it be text"
        ) from exc


def _flat(kind: pa.DataType) -> bool:
    return not (
        pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
    )


def require_numeric(schema: pa.Schema, columns: Iterable[str], what: str = "sum") -> None:
    """Raise ``FormatError`` naming the first of ``columns`` that is not numeric in
    ``schema`` (a ``sum``/``mean`` over it cannot be computed), with the remedy. A column the
    schema lacks is left to the caller (it may be all null in this batch)."""
    for name in columns:
        if name not in schema.names:
            continue
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                or pa.types.is_decimal(kind) or pa.types.is_null(kind)):  # fmt: skip
            raise FormatError(
                f"{what} over column {name!r} needs numbers, but the column is {kind} (some "
                "value in the file is not a number); declare its type, e.g. "
                f"csv_column_types={{{name!r}: 'float64'}} (values that are not numbers are "
                "then rejected rows), or aggregate it with count/min/max"
            )
