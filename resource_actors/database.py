"""``DatabaseResourceAdapter``: SQL databases (PostgreSQL, MySQL/MariaDB, SQLite, memory) on
SQLAlchemy 2.

``acquire()`` returns a ``DatabaseConnection`` (see ``resource_actors.sql``). The engine is
created lazily in the process that hosts the provider, so the adapter can be pickled to a
provider actor. Connection parameters left out default from the standard environment
variables of the backend's client (``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``,
``PGDATABASE``; ``MYSQL_HOST``, ``MYSQL_TCP_PORT``, ``MYSQL_USER``, ``MYSQL_PWD``,
``MYSQL_DATABASE``), read when the adapter is built.

Backends: ``postgresql`` (alias ``postgres``), ``mysql`` (alias ``mariadb``), ``sqlite``
(``database``/``path`` = file, ``":memory:"`` allowed), and ``memory``: an ephemeral SQLite
database in RAM (``/dev/shm`` when present), private to this adapter, deleted on ``close()``;
unlike ``sqlite:///:memory:`` it is shared by all of the adapter's connections.
"""

from __future__ import annotations

import copy
import decimal
import logging
import os
import shutil
import tempfile
import threading
import uuid
from typing import Any

from sqlalchemy import URL, Engine, create_engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from resource_actors.base import BaseResourceProvider, ResourceHealth, ResourceStatus
from resource_actors.db_backends import BACKENDS, normalize_backend  # noqa: F401 (BACKENDS: re-exported)
from resource_actors.errors import ResourceError
from resource_actors.sql import DatabaseConnection, error_text

log = logging.getLogger(__name__)

DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql",
           "sqlite": "sqlite+pysqlite", "memory": "sqlite+pysqlite"}
ENV = {
    "postgresql": {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER",
                   "password": "PGPASSWORD", "database": "PGDATABASE"},
    "mysql": {"host": "MYSQL_HOST", "port": "MYSQL_TCP_PORT", "user": "MYSQL_USER",
              "password": "MYSQL_PWD", "database": "MYSQL_DATABASE"},
}


def _sqlite_accepts_decimal() -> None:
    """Let ``sqlite3`` take ``Decimal`` parameters (it refuses them by default), as text: exact,
    and converted by the column's affinity (NUMERIC/REAL/INTEGER columns store a number)."""
    import sqlite3

    sqlite3.register_adapter(decimal.Decimal, str)


def _malformed(name: str, connection_string: str | None, exc: Exception) -> ResourceError:
    """The error for a connection string or parameters that do not form a database URL; it
    shows the scheme only, never the string (it may hold a password)."""
    if isinstance(exc, ArgumentError) or connection_string is None:
        what = "is not a database URL"
    else:
        what = "has a bad part (a port must be a number)"
    scheme, sep, _ = (connection_string or "").partition("://")
    shown = f" (scheme {scheme!r})" if sep and scheme.replace("+", "").isalnum() else ""
    return ResourceError(
        f"database resource {name!r}: the connection string{shown} {what}; write it as "
        "dialect://user:password@host:port/database (e.g. postgresql://app@db:5432/orders, "
        "sqlite:///path/to.db), or give host, port, database, user and password separately",
        name,
        "configure",
    )


class DatabaseResourceAdapter(BaseResourceProvider):
    """Provider of ``DatabaseConnection`` objects for one database.

    ``DatabaseResourceAdapter(name, backend, connection_string=...)`` or with ``host``, ``port``,
    ``database``, ``user``, ``password`` (also ``url``, ``username``, ``dbname``, ``path``).
    ``connect_timeout`` bounds connecting (seconds); ``engine_options`` go to
    ``create_engine``. Credentials never appear in ``repr``, logs or error messages.
    """

    def __init__(self, name: str, backend: str = "memory", connection_string: str | None = None,
                 *, host: str | None = None, port: int | str | None = None,
                 database: str | None = None, user: str | None = None,
                 password: str | None = None, connect_timeout: float = 10.0,
                 engine_options: dict[str, Any] | None = None, **options: Any) -> None:
        connection_string = connection_string or options.pop("url", None)
        user = user or options.pop("username", None)
        database = database or options.pop("dbname", None) or options.pop("path", None)
        self.connect_timeout = connect_timeout
        self.engine_options = dict(engine_options or {})
        self.query_options = {str(k): str(v) for k, v in options.items()}
        try:
            if connection_string and backend == "memory":
                backend = make_url(connection_string).get_backend_name()
            self.backend = normalize_backend(backend)
            self.url = self._build_url(connection_string, host, port, database, user, password)
        except ResourceError as exc:  # an unknown backend: say which resource
            raise ResourceError(f"database resource {name!r}: {exc}", name, "configure") from None
        except (ArgumentError, ValueError, TypeError) as exc:
            raise _malformed(name, connection_string, exc) from None
        self._password = self.url.password
        super().__init__(name, {"backend": self.backend, "url": self.safe_url,
                                "password": self._password, **self.query_options})
        self._external_pool = False
        self._runtime_init()

    def _runtime_init(self) -> None:
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._memory_dir: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_engine", "_memory_dir"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._runtime_init()

    def _build_url(self, connection_string: str | None, host: Any, port: Any, database: Any,
                   user: Any, password: Any) -> URL:
        driver = DRIVERS[self.backend]
        if connection_string:
            url = make_url(connection_string)
            if "+" not in url.drivername or self.backend in ("postgresql", "mysql"):
                url = url.set(drivername=driver)
            host, port = host or url.host, port or url.port
            database, user = database or url.database, user or url.username
            password = password or url.password
            if self.query_options:
                url = url.update_query_dict(self.query_options)
            self.query_options = dict(url.query)
        if self.backend == "memory":
            return URL.create(driver)
        if self.backend == "sqlite":
            return URL.create(driver, database=database or ":memory:")
        env = {k: os.environ.get(v) for k, v in ENV[self.backend].items()}
        return URL.create(
            driver, username=user or env["user"], password=password or env["password"],
            host=host or env["host"],
            port=int(port or env["port"]) if (port or env["port"]) else None,
            database=database or env["database"], query=self.query_options)

    @property
    def safe_url(self) -> str:
        """The URL with the password hidden."""
        return self.url.render_as_string(hide_password=True)

    def scrub(self, message: str) -> str:
        """``message`` with the password (if any) replaced by ``***``."""
        if self._password and len(self._password) >= 3:
            return message.replace(self._password, "***")
        return message

    # -- engine ------------------------------------------------------------------------------
    def attach_pool(self, config: Any) -> None:
        """Called by ``ResourcePool``: the pool owns connections, so the engine stops pooling."""
        self._external_pool = True
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def engine(self) -> Engine:
        """The SQLAlchemy engine of this adapter (created on first use)."""
        with self._lock:
            if self._engine is None:
                self._engine = self._create_engine()
            return self._engine

    def _create_engine(self) -> Engine:
        opts: dict[str, Any] = {"pool_pre_ping": True}
        connect_args: dict[str, Any] = {}
        url = self.url
        if self.backend in ("postgresql", "mysql"):
            connect_args["connect_timeout"] = max(1, int(self.connect_timeout))
        else:
            _sqlite_accepts_decimal()
            connect_args.update(check_same_thread=False, timeout=30)
            if self.backend == "memory":
                shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
                self._memory_dir = tempfile.mkdtemp(prefix="fsm-memdb-", dir=shm)
                url = url.set(database=os.path.join(self._memory_dir, f"{uuid.uuid4().hex}.db"))
            elif url.database in (None, "", ":memory:"):
                from sqlalchemy.pool import StaticPool
                opts["poolclass"] = StaticPool
        if self._external_pool and "poolclass" not in opts:
            opts["poolclass"] = NullPool
        extra = dict(self.engine_options)
        opts["connect_args"] = {**connect_args, **extra.pop("connect_args", {})}
        opts.update(extra)
        log.debug("creating engine for resource %r at %s", self.name, self.safe_url)
        return create_engine(url, **opts)

    def lessee_copy(self, same_node: bool = False) -> DatabaseResourceAdapter | None:
        """A copy whose engine does not pool (the lessee's connection closes with its lease,
        so the cap bounds open connections too), for PostgreSQL and MySQL servers and, for a
        lessee on the provider's node, an SQLite file (SQLite's own locks order the writers).
        ``memory`` and ``:memory:`` databases live in the provider's process: None."""
        file_db = self.backend == "sqlite" and self.url.database not in (None, "", ":memory:")
        if not (self.backend in ("postgresql", "mysql") or (file_db and same_node)):
            return None
        dup = copy.copy(self)
        dup._external_pool = True
        return dup

    # -- provider ----------------------------------------------------------------------------
    def acquire(self, **kwargs: Any) -> DatabaseConnection:
        """A new (or engine-pooled) connection. ``ResourceError`` when connecting fails."""
        if self.status is ResourceStatus.CLOSED:
            raise ResourceError(f"database resource {self.name!r} is closed", self.name, "acquire")
        try:
            conn = self.engine().connect()
        except SQLAlchemyError as exc:
            self.status = ResourceStatus.ERROR
            self.metrics.record_failure()
            raise ResourceError(self.scrub(
                f"cannot connect resource {self.name!r} to the {self.backend} database at "
                f"{self.safe_url}: {error_text(exc)}. Check that the server is running and "
                "reachable and that the user, password and database name are right."),
                self.name, "acquire") from None
        self.status = ResourceStatus.ACTIVE
        return DatabaseConnection(self.name, self.backend, conn, self.scrub,
                                  reader=lambda: self.engine().connect())

    def release(self, resource: Any) -> None:
        """Close a connection from ``acquire``."""
        if isinstance(resource, DatabaseConnection):
            resource.close()

    def reset(self, resource: Any) -> None:
        """Roll back what a holder left open, before the pool hands the connection out again."""
        if isinstance(resource, DatabaseConnection):
            resource.reset()

    def validate(self, resource: Any) -> bool:
        """True when the connection answers ``SELECT 1``."""
        return isinstance(resource, DatabaseConnection) and resource.ping()

    def health_check(self) -> ResourceHealth:
        """HEALTHY when a fresh connection answers ``SELECT 1``, UNHEALTHY otherwise."""
        if self.status is ResourceStatus.CLOSED:
            return ResourceHealth.UNHEALTHY
        try:
            with self.engine().connect() as conn:
                conn.exec_driver_sql("SELECT 1").scalar()
        except SQLAlchemyError:
            self.metrics.record_health_check(False)
            return ResourceHealth.UNHEALTHY
        self.metrics.record_health_check(True)
        return ResourceHealth.HEALTHY

    def close(self) -> None:
        """Dispose of the engine and remove a ``memory`` database."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
            if self._memory_dir:
                shutil.rmtree(self._memory_dir, ignore_errors=True)
                self._memory_dir = None
        self.status = ResourceStatus.CLOSED

    def __repr__(self) -> str:
        return (f"DatabaseResourceAdapter(name={self.name!r}, backend={self.backend!r}, "
                f"url={self.safe_url!r}, status={self.status.value!r})")
