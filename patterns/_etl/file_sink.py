"""The ``Loader`` of a file target: a partition's batches as staged parts (plain core).

See ``patterns._etl.file_target`` for how the parts become the target file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from fsm_actors.platform.io import atomic_write, records_to_table, storage
from fsm_actors.platform.jobs.parts import OutputSpec, Staging, part_stem
from patterns._etl.records import Reject, reject_line


class FileSink:
    """The ``Loader`` of a file target: one partition's batches as staged parts."""

    def __init__(self, staging: str, output: OutputSpec, index: int,
                 declared: dict[str, Any] | None = None) -> None:
        #: the source's declared column types (``catalog.ColumnType``): a column that holds
        #: them is written with them, not with a type guessed from one batch's values
        self.types = arrow_types(declared or {})
        self.staging = Staging(staging)
        self.output = output
        self.index = index

    def state(self, part: str) -> None:
        """A partition always starts over (its parts come out the same): drop old ones."""
        self.staging.drop_file(self.index)

    def rows_for(self, records: list[dict[str, Any]]) -> tuple[list[str], list[Any]]:
        return [], records  # dicts name their own fields (``_table``)

    def tuples_for(self, names: list[str], rows: list[tuple]) -> tuple[list[str], list[Any]]:
        return list(names), rows

    def commit_batch(self, part: str, seq: int, columns: list[str], rows: list[Any],
                     rejects: Sequence[Reject], state: dict[str, Any]) -> None:
        """Write the batch's part (rows: dicts or tuples in ``columns`` order) and its
        rejects' part."""
        if rows:
            out = self.output
            table = _declared(_table(columns, rows), self.types)
            self.staging.write_data(self.index, seq, table, out.format, out.ext,
                                    compression=out.compression, csv_delimiter=out.csv_delimiter)
        if rejects:
            lines = "".join(json.dumps(reject_line(part, seq, r), ensure_ascii=False) + "\n"
                            for r in rejects)
            name = f"{part_stem(self.index, seq)}.jsonl"
            if self.staging.uri is not None:  # a remote staging: the part put whole
                storage.put_bytes(storage.join(self.staging.uri, "errors", name),
                                  lines.encode("utf-8"))
            else:
                path = self.staging.local / "errors" / name
                atomic_write(path, lambda tmp: tmp.write_text(lines, encoding="utf-8"))

    def put_state(self, part: str, state: dict[str, Any]) -> None:
        """The driver's checkpoint records finished partitions: nothing to keep here."""


def _table(columns: list[str], rows: list[Any]) -> pa.Table:
    if rows and isinstance(rows[0], dict):
        return records_to_table(rows)
    try:
        return pa.Table.from_arrays([pa.array(list(c)) for c in zip(*rows, strict=True)],
                                    names=columns)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds in a column: the lenient path
        return records_to_table([dict(zip(columns, r, strict=True)) for r in rows])


def arrow_types(declared: dict[str, Any]) -> dict[str, pa.DataType]:
    """Arrow types of the declared column types that values alone do not tell: decimals of
    declared precision and scale, JSON as its text."""
    out: dict[str, pa.DataType] = {}
    for name, t in declared.items():
        if t.kind == "json":
            out[name] = pa.string()
        elif t.kind == "decimal" and t.precision and t.scale is not None:
            out[name] = (pa.decimal128(t.precision, t.scale) if t.precision <= 38
                         else pa.decimal256(t.precision, t.scale))
    return out


def _declared(table: pa.Table, types: dict[str, pa.DataType]) -> pa.Table:
    """``table`` with its columns of a declared type cast to it (a column a transformation
    made something else stays as it is)."""
    for i, name in enumerate(table.column_names):
        want = types.get(name)
        if want is None or table.schema.field(i).type == want:
            continue
        try:
            table = table.set_column(i, pa.field(name, want), table.column(i).cast(want))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            continue
    return table
