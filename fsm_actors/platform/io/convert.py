"""Records (``list[dict]``) to Arrow and back: the edge where per-record code meets batches.

``json_default`` and ``dumps_value`` write the Python values Arrow hands back (datetimes,
decimals, bytes) as JSON: the one fallback of every JSON text the project writes from them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pyarrow as pa


def records_to_table(records: list[dict[str, Any]], *, exact: bool = False) -> pa.Table | None:
    """A table with one column per key seen in any record (in order of first appearance).

    A record missing a key gets null there. A key whose values have clashing types (``1`` and
    ``"x"``) keeps every value, non-strings as their JSON text, instead of failing the batch;
    integers of 2**63 and more become ``uint64`` (or text past it).

    With ``exact=True`` the table is returned only when ``table.to_pylist() == records``
    holds with the same types, keys and key order: every record has the same ``str`` keys
    in the same order, each key one kind of value, integers within 64 bits, nested values
    that read back unchanged, at least one key. Otherwise ``None``: keep the dicts.
    """
    if exact:
        return _exact_table(records)
    if not records:
        return pa.table({})
    first = records[0].keys()
    if set().union(*records) == first:
        try:
            return pa.Table.from_pylist(records)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
    keys = list(dict.fromkeys(k for r in records for k in r))
    return pa.table({key: _column([r.get(key) for r in records]) for key in keys})


def _column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except OverflowError:
        try:
            return pa.array(values, pa.uint64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    return pa.array(
        [v if v is None or isinstance(v, str) else json.dumps(v, default=str) for v in values],
        pa.string(),
    )


_SCALARS = (str, float, bool, bytes)
_INT64 = (-(1 << 63), (1 << 63) - 1)


def _exact_table(records: list[dict[str, Any]]) -> pa.Table | None:
    if not records or any(type(r) is not dict for r in records):
        return None
    keys = tuple(records[0])
    if not keys or any(type(k) is not str for k in keys):
        return None
    if any(tuple(r) != keys for r in records):
        return None
    columns = {}
    for key in keys:
        values = [r[key] for r in records]
        column = _exact_column(values)
        if column is None:
            return None
        columns[key] = column
    return pa.table(columns)


def _exact_column(values: list[Any]) -> pa.Array | None:
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) > 1:
        return None
    kind = kinds.pop() if kinds else None
    try:
        if kind is None:
            return pa.nulls(len(values))
        if kind is int:
            present = [v for v in values if v is not None]
            low, high = min(present), max(present)
            if low >= _INT64[0] and high <= _INT64[1]:
                return pa.array(values, pa.int64())
            return pa.array(values, pa.uint64()) if low >= 0 and high < 1 << 64 else None
        if kind in _SCALARS:
            return pa.array(values)
        column = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    return column if _same(column.to_pylist(), values) else None


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (``1 != 1.0``, key order counts)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return b != b
    return a == b


def _kind(value: Any) -> type:
    if isinstance(value, bool):
        return bool
    if isinstance(value, int | float):
        return float
    return type(value)


def compatible_runs(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``records`` cut into consecutive runs in which every field keeps one kind of value
    (number, string, bool, object, list), so each run converts to Arrow without losing types.
    Usually one run; a field that switches from numbers to text starts a new one."""
    runs: list[list[dict[str, Any]]] = []
    kinds: dict[str, type] = {}
    for record in records:
        current = {k: _kind(v) for k, v in record.items() if v is not None}
        if runs and all(kinds.get(k, t) is t for k, t in current.items()):
            runs[-1].append(record)
            kinds.update(current)
        else:
            runs.append([record])
            kinds = current
    return runs


def table_to_records(data: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """The rows of ``data`` as dicts (Python values: int, float, bool, str, datetime...)."""
    return data.to_pylist()


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
