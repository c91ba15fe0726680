"""Issue 19 item 10: ``max_size`` caps every open connection of a resource, those the provider
pools (idle ones included) and those lessees of ``acquire_here`` made in their own process."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from resource_actors import DatabaseResourceAdapter, PoolConfig, ResourceManager

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


@pytest.fixture
def database(postgres_server, uid):
    """A database of its own, so the connections counted are this test's only."""
    name = f"cap_{uid}"
    admin = sa.create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = postgres_server.plain_url.rsplit("/", 1)[0] + f"/{name}"
    yield name, url
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def _open(postgres_server, database: str) -> int:
    engine = sa.create_engine(postgres_server.url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"),
                            {"d": database}).scalar_one()


@pytest.mark.parametrize("warm", ["min_size", "earlier_acquires"])
def test_acquire_here_counts_the_idle_pooled_connections(postgres_server, database, uid, warm):
    name, url = database
    manager = ResourceManager()
    resource = f"cap{warm[:3]}{uid}"
    try:
        manager.register_provider(resource, DatabaseResourceAdapter(resource, "postgresql", url),
                                  PoolConfig(min_size=2 if warm == "min_size" else 0,
                                             max_size=4, acquire_timeout=30))
        if warm == "earlier_acquires":  # four pooled connections, idle once released
            handles = [manager.acquire(resource, f"early{i}") for i in range(4)]
            assert [h.query("SELECT 1 AS one") for h in handles] == [[{"one": 1}]] * 4
            for i in range(4):
                manager.release(resource, f"early{i}")
        else:
            assert manager.acquire(resource, "first").query("SELECT 1 AS one") == [{"one": 1}]
            manager.release(resource, "first")
        held = [manager.acquire_here(resource, f"here{i}") for i in range(3)]
        assert [db.query("SELECT 2 AS two") for db in held] == [[{"two": 2}]] * 3
        mixed = manager.acquire(resource, "pooled")  # the fourth slot: a pooled connection
        assert mixed.query("SELECT 3 AS three") == [{"three": 3}]
        assert _open(postgres_server, name) <= 4
        manager.release(resource, "pooled")
        manager.release(resource, "here0")
        last = manager.acquire_here(resource, "here3")
        assert last.query("SELECT 4 AS four") == [{"four": 4}]
        assert _open(postgres_server, name) <= 4
    finally:
        manager.close()
