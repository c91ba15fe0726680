"""A file-processing run: its config made into a job of the one job layer (plain core).

``FileJob`` turns a ``FileProcessingConfig`` into a ``FileJobKind`` whose stage is the
config's validation, filters and transformations (``FileStage``), with mergeable
aggregations written as side parts and merged at the end. The job layer does the rest:
reading, workers, checkpoint, threshold, commit.

``BatchPipeline`` runs the steps over one Arrow table; the steps and their contract are the
shared record pipeline's (``patterns._records``, which ETL drives over pages of dicts):
consecutive record-level steps run fused over one ``to_pylist()`` of the batch, a batch-level
step on the table itself. Order: validation, then filters, then transformations (the order
dataknobs-fsm documents). A record-level rejection is an error entry with the file and record
number; a batch-level step that raises rejects its whole batch, with its name.

A pipeline file's ``options`` (batch size, workers, memory bound, streaming reads) and
``error_handling`` (the retry policy of each batch's stage, and what a batch that still
fails does) arrive here as ``options`` / ``error_handling`` (see
``patterns._pipeline.options``; read by attribute, so this module does not depend on it).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from fsm_actors.platform.errors import FSMError
from fsm_actors.platform.io import RowError, records_to_table
from fsm_actors.platform.jobs import (
    FileJobKind,
    FileJobSpec,
    JobError,
    JobProgress,
    StageOutput,
    run_job,
)
from patterns._files.aggregate import AggSpec, merge, parse_aggregations, partial
from patterns._records import (
    is_batch_level,
    make_validator,
    prepared,
    record_text,
    run_record_steps,
    step_name,
)
from patterns._task_policy import TaskRetry
from patterns.errors import ErrorThresholdExceeded, PatternError

if TYPE_CHECKING:
    from patterns.file_processing import FileProcessingConfig

#: batches in flight per ``ProcessingMode`` (a ``StrEnum``: its members are these keys)
IN_FLIGHT = {"stream": 2, "batch": 4, "whole": 1}
#: the stages whose rejections are failures of a batch (validation rejections are data)
FAILING_STAGES = ("filter", "transform")


@dataclass(frozen=True)
class BatchRetry(TaskRetry):
    """The retry policy of a batch's stage (``error_handling:`` of a pipeline file): the
    project's task policy (``patterns._task_policy.TaskRetry``) applied to a batch.

    An attempt fails when a filter or transformation raises (or rejects records), or when it
    takes longer than ``timeout`` seconds (the attempt is abandoned; the stage is pure, so
    its late result is dropped). After ``max_retries`` retries: ``skip`` sends the batch's
    records to the error file; ``fail`` and ``compensate`` stop the run."""

    def run(self, attempt: Callable[[], StageOutput], batch: Any, file: str,
            first_record: int) -> StageOutput:
        def failed(out: StageOutput) -> list[RowError]:
            return [e for e in out.errors if e.stage in FAILING_STAGES]

        try:
            out = self.call(attempt, lambda out: bool(failed(out)))
        except Exception as exc:  # the last attempt timed out (or the stage raised)
            reason = str(exc)
        else:
            if not failed(out):
                return out
            reason = failed(out)[0].reason
        attempts = self.attempts
        where = f"{file} records {first_record + 1}.."
        if self.on_failure == "skip":
            records = batch.to_pylist() if hasattr(batch, "to_pylist") else list(batch)
            why = f"batch skipped after {attempts} attempts: {reason}"
            errors = [RowError(file, why, json.dumps(r, default=str)[:4096],
                               record=first_record + i + 1, stage="transform")
                      for i, r in enumerate(records)]
            return StageOutput(None, len(records), 0, errors)
        raise FSMError(f"the batch at {where} failed {attempts} attempts "
                       f"(error_handling.on_failure: {self.on_failure}): {reason}")


@dataclass
class FileStage:
    """The record stage of file processing; built once per worker (``open``)."""

    filters: Sequence[Any] = ()
    transformations: Sequence[Any] = ()
    validation_schema: Any = None
    agg_specs: Sequence[AggSpec] = ()
    group_by: Sequence[str] = ()
    whole_aggregations: dict[str, Callable[[list[dict]], Any]] = field(default_factory=dict)
    retry: BatchRetry | None = None
    wants_records = False

    @property
    def runs_user_code(self) -> bool:
        """Whether a batch runs the user's Python (a function step or a whole-run
        aggregation); without it the stage is Arrow kernels only (expressions, projections,
        declarative aggregations), which release the GIL: a local run can run several
        copies of it at once (``JobKind.local_lanes``)."""
        steps = [*self.filters, *self.transformations]
        return bool(self.whole_aggregations) or any(
            not isinstance(s, pc.Expression | dict) for s in steps
        )

    def open(self) -> None:
        schema = self.validation_schema
        self._pipeline = BatchPipeline(
            self.filters, self.transformations,
            make_validator(schema) if schema is not None else None,
        )

    def apply(self, batch: pa.Table, file: str, first_record: int) -> StageOutput:
        if not hasattr(self, "_pipeline"):
            self.open()

        def once() -> StageOutput:
            return self._pipeline.apply(batch, file, first_record)

        return once() if self.retry is None else self.retry.run(once, batch, file, first_record)

    def side(self, out: StageOutput) -> tuple[pa.Table | None, Any]:
        table = out.table if out.table is not None else pa.table({})
        part = partial(table, self.agg_specs, self.group_by) if self.agg_specs else None
        whole = None
        if self.whole_aggregations:
            records = table.to_pylist()
            whole = {name: fn(records) for name, fn in self.whole_aggregations.items()}
        return part, whole

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_pipeline"}


class BatchPipeline:
    """Applies validation, filters and transformations to tables (see the module docstring).

    ``validator`` is a record-level check (see ``patterns._records.make_validator``). Safe to
    share across batches; not thread-safe (steps may keep state).
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

    def apply(self, table: pa.Table, file: str | None, first_record: int) -> StageOutput:
        """Run every stage over ``table``; ``first_record`` numbers the records in errors
        (after a batch-level filter the numbers are no longer known and errors carry none)."""
        result = StageOutput(table, table.num_rows)
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


def _error(message: str, *, threshold: bool = False, **context: Any) -> PatternError:
    cls = ErrorThresholdExceeded if threshold else PatternError
    allowed = {k: context.get(k) for k in ("run_id", "file", "error_file")}
    return cls(message, pattern="file_processing", **allowed)


class FileJob:
    """One run of a ``FileProcessingConfig``. Use once."""

    def __init__(
        self,
        config: FileProcessingConfig,
        *,
        checkpoint_id: str | None = None,
        on_progress: Callable[[JobProgress], Any] | None = None,
        address: str | None = None,
        options: Any = None,
        error_handling: Any = None,
    ) -> None:
        self.config = config
        self.options = options
        self.error_handling = error_handling
        self.checkpoint_id = checkpoint_id or config.checkpoint_id
        self.run_id = self.checkpoint_id or uuid.uuid4().hex[:12]
        self.on_progress = on_progress
        self.address = address
        self.agg_specs, callables = (parse_aggregations(config.aggregations)
                                     if config.aggregations else ([], {}))
        if callables and config.mode != "whole":
            raise PatternError(
                f"aggregations {sorted(callables)} are callables: they need every record at "
                "once, so use mode=WHOLE, or a mergeable spec such as 'count', 'sum:amount', "
                "('mean', 'amount')",
                pattern="file_processing",
            )
        stage = FileStage(
            filters=tuple(config.filters or ()),
            transformations=tuple(config.transformations or ()),
            validation_schema=config.validation_schema,
            agg_specs=tuple(self.agg_specs),
            group_by=tuple(config.group_by or ()),
            whole_aggregations=dict(callables),
            retry=BatchRetry.of(error_handling) if error_handling is not None else None,
        )
        self.whole_aggregations = callables
        try:
            self.kind = FileJobKind(
                _with_options(_spec(config, options), options),
                stage,
                self.run_id,
                label=f"file_processing {self.run_id}",
                finish=self._finish,
                identity=_identity(config),
                error=_error,
            )
        except JobError as exc:
            raise PatternError(exc.message, pattern="file_processing", file=exc.file) from None
        self.plan = self.kind.plan
        if getattr(options, "buffer_size", None) is not None:
            other = [i.path for i in self.plan.inputs if i.format not in ("csv", "tsv")]
            if other:
                raise PatternError(
                    f"options.buffer_size sets the block size of CSV reads; {other[0]} is not "
                    "CSV (its reader has no block size): remove buffer_size",
                    pattern="file_processing", file=other[0])

    async def run(self) -> dict[str, Any]:
        """Process every input and commit the output; returns the result dict."""
        limit = getattr(self.options, "memory_limit", None)
        try:
            try:
                return await run_job(
                    self.kind,
                    resumable=self.checkpoint_id is not None,
                    error_threshold=self.config.error_threshold,
                    on_progress=self.on_progress,
                    address=self.address,
                    memory_limit=int(limit) if limit else None,
                )
            except JobError as exc:
                if isinstance(exc, PatternError):
                    raise
                raise PatternError(
                    exc.message, pattern="file_processing", run_id=exc.run_id, file=exc.file
                ) from None
        except PatternError as exc:
            if getattr(self.error_handling, "on_failure", None) != "compensate":
                raise
            done = self._compensate(exc)
            raise PatternError(f"{exc.message}; compensated: {done}",
                               pattern="file_processing", run_id=self.run_id) from None

    def _compensate(self, error: PatternError) -> str:
        """Undo the failed run: the named compensation function, else remove its partial
        output (staged parts, checkpoint: nothing is left to resume)."""
        function = getattr(self.error_handling, "compensation", None)
        if callable(function):
            function({"run_id": self.run_id, "input_path": self.config.input_path,
                      "output_path": self.config.output_path, "error": error.message})
            return f"ran {getattr(function, '__name__', 'the compensation')}"
        from patterns._task_policy import remove_partial_output

        return remove_partial_output(self.kind)

    def _finish(self, staging: Any, meta: dict[str, Any]) -> dict[str, Any]:
        if not self.agg_specs and not self.whole_aggregations:
            return {}
        out: dict[str, Any] = {}
        if self.agg_specs:
            merged = merge(staging.partials(), self.agg_specs, self.config.group_by or ())
            if self.config.group_by:
                out["groups"] = merged
            else:
                out.update(merged)
        whole = meta.get("whole", {})
        for name in self.whole_aggregations:
            values = {
                path: batches[min(batches, key=int)][name] for path, batches in whole.items()
            }
            out[name] = next(iter(values.values()), None) if len(self.plan.inputs) == 1 else values
        return {"aggregations": out}


def _spec(config: FileProcessingConfig, options: Any = None) -> FileJobSpec:
    """The job spec of ``config``: its read options built once (``read_options``), the
    output and run settings beside them."""
    return FileJobSpec(
        input_path=config.input_path,
        output_path=config.output_path,
        read=config.read_options(getattr(options, "buffer_size", None)),
        output_format=config.output_format.value if config.output_format else None,
        compression=config.compression,
        partition_by=tuple(config.partition_by or ()),
        chunk_size=config.chunk_size,
        whole=config.mode == "whole",
        in_flight=IN_FLIGHT[config.mode],
        xml_root_element=config.xml_root_element,
        error_file=config.error_file,
        checkpoint_dir=config.checkpoint_dir,
        workers=config.worker_count,
        shared_fs=config.shared_fs,
    )


def _with_options(spec: FileJobSpec, options: Any) -> FileJobSpec:
    """``spec`` with a pipeline file's ``options`` applied (checked at load time by
    ``patterns._pipeline.kind_file.check_options``)."""
    if options is None:
        return spec
    changes: dict[str, Any] = {}  # batch_size, parallel_workers: already config fields
    if options.stream is not None:
        changes["whole"] = not options.stream
        changes["in_flight"] = IN_FLIGHT["stream" if options.stream else "whole"]
    return replace(spec, **changes) if changes else spec


def _identity(config: FileProcessingConfig) -> dict[str, Any]:
    """What the steps are, for the checkpoint: a resume with other steps is refused."""

    def name(fn: Any) -> str:
        return getattr(fn, "__qualname__", None) or type(fn).__name__

    return {
        "filters": [name(f) for f in config.filters or ()],
        "transformations": [name(t) for t in config.transformations or ()],
        "aggregations": sorted(config.aggregations or {}),
        "group_by": list(config.group_by or ()),
        "validation": repr(config.validation_schema)[:200] if config.validation_schema else None,
    }
