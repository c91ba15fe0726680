"""Writing one batch, its rejects and its checkpoint row in ONE transaction (plain core).

``Loader`` works on a leased connection: a ``DatabaseConnection`` in this process or a
``DatabaseHandle`` to one in a provider actor (same methods). Because the batch and the
checkpoint row that records it commit together, a crash anywhere leaves either both or
neither: a resumed run skips exactly the batches that are in the target.

Fast paths: APPEND and FULL_REFRESH use the provider's ``insert_batch`` (COPY on PostgreSQL,
executemany elsewhere); UPSERT and INCREMENTAL use ``INSERT ... ON CONFLICT`` (SQLite),
COPY into a session temp table + ``INSERT ... SELECT ... ON CONFLICT`` (PostgreSQL) or
``INSERT ... ON DUPLICATE KEY UPDATE`` (MariaDB/MySQL) with executemany.
"""

from __future__ import annotations

import datetime
import decimal
import json
import logging
import math
import operator
import re
import uuid
from collections.abc import Sequence
from itertools import chain
from typing import Any, TypeVar

from fsm_actors.platform.io.convert import json_default
from patterns._etl import dialect as sql
from patterns._etl.records import Reject
from patterns.errors import PatternError

log = logging.getLogger(__name__)
T = TypeVar("T")


def _json(value: Any) -> str:
    return json.dumps(value, default=json_default, ensure_ascii=False)


def _sqlite_time(value: Any) -> str:
    return value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()


def _mysql_datetime(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(datetime.UTC).replace(tzinfo=None)


def _iso_duration(value: datetime.timedelta) -> str:
    """A duration as ISO 8601 (``P1DT2H3M4.5S``, ``-P...`` when negative)."""
    sign = "-" if value < datetime.timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    secs = f"{seconds}.{value.microseconds:06d}".rstrip("0").rstrip(".") if value.microseconds \
        else str(seconds)
    return f"{sign}P{value.days}DT{hours}H{minutes}M{secs}S"


def _json_value(value: Any) -> Any:
    """A value for a JSON column: text as is (it is JSON text), other values as JSON."""
    return value if value is None or isinstance(value, str) else _json(value)


def _keep(value: Any) -> Any:
    return value


_COMMON = {dict: _json, list: _json}
_CONVERT: dict[str, dict[type, Any]] = {
    "sqlite": {**_COMMON, decimal.Decimal: str, datetime.datetime: _sqlite_time,
               datetime.date: _sqlite_time, datetime.time: _sqlite_time, uuid.UUID: str,
               memoryview: bytes, datetime.timedelta: _iso_duration},
    "mysql": {**_COMMON, datetime.datetime: _mysql_datetime, uuid.UUID: str, memoryview: bytes},
    "postgresql": {**_COMMON, memoryview: bytes},
}
_CONVERT["memory"] = _CONVERT["sqlite"]


def to_tuples(records: list[dict[str, Any]], columns: Sequence[str], backend: str,
              kinds: dict[str, str] | None = None) -> list[tuple]:
    """Row tuples in ``columns`` order with values the backend's driver can bind (JSON values
    as text; SQLite: decimals and times as text; MySQL: aware datetimes in UTC)."""
    if all(len(r) == len(columns) for r in records):
        get = operator.itemgetter(*columns)
        try:
            rows = [get(r) for r in records] if len(columns) > 1 else [(get(r),) for r in records]
        except KeyError:
            rows = [tuple(r.get(c) for c in columns) for r in records]
    else:
        rows = [tuple(r.get(c) for c in columns) for r in records]
    return bindable(rows, backend, columns, kinds)


def bindable(rows: list[tuple], backend: str, columns: Sequence[str] = (),
             kinds: dict[str, str] | None = None) -> list[tuple]:
    """``rows`` with the values the backend's driver cannot bind converted (see
    ``to_tuples``); the same list when there are none (one pass over the values).

    ``kinds`` (column -> ``json``/``array``, of the target's declared types) refines it per
    column of ``columns``: a JSON column takes text as is and any other value as JSON (a
    JSON string, ``true``); a PostgreSQL array column takes lists as they are."""
    convert = _CONVERT.get(backend, _COMMON)
    special = {i: k for i, c in enumerate(columns) if (k := (kinds or {}).get(c))}
    if not rows or (not special and not any(
            t in convert for t in set(map(type, chain.from_iterable(rows))))):
        return rows
    fix: dict[int, Any] = {}
    for i, column in enumerate(zip(*rows, strict=True)):
        kind = special.get(i)
        if kind == "json":
            fix[i] = _json_value
        elif any(t in convert for t in set(map(type, column))):
            fix[i] = (lambda v, c=convert: c.get(type(v), _keep)(v)) if kind != "array" \
                else (lambda v, c=convert: v if type(v) is list else c.get(type(v), _keep)(v))
    if not fix:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for i, fn in fix.items():
            values[i] = fn(values[i])
        out.append(tuple(values))
    return out


def batch_columns(records: list[dict[str, Any]], target_columns: Sequence[str],
                  table: str) -> list[str]:
    """The target columns a batch fills (in the target's order); ``PatternError`` naming any
    field the target table lacks."""
    seen = set().union(*records)
    known = set(target_columns)
    unknown = [c for c in seen if c not in known]
    if unknown:
        raise PatternError(
            f"records have field(s) {', '.join(map(repr, unknown))} that target table "
            f"{table!r} has no column for (its columns: {', '.join(target_columns)}); add the "
            "column(s), map the field(s) with field_mappings, or drop them in a transformation",
            pattern="etl")
    return [c for c in target_columns if c in seen]


def dedupe(records: list[dict[str, Any]], key: Sequence[str]) -> list[dict[str, Any]]:
    """Records with distinct ``key`` (the last one of each key wins), in first-seen order.
    A key holding NULL equals no other (as in SQL: such rows never conflict), so every
    record with one is kept."""
    if len(key) == 1:
        k = key[0]
        return last_per_key(records, [r.get(k) for r in records])
    return last_per_key(records, [tuple(r.get(c) for c in key) for r in records])


def last_per_key(items: list[T], keys: list[Any]) -> list[T]:
    """``items`` with one per key (the last one wins, at the first one's place); a key that
    is None or a tuple holding None is distinct from every other. ``items`` itself when
    every key is distinct."""
    if len(set(keys)) == len(keys):
        return items
    by_key: dict[Any, T] = {}
    for item, k in zip(items, keys, strict=True):
        if k is None or (type(k) is tuple and None in k):
            k = object()
        by_key[k] = item
    return list(by_key.values())


class Loader:
    """Writes batches into ``table`` of one database (see the module docstring).

    ``upsert_key``: the conflict key (UPSERT, INCREMENTAL); ``None`` for plain inserts.
    Not thread-safe: one loader per leased connection.
    """

    def __init__(self, conn: Any, backend: str, table: str, target_columns: Sequence[str],
                 upsert_key: Sequence[str] | None, run_id: str,
                 range_key: Sequence[str] = (), shown_table: str | None = None,
                 kinds: dict[str, str] | None = None) -> None:
        self.conn = conn
        #: target columns whose declared type is ``json`` or ``array`` (``bindable``)
        self.kinds = dict(kinds or {})
        #: the key a failed batch is described by (its range), and the table named to users
        self.range_key = list(upsert_key or range_key)
        self.shown_table = shown_table or table
        self.backend = backend
        self.table = table
        self.target_columns = list(target_columns)
        self.upsert_key = list(upsert_key) if upsert_key else None
        self.run_id = run_id
        self._temp_ready = False

    def rows_for(self, records: list[dict[str, Any]]) -> tuple[list[str], list[tuple]]:
        """The columns and bindable row tuples of a batch (de-duplicated by the upsert key)."""
        if not records:
            return [], []
        if self.upsert_key:
            records = dedupe(records, self.upsert_key)
        columns = batch_columns(records, self.target_columns, self.table)
        return columns, to_tuples(records, columns, self.backend, self.kinds)

    def tuples_for(self, names: list[str], rows: list[tuple]) -> tuple[list[str], list[tuple]]:
        """Rows that need no record step, as read: checked against the target's columns,
        de-duplicated by the upsert key, made bindable."""
        if not rows:
            return [], []
        batch_columns([dict.fromkeys(names)], self.target_columns, self.table)
        if self.upsert_key:
            at = [names.index(k) for k in self.upsert_key]
            if len(at) == 1:
                i = at[0]
                rows = last_per_key(rows, [r[i] for r in rows])
            else:
                rows = last_per_key(rows, [tuple(r[i] for i in at) for r in rows])
        return list(names), bindable(rows, self.backend, names, self.kinds)

    def commit_batch(self, part: str, seq: int, columns: list[str], rows: list[tuple],
                     rejects: Sequence[Reject], state: dict[str, Any]) -> None:
        """Write ``rows``, ``rejects`` and the partition's checkpoint ``state`` in one
        transaction."""
        tail: list[tuple[str, tuple, dict[str, Any]]] = []
        if rejects:
            tail.append(("execute_many", (sql.reject_insert(self.backend), [
                (self.run_id, part, seq, r.index, r.key, r.stage, r.reason, r.record)
                for r in rejects]), {}))
        tail.append(("execute", (sql.checkpoint_put(self.backend),
                                 {"run_id": self.run_id, "part": part, "state": _json(state)}), {}))
        if rows and self._fresh_range(columns, rows):
            try:
                self.conn.run_batch([("insert_batch", (self.table, rows), {"columns": columns}),
                                     *tail])
                return
            except Exception as exc:  # a row of the range came meanwhile: the upsert decides
                log.debug("fresh-range insert into %s fell back to the upsert: %s", self.table,
                          exc)
        try:
            self.conn.run_batch((self._write(columns, rows) if rows else []) + tail)
        except PatternError:
            raise
        except Exception as exc:
            raise load_error(exc, self.shown_table, part, seq, columns, rows, self.range_key,
                             self.run_id) from None

    def _fresh_range(self, columns: list[str], rows: list[tuple]) -> bool:
        """PostgreSQL UPSERT on one integer key: True when the target has no row in the key
        range of this batch (one index probe). Then the upsert is an insert and COPY does it;
        should a row of that range appear before the commit, the COPY fails and the batch is
        upserted after all (same transaction rules, nothing written twice)."""
        key = self.upsert_key
        if self.backend != "postgresql" or not key or len(key) != 1 or key[0] not in columns:
            return False
        at = columns.index(key[0])
        keys = [r[at] for r in rows]
        if not all(type(k) is int for k in keys):
            return False
        probe = (f"SELECT 1 AS found FROM {sql.quote(self.backend, self.table)} WHERE "
                 f"{sql.quote(self.backend, key[0])} BETWEEN :lo AND :hi LIMIT 1")
        return not self.conn.query(probe, {"lo": min(keys), "hi": max(keys)})

    def state(self, part: str) -> dict[str, Any] | None:
        """The checkpoint row of ``part`` of this run, or None."""
        return load_state(self.conn, self.backend, self.run_id, part)

    def put_state(self, part: str, state: dict[str, Any]) -> None:
        """Save one checkpoint row on its own."""
        self.conn.execute(sql.checkpoint_put(self.backend),
                          {"run_id": self.run_id, "part": part, "state": _json(state)})

    def _write(self, columns: list[str], rows: list[tuple]) -> list[tuple[str, tuple, dict]]:
        """The calls that write ``rows`` (run inside the batch's transaction)."""
        backend = self.backend
        if self.upsert_key is None:
            return [("insert_batch", (self.table, rows), {"columns": columns})]
        if backend == "postgresql":
            temp = sql.pg_temp_table(self.table)
            return [("execute", (sql.pg_temp_create(self.table, temp),), {}),
                    ("insert_batch", (temp, rows), {"columns": columns}),
                    ("execute", (sql.pg_upsert_from(self.table, temp, columns, self.upsert_key),), {})]
        return [("execute_many", (sql.upsert_sql(backend, self.table, columns, self.upsert_key),
                                  rows), {})]


def load_state(conn: Any, backend: str, run_id: str, part: str) -> dict[str, Any] | None:
    """The checkpoint row of ``(run_id, part)``, or None."""
    rows = conn.query(sql.checkpoint_get_one(backend), {"run_id": run_id, "part": part})
    return json.loads(rows[0]["state"]) if rows else None


def load_error(exc: BaseException, table: str, part: str, seq: int, columns: list[str],
               rows: list[tuple], key: Sequence[str], run_id: str) -> PatternError:
    """One ``PatternError`` for a batch the database refused: the table, the batch's key
    range, the column when it can be told, and the database's own reason (no traceback)."""
    reason = database_reason(exc)
    where = f"batch {seq} of partition {part!r}, {len(rows)} row(s)"
    at = [columns.index(k) for k in key if k in columns][:1]
    if at and rows:
        values = [r[at[0]] for r in rows if r[at[0]] is not None]
        try:
            where += f" with {columns[at[0]]} {min(values)!r}..{max(values)!r}" if values else ""
        except TypeError:
            pass
    column = column_named(reason, columns) or odd_column(columns, rows)
    return PatternError(
        f"loading into table {table!r} failed at {where}"
        + (f", column {column}" if column else "") + f": the database said: {reason}. Fix the "
        "data (a transformation or filter) or the target table and run again (with the same "
        "checkpoint_id it resumes at this batch; the batches before it are loaded)",
        pattern="etl", run_id=run_id)


def database_reason(exc: BaseException) -> str:
    """The database's own words in a failed call's error: no operation prefix, traceback,
    colour codes or SQLAlchemy boilerplate; at most 600 characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    text = text.split(") failed: ", 1)[-1] if ") failed: " in text else text
    text = re.split(r"\s*\[SQL: |\s*\(Background on this error", text)[0]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    text = " ".join(lines[:3]) or type(exc).__name__
    return text if len(text) <= 600 else text[:597] + "..."


def column_named(reason: str, columns: Sequence[str]) -> str | None:
    """The column ``reason`` names (quoted, or in a ``Key (col)=`` detail), if any."""
    for column in columns:
        if re.search(rf"""['"`(]{re.escape(column)}['"`)]""", reason):
            return repr(column)
    return None


def odd_column(columns: Sequence[str], rows: list[tuple]) -> str | None:
    """The first column holding a value few databases store (NaN or an infinity), named
    with it."""
    for i, column in enumerate(columns):
        for row in rows:
            value = row[i]
            if isinstance(value, float) and not math.isfinite(value):
                return f"{column!r} (holds {value!r})"
    return None


def plain_values(values: list[Any]) -> list[Any]:
    """A key as JSON-safe values for the checkpoint row (``unplain_values`` reverses it)."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, datetime.datetime | datetime.date):
            out.append({"$dt": v.isoformat()})
        elif isinstance(v, decimal.Decimal):
            out.append({"$dec": str(v)})
        elif isinstance(v, bytes):
            out.append({"$hex": v.hex()})
        else:
            out.append(v)
    return out


def unplain_values(values: list[Any]) -> list[Any]:
    """The values ``plain_values`` encoded."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, dict) and "$dt" in v:
            text = v["$dt"]
            out.append(datetime.datetime.fromisoformat(text) if "T" in text
                       else datetime.date.fromisoformat(text))
        elif isinstance(v, dict) and "$dec" in v:
            out.append(decimal.Decimal(v["$dec"]))
        elif isinstance(v, dict) and "$hex" in v:
            out.append(bytes.fromhex(v["$hex"]))
        else:
            out.append(v)
    return out
