"""What the databases say about their tables: columns, primary keys, DDL (plain core).

Every function takes a leased connection (live or handle) and raises ``PatternError`` with
the table, the database (password hidden) and what to do when the catalog says no.
"""

from __future__ import annotations

import math
from typing import Any

from patterns._etl import dialect as sql
from patterns._etl.endpoints import DatabaseEndpoint
from patterns.errors import PatternError
from resource_actors.errors import ResourceError


def _fail(message: str) -> PatternError:
    return PatternError(message, pattern="etl")


def table_exists(conn: Any, backend: str, table: str) -> bool:
    return bool(conn.query(sql.table_exists_sql(backend), {"t": table}))


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
    return [r["name"] for r in conn.query(sql.primary_key_sql(ep.backend), {"t": ep.table})]


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
