"""The plain cores, without Ray: pool, broker, factory and the in-process manager."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from resource_actors import (
    BaseResourceProvider,
    DatabaseResourceAdapter,
    FileSystemResourceAdapter,
    HTTPResourceAdapter,
    PoolConfig,
    ResourceConfig,
    ResourceError,
    ResourceHealth,
    ResourceManager,
    ResourcePool,
    SimpleResourceProvider,
    UnavailableResourceProvider,
    create_provider_from_dict,
)
from resource_actors.http import RetryPolicy
from resource_actors.lease_book import LeaseBook, Registration
from resource_actors.local import LocalBroker


class Conn:
    def __init__(self, n: int) -> None:
        self.n, self.alive, self.closed = n, True, False


class Counting(BaseResourceProvider):
    """Makes numbered resources; ``kill()`` makes every existing one invalid."""

    def __init__(self, name: str = "counting") -> None:
        super().__init__(name)
        self.made: list[Conn] = []

    def acquire(self, **kwargs):
        conn = Conn(len(self.made))
        self.made.append(conn)
        return conn

    def release(self, resource):
        resource.closed = True

    def validate(self, resource):
        return resource.alive

    def kill(self) -> None:
        for conn in self.made:
            conn.alive = False


@pytest.mark.parametrize("core", ["resource_actors", "resource_actors.base", "resource_actors.pool",
                                  "resource_actors.lease_book", "resource_actors.admission",
                                  "resource_actors.host", "resource_actors.local",
                                  "resource_actors.manager", "resource_actors.binder",
                                  "resource_actors.factory", "resource_actors.errors"])
def test_the_cores_import_no_ray_sqlalchemy_or_aiohttp(core):  # issue 8
    code = (f"import sys, {core}; heavy = [m for m in ('ray', 'sqlalchemy', 'aiohttp') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pool_config_names_and_checks():
    assert PoolConfig(idle_timeout=12).max_idle_time == 12 == PoolConfig(max_idle_time=12).idle_timeout
    with pytest.raises(ValueError):
        PoolConfig(min_size=5, max_size=2)
    with pytest.raises(ValueError):
        PoolConfig(max_size=0)


def test_pool_exhaustion_names_limit_and_holders():
    pool = ResourcePool(Counting(), PoolConfig(min_size=0, max_size=2, acquire_timeout=0.2))
    a = pool.acquire(owner_id="alice")
    pool.acquire(owner_id="bob")
    started = time.monotonic()
    with pytest.raises(ResourceError) as err:
        pool.acquire(owner_id="carol")
    assert time.monotonic() - started >= 0.2
    msg = str(err.value)
    assert "exhausted" in msg and "max_size=2" in msg and "'alice'" in msg and "'bob'" in msg
    assert (err.value.operation, err.value.owner_id) == ("acquire", "carol")
    pool.release(a)
    assert pool.acquire(owner_id="carol") is a  # LIFO reuse
    metrics = pool.get_metrics()
    assert (metrics.size, metrics.in_use, metrics.available, metrics.total_timeout_events) == (2, 2, 0, 1)


def test_pool_waiter_gets_released_resource():
    pool = ResourcePool(Counting(), PoolConfig(min_size=0, max_size=1, acquire_timeout=5))
    held = pool.acquire()
    threading.Timer(0.2, pool.release, args=(held,)).start()
    assert pool.acquire(timeout=5) is held


def test_pool_pre_ping_replaces_dead_resources():
    provider = Counting()
    pool = ResourcePool(provider, PoolConfig(min_size=2, max_size=3))
    pool.fill()
    assert pool.size() == 2
    provider.kill()
    fresh = pool.acquire()
    assert fresh.alive and fresh.n == 2
    metrics = pool.get_metrics()
    assert metrics.replaced_invalid == 2 and metrics.size == 1
    assert all(c.closed for c in provider.made[:2])


def test_pool_evicts_idle_down_to_min_size():
    provider = Counting()
    pool = ResourcePool(provider, PoolConfig(min_size=1, max_size=4, max_idle_time=0.1))
    held = [pool.acquire() for _ in range(3)]
    for conn in held:
        pool.release(conn)
    time.sleep(0.15)
    assert pool.evict_idle() == 2
    assert (pool.size(), pool.available(), pool.get_metrics().evicted_idle) == (1, 1, 2)


def test_pool_close_and_provider_failure():
    class Broken(Counting):
        def acquire(self, **kwargs):
            raise OSError("no route to host")

    pool = ResourcePool(Broken(), PoolConfig(min_size=0, max_size=1))
    with pytest.raises(ResourceError, match="no route to host"):
        pool.acquire(owner_id="x")
    assert pool.size() == 0  # the failed slot is given back
    pool.close()
    with pytest.raises(ResourceError, match="closed"):
        pool.acquire()


def test_broker_decisions_and_metrics_add_up():
    clock = [0.0]
    book = LeaseBook("db", cap=1, lease_ttl=10, clock=lambda: clock[0])
    first = book.begin("a", None, deadline=100)
    assert first.kind == "admitted"
    waiting = book.begin("b", None, deadline=100)
    assert waiting.kind == "wait" and waiting.ticket.state == "waiting"
    book.complete(first.lease, "grant-a")
    assert book.begin("a", None, 100).lease.grant == "grant-a"
    clock[0] = 11
    assert book.expired() == [first.lease]
    assert book.take(first.lease)
    assert book.begin("c", None, 100).kind == "wait"  # the slot is held until settled
    assert book.settle(first.lease)[0] is waiting.ticket  # the oldest waiter gets it
    second = waiting.ticket.lease
    assert waiting.ticket.state == "admitted" and second.owner_id == "b"
    book.complete(second, "grant-b")
    clock[0] = 12
    assert book.end_lease("b") is second
    book.settle(second)
    err = book.timeout_error("c", 1.0)
    assert "exhausted" in str(err)
    m = book.snapshot()
    assert m.total_acquisitions == m.total_releases + m.total_reclaims + m.active_connections == 2
    assert (m.total_reclaims, m.failed_acquisitions, m.total_timeout_events) == (1, 1, 1)


def test_broker_registration_sharing_and_conflicts():
    registration = Registration("db", "fp1", None)
    assert registration.join("r1", "fp1", None) is True
    assert registration.join("r2", "fp1", None) is False
    with pytest.raises(ValueError, match="already registered"):
        registration.join("r3", "fp2", None)
    with pytest.raises(ResourceError, match="already registered"):  # issue 8: a ResourceError
        registration.join("r3", "fp1", PoolConfig(max_size=3))
    assert registration.leave("r1") is False  # one registration left
    assert registration.leave("r2") is True
    with pytest.raises(ResourceError, match="unknown resource 'db'"):
        LocalBroker().acquire("db", "x")


def test_retry_policy():
    policy = RetryPolicy(retry_count=2, backoff=0.1)
    assert policy.delay(0, 503) == 0.1 and policy.delay(1, None, TimeoutError()) == 0.2
    assert policy.delay(2, 503) is None and policy.delay(0, 404) is None and policy.delay(0, 200) is None


def test_factory_honours_type_and_backend(tmp_path):
    assert isinstance(create_provider_from_dict("d", {"backend": "sqlite", "database": ":memory:"}),
                      DatabaseResourceAdapter)
    assert create_provider_from_dict("d", {"type": "database", "provider": "postgresql",
                                           "host": "h"}).backend == "postgresql"
    assert isinstance(create_provider_from_dict("f", {"type": "filesystem", "base_path": str(tmp_path)}),
                      FileSystemResourceAdapter)
    assert isinstance(create_provider_from_dict("h", {"type": "http", "base_url": "http://x"}),
                      HTTPResourceAdapter)
    custom = create_provider_from_dict("c", {"type": "custom", "class": "resource_actors.SimpleResourceProvider",
                                             "params": {"data": [1]}})
    assert isinstance(custom, SimpleResourceProvider) and custom.acquire() == [1]
    assert create_provider_from_dict("s", {"data": {"k": 1}}).acquire() == {"k": 1}
    with pytest.raises(ResourceError, match="unknown resource type 'redis'"):
        create_provider_from_dict("r", {"type": "redis"})


def test_credentials_never_in_repr_or_errors():
    secret = "s3cr3t-Passw0rd"
    db = DatabaseResourceAdapter("db", "postgresql", host="127.0.0.1", port=1, user="u",
                                 password=secret, connect_timeout=1)
    url_db = DatabaseResourceAdapter("db2", "postgresql", f"postgresql://u:{secret}@127.0.0.1:1/x",
                                     connect_timeout=1)
    http = HTTPResourceAdapter("api", "http://u:pw@127.0.0.1:1", headers={"Authorization": secret})
    for thing in (db, url_db, http):
        assert secret not in repr(thing) and "pw@" not in repr(thing)
    with pytest.raises(ResourceError) as err:
        db.acquire()
    assert secret not in str(err.value) and "127.0.0.1" in str(err.value)


def test_local_manager_api(tmp_path):
    with ResourceManager(local=True) as manager:
        manager.register_provider("db", DatabaseResourceAdapter("db", "sqlite", database=str(tmp_path / "x.db")),
                                  pool_config={"max_size": 2, "acquire_timeout": 0.2})
        manager.register_from_dict("settings", {"data": {"timeout": 30}})
        with pytest.raises(ValueError):
            manager.register_provider("db", SimpleResourceProvider("db", 1))
        db = manager.acquire("db", "o1")
        assert manager.acquire("db", "o1") is db and manager.get_resource("db", "o1") is db
        manager.acquire("db", "o2")
        with pytest.raises(ResourceError, match="held by 'o1', 'o2'"):
            manager.acquire("db", "o3")
        assert manager.get_resource_status("db")["owners"] == ["o1", "o2"]
        manager.release_all("o1")
        manager.release("db", "o2")
        manager.release("db", "o2")  # no-op
        metrics = manager.get_metrics()
        assert set(metrics) == {"db", "db_pool", "settings"}
        assert (metrics["db"].total_acquisitions, metrics["db"].failed_acquisitions) == (2, 1)
        assert metrics["db_pool"].size == 2 and metrics["db_pool"].available == 2
        assert manager.get_metrics("nope") == {}
        assert manager.health_check("nope") == {"nope": ResourceHealth.UNKNOWN}
        assert manager.get_resource_status("nope")["provider_exists"] is False
    with pytest.raises(ResourceError, match="closed"):
        manager.acquire("db", "o1")


def test_configure_from_requirements_required_and_optional(tmp_path):
    manager = ResourceManager(local=True)
    manager.register_from_dict("db", {"backend": "memory"})
    got = manager.configure_from_requirements(
        [ResourceConfig("db"), ResourceConfig("cache", required=False),
         ResourceConfig("files", type="filesystem", connection_params={"base_path": str(tmp_path)})],
        owner_id="state_a_1")
    assert set(got) == {"db", "files"}
    with pytest.raises(ResourceError) as err:
        manager.configure_from_requirements([ResourceConfig("db"), ResourceConfig("missing")], "state_b_1")
    assert (err.value.resource_name, err.value.operation, err.value.owner_id) == ("missing", "configure", "state_b_1")
    assert not manager.has_resource("db", "state_b_1")  # what the failed call took went back
    manager.close()


def test_local_lease_ttl_reclaims():
    manager = ResourceManager(local=True)
    manager.register_provider("c", Counting("c"), PoolConfig(min_size=0, max_size=1, lease_ttl=0.2))
    manager.acquire("c", "forgetful")
    second = manager.acquire("c", "patient", timeout=5)
    assert second is not None
    status = manager.get_resource_status("c")
    assert status["owners"] == ["patient"] and status["total_reclaims"] == 1
    manager.close()


def test_unavailable_provider_explains():
    manager = ResourceManager(local=True)
    manager.register_provider("cache", UnavailableResourceProvider("cache", "no redis adapter"))
    with pytest.raises(ResourceError, match="no redis adapter"):
        manager.acquire("cache", "o")
    assert manager.health_check() == {"cache": ResourceHealth.UNHEALTHY}
    assert manager.get_metrics("cache")["cache"].failed_acquisitions == 1
    manager.close()
