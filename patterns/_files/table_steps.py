"""Validation, filters and transformations over one table of a file step (plain core, no Ray).

The steps and their contract are the shared record pipeline's (``patterns._records``); this
module drives them over ``pyarrow`` tables: consecutive record-level steps run fused over one
``to_pylist()`` of the batch, a batch-level step on the table itself. Order: validation, then
filters, then transformations (the order dataknobs-fsm documents). A record-level rejection
is an error entry with the file and record number; a batch-level step that raises rejects its
whole batch, with its name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fsm_actors.platform.io import RowError, records_to_table
from patterns._records import (
    Vectorized,
    is_batch_level,
    prepared,
    record_text,
    run_record_steps,
    step_name,
    vectorized,
)

__all__ = ["BatchPipeline", "BatchResult", "Vectorized", "is_batch_level", "keep_types",
           "record_text", "step_name", "vectorized"]


@dataclass
class BatchResult:
    """What one batch became: the table to write and the records rejected on the way."""

    table: pa.Table
    rows_in: int
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)


class BatchPipeline:
    """Applies validation, filters and transformations to tables.

    ``validator`` is a record-level check (see ``patterns._records.make_validator``). Safe to share across
    batches; not thread-safe (steps may keep state).
    """

    def __init__(
        self,
        filters: Sequence[Any] = (),
        transformations: Sequence[Any] = (),
        validator: Callable[[dict], str | None] | None = None,
    ) -> None:
        steps: list[tuple[str, Any]] = []
        if validator is not None:
            steps.append(("validate", validator))
        steps += [("filter", f) for f in filters]
        steps += [("transform", t) for t in transformations]
        self._stages: list[tuple[bool, list[tuple[str, Any]]]] = []
        for kind, step in steps:
            batch = is_batch_level(step)
            if not batch:
                step = prepared([(kind, step)])[0][1]
            if self._stages and not batch and not self._stages[-1][0]:
                self._stages[-1][1].append((kind, step))
            else:
                self._stages.append((batch, [(kind, step)]))

    @property
    def empty(self) -> bool:
        """No step at all: batches pass through unchanged."""
        return not self._stages

    def apply(self, table: pa.Table, file: str | None, first_record: int) -> BatchResult:
        """Run every stage over ``table``; ``first_record`` numbers the records in errors
        (after a batch-level filter the numbers are no longer known and errors carry none)."""
        result = BatchResult(table, table.num_rows)
        numbers: list[int | None] = list(range(first_record + 1, first_record + 1 + table.num_rows))
        for batch_level, steps in self._stages:
            if result.table.num_rows == 0:
                break
            if batch_level:
                numbers = self._batch_stage(result, *steps[0], file, numbers)
            else:
                numbers = self._record_stage(result, steps, file, numbers)
        return result

    def _batch_stage(self, result, kind, step, file, numbers):
        table = result.table
        try:
            if kind == "filter":
                out = table.filter(step) if isinstance(step, pc.Expression) else step(table)
                if not isinstance(out, pa.Table | pa.RecordBatch):
                    out = table.filter(out)
                result.skipped += table.num_rows - out.num_rows
            elif isinstance(step, dict):
                out = _project(table, step)
            else:
                out = step(table)
        except Exception as exc:  # a user step failed: reject the batch, keep the run
            reason = f"{kind} {step_name(step)} failed: {exc!r}"
            for number, record in zip(numbers, table.to_pylist(), strict=True):
                result.errors.append(
                    RowError(file, reason, record_text(record), record=number, stage=kind,
                             function=step_name(step))
                )
            result.table = table.slice(0, 0)
            return []
        result.table = out if isinstance(out, pa.Table) else pa.Table.from_batches([out])
        if result.table.num_rows == len(numbers):
            return numbers
        return [None] * result.table.num_rows

    def _record_stage(self, result, steps, file, numbers):
        kept, kept_numbers, skipped = _run_record_steps(
            result.table.to_pylist(), numbers, steps, file, result.errors
        )
        result.skipped += skipped
        source = result.table.schema
        result.table = (
            keep_types(records_to_table(kept), source) if kept else result.table.slice(0, 0)
        )
        return kept_numbers


def _run_record_steps(records, numbers, steps, file, errors) -> tuple[list[dict], list, int]:
    """The shared record-level steps over ``records``; rejects become error entries numbered
    by ``numbers``."""
    out = run_record_steps(records, steps)
    for r in out.rejected:
        errors.append(RowError(file, r.reason, record_text(r.record), record=numbers[r.position],
                               stage=r.stage, function=r.function))
    kept_numbers = numbers if out.positions is None else [numbers[p] for p in out.positions]
    return out.records, kept_numbers, out.skipped


def keep_types(table: pa.Table, source: pa.Schema) -> pa.Table:
    """``table`` (rebuilt from dicts) with each column the input had cast back to the input's
    type when the values fit it exactly (int8 stays int8, decimal128(10,3) stays so, a
    dictionary column stays one); a column whose values no longer fit keeps its new type."""
    columns = []
    changed = False
    for col in table.schema:
        column = table[col.name]
        if col.name in source.names:
            want = source.field(col.name).type
            if not col.type.equals(want):
                try:
                    column = pc.cast(column, want, safe=True)
                    changed = True
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                    pass
        columns.append(column)
    return pa.table(columns, names=table.column_names) if changed else table


def _project(table: pa.Table, columns: dict[str, Any]) -> pa.Table:
    import pyarrow.dataset as ds

    projection = {name: pc.field(name) for name in table.column_names}
    projection.update(columns)
    return ds.dataset(table).to_table(columns=projection)
