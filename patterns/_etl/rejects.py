"""Reading a finished run's rejects back as records, for a redrive (plain core).

A reject row (``fsm_etl_rejects``: part, seq, idx, record_key, stage, reason, record) turns
back into the record it was:

* from a database source with a key (``read_key``) whose values the row's ``record_key``
  holds: the source row of that key, read again with the declared types, exactly as a run
  reads it (a transformation that changed the record in place before another one rejected
  it does not leak into the redrive);
* else from the stored ``record`` (JSON text of the record as given; JSON types);
* else (a parse error's raw line, a record cut short): it cannot be re-run and is kept as
  the reject it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fsm_actors.redrive import json_record
from patterns._etl import dialect as sql
from patterns._etl.endpoints import DatabaseEndpoint
from patterns._etl.records import Reject

#: keys looked up by one query (bound parameters stay under every backend's limit)
KEYS_PER_QUERY = 500


@dataclass
class RejectPage:
    """One page of rejects: the records to run again and the rejects kept as they were."""

    records: list[dict[str, Any]]
    kept: list[Reject]
    cursor: dict[str, Any]
    last: bool


def stored_record(text: Any) -> dict[str, Any] | None:
    """The record a reject row stores (its JSON text), or None when it is not one."""
    return json_record(text)


def key_of(text: Any, read_key: list[str]) -> tuple | None:
    """The source key a reject row names (``record_key``: ``{"id": 7}``), when it holds every
    column of ``read_key`` as a plain JSON number or string; else None."""
    if not read_key or not isinstance(text, str) or not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or set(value) != set(read_key):
        return None
    values = tuple(value[k] for k in read_key)
    if not all(isinstance(v, int | str) and not isinstance(v, bool) for v in values):
        return None
    return values


def redrivable(row: dict[str, Any], read_key: list[str]) -> bool:
    """True when ``row`` (a reject row) can be turned back into a record."""
    return key_of(row.get("record_key"), read_key) is not None or \
        stored_record(row.get("record")) is not None


def reject_pages(target_conn: Any, backend: str, of: str, cursor: dict[str, Any], size: int,
                 read_source: Callable[[list[tuple]], dict[tuple, dict[str, Any]]] | None,
                 read_key: list[str]) -> Iterator[RejectPage]:
    """The rejects of run ``of`` past ``cursor`` (``{"after": [part, seq, idx]}``), ``size``
    a page, as records (``read_source(keys) -> {key: source row}``: rows read again by key,
    or None when the source has no key to read by)."""
    after = cursor.get("after")
    while True:
        params: dict[str, Any] = {"run_id": of, "n": size}
        if after is not None:
            params.update(after_part=after[0], after_seq=after[1], after_idx=after[2])
        rows = target_conn.query(sql.reject_page(backend, after is not None), params)
        if not rows:
            return
        keys = [key_of(r["record_key"], read_key) if read_source else None for r in rows]
        found = read_source([k for k in keys if k is not None]) if read_source and any(keys) \
            else {}
        records: list[dict[str, Any]] = []
        kept: list[Reject] = []
        for row, key in zip(rows, keys, strict=True):
            record = found.get(key) if key is not None else None
            if record is None:
                record = stored_record(row["record"])
            if record is None:
                kept.append(Reject(-1, row["record_key"] or "", row["stage"] or "",
                                   row["reason"] or "", row["record"] or ""))
            else:
                records.append(record)
        last = rows[-1]
        after = [last["part"], int(last["seq"]), int(last["idx"])]
        yield RejectPage(records, kept, {"after": after}, len(rows) < size)
        if len(rows) < size:
            return


def source_reader(conn: Any, source: DatabaseEndpoint, columns: list[str], key: list[str],
                  as_text: list[str]) -> Callable[[list[tuple]], dict[tuple, dict[str, Any]]]:
    """``read(keys) -> {key: row}``: the source rows of ``keys`` (one query per call)."""
    backend = source.backend

    def read(keys: list[tuple]) -> dict[tuple, dict[str, Any]]:
        keys = list(dict.fromkeys(keys))
        found: dict[tuple, dict[str, Any]] = {}
        for at in range(0, len(keys), KEYS_PER_QUERY):
            found.update(read_some(keys[at:at + KEYS_PER_QUERY]))
        return found

    def read_some(keys: list[tuple]) -> dict[tuple, dict[str, Any]]:
        params: dict[str, Any] = {"n": len(keys)}
        if len(key) == 1:
            column = sql.quote(backend, key[0])
            names = [f":rk_{i}" for i in range(len(keys))]
            where = f"{column} IN ({', '.join(names)})"
            params.update({f"rk_{i}": k[0] for i, k in enumerate(keys)})
        else:
            terms = []
            for i, k in enumerate(keys):
                terms.append("(" + " AND ".join(
                    f"{sql.quote(backend, c)} = :rk_{i}_{j}" for j, c in enumerate(key)) + ")")
                params.update({f"rk_{i}_{j}": v for j, v in enumerate(k)})
            where = "(" + " OR ".join(terms) + ")"
        statement = sql.page_sql(backend, source.table, source.query, columns, key,
                                 after=False, lo=False, hi=False, extra=where, as_text=as_text)
        names, rows = conn.query_rows(statement, params)
        at = [names.index(c) for c in key]
        return {tuple(r[i] for i in at): dict(zip(names, r, strict=True)) for r in rows}

    return read
