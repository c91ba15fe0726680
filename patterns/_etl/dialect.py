"""The SQL an ETL run needs, per backend (plain core: strings only, no connections).

Backends are the resource layer's canonical names: ``postgresql``, ``mysql`` (MariaDB too),
``sqlite`` and ``memory`` (SQLite). Statements for ``execute_many`` with row tuples use the
driver's paramstyle (``?`` for SQLite, ``%s`` otherwise); the others use ``:name``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: The checkpoint table in each target database: one row per (run, partition).
CHECKPOINT_TABLE = "fsm_etl_checkpoints"
#: Rejected records, written in the same transaction as the batch they came from.
REJECT_TABLE = "fsm_etl_rejects"


def is_sqlite(backend: str) -> bool:
    return backend in ("sqlite", "memory")


def quote(backend: str, name: str) -> str:
    """A quoted identifier (``schema.table`` quoted part by part)."""
    q = "`" if backend == "mysql" else '"'
    return ".".join(q + part.replace(q, q + q) + q for part in name.split("."))


def quote_all(backend: str, names: Sequence[str]) -> str:
    return ", ".join(quote(backend, n) for n in names)


def mark(backend: str) -> str:
    return "?" if is_sqlite(backend) else "%s"


def text_type(backend: str, length: int | None = None) -> str:
    if length:
        return f"VARCHAR({length})"
    return "LONGTEXT" if backend == "mysql" else "TEXT"


# -- catalog -----------------------------------------------------------------------------------
#: MySQL's catalog rows of table ``:t`` in database ``:s`` (NULL: the connection's own)
_MYSQL_SCHEMA = "TABLE_SCHEMA = COALESCE(:s, DATABASE())"


def catalog_params(backend: str, table: str) -> dict[str, str | None]:
    """The parameters of the catalog queries below for ``table`` as the user wrote it (case
    kept, ``schema.table`` allowed): PostgreSQL's ``regclass`` gets the quoted name (an
    unquoted one folds to lower case: "MixedT" would be missed, "Orders" taken for orders);
    MySQL gets the database and the table apart."""
    if backend == "postgresql":
        return {"t": quote(backend, table)}
    if backend == "mysql":
        schema, _, name = table.rpartition(".")
        return {"s": schema or None, "t": name}
    return {"t": table}


def primary_key_sql(backend: str) -> str:
    """Rows ``name`` of the primary-key columns of table ``:t``, in key order."""
    if is_sqlite(backend):
        return "SELECT name FROM pragma_table_info(:t) WHERE pk > 0 ORDER BY pk"
    if backend == "postgresql":
        return ("SELECT a.attname AS name FROM pg_index i JOIN pg_attribute a "
                "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                "WHERE i.indrelid = CAST(:t AS regclass) AND i.indisprimary "
                "ORDER BY array_position(i.indkey, a.attnum)")
    return ("SELECT COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE "
            f"WHERE {_MYSQL_SCHEMA} AND TABLE_NAME = :t AND CONSTRAINT_NAME = 'PRIMARY' "
            "ORDER BY ORDINAL_POSITION")


def table_exists_sql(backend: str) -> str:
    """One row when table ``:t`` exists."""
    if is_sqlite(backend):
        return "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = :t"
    if backend == "postgresql":
        return "SELECT 1 AS x WHERE to_regclass(:t) IS NOT NULL"
    return (f"SELECT 1 AS x FROM information_schema.TABLES WHERE {_MYSQL_SCHEMA} "
            "AND TABLE_NAME = :t")


def probe_sql(backend: str, table: str | None, query: str | None) -> str:
    """A query returning no rows but the columns of ``table`` (or ``query``)."""
    return f"SELECT * FROM {relation(backend, table, query)} WHERE 1 = 0"


def relation(backend: str, table: str | None, query: str | None) -> str:
    """What a SELECT reads from: the quoted table, or the query as a derived table; either
    is named ``etl_src`` (what an ordered read's ORDER BY refers to)."""
    if table:
        return f"{quote(backend, table)} AS etl_src"
    return f"({query}) AS etl_src"


def unique_keys_sql(backend: str) -> str:
    """Rows ``idx``, ``pk``, ``name``, ``notnull`` of the unique indexes of table ``:t`` (no
    partial or expression ones), one per key column in key order. PostgreSQL and MySQL only
    (SQLite: ``catalog.unique_keys`` reads its pragmas)."""
    if backend == "postgresql":
        return ("SELECT CAST(i.indexrelid AS text) AS idx, i.indisprimary AS pk, "
                "a.attname AS name, a.attnotnull AS notnull FROM pg_index i "
                "CROSS JOIN LATERAL unnest(CAST(i.indkey AS int2[])) WITH ORDINALITY AS k(att, ord) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.att "
                "WHERE i.indrelid = CAST(:t AS regclass) AND i.indisunique AND i.indisvalid "
                "AND i.indpred IS NULL AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts "
                "ORDER BY i.indexrelid, k.ord")
    return ("SELECT s.INDEX_NAME AS idx, s.INDEX_NAME = 'PRIMARY' AS pk, s.COLUMN_NAME AS name, "
            "c.IS_NULLABLE = 'NO' AS notnull FROM information_schema.STATISTICS s "
            "LEFT JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = s.TABLE_SCHEMA "
            "AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME "
            f"WHERE s.{_MYSQL_SCHEMA} AND s.TABLE_NAME = :t AND s.NON_UNIQUE = 0 "
            "ORDER BY s.INDEX_NAME, s.SEQ_IN_INDEX")


#: SQLite's catalog of table ``:t``: its columns, and the columns of its unique indexes
SQLITE_COLUMNS = 'SELECT cid, name, type, "notnull" AS nn, pk FROM pragma_table_info(:t)'
SQLITE_UNIQUE_INDEXES = (
    'SELECT l.name AS idx, l.origin AS origin, i.cid AS cid FROM pragma_index_list(:t) AS l '
    'JOIN pragma_index_info(l.name) AS i WHERE l."unique" = 1 AND l.partial = 0 '
    "ORDER BY l.seq, i.seqno")
SQLITE_ROWID_ALIASES = ("rowid", "_rowid_", "oid")


#: Rows ``name``, ``type`` (pg_type.typname), ``cat`` (typcategory) and ``mod`` (atttypmod)
#: of relation ``:t``'s columns
PG_COLUMN_TYPES = (
    "SELECT a.attname AS name, t.typname AS type, CAST(t.typcategory AS text) AS cat, "
    "a.atttypmod AS mod FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
    "WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped")
#: Rows ``name``, ``type``, ``prec``, ``scale`` of MySQL table ``:t``'s columns
MYSQL_COLUMN_TYPES = (
    "SELECT COLUMN_NAME AS name, DATA_TYPE AS type, NUMERIC_PRECISION AS prec, "
    "NUMERIC_SCALE AS scale FROM information_schema.COLUMNS WHERE "
    f"{_MYSQL_SCHEMA} AND TABLE_NAME = :t")


def select_list(backend: str, columns: Sequence[str], as_text: Sequence[str] = ()) -> str:
    """The quoted ``columns``; PostgreSQL reads those in ``as_text`` as their text (JSON
    columns: the JSON exactly as stored, JSON null apart from SQL NULL)."""
    if backend != "postgresql" or not as_text:
        return quote_all(backend, columns)
    text = set(as_text)
    return ", ".join(f"CAST({quote(backend, c)} AS text) AS {quote(backend, c)}" if c in text
                     else quote(backend, c) for c in columns)


def pg_relkind_sql() -> str:
    """One row ``kind``: the ``pg_class.relkind`` of relation ``:t`` (``r`` a table)."""
    return "SELECT CAST(relkind AS text) AS kind FROM pg_class WHERE oid = CAST(:t AS regclass)"


# -- reading -----------------------------------------------------------------------------------
def page_sql(backend: str, table: str | None, query: str | None, columns: Sequence[str],
             key: Sequence[str], *, after: bool, lo: bool, hi: bool, extra: str | None,
             as_text: Sequence[str] = ()) -> str:
    """One keyset page: rows past ``:after_*`` (when ``after``), inside ``[:lo, :hi]`` of the
    first key column (when ``lo``/``hi``), matching ``extra``, ordered by ``key``, ``:n`` rows.
    """
    where: list[str] = []
    k0 = quote(backend, key[0])
    if lo:
        where.append(f"{k0} >= :lo")
    if hi:
        where.append(f"{k0} <= :hi")
    if after:
        where.append(keyset_after(backend, key))
    if extra:
        where.append(extra)
    sql = f"SELECT {select_list(backend, columns, as_text)} FROM {relation(backend, table, query)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + f" ORDER BY {quote_all(backend, key)} LIMIT :n"


def keyset_after(backend: str, key: Sequence[str]) -> str:
    """``key > :after_0, ...`` written as a row comparison (all three backends support it)."""
    if len(key) == 1:
        return f"{quote(backend, key[0])} > :after_0"
    lhs = ", ".join(quote(backend, k) for k in key)
    rhs = ", ".join(f":after_{i}" for i in range(len(key)))
    return f"({lhs}) > ({rhs})"


#: Orders that make an ordered read deterministic (see ``catalog.stable_order``):
#: PostgreSQL tables by row address; other PostgreSQL relations by each row's text (every
#: type has one, and rows printing the same are interchangeable), byte-wise.
PG_ADDRESS_ORDER = "etl_src.tableoid, etl_src.ctid"
PG_TEXT_ORDER = 'CAST(ROW(etl_src.*) AS text) COLLATE "C"'


def columns_order(count: int) -> str:
    """ORDER BY every selected column, by position."""
    return ", ".join(str(i) for i in range(1, count + 1))


def ordered_sql(backend: str, table: str | None, query: str | None, columns: Sequence[str],
                order: str, extra: str | None, as_text: Sequence[str] = ()) -> str:
    """Every row of the source matching ``extra``, ordered by ``order`` (one pass)."""
    where = f" WHERE {extra}" if extra else ""
    return (f"SELECT {select_list(backend, columns, as_text)} FROM {relation(backend, table, query)}"
            f"{where} ORDER BY {order}")


def positional_sql(ordered: str) -> str:
    """A page of ``ordered`` by position: ``:n`` rows from ``:offset``."""
    return f"{ordered} LIMIT :n OFFSET :offset"


#: The PostgreSQL cursor an ordered read runs in (one per source connection at a time)
PG_CURSOR = "etl_rows"


def declare_sql(ordered: str) -> str:
    return f"DECLARE {PG_CURSOR} NO SCROLL CURSOR FOR {ordered}"


def fetch_sql(count: int) -> str:
    return f"FETCH FORWARD {int(count)} FROM {PG_CURSOR}"


def bounds_sql(backend: str, table: str | None, query: str | None, column: str,
               extra: str | None) -> str:
    """``lo``, ``hi``, ``n`` of ``column`` over the rows matching ``extra``."""
    c = quote(backend, column)
    sql = (f"SELECT MIN({c}) AS lo, MAX({c}) AS hi, COUNT(*) AS n "
           f"FROM {relation(backend, table, query)}")
    return sql + (f" WHERE {extra}" if extra else "")


# -- writing -----------------------------------------------------------------------------------
def insert_sql(backend: str, table: str, columns: Sequence[str]) -> str:
    marks = ", ".join([mark(backend)] * len(columns))
    return f"INSERT INTO {quote(backend, table)} ({quote_all(backend, columns)}) VALUES ({marks})"


def upsert_sql(backend: str, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """A batched upsert for ``execute_many`` with row tuples in ``columns`` order."""
    base = insert_sql(backend, table, columns)
    rest = [c for c in columns if c not in key]
    if backend == "mysql":
        if not rest:
            first = quote(backend, key[0])
            return f"{base} ON DUPLICATE KEY UPDATE {first} = {first}"
        sets = ", ".join(f"{quote(backend, c)} = VALUES({quote(backend, c)})" for c in rest)
        return f"{base} ON DUPLICATE KEY UPDATE {sets}"
    return base + _on_conflict(backend, key, rest)


def _on_conflict(backend: str, key: Sequence[str], rest: Sequence[str]) -> str:
    target = quote_all(backend, key)
    if not rest:
        return f" ON CONFLICT ({target}) DO NOTHING"
    sets = ", ".join(f"{quote(backend, c)} = excluded.{quote(backend, c)}" for c in rest)
    return f" ON CONFLICT ({target}) DO UPDATE SET {sets}"


def pg_temp_table(table: str) -> str:
    """The session-private table a PostgreSQL upsert COPYs its batch into."""
    return "etl_upsert_" + re.sub(r"\W", "_", table)[:40]


def pg_temp_create(table: str, temp: str) -> str:
    return (f"CREATE TEMP TABLE IF NOT EXISTS {quote('postgresql', temp)} "
            f"(LIKE {quote('postgresql', table)} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")


def pg_upsert_from(table: str, temp: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """Move a COPYed batch from ``temp`` into ``table`` by ``INSERT ... ON CONFLICT``."""
    cols = quote_all("postgresql", columns)
    rest = [c for c in columns if c not in key]
    return (f"INSERT INTO {quote('postgresql', table)} ({cols}) SELECT {cols} FROM "
            f"{quote('postgresql', temp)}" + _on_conflict("postgresql", key, rest))


# -- checkpoint and rejects --------------------------------------------------------------------
def checkpoint_ddl(backend: str) -> str:
    state = text_type(backend)
    return (f"CREATE TABLE IF NOT EXISTS {quote(backend, CHECKPOINT_TABLE)} ("
            f"run_id VARCHAR(200) NOT NULL, part VARCHAR(200) NOT NULL, state {state} NOT NULL, "
            "PRIMARY KEY (run_id, part))")


def reject_ddl(backend: str) -> str:
    t = text_type(backend)
    return (f"CREATE TABLE IF NOT EXISTS {quote(backend, REJECT_TABLE)} ("
            "run_id VARCHAR(200) NOT NULL, part VARCHAR(200) NOT NULL, seq INTEGER NOT NULL, "
            f"idx INTEGER NOT NULL, record_key {t}, stage VARCHAR(40), reason {t}, record {t}, "
            "PRIMARY KEY (run_id, part, seq, idx))")


def checkpoint_put(backend: str) -> str:
    """Upsert of one checkpoint row (``:run_id``, ``:part``, ``:state``)."""
    table = quote(backend, CHECKPOINT_TABLE)
    base = f"INSERT INTO {table} (run_id, part, state) VALUES (:run_id, :part, :state)"
    if backend == "mysql":
        return base + " ON DUPLICATE KEY UPDATE state = VALUES(state)"
    return base + " ON CONFLICT (run_id, part) DO UPDATE SET state = excluded.state"


def checkpoint_get(backend: str) -> str:
    return (f"SELECT part, state FROM {quote(backend, CHECKPOINT_TABLE)} "
            "WHERE run_id = :run_id")


def checkpoint_get_one(backend: str) -> str:
    return checkpoint_get(backend) + " AND part = :part"


def checkpoint_delete(backend: str) -> str:
    return f"DELETE FROM {quote(backend, CHECKPOINT_TABLE)} WHERE run_id = :run_id"


def reject_insert(backend: str) -> str:
    cols = ("run_id", "part", "seq", "idx", "record_key", "stage", "reason", "record")
    return insert_sql(backend, REJECT_TABLE, cols)


def reject_select(backend: str) -> str:
    return (f"SELECT part, seq, idx, record_key, stage, reason, record FROM "
            f"{quote(backend, REJECT_TABLE)} WHERE run_id = :run_id ORDER BY part, seq, idx")


def reject_page(backend: str, after: bool) -> str:
    """One page (``:n`` rows) of a run's rejects in (part, seq, idx) order, past
    ``(:after_part, :after_seq, :after_idx)`` when ``after`` (a redrive reads them so)."""
    where = "run_id = :run_id"
    if after:
        where += (" AND (part > :after_part OR (part = :after_part AND (seq > :after_seq OR "
                  "(seq = :after_seq AND idx > :after_idx))))")
    return (f"SELECT part, seq, idx, record_key, stage, reason, record FROM "
            f"{quote(backend, REJECT_TABLE)} WHERE {where} ORDER BY part, seq, idx LIMIT :n")


def reject_count(backend: str) -> str:
    return f"SELECT COUNT(*) AS n FROM {quote(backend, REJECT_TABLE)} WHERE run_id = :run_id"


# -- FULL_REFRESH ------------------------------------------------------------------------------
def staging_name(table: str, token: str) -> str:
    """The staging table of ``table`` for one run (shaped like it)."""
    schema, _, name = table.rpartition(".")
    staged = f"{name[:40]}__etl_{token}"
    return f"{schema}.{staged}" if schema else staged


def sqlite_rename_create(create_sql: str, new_name: str) -> str:
    """``create_sql`` (from ``sqlite_master``) creating ``new_name`` instead."""
    pattern = re.compile(
        r'^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?("(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[\w$]+)',
        re.IGNORECASE)
    match = pattern.match(create_sql)
    if match is None:
        raise ValueError("not a CREATE TABLE statement")
    return f"CREATE TABLE {quote('sqlite', new_name)}" + create_sql[match.end():]


def staging_create(backend: str, table: str, staging: str) -> list[str]:
    """Statements creating an empty ``staging`` shaped like ``table`` (SQLite: see
    ``sqlite_rename_create``, run by the caller with the table's own DDL)."""
    if backend == "postgresql":
        return [f"CREATE TABLE IF NOT EXISTS {quote(backend, staging)} "
                f"(LIKE {quote(backend, table)} INCLUDING ALL)"]
    if backend == "mysql":
        return [f"CREATE TABLE IF NOT EXISTS {quote(backend, staging)} LIKE {quote(backend, table)}"]
    raise ValueError("SQLite staging tables are made from the table's DDL")


def refresh_statements(backend: str, table: str, staging: str, columns: Sequence[str],
                       key: Sequence[str]) -> list[str]:
    """DML putting ``staging``'s rows in place of ``table``'s, to run in ONE transaction:
    the table itself (grants, triggers, foreign keys both ways, comment, row-level security,
    index names, the views on it) is left as it is, only its rows change.

    With a ``key`` (the target's primary key): rows whose key is gone are deleted and the
    others inserted or updated in place, so rows that child tables refer to stay; without
    one: every row is deleted, the new ones inserted."""
    t, s = quote(backend, table), quote(backend, staging)
    cols = quote_all(backend, columns)
    insert = f"INSERT INTO {t} ({cols}) SELECT {cols} FROM {s}"
    if not key:
        return [f"DELETE FROM {t}", insert]
    if is_sqlite(backend):  # no aliases in SQLite's DELETE: the bare names qualify
        tq, sq = quote(backend, table.rpartition(".")[2]), quote(backend, staging.rpartition(".")[2])
        match = " AND ".join(f"{sq}.{quote(backend, k)} = {tq}.{quote(backend, k)}" for k in key)
        delete = f"DELETE FROM {t} WHERE NOT EXISTS (SELECT 1 FROM {s} WHERE {match})"
    else:
        match = " AND ".join(f"etl_s.{quote(backend, k)} = etl_t.{quote(backend, k)}"
                             for k in key)
        gone = f"WHERE NOT EXISTS (SELECT 1 FROM {s} AS etl_s WHERE {match})"
        delete = (f"DELETE etl_t FROM {t} AS etl_t {gone}" if backend == "mysql"
                  else f"DELETE FROM {t} AS etl_t {gone}")
    rest = [c for c in columns if c not in key]
    if backend == "mysql":
        first = quote(backend, key[0])
        sets = ", ".join(f"{quote(backend, c)} = VALUES({quote(backend, c)})" for c in rest)
        return [delete, f"{insert} ON DUPLICATE KEY UPDATE {sets or f'{first} = {first}'}"]
    where = " WHERE true" if is_sqlite(backend) else ""  # SQLite: ON after SELECT needs a WHERE
    return [delete, insert + where + _on_conflict(backend, key, rest)]
