"""What happens to each extracted record: validate, filter, map fields, transform (plain core).

The steps, their contract and the validator are the shared record pipeline's
(``patterns._records``, the same as file steps'); this module drives them over pages of dicts
and names each rejected record by its key. Every user function runs exactly once per record.
A record whose validation fails or whose function raises is rejected (with its key and the
reason) and the rest of the batch goes on; a filter returning a falsy value skips the record.
A ``Vectorized`` transformation (a callable on a ``pyarrow.Table``) runs once per batch; when
it raises, the records it was given are rejected.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from fsm_actors.platform.io import records_to_table
from fsm_actors.platform.io.convert import json_default
from patterns._records import (
    is_batch_level,
    make_validator,
    prepared,
    record_text,
    run_record_steps,
    step_name,
)


@dataclass
class Reject:
    """One rejected record: where it was in the batch, its key, the stage and the reason."""

    index: int
    key: str
    stage: str
    reason: str
    record: str
    #: where a file source's record was: its file, line (when the reader knows it) and
    #: 1-based record number
    file: str | None = None
    line: int | None = None
    record_no: int | None = None


@dataclass
class Outcome:
    """A batch after the record pipeline."""

    records: list[dict[str, Any]]
    rejects: list[Reject] = field(default_factory=list)
    skipped: int = 0


def reject_line(part: str, seq: int | None, r: Any) -> dict[str, Any]:
    """One line of an ETL error file (``r``: a ``Reject`` or a reject-table row)."""
    get = r.get if isinstance(r, dict) else lambda k: getattr(r, k)
    key = r["record_key"] if isinstance(r, dict) else r.key
    where = (None, None, None) if isinstance(r, dict) else (r.file, r.line, r.record_no)
    return {"file": where[0], "line": where[1], "record": where[2], "partition": part,
            "batch": seq,
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
        front: list[tuple[str, Any]] = []
        if validation_schema:
            front.append(("validate", make_validator(validation_schema)))
        front += [("filter", f) for f in filters]
        if field_mappings:
            front.append(("transform", _mapper(dict(field_mappings))))
        self._stages: list[tuple[bool, list[tuple[str, Any]]]] = []
        for kind, step in front + [("transform", t) for t in transformations]:
            vector = is_batch_level(step)
            if self._stages and not vector and not self._stages[-1][0]:
                self._stages[-1][1].extend(prepared([(kind, step)]))
            else:
                self._stages.append((vector, [(kind, step)] if vector
                                     else prepared([(kind, step)])))

    @property
    def identity(self) -> bool:
        """True when records pass unchanged (no step configured)."""
        return not self._stages

    def apply(self, records: list[dict[str, Any]]) -> Outcome:
        """Run every step over ``records`` (dicts may be mutated)."""
        out = Outcome([])
        keys = _Keys(records, self.key)
        # ``idx``: where each current record was in the batch; None while that is its position
        # (no record dropped yet), so the common batch needs no index bookkeeping
        current: list[dict[str, Any]] = records
        idx: list[int] | None = None
        for vector, steps in self._stages:
            if not current:
                break
            if vector:
                current, idx = self._vector(steps[0][1], current, idx, keys, out)
                continue
            done = run_record_steps(current, steps)
            out.skipped += done.skipped
            for r in done.rejected:
                index = r.position if idx is None else idx[r.position]
                out.rejects.append(Reject(index, keys[index], r.stage, r.reason,
                                          record_text(r.record)))
            if done.positions is not None:
                idx = (done.positions if idx is None
                       else [idx[p] for p in done.positions])
            current = done.records
        out.records = current
        return out

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
                                          f"transform {step_name(step)} failed: {exc!r}",
                                          record_text(record)))
            return [], None
        rows = result.to_pylist()
        if len(rows) == len(records):
            return rows, idx
        out.skipped += max(0, len(records) - len(rows))
        return rows, [-1] * len(rows)


def _mapper(mappings: dict[str, str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """``field_mappings`` as a transformation: source field names to target column names."""

    def field_mappings(record: dict[str, Any]) -> dict[str, Any]:
        return {mappings.get(k, k): v for k, v in record.items()}

    return field_mappings
