"""What the databases say about their tables: columns, primary keys, DDL (plain core).

Every function takes a leased connection (live or handle) and raises ``PatternError`` with
the table, the database (password hidden) and what to do when the catalog says no.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

from patterns._etl import dialect as sql
from patterns._etl.endpoints import DatabaseEndpoint
from patterns.errors import PatternError
from resource_actors.errors import ResourceError


def _fail(message: str) -> PatternError:
    return PatternError(message, pattern="etl")


def table_exists(conn: Any, backend: str, table: str) -> bool:
    return bool(conn.query(sql.table_exists_sql(backend), sql.catalog_params(backend, table)))


def columns_of(conn: Any, ep: DatabaseEndpoint, role: str) -> list[str]:
    """The column names of the endpoint's table or query."""
    if ep.table and not table_exists(conn, ep.backend, ep.table):
        hint = ("check the name, or create it first" if role == "target"
                else "check the table name and the database")
        raise _fail(f"the {role} table {ep.table!r} does not exist in {ep.safe_url}: {hint}")
    try:
        return list(conn.read_table(sql.probe_sql(ep.backend, ep.table, ep.query)).schema.names)
    except ResourceError as exc:
        raise _fail(f"cannot read the {role} {ep.describe()}: {exc}. Check the "
                    f"{'query' if ep.query else 'table'}") from None


def primary_key(conn: Any, ep: DatabaseEndpoint) -> list[str]:
    """The primary-key columns of the endpoint's table (empty for a query or no key)."""
    if not ep.table:
        return []
    return [r["name"] for r in conn.query(sql.primary_key_sql(ep.backend),
                                          sql.catalog_params(ep.backend, ep.table))]


def unique_keys(conn: Any, ep: DatabaseEndpoint) -> list[list[str]]:
    """The column lists the endpoint's rows are provably unique and never NULL on: its
    primary key and unique indexes (not partial, no expressions) whose columns are NOT NULL,
    or nullable but holding no NULL when asked (SQLite lets a PRIMARY KEY hold NULL unless it
    is declared NOT NULL; a NULL key written after that is a row written during the run,
    which no paging promises to read); the primary key first, then the shortest. Empty for a
    query (nothing is known of its rows).

    Only such a key may page a source by keyset: on a repeated value a page ends inside the
    group and ``key > last`` skips the rest of it; NULLs never compare greater."""
    if not ep.table:
        return []
    if sql.is_sqlite(ep.backend):
        found = _sqlite_unique_keys(conn, ep.table)
    else:
        indexes: dict[str, tuple[bool, list[tuple[str | None, bool]]]] = {}
        for r in conn.query(sql.unique_keys_sql(ep.backend),
                            sql.catalog_params(ep.backend, ep.table)):
            columns = indexes.setdefault(str(r["idx"]), (bool(r["pk"]), []))[1]
            columns.append((r["name"], bool(r["notnull"])))
        found = list(indexes.values())
    usable = []
    for pk, cols in found:
        if not cols or any(name is None for name, _ in cols):  # an expression
            continue
        nullable = [name for name, not_null in cols if not not_null]
        if nullable and not _holds_no_null(conn, ep, nullable):  # type: ignore[arg-type]
            continue
        usable.append((pk, [name for name, _ in cols]))
    usable.sort(key=lambda entry: (not entry[0], len(entry[1])))
    return [cols for _, cols in usable]  # type: ignore[misc]


def _holds_no_null(conn: Any, ep: DatabaseEndpoint, columns: list[str]) -> bool:
    """True when no row of the endpoint's table has a NULL in any of ``columns``."""
    nulls = " OR ".join(f"{sql.quote(ep.backend, c)} IS NULL" for c in columns)
    table = sql.quote(ep.backend, ep.table or "")
    return not conn.query(f"SELECT 1 AS x FROM {table} WHERE {nulls} LIMIT 1", {})


def _sqlite_table_sql(conn: Any, table: str) -> str | None:
    rows = conn.query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t",
                      {"t": table})
    return rows[0]["sql"] if rows else None


def _sqlite_without_rowid(create: str) -> bool:
    tail = create[create.rfind(")") + 1:]
    return re.search(r"\bWITHOUT\s+ROWID\b", tail, re.IGNORECASE) is not None


def _sqlite_unique_keys(conn: Any, table: str) -> list[tuple[bool, list[tuple[str | None, bool]]]]:
    """SQLite's unique keys as ``(primary, [(column, not_null)])`` (column None: an
    expression). SQLite lets PRIMARY KEY columns hold NULL unless declared NOT NULL, except
    the rowid alias (``INTEGER PRIMARY KEY``) and the key of a WITHOUT ROWID table."""
    columns = {r["cid"]: r for r in conn.query(sql.SQLITE_COLUMNS, {"t": table})}
    create = _sqlite_table_sql(conn, table) or ""
    no_rowid = _sqlite_without_rowid(create)
    indexes: dict[str, tuple[bool, list[tuple[str | None, bool]]]] = {}
    for r in conn.query(sql.SQLITE_UNIQUE_INDEXES, {"t": table}):
        pk = r["origin"] == "pk"
        col = columns.get(r["cid"])  # an expression has none
        not_null = col is not None and (bool(col["nn"]) or (pk and no_rowid))
        indexes.setdefault(r["idx"], (pk, []))[1].append(
            (col["name"] if col is not None else None, not_null))
    found = list(indexes.values())
    pk_cols = [c for c in columns.values() if c["pk"]]
    if (not no_rowid and len(pk_cols) == 1 and str(pk_cols[0]["type"]).upper() == "INTEGER"
            and not any(pk for pk, _ in found)):
        found.append((True, [(pk_cols[0]["name"], True)]))  # the rowid alias: no index
    return found


def stable_order(conn: Any, ep: DatabaseEndpoint, columns: list[str]) -> str:
    """The ORDER BY of a source read with no usable key (see ``unique_keys``), total up to
    rows that are interchangeable: PostgreSQL tables by row address (``tableoid, ctid``),
    other PostgreSQL relations by each row's text; SQLite tables by rowid; else by every
    column."""
    if ep.backend == "postgresql":
        if ep.table:
            kind = conn.query(sql.pg_relkind_sql(), sql.catalog_params(ep.backend, ep.table))
            if kind and kind[0]["kind"] in ("r", "p", "m"):
                return sql.PG_ADDRESS_ORDER
        return sql.PG_TEXT_ORDER
    if sql.is_sqlite(ep.backend) and ep.table:
        create = _sqlite_table_sql(conn, ep.table)
        taken = {c.lower() for c in columns}
        free = [a for a in sql.SQLITE_ROWID_ALIASES if a not in taken]
        if create is not None and not _sqlite_without_rowid(create) and free:
            return f"etl_src.{free[0]}"
    return sql.columns_order(len(columns))


def bounds(conn: Any, ep: DatabaseEndpoint, column: str, where: str | None,
           params: dict[str, Any]) -> tuple[Any, Any, int]:
    """``(min, max, count)`` of ``column`` over the rows matching ``where``."""
    row = conn.query(sql.bounds_sql(ep.backend, ep.table, ep.query, column, where), params)[0]
    return row["lo"], row["hi"], int(row["n"] or 0)


def key_ranges(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous inclusive ranges covering ``[lo, hi]`` (fewer when it is short)."""
    width = max(1, math.ceil((hi - lo + 1) / max(1, parts)))
    out = []
    start = lo
    while start <= hi:
        end = min(hi, start + width - 1)
        out.append((start, end))
        start = end + 1
    return out


def sqlite_ddl(conn: Any, table: str) -> tuple[str, list[str]]:
    """The ``CREATE TABLE`` of ``table`` and its explicit ``CREATE INDEX`` statements."""
    rows = conn.query("SELECT type, sql FROM sqlite_master WHERE tbl_name = :t AND sql IS NOT NULL",
                      {"t": table})
    create = [r["sql"] for r in rows if r["type"] == "table"]
    if not create:
        raise _fail(f"the target table {table!r} does not exist")
    return create[0], [r["sql"] for r in rows if r["type"] == "index"]


@dataclass(frozen=True)
class ColumnType:
    """What a load must know of a column's declared type: ``kind`` is ``json`` (json,
    jsonb, MySQL JSON), ``array`` (a PostgreSQL array), ``decimal`` (with ``precision`` and
    ``scale`` when declared) or ``other``."""

    kind: str
    precision: int | None = None
    scale: int | None = None


def column_types(conn: Any, ep: DatabaseEndpoint) -> dict[str, ColumnType]:
    """The declared types of the endpoint's columns that a load treats apart (see
    ``ColumnType``); PostgreSQL tables and queries, MySQL tables; else empty."""
    if ep.backend == "postgresql":
        if ep.table:
            return _pg_types(conn, sql.catalog_params(ep.backend, ep.table))
        view = f"etl_probe_{uuid.uuid4().hex[:10]}"  # a query's types: a temp view's columns
        try:
            conn.execute(f"CREATE TEMP VIEW {view} AS {ep.query}")
        except ResourceError:
            return {}  # the probe read says what is wrong with the query
        try:
            return _pg_types(conn, {"t": view})
        finally:
            conn.execute(f"DROP VIEW IF EXISTS {view}")
    if ep.backend == "mysql" and ep.table:
        out = {}
        for r in conn.query(sql.MYSQL_COLUMN_TYPES, sql.catalog_params(ep.backend, ep.table)):
            kind = str(r["type"]).lower()
            if kind == "json":
                out[r["name"]] = ColumnType("json")
            elif kind == "decimal":
                out[r["name"]] = ColumnType("decimal", _int(r["prec"]), _int(r["scale"]))
        return out
    return {}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _pg_types(conn: Any, params: dict[str, Any]) -> dict[str, ColumnType]:
    out = {}
    for r in conn.query(sql.PG_COLUMN_TYPES, params):
        if r["type"] in ("json", "jsonb"):
            out[r["name"]] = ColumnType("json")
        elif r["cat"] == "A":
            out[r["name"]] = ColumnType("array")
        elif r["type"] == "numeric":
            mod = int(r["mod"])
            out[r["name"]] = (ColumnType("decimal", ((mod - 4) >> 16) & 0xFFFF, (mod - 4) & 0xFFFF)
                              if mod >= 4 else ColumnType("decimal"))
    return out
