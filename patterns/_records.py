"""The one record pipeline of file and ETL steps (plain core, no Ray): validate, filter,
transform, and reject each failing record with where it was and why.

A step is record-level (a callable on a dict) or batch-level (``is_batch_level``: a
``Vectorized`` callable on a ``pyarrow.Table``, a callable whose first parameter is annotated
as a Table/RecordBatch, a pyarrow compute ``Expression`` filter or a ``{column: Expression}``
projection). File steps (``patterns._files.job.BatchPipeline``) drive it over tables, ETL steps
(``patterns._etl.records``) over pages of dicts; both run their record-level steps through
``run_record_steps`` and validate with ``make_validator`` (the engine's compiled JSON-schema
check, ``None`` values treated as missing).

Record-level contract: a ``validate`` step returns ``None`` for a valid record, else the
reason; a ``filter`` returns truthy to keep the record; a ``transform`` returns the new
record, or ``None`` to keep the (possibly mutated) record. Every user function runs exactly
once per record it reaches: a record whose step fails is rejected there (stage, function
name, reason, the record as it entered) and goes no further; the others go on.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fsm_actors.config.schema import compile_schema
from fsm_actors.platform.io.convert import json_default

_RAW_LIMIT = 4096

#: ``check(record) -> None when valid, else the reason``
Check = Callable[[dict[str, Any]], str | None]


@dataclass(frozen=True)
class Vectorized:
    """Marks ``fn`` as batch-level: it takes a ``pyarrow.Table`` and returns a Table or
    RecordBatch (a transformation), or a Table or boolean mask (a filter)."""

    fn: Callable[[pa.Table], Any]

    def __call__(self, table: pa.Table) -> Any:
        return self.fn(table)


def vectorized(fn: Callable[[pa.Table], Any]) -> Vectorized:
    """Decorator form of ``Vectorized``."""
    return Vectorized(fn)


def step_name(step: Any) -> str:
    """What an error calls a step: the user function's name (a ``Vectorized`` is named for
    the function it wraps), else its type."""
    inner = step.fn if isinstance(step, Vectorized) else step
    return getattr(inner, "__name__", type(inner).__name__)


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


def record_text(record: Any) -> str:
    """A record as JSON text for an error entry, cut to a few KB."""
    text = json.dumps(record, default=json_default, ensure_ascii=False)
    return text if len(text) <= _RAW_LIMIT else text[:_RAW_LIMIT] + "..."


# -- validation ------------------------------------------------------------------------------
def make_validator(schema: Any) -> Check | None:
    """A check for ``schema`` (``None`` gives ``None``): a pydantic model class
    (``model_validate`` must pass), a callable returning truthy for a valid record, or a JSON
    Schema (draft 7) dict compiled once by the engine's validator (``FSMConfigError`` at
    ``validation_schema`` for a malformed one). Raises ``TypeError`` for other values."""
    if schema is None:
        return None
    if isinstance(schema, type) and hasattr(schema, "model_validate"):
        return _pydantic_check(schema)
    if isinstance(schema, dict):
        return _dict_check(schema)
    if callable(schema):
        return _callable_check(schema)
    raise TypeError(
        "validation_schema must be a pydantic model class, a callable or a JSON-Schema-like "
        f"dict, got {type(schema).__name__}"
    )


def _pydantic_check(model: Any) -> Check:
    def check(record: dict[str, Any]) -> str | None:
        try:
            model.model_validate(record)
        except Exception as exc:  # pydantic's ValidationError; its text lists the fields
            return str(exc).replace("\n", "; ")
        return None

    return check


def _callable_check(fn: Callable[[dict[str, Any]], Any]) -> Check:
    def check(record: dict[str, Any]) -> str | None:
        return None if fn(record) else f"rejected by {getattr(fn, '__name__', 'validator')}"

    return check


def _dict_check(schema: dict[str, Any]) -> Check:
    # a table row or a database row has no other way to say "no value" than None
    errors_of = compile_schema(schema, "validation_schema", nulls_as_missing=True)

    def check(record: dict[str, Any]) -> str | None:
        problems = errors_of(record)
        return "; ".join(problems) if problems else None

    return check


# -- record-level steps ----------------------------------------------------------------------
@dataclass
class Rejected:
    """One record a step rejected: its position in the input, the stage, the function's name,
    the reason and the record as it entered the steps."""

    position: int
    stage: str
    function: str
    reason: str
    record: Any


@dataclass
class StepsOutcome:
    """What ``run_record_steps`` left: the kept records, their positions in the input (None
    while no record was dropped: the positions are then 0..n-1), the rejected and the count
    of records filters skipped."""

    records: list[dict[str, Any]]
    positions: list[int] | None
    rejected: list[Rejected] = field(default_factory=list)
    skipped: int = 0


def prepared(steps: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``(stage, step)`` pairs ready for ``run_record_steps``: an ``async def`` step runs to
    completion through the project's one sync bridge."""
    return [(kind, _bridged(step) if inspect.iscoroutinefunction(step) else step)
            for kind, step in steps]


def run_record_steps(records: list[dict[str, Any]],
                     steps: Sequence[tuple[str, Any]]) -> StepsOutcome:
    """Each ``(stage, step)`` over the surviving records (stage ``validate``, ``filter`` or
    ``transform``), a whole-list pass per step; ``try`` costs nothing until something raises.
    A failing record is rejected with ``"<stage> <name> failed: <exception>"`` (a validator's
    reason as ``"validate: <reason>"``); the name is left out for lambdas."""
    out = StepsOutcome(records, None)
    originals = records
    positions: list[int] | None = None
    for kind, step in steps:
        if not records:
            break
        kept: list[dict[str, Any]] = []
        keep = kept.append
        dropped: list[int] = []  # indexes into the current list
        for i, record in enumerate(records):
            try:
                if kind == "transform":
                    new = step(record)
                    if new is None:
                        keep(record)
                    elif isinstance(new, dict):
                        keep(new)
                    else:
                        raise TypeError("a transformation must return a dict or None, got "
                                        f"{type(new).__name__}")
                elif kind == "filter":
                    if step(record):
                        keep(record)
                    else:
                        out.skipped += 1
                        dropped.append(i)
                else:
                    reason = step(record)
                    if reason:
                        dropped.append(i)
                        out.rejected.append(_rejected(i, positions, kind, step, None, reason,
                                                      originals))
                    else:
                        keep(record)
            except Exception as exc:  # bad record or failing user code: reject this record
                dropped.append(i)
                out.rejected.append(_rejected(i, positions, kind, step, exc, None, originals))
        if dropped:
            gone = set(dropped)
            base = positions if positions is not None else range(len(records))
            positions = [p for i, p in enumerate(base) if i not in gone]
            originals = [r for i, r in enumerate(originals) if i not in gone]
        records = kept
    out.records, out.positions = records, positions
    return out


def _rejected(i: int, positions: list[int] | None, kind: str, step: Any,
              exc: BaseException | None, reason: str | None, originals: list) -> Rejected:
    name = step_name(step)
    label = kind if name in ("<lambda>", "check", "function") else f"{kind} {name}"
    text = f"{label}: {reason}" if exc is None else f"{label} failed: {exc!r}"
    return Rejected(i if positions is None else positions[i], kind, name, text, originals[i])


def _bridged(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An ``async def`` step run to completion through the project's one sync bridge."""
    from fsm_actors.platform.event_loop import run_sync

    def call(record: Any) -> Any:
        return run_sync(fn(record))

    call.__name__ = getattr(fn, "__name__", "step")
    return call
