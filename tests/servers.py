"""Real servers for tests and benchmarks: PostgreSQL, MariaDB and a controllable HTTP server.

Each server runs on a free port of 127.0.0.1 with its data in a fresh temp directory. The
database servers refuse to run as root, so as root they run as the unprivileged user
``fsmtest`` (created on first use). ``start_*`` raise ``ServerUnavailable`` when the server
binaries are missing (install them with ``scripts/install-servers.sh``); ``stop()`` stops the
server and deletes its data.
"""

from __future__ import annotations

import asyncio
import atexit
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TEST_USER = "fsmtest"
INSTALL_HINT = "install the servers with scripts/install-servers.sh"


class ServerUnavailable(RuntimeError):
    """The server cannot be started here (binaries missing or start-up failed)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as() -> list[str]:
    """Command prefix that runs a server as the unprivileged test user when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        TEST_USER], check=True, capture_output=True)
    return ["runuser", "-u", TEST_USER, "--"]


def _own(path: str) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(TEST_USER)
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, d) for d in dirs),
                         *(os.path.join(root, f) for f in files)]:
                os.chown(name, entry.pw_uid, entry.pw_gid)


def _wait_until(check: Any, proc: subprocess.Popen[bytes], what: str, log_path: str,
                timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            check()
            return
        except Exception:
            time.sleep(0.2)
    proc.kill()
    tail = open(log_path, errors="replace").read()[-2000:] if os.path.exists(log_path) else ""
    raise ServerUnavailable(f"{what} did not start: {tail}")


@dataclass
class DatabaseServer:
    """A running database server and how to reach it."""

    backend: str
    host: str
    port: int
    user: str
    password: str
    database: str
    workdir: str
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        """SQLAlchemy URL with the password."""
        driver = "postgresql+psycopg" if self.backend == "postgresql" else "mysql+pymysql"
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    @property
    def plain_url(self) -> str:
        """``postgresql://`` / ``mysql://`` URL, as users write it."""
        scheme = "postgresql" if self.backend == "postgresql" else "mysql"
        return f"{scheme}://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def env(self) -> dict[str, str]:
        """The client environment variables pointing at this server."""
        if self.backend == "postgresql":
            return {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user,
                    "PGPASSWORD": self.password, "PGDATABASE": self.database}
        return {"MYSQL_HOST": self.host, "MYSQL_TCP_PORT": str(self.port), "MYSQL_USER": self.user,
                "MYSQL_PWD": self.password, "MYSQL_DATABASE": self.database}

    def stop(self) -> None:
        """Stop the server and delete its data directory. Its data is thrown away, so nothing
        is flushed: PostgreSQL's immediate shutdown (SIGQUIT: no checkpoint, its shared memory
        still removed), MariaDB killed (a clean InnoDB shutdown takes seconds)."""
        if self.process.poll() is None:
            sig = signal.SIGQUIT if self.backend == "postgresql" else signal.SIGKILL
            try:  # the whole session: runuser does not pass signals on to the server
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)


def postgres_bin() -> str | None:
    """Directory of the newest installed PostgreSQL server binaries."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


def start_postgres(database: str = "fsm_test",
                   settings: dict[str, str] | None = None) -> DatabaseServer:
    """initdb into a temp dir and run ``postgres`` on a free port with password auth.

    ``settings``: more server settings (``{"shared_buffers": "128kB"}``), passed as ``-c``
    options after the defaults, so they win."""
    bindir = postgres_bin()
    if bindir is None:
        raise ServerUnavailable(f"PostgreSQL server binaries not found; {INSTALL_HINT}")
    prefix = _run_as()
    workdir = tempfile.mkdtemp(prefix="fsm-pg-")
    data, log_path = os.path.join(workdir, "data"), os.path.join(workdir, "server.log")
    password = "pw-" + secrets.token_hex(8)
    with open(os.path.join(workdir, "pw"), "w") as fh:
        fh.write(password)
    _own(workdir)
    init = subprocess.run(
        [*prefix, f"{bindir}/initdb", "-D", data, "-U", TEST_USER, "--auth-host=scram-sha-256",
         "--auth-local=trust", f"--pwfile={workdir}/pw", "-E", "UTF8", "--no-sync"],
        capture_output=True, text=True)
    if init.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServerUnavailable(f"initdb failed: {init.stderr[-2000:]}")
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*prefix, f"{bindir}/postgres", "-D", data, "-p", str(port), "-k", workdir,
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200",
             *(opt for k, v in (settings or {}).items() for opt in ("-c", f"{k}={v}"))],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = DatabaseServer("postgresql", "127.0.0.1", port, TEST_USER, password, "postgres",
                            workdir, proc)

    def ready() -> None:
        import psycopg
        with psycopg.connect(host="127.0.0.1", port=port, user=TEST_USER, password=password,
                             dbname="postgres", connect_timeout=2, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')

    atexit.register(server.stop)
    _wait_until(ready, proc, "PostgreSQL", log_path)
    server.database = database
    return server


def mariadb_bins() -> tuple[str, str] | None:
    """(install-db, server) binaries of MariaDB, when installed."""
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    server = shutil.which("mariadbd") or next(
        (p for p in ("/usr/sbin/mariadbd", "/usr/sbin/mysqld") if os.path.exists(p)), None)
    return (install, server) if install and server else None


def start_mariadb(database: str = "fsm_test") -> DatabaseServer:
    """mariadb-install-db into a temp dir and run ``mariadbd`` on a free port of 127.0.0.1."""
    bins = mariadb_bins()
    if bins is None:
        raise ServerUnavailable(f"MariaDB server binaries not found; {INSTALL_HINT}")
    install, mariadbd = bins
    prefix = _run_as()
    user = TEST_USER if prefix else pwd.getpwuid(os.geteuid()).pw_name
    workdir = tempfile.mkdtemp(prefix="fsm-maria-")
    data, log_path = os.path.join(workdir, "data"), os.path.join(workdir, "server.log")
    sock = os.path.join(workdir, "mysqld.sock")
    _own(workdir)
    init = subprocess.run(
        [*prefix, install, "--no-defaults", f"--datadir={data}", f"--user={user}",
         "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"],
        capture_output=True, text=True, cwd=workdir)
    if init.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServerUnavailable(f"mariadb-install-db failed: {init.stderr[-2000:]}")
    port = free_port()
    proc = subprocess.Popen(
        [*prefix, mariadbd, "--no-defaults", f"--datadir={data}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={sock}", f"--pid-file={workdir}/mysqld.pid",
         "--skip-log-bin", "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
         "--innodb-flush-log-at-trx-commit=0", "--max-connections=200",
         "--skip-name-resolve", f"--log-error={log_path}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    password = "pw-" + secrets.token_hex(8)
    server = DatabaseServer("mysql", "127.0.0.1", port, TEST_USER, password, database, workdir, proc)

    def ready() -> None:
        import pymysql
        conn = pymysql.connect(unix_socket=sock, user="root", password="", connect_timeout=2,
                               autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
                cur.execute(f"CREATE USER IF NOT EXISTS '{TEST_USER}'@'%' IDENTIFIED BY '{password}'")
                cur.execute(f"GRANT ALL ON *.* TO '{TEST_USER}'@'%'")
        finally:
            conn.close()

    atexit.register(server.stop)
    _wait_until(ready, proc, "MariaDB", log_path)
    return server


class HTTPTestServer:
    """An aiohttp server on 127.0.0.1 in a background thread, that can be told to fail.

    Routes: ``GET /users/{id}`` (JSON), ``GET /`` and ``/health``, ``POST|PUT /echo`` (echoes
    the JSON body), ``DELETE /users/{id}``, ``GET /slow?delay=s``, ``GET /secret`` (401 unless
    the ``Authorization`` header is right). ``fail_next(n, status)`` makes the next ``n``
    requests answer ``status``; ``hits`` counts requests; ``last_headers`` keeps the last ones.
    """

    def __init__(self, token: str = "Bearer test-token") -> None:
        self.token = token
        self.hits = 0
        self.last_headers: dict[str, str] = {}
        self._fail: list[int] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="http-test")
        self.port = 0

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._fail = [status] * count

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        with self._lock:
            self.hits += 1
            self.last_headers = dict(request.headers)
            status = self._fail.pop(0) if self._fail else None
        if status is not None:
            return web.json_response({"error": "told to fail"}, status=status)
        return await handler(request)

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])

        async def user(request: web.Request) -> web.Response:
            uid = int(request.match_info["uid"])
            return web.json_response({"id": uid, "name": f"user{uid}"})

        async def echo(request: web.Request) -> web.Response:
            return web.json_response({"method": request.method, "json": await request.json()})

        async def delete(request: web.Request) -> web.Response:
            return web.json_response({"deleted": int(request.match_info["uid"])})

        async def slow(request: web.Request) -> web.Response:
            await asyncio.sleep(float(request.query.get("delay", "1")))
            return web.json_response({"slow": True})

        async def secret(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") != self.token:
                return web.json_response({"error": "unauthorized"}, status=401)
            return web.json_response({"secret": "ok"})

        async def root(request: web.Request) -> web.Response:
            return web.Response(text="ok")

        app.router.add_get("/", root)
        app.router.add_get("/health", root)
        app.router.add_get("/users/{uid}", user)
        app.router.add_delete("/users/{uid}", delete)
        app.router.add_post("/echo", echo)
        app.router.add_put("/echo", echo)
        app.router.add_get("/slow", slow)
        app.router.add_get("/secret", secret)
        return app

    def start(self) -> HTTPTestServer:
        self._thread.start()

        async def run() -> web.AppRunner:
            runner = web.AppRunner(self._app())
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            return runner

        self._runner = asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def serving(server: Any) -> Iterator[Any]:
    """The body of a fixture: ``server.start()`` yielded, stopped after."""
    started = server.start()
    yield started
    started.stop()
