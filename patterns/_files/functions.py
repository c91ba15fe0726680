"""Transformations, filters and validation over one batch (plain core, no Ray).

A step is record-level (a callable on a dict) or batch-level (a ``Vectorized`` callable on a
``pyarrow.Table``, a callable whose first parameter is annotated as a Table/RecordBatch, a
pyarrow compute ``Expression`` as a filter, or ``{column: Expression}`` as a transformation).
Consecutive record-level steps run fused over one ``to_pylist()`` of the batch. Order:
validation, then filters, then transformations (the order dataknobs-fsm documents).

Record-level contract: a filter returns truthy to keep the record; a transformation returns
the new record, or ``None`` to keep the (possibly mutated) record. Every user function runs
exactly once per record it reaches: a record whose step raises is rejected with the
exception (and the function's name) as reason and goes no further; the others go on and are
never re-run. A batch-level step that raises rejects its whole batch, with its name.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fsm_actors.platform.io import RowError, records_to_table
from fsm_actors.platform.io.json_encode import json_default

_RAW_LIMIT = 4096


@dataclass(frozen=True)
class Vectorized:
    """Marks ``fn`` as batch-level: it takes a ``pyarrow.Table`` and returns a Table or
    RecordBatch (a transformation), or a Table or boolean mask (a filter)."""

    fn: Callable[[pa.Table], Any]

    def __call__(self, table: pa.Table) -> Any:
        return self.fn(table)


def step_name(step: Any) -> str:
    """What an error calls a step: the user function's name (a ``Vectorized`` is named for
    the function it wraps), else its type."""
    inner = step.fn if isinstance(step, Vectorized) else step
    return getattr(inner, "__name__", type(inner).__name__)


def vectorized(fn: Callable[[pa.Table], Any]) -> Vectorized:
    """Decorator form of ``Vectorized``."""
    return Vectorized(fn)


def is_batch_level(step: Any) -> bool:
    """Whether ``step`` works on whole tables rather than single records."""
    if isinstance(step, Vectorized | pc.Expression | dict):
        return True
    try:
        params = list(inspect.signature(step).parameters.values())
    except (TypeError, ValueError):
        return False
    if not params:
        return False
    note = params[0].annotation
    names = ("Table", "RecordBatch", "pa.Table", "pa.RecordBatch", "pyarrow.Table")
    return note in (pa.Table, pa.RecordBatch) or (isinstance(note, str) and note in names)


@dataclass
class BatchResult:
    """What one batch became: the table to write and the records rejected on the way."""

    table: pa.Table
    rows_in: int
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)


def record_text(record: Any) -> str:
    """A record as JSON text for an error entry, cut to a few KB."""
    text = json.dumps(record, default=json_default, ensure_ascii=False)
    return text if len(text) <= _RAW_LIMIT else text[:_RAW_LIMIT] + "..."


class BatchPipeline:
    """Applies validation, filters and transformations to tables.

    ``validator`` is a record-level check (see ``make_validator``). Safe to share across
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
            if not batch and inspect.iscoroutinefunction(step):
                step = _bridged(step)
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
    """Each step over the surviving records, each user function once per record: a record
    whose step raises (or is invalid) is rejected there and goes no further; the others are
    not run again. Whole-list passes per step keep the loop tight; ``try`` costs nothing
    until something raises."""
    originals = records
    skipped = 0
    for kind, step in steps:
        out: list[dict] = []
        out_numbers: list = []
        out_originals: list = []
        keep = out.append
        for record, number, original in zip(records, numbers, originals, strict=True):
            try:
                if kind == "transform":
                    new = step(record)
                    if new is not None and type(new) is not dict:
                        new = _checked(new)
                    keep(record if new is None else new)
                elif kind == "filter":
                    if not step(record):
                        skipped += 1
                        continue
                    keep(record)
                else:
                    reason = step(record)
                    if reason:
                        raise ValueError(reason)
                    keep(record)
            except Exception as exc:  # bad record or failing user code: reject this record
                name = step_name(step)
                label = kind if name in ("<lambda>", "check", "function") else f"{kind} {name}"
                errors.append(RowError(file, f"{label} failed: {exc!r}", record_text(original),
                                       record=number, stage=kind, function=name))
                continue
            out_numbers.append(number)
            out_originals.append(original)
        records, numbers, originals = out, out_numbers, out_originals
    return records, numbers, skipped


def _bridged(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An ``async def`` step run to completion through the project's one sync bridge."""
    from fsm_actors.platform.event_loop import run_sync

    def call(record: Any) -> Any:
        return run_sync(fn(record))

    call.__name__ = getattr(fn, "__name__", "step")
    return call


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


def _checked(out: Any) -> dict:
    if not isinstance(out, dict):
        raise TypeError(f"a transformation must return a dict or None, got {type(out).__name__}")
    return out


def _project(table: pa.Table, columns: dict[str, Any]) -> pa.Table:
    import pyarrow.dataset as ds

    projection = {name: pc.field(name) for name in table.column_names}
    projection.update(columns)
    return ds.dataset(table).to_table(columns=projection)
