"""Fixtures of the pattern tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine


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
