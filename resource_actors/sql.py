"""``DatabaseConnection``: one leased SQL connection with batch-oriented calls.

Every call outside an explicit transaction runs in its own transaction and commits (or rolls
back on error). ``begin``/``commit``/``rollback`` (or ``with conn.transaction():``) group calls.
Errors surface as ``ResourceError`` naming the resource, the backend and the operation, never
the credentials. Not thread-safe: one holder at a time, which the lease guarantees.
"""

from __future__ import annotations

import hashlib
import operator
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar

import pyarrow as pa
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from resource_actors.errors import ResourceError

try:
    import fcntl
except ImportError:  # not POSIX: SQLite's own locking alone
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")
Rows = Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]] | pa.Table | pa.RecordBatch


def error_text(exc: BaseException) -> str:
    """The useful first lines of a driver error, without SQLAlchemy's boilerplate."""
    orig = getattr(exc, "orig", None)
    raw = str(orig if orig is not None else exc)
    lines = [ln.strip() for ln in raw.splitlines() if ln.strip() and not ln.startswith("(Background")]
    return " ".join(lines[:3]) or type(exc).__name__


@contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


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
        names = list(columns) if columns is not None else _union_of_keys(rows)
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


def _union_of_keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every key of any row, in order of first appearance (rows lacking one insert NULL)."""
    first = rows[0]
    width = len(first)
    if all(len(r) == width for r in rows) and all(r.keys() == first.keys() for r in rows):
        return list(first.keys())
    return list(dict.fromkeys(k for r in rows for k in r))


def record_batch(names: list[str], rows: Sequence[Sequence[Any]],
                 types: Sequence[pa.DataType | None] | None = None) -> pa.RecordBatch:
    """An Arrow record batch from row tuples; a column whose type is None is inferred."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    kinds = types or [None] * len(names)
    arrays = []
    for col, kind in zip(columns, kinds, strict=True):
        values = list(col)
        if kind is not None and pa.types.is_string(kind):
            values = [v if v is None or isinstance(v, str) else str(v) for v in values]
        arrays.append(pa.array(values, type=kind))
    return pa.RecordBatch.from_arrays(arrays, names=names)


#: PostgreSQL type OIDs -> Arrow types (see ``arrow_types``).
_PG_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 26: pa.int64(),
    700: pa.float32(), 701: pa.float64(), 25: pa.string(), 1043: pa.string(),
    1042: pa.string(), 19: pa.string(), 2950: pa.string(), 17: pa.binary(),
    1082: pa.date32(), 1083: pa.time64("us"), 1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"), 1186: pa.duration("us"),
}
_PG_NUMERIC = 1700


def arrow_types(description: Sequence[Any] | None) -> list[pa.DataType | None]:
    """Arrow types of a PostgreSQL result's columns from its cursor description (None:
    infer). ``numeric(p,s)`` -> ``decimal128(p, s)`` (``decimal256`` past 38 digits)."""
    out: list[pa.DataType | None] = []
    for col in description or ():
        code = getattr(col, "type_code", None)
        if code == _PG_NUMERIC:
            precision, scale = getattr(col, "precision", None), getattr(col, "scale", None)
            if precision:
                maker = pa.decimal128 if precision <= 38 else pa.decimal256
                out.append(maker(precision, scale or 0))
            else:
                out.append(pa.string())
        else:
            out.append(_PG_TYPES.get(code) if isinstance(code, int) else None)
    return out


class DatabaseConnection:
    """A live connection leased from a ``DatabaseResourceAdapter``."""

    handle_kind = "database"

    def __init__(self, resource_name: str, backend: str, connection: Connection,
                 scrub: Callable[[str], str],
                 reader: Callable[[], Connection] | None = None) -> None:
        self.resource_name = resource_name
        self.backend = backend
        self._conn = connection
        self._scrub = scrub
        self._reader = reader
        self._tx: Any = None

    # -- plumbing ----------------------------------------------------------------------------
    def _error(self, operation: str, exc: BaseException) -> ResourceError:
        return ResourceError(
            self._scrub(f"{operation} on resource {self.resource_name!r} ({self.backend}) failed: "
                        f"{error_text(exc)}"),
            self.resource_name, operation,
        )

    def _check_open(self, operation: str) -> None:
        if self._conn.closed:
            raise ResourceError(
                f"{operation} on resource {self.resource_name!r} refused: this connection was "
                "closed because its lease ended (released, expired or reclaimed); acquire the "
                "resource again and use the new connection", self.resource_name, operation)

    def _run(self, operation: str, work: Callable[[], T]) -> T:
        self._check_open(operation)
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

    def query_rows(self, sql: str, params: Mapping[str, Any] | None = None
                   ) -> tuple[list[str], list[tuple]]:
        """A query's column names and rows as plain tuples (``:name`` parameters): the
        cheapest form to fetch and to ship through a handle (used by the ETL extract)."""
        def work() -> tuple[list[str], list[tuple]]:
            result = self._conn.execute(text(sql), dict(params or {}))
            names, rows = list(result.keys()), list(result.cursor.fetchall())
            result.close()
            return names, rows
        return self._run("query_rows", work)

    def run_batch(self, calls: Sequence[tuple[str, tuple, dict[str, Any]]]) -> list[Any]:
        """Run ``(method, args, kwargs)`` calls of ``execute``, ``execute_many`` and
        ``insert_batch`` in ONE transaction (all or none) and return their results: a batch
        and its bookkeeping in one round trip through a handle (used by the ETL load)."""
        allowed = {"execute": self.execute, "execute_many": self.execute_many,
                   "insert_batch": self.insert_batch}
        unknown = [name for name, _, _ in calls if name not in allowed]
        if unknown:
            raise ValueError(f"run_batch runs {', '.join(sorted(allowed))}, not {unknown[0]!r}")
        nested = self._tx is not None
        with nullcontext() if nested else self._writers_turn():
            if not nested:
                self.begin()
            try:
                out = [allowed[name](*args, **kwargs) for name, args, kwargs in calls]
            except BaseException:
                if not nested:
                    self.rollback()
                raise
            if not nested:
                self.commit()
        return out

    def _writers_turn(self) -> Any:
        """SQLite files: the processes of this machine that write batches take turns by an OS
        file lock, so a waiting writer goes on the moment the last one commits (SQLite's own
        busy handler polls, sleeping up to 100 ms at a time). Other backends: no-op."""
        if self.backend != "sqlite" or fcntl is None:
            return nullcontext()
        database = self._conn.engine.url.database
        if not database or database == ":memory:":
            return nullcontext()
        digest = hashlib.sha256(os.path.realpath(database).encode()).hexdigest()[:16]
        return _file_lock(os.path.join(tempfile.gettempdir(), f"fsm-actors-sqlite-{digest}.lock"))

    def read_batches(self, sql: str, params: Mapping[str, Any] | None = None,
                     batch_size: int = 10_000) -> Iterator[pa.RecordBatch]:
        """Stream a query's rows as Arrow record batches of up to ``batch_size`` rows.

        Outside an explicit transaction, PostgreSQL and MySQL stream from a connection of
        their own, so calls made on this connection between batches (``insert_batch`` of
        each batch elsewhere, which commits) do not close the server-side cursor. Inside
        ``begin()``/``transaction()`` the stream reads this connection's transaction.
        On PostgreSQL the Arrow types come from the columns' declared types, the same for
        every batch (``numeric(12,2)`` -> ``decimal128(12, 2)``, an all-NULL batch keeps the
        column's type; unconstrained ``numeric`` -> string, lossless); elsewhere, and for
        types without a mapping, they are inferred per batch.
        """
        self._check_open("read_batches")
        own_tx = self._tx is None
        separate = own_tx and self._reader is not None and self.backend in ("postgresql", "mysql")
        try:
            conn = self._reader() if separate else self._conn
        except SQLAlchemyError as exc:
            raise self._error("read_batches", exc) from exc
        try:
            if own_tx and not conn.in_transaction():
                conn.begin()
            result = conn.execute(text(sql), dict(params or {}), execution_options={
                "stream_results": True, "yield_per": batch_size})
            names = list(result.keys())
            types = arrow_types(result.cursor.description) if self.backend == "postgresql" else None
            for part in result.partitions(batch_size):
                yield record_batch(names, part, types)
            if own_tx:
                conn.commit()
        except SQLAlchemyError as exc:
            if own_tx:
                conn.rollback()
            raise self._error("read_batches", exc) from exc
        finally:
            if separate:
                conn.close()

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

    def reset(self) -> bool:
        """Roll back whatever is open, so the next user sees the connection as a fresh lease
        would; True when something was rolled back.

        The pool calls it between holders; the FSM worker calls it between the records of a
        batch that share one lease, so one record's open or failed transaction never
        carries over to the next.
        """
        open_tx = self._tx is not None or (not self._conn.closed and self._conn.in_transaction())
        self._tx = None
        if open_tx:
            self._conn.rollback()
        return open_tx

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
