"""Records (``list[dict]``) to Arrow and back: the edge where per-record code meets batches."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa


def records_to_table(records: list[dict[str, Any]]) -> pa.Table:
    """A table with one column per key seen in any record (in order of first appearance).

    A record missing a key gets null there. A key whose values have clashing types (``1`` and
    ``"x"``) keeps every value, non-strings as their JSON text, instead of failing the batch.
    """
    if not records:
        return pa.table({})
    first = records[0].keys()
    if set().union(*records) == first:
        try:
            return pa.Table.from_pylist(records)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    keys = list(dict.fromkeys(k for r in records for k in r))
    columns = {}
    for key in keys:
        values = [r.get(key) for r in records]
        try:
            columns[key] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[key] = pa.array(
                [
                    v if v is None or isinstance(v, str) else json.dumps(v, default=str)
                    for v in values
                ],
                pa.string(),
            )
    return pa.table(columns)


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
