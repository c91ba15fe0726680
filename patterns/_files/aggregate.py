"""Aggregations that merge across batches and actors (plain core).

A spec is ``"count"``, ``"<op>:<field>"``, ``(op, field)`` or ``{"op": ..., "field": ...}``
with op one of count, sum, min, max, mean. Each batch yields a small partial table (one row
per group: counts, sums, minima, maxima); partials from any actors merge into the exact
result because every partial is itself mergeable (a mean travels as sum and count).
Callables are not mergeable: they get every record at once (WHOLE mode only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

OPS = ("count", "sum", "min", "max", "mean")
_PARTS = {"count": ("n",), "sum": ("sum",), "min": ("min",), "max": ("max",), "mean": ("sum", "n")}
_MERGE = {"n": "sum", "sum": "sum", "min": "min", "max": "max"}


@dataclass(frozen=True)
class AggSpec:
    """One declarative aggregation: ``op`` over ``field`` (``None``: count rows)."""

    name: str
    op: str
    field: str | None = None


def parse_aggregations(
    aggregations: dict[str, Any] | None,
) -> tuple[list[AggSpec], dict[str, Callable[[list[dict]], Any]]]:
    """Split ``aggregations`` into mergeable specs and callables; ``ValueError`` if malformed."""
    specs: list[AggSpec] = []
    callables: dict[str, Callable[[list[dict]], Any]] = {}
    for name, spec in (aggregations or {}).items():
        if callable(spec):
            callables[name] = spec
            continue
        if isinstance(spec, str):
            op, _, fld = spec.partition(":")
        elif isinstance(spec, tuple | list) and len(spec) == 2:
            op, fld = spec
        elif isinstance(spec, dict):
            op, fld = spec.get("op", ""), spec.get("field")
        else:
            raise ValueError(f"aggregation {name!r}: cannot read spec {spec!r}")
        op = str(op).lower()
        if op not in OPS:
            raise ValueError(f"aggregation {name!r}: op {op!r} is not one of {', '.join(OPS)}")
        if op != "count" and not fld:
            raise ValueError(f"aggregation {name!r}: {op} needs a field, e.g. '{op}:amount'")
        specs.append(AggSpec(name, op, fld or None))
    return specs, callables


def _part_column(spec: AggSpec, part: str) -> str:
    return f"{spec.name}__{part}"


def partial(table: pa.Table, specs: Sequence[AggSpec], group_by: Sequence[str]) -> pa.Table:
    """The mergeable partial of ``table``: one row per group (one row without ``group_by``)."""
    keys = [k for k in group_by]
    missing = [k for k in keys if k not in table.column_names]
    for k in missing:
        table = table.append_column(k, pa.nulls(table.num_rows, pa.string()))
    table = _numeric_text(table, specs)
    wanted: list[tuple[Any, str]] = []
    renames: dict[str, str] = {}
    for spec in specs:
        for part in _PARTS[spec.op]:
            if spec.field is None:
                source, arrow_op = "count_all", "count_all"
                agg = ([], "count_all")
            elif spec.field not in table.column_names:
                continue
            else:
                arrow_op = {"n": "count", "sum": "sum", "min": "min", "max": "max"}[part]
                source = f"{spec.field}_{arrow_op}"
                agg = (spec.field, arrow_op)
            if agg not in wanted:
                wanted.append(agg)
            renames[_part_column(spec, part)] = source
    grouped = (
        table.group_by(keys).aggregate(wanted)
        if wanted
        else table.group_by(keys).aggregate([([], "count_all")])
    )
    columns = {k: grouped[k] for k in keys}
    for target, source in renames.items():
        columns[target] = grouped[source]
    for spec in specs:
        for part in _PARTS[spec.op]:
            name = _part_column(spec, part)
            if name not in columns:
                columns[name] = pa.nulls(grouped.num_rows, pa.int64())
    return pa.table(columns)


def _numeric_text(table: pa.Table, specs: Sequence[AggSpec]) -> pa.Table:
    """Text columns that sum/mean/min/max read, as numbers when every value is one (log
    groups and CSV columns that stayed text compare as numbers: ``max`` of 99 and 1000 is
    1000). A sum or mean over text that is not numbers raises ``FormatError`` naming it."""
    from fsm_actors.platform.io.arrow_schema import require_numeric

    for spec in specs:
        name = spec.field
        if spec.op == "count" or name is None or name not in table.column_names:
            continue
        column = table[name]
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        for kind in (pa.int64(), pa.float64()):
            try:
                numbers = pc.cast(column, kind)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
            table = table.set_column(table.column_names.index(name), name, numbers)
            break
        else:
            if spec.op in ("sum", "mean"):
                require_numeric(table.schema, [name], spec.op)
    return table


def merge(
    partials: Sequence[pa.Table], specs: Sequence[AggSpec], group_by: Sequence[str]
) -> dict[str, Any] | list[dict[str, Any]]:
    """The final values: ``{name: value}``, or with ``group_by`` a list of
    ``{key..., name: value...}`` sorted by the keys."""
    keys = list(group_by)
    tables = [p for p in partials if p.num_rows]
    if not tables:
        return [] if keys else {s.name: (0 if s.op == "count" else None) for s in specs}
    merged = pa.concat_tables(tables, promote_options="permissive")
    wanted = [(c, _MERGE[c.rsplit("__", 1)[1]]) for c in merged.column_names if c not in keys]
    grouped = merged.group_by(keys).aggregate(wanted)
    out: dict[str, pa.ChunkedArray] = {k: grouped[k] for k in keys}
    for spec in specs:
        value = {
            part: grouped[f"{_part_column(spec, part)}_{_MERGE[part]}"] for part in _PARTS[spec.op]
        }
        if spec.op == "count":
            out[spec.name] = pc.fill_null(value["n"], 0)
        elif spec.op == "mean":
            out[spec.name] = pc.divide(pc.cast(value["sum"], pa.float64()), value["n"])
        else:
            out[spec.name] = value[spec.op]
    rows = pa.table(out).to_pylist()
    if not keys:
        return rows[0]
    return sorted(rows, key=lambda r: [(r[k] is None, r[k]) for k in keys])
