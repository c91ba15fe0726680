"""What the seed examples need around a block: paths, a database, a local HTTP API.

- ``here(*parts)``: a path inside ``examples/``; ``out(*parts)``: one inside the output
  directory, ``examples/out/`` (gitignored) or ``$FSM_ACTORS_EXAMPLE_OUT`` (tests set it to a
  temp dir), its parent directory created; ``workdir(name)``: a fresh ``out(name)`` directory.
- ``example_db_url(name)``: a fresh, empty database for one example. With the environment
  variable ``FSM_ACTORS_EXAMPLE_POSTGRES`` set to a PostgreSQL server URL without a database
  (``postgresql://user:password@127.0.0.1:5432``; the tests point it at their own server),
  database ``name`` is (re)created on that server; otherwise it is the SQLite file
  ``out(name + ".db")``, deleted first. ``example_db_url(name, prefer="postgresql")`` (for
  blocks that say ``"provider": "postgresql"``) without that variable starts a PostgreSQL
  server of this machine's binaries on a free port of 127.0.0.1 for this process (the test
  suite's ``tests/servers.py``), and only without binaries falls back to SQLite.
  ``run_sql(url, *statements)`` sets tables up and ``query(url, sql)`` reads them back.
- ``http_server()``: an aiohttp server on a free port of 127.0.0.1, served from a background
  thread for the ``with`` block (the test suite's ``tests/servers.HTTPTestServer`` with the
  seeds' routes added); it yields a ``LocalAPI`` (``.url``, ``.calls``) and answers the
  routes the seeds' API blocks call (see ``LocalAPI``).

``run_example(*parts)`` runs an example file's ``main()`` in this process (the tests do, in
their one Ray) and returns what it returns.

Examples run from the repository root (``python examples/<dir>/<file>.py``): importing this
module also puts the repository root on ``sys.path`` so ``patterns`` etc. import from there.
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES.parent
POSTGRES_ENV = "FSM_ACTORS_EXAMPLE_POSTGRES"
OUT_ENV = "FSM_ACTORS_EXAMPLE_OUT"
_local_postgres: Any = None  # the server example_db_url(prefer="postgresql") started

if str(REPO) not in sys.path:  # an example run as a script sees only its own directory
    sys.path.insert(0, str(REPO))


def here(*parts: str) -> Path:
    """A path inside ``examples/``."""
    return EXAMPLES.joinpath(*parts)


def out(*parts: str) -> Path:
    """A path inside the output directory (see the module docstring); its parent exists."""
    root = os.environ.get(OUT_ENV) or EXAMPLES / "out"
    path = Path(root).joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def workdir(name: str) -> Path:
    """A fresh, empty directory ``out(name)``."""
    path = out(name)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir()
    return path


def run_example(*parts: str) -> Any:
    """Load ``examples/<parts>`` (not as ``__main__``) and return what its ``main()`` returns."""
    return runpy.run_path(str(here(*parts)), run_name="example")["main"]()


def _driver_url(url: str) -> str:
    """The SQLAlchemy URL of a user-style ``postgresql://`` URL (psycopg 3 driver)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _postgres_server(prefer: str) -> str:
    """The PostgreSQL server URL to use (no database), or "" for SQLite."""
    global _local_postgres
    server = os.environ.get(POSTGRES_ENV, "").strip().rstrip("/")
    if server or prefer != "postgresql":
        return server
    if _local_postgres is None:
        from tests.servers import ServerUnavailable, start_postgres

        try:
            _local_postgres = start_postgres()  # stopped (data deleted) when this process exits
        except ServerUnavailable as exc:
            print(f"no PostgreSQL server here ({exc}); using SQLite", file=sys.stderr)
            _local_postgres = False
    if not _local_postgres:
        return ""
    return _local_postgres.plain_url.rsplit("/", 1)[0]


def example_db_url(name: str, prefer: str = "sqlite") -> str:
    """A URL of an empty database named ``name`` (see the module docstring)."""
    if not name.isidentifier():
        raise ValueError(f"example database name {name!r}: use letters, digits and '_'")
    server = _postgres_server(prefer)
    if not server:
        path = out(f"{name}.db")
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    from sqlalchemy import create_engine, text

    admin = create_engine(_driver_url(server + "/postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return f"{server}/{name}"


def run_sql(url: str, *statements: str, rows: list[dict[str, Any]] | None = None) -> None:
    """Run ``statements`` in one transaction; with ``rows``, the last one runs once per row
    (named ``:parameters``)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(_driver_url(url))
    try:
        with engine.begin() as conn:
            for i, statement in enumerate(statements):
                last = i == len(statements) - 1
                conn.execute(text(statement), rows if last and rows else None)
    finally:
        engine.dispose()


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows ``sql`` returns, as tuples."""
    from sqlalchemy import create_engine, text

    engine = create_engine(_driver_url(url))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


@dataclass
class Call:
    """One request the local API answered: wall-clock start and end."""

    method: str
    path: str
    start: float
    end: float = 0.0
    headers: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class LocalAPI:
    """The running local API: its base ``url`` and every request it answered (``calls``).

    Routes: ``GET /users`` -> ``{"users": [{"id": 1}], "auth": <Authorization sent>}``,
    ``GET /users/{id}`` -> ``{"id": id, "name": "user<id>"}``, ``GET /posts`` ->
    ``{"posts": [{"id": 7}]}``, ``POST /auth`` (JSON body) -> ``{"token": "tok-<user>"}``,
    ``GET /data`` -> ``{"data": [1, 2, 3]}``, ``POST|PUT /echo`` -> ``{"method", "json"}``,
    and ``HTTPTestServer``'s others (``/``, ``/health``, ``DELETE /users/{id}``, ``/slow``,
    ``/secret``).
    """

    url: str
    calls: list[Call] = field(default_factory=list)

    def calls_to(self, path: str) -> list[Call]:
        """The calls whose path starts with ``path``."""
        return [c for c in list(self.calls) if c.path.startswith(path)]


def _add_routes(app: Any, api: LocalAPI) -> None:
    """The seed routes ``tests/servers.py``'s ``HTTPTestServer`` lacks, and the call log."""
    from aiohttp import web

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        call = Call(request.method, request.path, time.time(), headers=dict(request.headers))
        api.calls.append(call)
        try:
            return await handler(request)
        finally:
            call.end = time.time()

    async def users(request: web.Request) -> web.Response:
        sent = bool(request.headers.get("Authorization"))
        return web.json_response({"users": [{"id": 1}], "auth": sent})

    async def posts(request: web.Request) -> web.Response:
        return web.json_response({"posts": [{"id": 7}]})

    async def auth(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        return web.json_response({"token": f"tok-{body.get('user', 'anon')}"})

    async def data(request: web.Request) -> web.Response:
        return web.json_response({"data": [1, 2, 3]})

    app.middlewares.insert(0, record)
    app.router.add_get("/users", users)
    app.router.add_get("/posts", posts)
    app.router.add_post("/auth", auth)
    app.router.add_get("/data", data)


@contextmanager
def http_server() -> Iterator[LocalAPI]:
    """Serve the local API (``LocalAPI``) on 127.0.0.1 for the ``with`` block: the test
    suite's ``HTTPTestServer`` (a thread of this process) with the seeds' routes added."""
    from tests.servers import HTTPTestServer

    api = LocalAPI(url="")

    class Server(HTTPTestServer):
        def _app(self) -> Any:
            app = super()._app()
            _add_routes(app, api)
            return app

    server = Server().start()
    api.url = server.url
    try:
        yield api
    finally:
        server.stop()
