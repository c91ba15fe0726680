"""Fixtures of the resource layer's tests: real PostgreSQL, MariaDB and HTTP servers.

The servers are session-scoped and stopped at the end. Without their binaries the tests that
need them are skipped locally (with a hint to run scripts/install-servers.sh) and FAIL in CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from resource_actors import ResourceManager
from tests.servers import (
    DatabaseServer,
    HTTPTestServer,
    ServerUnavailable,
    start_mariadb,
    start_postgres,
)


def _unavailable(exc: ServerUnavailable) -> None:
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"required test server unavailable in CI: {exc}")
    pytest.skip(f"{exc} (run scripts/install-servers.sh)")


def _serve(start: Callable[[], DatabaseServer]) -> Iterator[DatabaseServer]:
    try:
        server = start()
    except ServerUnavailable as exc:
        _unavailable(exc)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[DatabaseServer]:
    yield from _serve(start_postgres)


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[DatabaseServer]:
    yield from _serve(start_mariadb)


@pytest.fixture(scope="session")
def http_server() -> Iterator[HTTPTestServer]:
    server = HTTPTestServer().start()
    yield server
    server.stop()


@pytest.fixture
def uid() -> str:
    """A short unique suffix for resource names shared through the cluster-wide broker."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def manager() -> Iterator[ResourceManager]:
    """A ``ResourceManager`` of the session Ray, closed after the test."""
    m = ResourceManager()
    yield m
    m.close()
