"""What happens to each extracted record: validate, filter, map fields, transform (plain core).

Every user function runs exactly once per record. A record whose validation fails or whose
function raises is rejected (with its key and the reason) and the rest of the batch goes on;
a filter returning a falsy value skips the record. A ``Vectorized`` transformation (a
callable on a ``pyarrow.Table``) runs once per batch; when it raises, the records it was
given are rejected.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from fsm_actors.platform.io import records_to_table
from fsm_actors.platform.io.json_encode import json_default

_RAW_LIMIT = 4096


@dataclass
class Reject:
    """One rejected record: where it was in the batch, its key, the stage and the reason."""

    index: int
    key: str
    stage: str
    reason: str
    record: str


@dataclass
class Outcome:
    """A batch after the record pipeline."""

    records: list[dict[str, Any]]
    rejects: list[Reject] = field(default_factory=list)
    skipped: int = 0


def record_text(record: Any) -> str:
    """JSON text of a record for a reject entry, cut to a few KB."""
    text = json.dumps(record, default=json_default, ensure_ascii=False)
    return text if len(text) <= _RAW_LIMIT else text[:_RAW_LIMIT] + "..."


def reject_line(part: str, seq: int | None, r: Any) -> dict[str, Any]:
    """One line of an ETL error file (``r``: a ``Reject`` or a reject-table row)."""
    get = r.get if isinstance(r, dict) else lambda k: getattr(r, k)
    key = r["record_key"] if isinstance(r, dict) else r.key
    return {"file": None, "line": None, "record": None, "partition": part, "batch": seq,
            "key": key, "raw": get("record"), "stage": get("stage"), "function": None,
            "state": None, "reason": get("reason")}


def key_text(values: Any, key: Sequence[str]) -> str:
    """A record's key values (one value, or a tuple for several columns) as JSON text
    (``{"id": 7}``); empty when keyless."""
    if not key:
        return ""
    items = dict(zip(key, values, strict=True)) if len(key) > 1 else {key[0]: values}
    return json.dumps(items, default=json_default, ensure_ascii=False)


class _Keys:
    """Key values of a batch's records, read up front (cheap) and turned into text only for
    the records that are rejected."""

    def __init__(self, records: list[dict[str, Any]], key: Sequence[str]) -> None:
        self.key = list(key)
        if not key:
            self.values: list[Any] = []
        elif len(key) == 1:
            k = key[0]
            self.values = [r.get(k) for r in records]
        else:
            self.values = [tuple(r.get(k) for k in key) for r in records]

    def __getitem__(self, index: int) -> str:
        if not self.key or index < 0:
            return ""
        return key_text(self.values[index], self.key)


def is_vectorized(step: Any) -> bool:
    """A batch-level step: a ``patterns.file_processing.Vectorized`` or a callable whose first
    parameter is annotated ``pyarrow.Table``."""
    if type(step).__name__ == "Vectorized" and hasattr(step, "fn"):
        return True
    try:
        params = list(inspect.signature(step).parameters.values())
    except (TypeError, ValueError):
        return False
    note = params[0].annotation if params else None
    return note in (pa.Table, pa.RecordBatch) or note in ("pa.Table", "pyarrow.Table", "Table")


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


class RecordPipeline:
    """Applies the configured steps to batches of dicts. Not thread-safe (steps may keep state).

    ``key``: the columns a reject is identified by (in source names, read before mapping).
    """

    def __init__(
        self,
        *,
        key: Sequence[str] = (),
        validation_schema: dict[str, Any] | None = None,
        filters: Sequence[Callable[[dict[str, Any]], Any]] = (),
        field_mappings: dict[str, str] | None = None,
        transformations: Sequence[Any] = (),
    ) -> None:
        self.key = list(key)
        self._validate = _validator(validation_schema) if validation_schema else None
        self._filters = list(filters)
        self._mappings = dict(field_mappings or {})
        self._stages: list[tuple[bool, list[Any]]] = []
        for step in transformations:
            vector = is_vectorized(step)
            if self._stages and not vector and not self._stages[-1][0]:
                self._stages[-1][1].append(step)
            else:
                self._stages.append((vector, [step]))

    @property
    def identity(self) -> bool:
        """True when records pass unchanged (no step configured)."""
        return not (self._validate or self._filters or self._mappings or self._stages)

    def apply(self, records: list[dict[str, Any]]) -> Outcome:
        """Run every step over ``records`` (dicts may be mutated)."""
        out = Outcome([])
        keys = _Keys(records, self.key)
        # ``idx``: where each current record was in the batch; None while that is its position
        # (no record dropped yet), so the common batch needs no index bookkeeping
        current, idx = records, None
        if self._validate or self._filters or self._mappings:
            current, idx = self._record_front(current, idx, keys, out)
        for vector, steps in self._stages:
            if not current:
                break
            current, idx = (self._vector(steps[0], current, idx, keys, out) if vector
                            else self._per_record(steps, current, idx, keys, out))
        out.records = current
        return out

    def _record_front(self, records, idx, keys, out):
        kept: list[dict[str, Any]] = []
        keep = _Kept(idx)
        validate, filters, mappings = self._validate, self._filters, self._mappings
        for p, record in enumerate(records):
            stage = "validate"
            try:
                if validate is not None:
                    problem = validate(record)
                    if problem:
                        index = keep.drop(p)
                        out.rejects.append(Reject(index, keys[index], stage, problem,
                                                  record_text(record)))
                        continue
                stage = "filter"
                if filters and not all(f(record) for f in filters):
                    keep.drop(p)
                    out.skipped += 1
                    continue
                if mappings:
                    record = {mappings.get(k, k): v for k, v in record.items()}
            except Exception as exc:  # a user function failed: reject this record only
                index = keep.drop(p)
                out.rejects.append(Reject(index, keys[index], stage, f"{stage} failed: {exc!r}",
                                          record_text(record)))
                continue
            kept.append(record)
            keep.kept(p)
        return kept, keep.result()

    def _per_record(self, steps, records, idx, keys, out):
        kept: list[dict[str, Any]] = []
        keep = _Kept(idx)
        only = steps[0] if len(steps) == 1 else None
        for p, record in enumerate(records):
            step = only
            try:
                if only is not None:  # the common case: one function, no inner loop
                    current = only(record)
                    if current is None:
                        current = record
                    elif not isinstance(current, dict):
                        raise TypeError(f"{_name(only)} returned {type(current).__name__}, "
                                        "not a dict")
                else:
                    current = record
                    for step in steps:
                        result = step(current)
                        if result is not None:
                            if not isinstance(result, dict):
                                raise TypeError(f"{_name(step)} returned "
                                                f"{type(result).__name__}, not a dict")
                            current = result
            except Exception as exc:  # a user function failed: reject this record only
                index = keep.drop(p)
                out.rejects.append(Reject(index, keys[index], "transform",
                                          f"transform {_name(step)} failed: {exc!r}",
                                          record_text(record)))
                continue
            kept.append(current)
            keep.kept(p)
        return kept, keep.result()

    def _vector(self, step, records, idx, keys, out):
        table = records_to_table(records)
        try:
            result = step(table)
            if isinstance(result, pa.RecordBatch):
                result = pa.Table.from_batches([result])
            if not isinstance(result, pa.Table):
                raise TypeError(f"returned {type(result).__name__}, not a pyarrow Table")
        except Exception as exc:  # the batch step failed: reject what it was given
            for p, record in enumerate(records):
                index = p if idx is None else idx[p]
                out.rejects.append(Reject(index, keys[index], "transform",
                                          f"transform {_name(step)} failed: {exc!r}",
                                          record_text(record)))
            return [], None
        rows = result.to_pylist()
        if len(rows) == len(records):
            return rows, idx
        out.skipped += max(0, len(records) - len(rows))
        return rows, [-1] * len(rows)


class _Kept:
    """The batch positions of the records a stage keeps, built only once one is dropped."""

    def __init__(self, idx: list[int] | None) -> None:
        self.idx = idx
        self.out: list[int] | None = None

    def drop(self, p: int) -> int:
        """Record ``p`` of the stage's input is dropped; returns its position in the batch."""
        if self.out is None:  # everything before p was kept
            self.out = list(range(p)) if self.idx is None else self.idx[:p]
        return p if self.idx is None else self.idx[p]

    def kept(self, p: int) -> None:
        if self.out is not None:
            self.out.append(p if self.idx is None else self.idx[p])

    def result(self) -> list[int] | None:
        return self.idx if self.out is None else self.out


def _validator(schema: dict[str, Any]) -> Callable[[dict[str, Any]], str | None]:
    """``check(record) -> reason or None`` for a JSON schema (``jsonschema``, the project's
    validator library)."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)

    def check(record: dict[str, Any]) -> str | None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(record))
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path)
        return f"{where}: {error.message}" if where else error.message

    return check
