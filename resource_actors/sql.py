"""``DatabaseConnection``: one leased SQL connection with batch-oriented calls.

Every call outside an explicit transaction runs in its own transaction and commits (or rolls
back on error). ``begin``/``commit``/``rollback`` (or ``with conn.transaction():``) group calls.
Errors surface as ``ResourceError`` naming the resource, the backend and the operation, never
the credentials. Not thread-safe: one holder at a time, which the lease guarantees.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import pyarrow as pa
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from resource_actors.errors import ResourceError

T = TypeVar("T")
Rows = Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]] | pa.Table | pa.RecordBatch


def error_text(exc: BaseException) -> str:
    """The useful first lines of a driver error, without SQLAlchemy's boilerplate."""
    orig = getattr(exc, "orig", None)
    raw = str(orig if orig is not None else exc)
    lines = [ln.strip() for ln in raw.splitlines() if ln.strip() and not ln.startswith("(Background")]
    return " ".join(lines[:3]) or type(exc).__name__


def rows_to_tuples(rows: Rows, columns: Sequence[str] | None) -> tuple[list[str], list[tuple]]:
    """Column names and row tuples from dicts, tuples, an Arrow table/batch or a column dict."""
    if isinstance(rows, pa.Table | pa.RecordBatch):
        names = list(columns or rows.schema.names)
        data = [rows.column(n).to_pylist() for n in names]
        return names, list(zip(*data, strict=True))
    if isinstance(rows, Mapping):  # columnar: {"col": [values...]}
        names = list(columns or rows.keys())
        return names, list(zip(*(rows[n] for n in names), strict=True))
    rows = list(rows)
    if not rows:
        return list(columns or []), []
    first = rows[0]
    if isinstance(first, Mapping):
        names = list(columns or first.keys())
        if len(names) == 1:
            key = names[0]
            return names, [(r.get(key),) for r in rows]
        try:
            getter = operator.itemgetter(*names)
            return names, [getter(r) for r in rows]
        except KeyError:
            return names, [tuple(r.get(n) for n in names) for r in rows]
    if columns is None:
        raise ValueError("rows given as tuples need `columns`")
    return list(columns), [tuple(r) for r in rows]


def record_batch(names: list[str], rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
    """An Arrow record batch from row tuples (types inferred per column)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.RecordBatch.from_arrays([pa.array(list(col)) for col in columns], names=names)


class DatabaseConnection:
    """A live connection leased from a ``DatabaseResourceAdapter``."""

    handle_kind = "database"

    def __init__(self, resource_name: str, backend: str, connection: Connection,
                 scrub: Callable[[str], str]) -> None:
        self.resource_name = resource_name
        self.backend = backend
        self._conn = connection
        self._scrub = scrub
        self._tx: Any = None

    # -- plumbing ----------------------------------------------------------------------------
    def _error(self, operation: str, exc: BaseException) -> ResourceError:
        return ResourceError(
            self._scrub(f"{operation} on resource {self.resource_name!r} ({self.backend}) failed: "
                        f"{error_text(exc)}"),
            self.resource_name, operation,
        )

    def _run(self, operation: str, work: Callable[[], T]) -> T:
        conn = self._conn
        try:
            if self._tx is not None:
                return work()
            if not conn.in_transaction():
                conn.begin()
            try:
                result = work()
                conn.commit()
                return result
            except BaseException:
                conn.rollback()
                raise
        except SQLAlchemyError as exc:
            raise self._error(operation, exc) from exc
        except Exception as exc:  # driver errors raised outside SQLAlchemy (COPY, executemany)
            if isinstance(exc, ResourceError | ValueError | TypeError):
                raise
            raise self._error(operation, exc) from exc

    def _quote_table(self, table: str) -> str:
        prep = self._conn.dialect.identifier_preparer
        return ".".join(prep.quote(part) for part in table.split("."))

    # -- calls -------------------------------------------------------------------------------
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a query as dicts (``:name`` parameters)."""
        def work() -> list[dict[str, Any]]:
            result = self._conn.execute(text(sql), dict(params or {}))
            keys = list(result.keys())
            return [dict(zip(keys, row, strict=True)) for row in result]
        return self._run("query", work)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run one statement (``:name`` parameters); returns the affected row count."""
        return self._run("execute", lambda: self._conn.execute(text(sql), dict(params or {})).rowcount)

    def execute_many(self, sql: str, rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]]) -> int:
        """Run one statement for every row in one round of executemany; returns the row count.

        Dict rows use ``:name`` parameters; tuple rows use the driver's own paramstyle
        (``?`` for SQLite, ``%s`` for PostgreSQL and MySQL).
        """
        rows = list(rows)
        if not rows:
            return 0
        if isinstance(rows[0], Mapping):
            self._run("execute_many", lambda: self._conn.execute(text(sql), [dict(r) for r in rows]))
        else:
            self._run("execute_many", lambda: self._conn.exec_driver_sql(sql, [tuple(r) for r in rows]))
        return len(rows)

    def insert_batch(self, table: str, rows: Rows, columns: Sequence[str] | None = None) -> int:
        """Insert a whole batch into ``table`` by the backend's fastest path; returns the count.

        ``rows``: dicts, tuples (with ``columns``), a column dict, or an Arrow table/batch.
        PostgreSQL uses COPY; SQLite and MySQL use the driver's executemany.
        """
        names, data = rows_to_tuples(rows, columns)
        if not data:
            return 0
        prep = self._conn.dialect.identifier_preparer
        qtable = self._quote_table(table)
        qcols = ", ".join(prep.quote(n) for n in names)
        if self.backend == "postgresql":
            def copy() -> None:
                raw = self._conn.connection.driver_connection
                with raw.cursor() as cur, cur.copy(f"COPY {qtable} ({qcols}) FROM STDIN") as cp:
                    for row in data:
                        cp.write_row(row)
            self._run("insert_batch", copy)
            return len(data)
        mark = "?" if self._conn.dialect.paramstyle == "qmark" else "%s"
        sql = f"INSERT INTO {qtable} ({qcols}) VALUES ({', '.join([mark] * len(names))})"
        self._run("insert_batch", lambda: self._conn.exec_driver_sql(sql, data))
        return len(data)

    def read_batches(self, sql: str, params: Mapping[str, Any] | None = None,
                     batch_size: int = 10_000) -> Iterator[pa.RecordBatch]:
        """Stream a query's rows as Arrow record batches of up to ``batch_size`` rows."""
        conn = self._conn
        own_tx = self._tx is None
        try:
            if own_tx and not conn.in_transaction():
                conn.begin()
            result = conn.execute(text(sql), dict(params or {}), execution_options={
                "stream_results": True, "yield_per": batch_size})
            names = list(result.keys())
            for part in result.partitions(batch_size):
                yield record_batch(names, part)
            if own_tx:
                conn.commit()
        except SQLAlchemyError as exc:
            if own_tx:
                conn.rollback()
            raise self._error("read_batches", exc) from exc

    def read_table(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """A whole query result as one Arrow table."""
        batches = list(self.read_batches(sql, params))
        if not batches:
            return self._run("read_table", lambda: pa.table(
                {k: pa.array([]) for k in self._conn.execute(text(sql), dict(params or {})).keys()}))
        return pa.Table.from_batches(batches)

    # -- transactions ------------------------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        """True between ``begin()`` and ``commit()``/``rollback()``."""
        return self._tx is not None

    def begin(self) -> None:
        """Start an explicit transaction; later calls join it until commit or rollback."""
        if self._tx is not None:
            raise ResourceError(f"a transaction is already open on {self.resource_name!r}",
                                self.resource_name, "begin")
        try:
            if self._conn.in_transaction():
                self._conn.commit()
            self._tx = self._conn.begin()
        except SQLAlchemyError as exc:
            raise self._error("begin", exc) from exc

    def commit(self) -> None:
        """Commit the explicit transaction."""
        tx, self._tx = self._tx, None
        if tx is None:
            raise ResourceError(f"no open transaction to commit on {self.resource_name!r}",
                                self.resource_name, "commit")
        try:
            tx.commit()
        except SQLAlchemyError as exc:
            raise self._error("commit", exc) from exc

    def rollback(self) -> None:
        """Roll back the explicit transaction (no-op when none is open)."""
        tx, self._tx = self._tx, None
        try:
            if tx is not None:
                tx.rollback()
            elif self._conn.in_transaction():
                self._conn.rollback()
        except SQLAlchemyError as exc:
            raise self._error("rollback", exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[DatabaseConnection]:
        """``with conn.transaction():`` commits on success, rolls back on error."""
        self.begin()
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        self.commit()

    # -- lifecycle ---------------------------------------------------------------------------
    def ping(self) -> bool:
        """True when the connection answers ``SELECT 1``."""
        if self._conn.closed or self._conn.invalidated:
            return False
        try:
            self._run("ping", lambda: self._conn.exec_driver_sql("SELECT 1").scalar())
            return True
        except ResourceError:
            return False

    def reset(self) -> None:
        """Roll back whatever is open, ready for the next holder."""
        self._tx = None
        if self._conn.in_transaction():
            self._conn.rollback()

    @property
    def closed(self) -> bool:
        return self._conn.closed

    def close(self) -> None:
        """Close the connection (returned to the engine)."""
        self._tx = None
        self._conn.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn.closed else ("in transaction" if self._tx else "open")
        return f"<DatabaseConnection {self.resource_name!r} {self.backend} {state}>"
