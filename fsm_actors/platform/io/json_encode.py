"""Arrow to JSON text at Arrow speed: one JSON object per row, built column by column.

Flat columns (numbers, bools, strings, dates, timestamps) are encoded with pyarrow compute;
nested, binary and other columns fall back to ``json.dumps`` per value. Output is UTF-8,
compact (``{"a":1,"b":"x"}``); floats keep a decimal point (``2.0``), non-finite floats are
written as Python's ``json`` writes them (``NaN``, ``Infinity``), timestamps as ISO 8601.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

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


def dumps_value(value: Any) -> str | None:
    """Compact JSON text of one Python value (``None`` stays ``None``)."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=json_default, separators=(",", ":"))


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback for values Arrow hands back: datetimes, decimals, bytes."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)
