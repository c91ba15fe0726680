"""Fixtures of the pattern tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine

from tests.patterns.api_servers import APITestServer
from tests.servers import HTTPTestServer, serving


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def db(request: Any, tmp_path: Any) -> Iterator[tuple[str, str, Any]]:
    """``(backend, user URL, engine)`` of an empty database of each kind (SQLite, PostgreSQL,
    MariaDB). The test module must see the ``postgres_server`` and ``mariadb_server`` fixtures
    (import them from ``tests.patterns.test_etl_support``)."""
    backend = request.param
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'etl.db'}"
        engine = create_engine(url)
    else:
        server = request.getfixturevalue("postgres_server" if backend == "postgresql"
                                         else "mariadb_server")
        url, engine = server.plain_url, create_engine(server.url)
    yield backend, url, engine
    engine.dispose()


@pytest.fixture
def empty_cwd(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A working directory that must stay empty (checked after the test)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield cwd
    assert list(cwd.iterdir()) == []


@pytest.fixture(scope="module")
def server() -> Iterator[APITestServer]:
    """An ``APITestServer`` on 127.0.0.1 for the test module (a module needing another
    server defines its own ``server``)."""
    yield from serving(APITestServer())


@pytest.fixture(scope="module")
def plain_http_server() -> Iterator[HTTPTestServer]:
    """A ``tests.servers.HTTPTestServer`` on 127.0.0.1 for the test module."""
    yield from serving(HTTPTestServer())


@pytest.fixture
def fresh(plain_http_server: HTTPTestServer) -> HTTPTestServer:
    """The module's ``HTTPTestServer`` with no failures queued and its hit count zeroed."""
    plain_http_server.fail_next(0)
    plain_http_server.hits = 0
    return plain_http_server


@pytest.fixture
def uid() -> str:
    """A short unique suffix for policy and resource names shared through the cluster."""
    return uuid.uuid4().hex[:8]
