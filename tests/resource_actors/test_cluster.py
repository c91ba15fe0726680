"""The cluster-wide resource manager: the broker actor, provider actors, handles, leases under
concurrency, and reclaiming the leases of killed owners."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest
import ray

from resource_actors import (
    DatabaseResourceAdapter,
    ManagerResourceBinder,
    PoolConfig,
    ResourceError,
    ResourceManager,
    register_fsm_resources,
)
from resource_actors.handle import DatabaseHandle, ResourceHandle
from tests.helpers.providers import FactoryProvider
from tests.servers import free_port

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


class Counter:
    """A live object that cannot leave its process (it has state the caller must not copy)."""

    def __init__(self) -> None:
        self.n = 0
        self.lock = threading.Lock()

    def incr(self, k: int = 1) -> int:
        self.n += k
        return self.n

    def numbers(self, k: int):
        yield from range(k)

    @property
    def value(self) -> int:
        return self.n


@ray.remote(num_cpus=0)
def _use_handle(handle):
    return handle.query("SELECT 41 + 1 AS x")


@ray.remote(num_cpus=0)
def _worker_view(name: str):
    manager = ResourceManager()
    with manager.resource_context(name, "task-owner") as db:
        rows = db.query("SELECT count(*) AS n FROM t")
    return manager.resource_names(), rows


@ray.remote(num_cpus=0.05)
class Cycler:
    def run(self, name: str, owner: str, cycles: int) -> int:
        manager = ResourceManager()
        for i in range(cycles):
            db = manager.acquire(name, owner, timeout=60)
            if i % 50 == 0:
                db.query("SELECT 1 AS one")
            manager.release(name, owner)
        return cycles


@ray.remote(num_cpus=0)
class Holder:
    def hold(self, name: str) -> str:
        self.manager = ResourceManager()
        self.db = self.manager.acquire(name, "holder")
        return self.db.backend


def test_handles_run_calls_on_the_provider_actor(manager, uid, tmp_path):
    name = f"db{uid}"
    manager.register_provider(name, DatabaseResourceAdapter(name, "sqlite", database=str(tmp_path / "t.db")),
                              PoolConfig(min_size=1, max_size=3))
    assert ray.get_actor("resource-manager") and ray.get_actor(f"resource/{name}")
    with manager.resource_context(name, f"state_load_{uid}") as db:
        assert isinstance(db, DatabaseHandle) and db.backend == "sqlite" and "query" in dir(db)
        db.execute("CREATE TABLE t (id INTEGER, v TEXT)")
        assert db.insert_batch("t", pa.table({"id": list(range(25_000)), "v": ["x"] * 25_000})) == 25_000
        batches = list(db.read_batches("SELECT * FROM t ORDER BY id", batch_size=10_000))
        assert [b.num_rows for b in batches] == [10_000, 10_000, 5_000]
        with db.transaction():
            db.execute("DELETE FROM t WHERE id >= 20000")
        with pytest.raises(KeyError), db.transaction():
            db.execute("DELETE FROM t")
            raise KeyError("abort")
        assert db.query("SELECT count(*) AS n FROM t") == [{"n": 20_000}]
        with pytest.raises(ResourceError, match="no_table") as err:
            db.query("SELECT * FROM no_table")
        assert err.value.resource_name == name
        assert ray.get(_use_handle.remote(db)) == [{"x": 42}]
        names, rows = ray.get(_worker_view.remote(name))
        assert name in names and rows == [{"n": 20_000}]
        with pytest.raises(AttributeError):
            db.no_such_thing  # noqa: B018
    with pytest.raises(ResourceError, match="not held any more"):
        db.query("SELECT 1")


def test_custom_provider_through_generic_handle_and_plain_data(manager, uid):
    manager.register_provider(f"counter{uid}", FactoryProvider(f"counter{uid}", Counter))
    manager.register_from_dict(f"settings{uid}", {"data": {"timeout": 30}})
    counter = manager.acquire(f"counter{uid}", "o")
    assert type(counter) is ResourceHandle
    assert counter.incr() == 1 and counter.incr(5) == 6 and counter.value == 6
    assert list(counter.numbers(4)) == [0, 1, 2, 3]
    assert manager.acquire(f"settings{uid}", "o") == {"timeout": 30}
    manager.release_all("o")
    assert manager.get_resource_status(f"counter{uid}")["active_count"] == 0


def test_identical_registrations_are_shared_and_others_refused(manager, uid):
    name = f"shared{uid}"
    other = ResourceManager()
    manager.register_from_dict(name, {"backend": "memory"})
    other.register_from_dict(name, {"backend": "memory"})
    with pytest.raises(ValueError, match="another provider"):
        ResourceManager().register_from_dict(name, {"data": 1})
    other.close()
    assert name in manager.resource_names()  # still registered by `manager`


def test_concurrency_never_exceeds_the_cap(manager, uid, tmp_path):
    name = f"pool{uid}"
    manager.register_provider(name, DatabaseResourceAdapter(name, "sqlite", database=str(tmp_path / "c.db")),
                              PoolConfig(min_size=0, max_size=4, acquire_timeout=60))
    cyclers = [Cycler.remote() for _ in range(8)]
    assert ray.get([c.run.remote(name, f"actor{i}", 200) for i, c in enumerate(cyclers)]) == [200] * 8
    metrics = manager.get_metrics(name)
    lease, pool = metrics[name], metrics[f"{name}_pool"]
    assert lease.total_acquisitions == 1600 == lease.total_releases
    assert lease.active_connections == 0 and lease.failed_acquisitions == 0
    assert lease.peak_active <= 4 and pool.peak_in_use <= 4 and pool.created <= 4
    assert pool.in_use == 0 and pool.total_acquisitions == pool.total_releases == 1600
    assert manager.get_resource_status(name)["owners"] == []
    for cycler in cyclers:
        ray.kill(cycler)


def test_killed_owner_lease_is_reclaimed_and_waiter_proceeds(manager, uid, tmp_path):
    name = f"chaos{uid}"
    manager.register_provider(name, DatabaseResourceAdapter(name, "sqlite", database=str(tmp_path / "k.db")),
                              PoolConfig(min_size=0, max_size=1))
    holder = Holder.remote()
    assert ray.get(holder.hold.remote(name)) == "sqlite"
    with pytest.raises(ResourceError, match="held by 'holder'"):
        manager.acquire(name, "impatient", timeout=0.3)
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(manager.acquire(name, "waiter", timeout=30)))
    waiter.start()
    time.sleep(0.3)
    ray.kill(holder)
    waiter.join(40)
    assert got and got[0].query("SELECT 1 AS one") == [{"one": 1}]
    status = manager.get_resource_status(name)
    assert status["owners"] == ["waiter"] and status["total_reclaims"] == 1
    metrics = manager.get_metrics(name)[name]
    assert metrics.total_reclaims == 1 and metrics.total_timeout_events == 1
    manager.release(name, "waiter")
    assert manager.get_metrics(f"{name}_pool")[f"{name}_pool"].in_use == 0


def test_lease_ttl_expires_in_the_cluster(manager, uid):
    name = f"ttl{uid}"
    manager.register_provider(name, FactoryProvider(name, Counter), PoolConfig(min_size=0, max_size=1, lease_ttl=0.5))
    stale = manager.acquire(name, "forgetful")
    fresh = manager.acquire(name, "next", timeout=20)
    assert fresh.incr() == 1
    with pytest.raises(ResourceError, match="not held any more"):
        stale.incr()
    assert manager.get_resource_status(name)["total_reclaims"] == 1


def test_errors_in_the_cluster_are_resource_errors(manager, uid):
    with pytest.raises(ResourceError, match=f"unknown resource 'nope{uid}'"):
        manager.acquire(f"nope{uid}", "o")
    name = f"down{uid}"
    manager.register_provider(name, DatabaseResourceAdapter(
        name, "postgresql", host="127.0.0.1", port=free_port(), user="u", password="hush-hush",
        connect_timeout=1), PoolConfig(min_size=1, max_size=2))
    with pytest.raises(ResourceError) as err:
        manager.acquire(name, "state_q_1")
    assert "refused" in str(err.value) and "hush-hush" not in str(err.value)
    assert (err.value.resource_name, err.value.owner_id) == (name, "state_q_1")
    status = manager.get_resource_status(name)
    assert status["active_count"] == 0
    assert manager.get_metrics(name)[name].failed_acquisitions == 1
    assert manager.get_metrics(f"{name}_pool")[f"{name}_pool"].size == 0


def test_binder_is_all_or_nothing(manager, uid, tmp_path):
    names = register_fsm_resources(manager, {
        f"db{uid}": {"backend": "sqlite", "database": str(tmp_path / "b.db")},
        f"files{uid}": {"type": "filesystem", "base_path": str(tmp_path / "files")},
        f"cache{uid}": {"type": "redis", "host": "localhost"},
    })
    binder = ManagerResourceBinder(manager)
    owner = f"state_load_{uid}"
    got = binder.acquire(names[:2], owner)
    assert set(got) == set(names[:2])
    assert got[f"files{uid}"].write("x.txt", "1").endswith("x.txt")
    binder.release(names[:2], owner)
    with pytest.raises(ResourceError, match="unknown resource type 'redis'"):
        binder.acquire(names, owner)
    assert not any(manager.has_resource(n, owner) for n in names)
    binder.acquire(names[:1], owner)
    binder.release_all(owner)
    assert manager.get_resource_owners(names[0]) == set()


def _lookup_config(name: str, n: int) -> tuple[dict, dict]:
    """``(config, functions)`` of an FSM whose middle state reads ``n`` from resource ``name``."""
    config = {"name": f"fsm-{name}",
              "states": [{"name": "start", "is_start": True},
                         {"name": "lookup", "resources": [name], "functions": {"transform": "lookup"}},
                         {"name": "end", "is_end": True}],
              "arcs": [{"from": "start", "to": "lookup"}, {"from": "lookup", "to": "end"}]}

    def lookup(data, context):
        return {**data, "n": context.resources[name].query(f"SELECT {n} AS n")[0]["n"]}

    return config, {"lookup": lookup}


def _lookup_fsm(name: str, db: str, local: bool):
    """A SimpleFSM whose middle state queries the SQLite resource ``name``."""
    from fsm_actors import SimpleFSM

    config, functions = _lookup_config(name, 7)
    return SimpleFSM(config, resources={name: {"backend": "sqlite", "database": db}},
                     custom_functions=functions, local=local, actors=2)


@pytest.mark.parametrize("local", [True, False])
def test_simple_fsm_states_get_their_resources(uid, tmp_path, local):
    name = f"fsmdb{uid}"
    fsm = _lookup_fsm(name, str(tmp_path / "f.db"), local)
    try:
        result = fsm.process({"x": 1})
        assert result["success"], result
        assert result["data"] == {"x": 1, "n": 7}
    finally:
        fsm.close()
    if not local:
        from resource_actors.remote import BrokerClient

        assert name not in BrokerClient().names()  # closing the FSM ends its registration


@pytest.mark.parametrize("local", [True, False])
def test_process_batch_leases_each_resource_once_per_batch(uid, tmp_path, local):
    from resource_actors.manager import ResourceManager

    name = f"batchdb{uid}"
    fsm = _lookup_fsm(name, str(tmp_path / "b.db"), local)
    try:
        out = fsm.process_batch([{"x": i} for i in range(200)], batch_size=50)
        assert [r["data"]["n"] for r in out] == [7] * 200
        assert all(r["success"] for r in out)
        binder = fsm.async_fsm._binder
        manager, registered = binder.manager, binder.resolve(name)  # the FSM's own scope
        metrics = manager.get_metrics(registered)[registered]
        assert metrics.total_acquisitions == 4  # 200 records in 4 batches, not 200 leases
        assert manager.get_resource_owners(registered) == set()
    finally:
        fsm.close()
    if not local:
        assert name not in ResourceManager().resource_names()


@ray.remote(num_cpus=0)
class HereHolder:
    """Holds an ``acquire_here`` lease of a PostgreSQL resource and reports what it got."""

    def hold(self, name: str) -> tuple[str, int, int]:
        import os

        self.manager = ResourceManager()
        self.db = self.manager.acquire_here(name, "here-holder")
        pid = self.db.query("SELECT pg_backend_pid() AS pid")[0]["pid"]
        return type(self.db).__name__, pid, os.getpid()


def test_acquire_here_takes_a_slot_of_the_cap_and_connects_in_the_caller(manager, uid,
                                                                         postgres_server):
    import os

    name = f"here{uid}"
    manager.register_provider(name, DatabaseResourceAdapter(name, "postgresql",
                                                            postgres_server.plain_url),
                              PoolConfig(min_size=0, max_size=1, acquire_timeout=30))
    db = manager.acquire_here(name, "driver")
    assert type(db).__name__ == "DatabaseConnection"  # a live connection, not a handle
    assert db.query("SELECT 7 AS x") == [{"x": 7}]
    assert manager.acquire_here(name, "driver") is db  # the same lease while held
    assert manager.get_resource_status(name)["owners"] == ["driver"]
    with pytest.raises(ResourceError, match="held by 'driver'"):
        manager.acquire(name, "other", timeout=0.3)  # the slot counts against the one cap
    manager.release(name, "driver")
    assert db.closed  # its connection ends with the lease
    holder = HereHolder.remote()
    kind, backend_pid, holder_pid = ray.get(holder.hold.remote(name))
    assert kind == "DatabaseConnection" and holder_pid != os.getpid()
    with pytest.raises(ResourceError, match="held by 'here-holder'"):
        manager.acquire_here(name, "waiter", timeout=0.3)
    ray.kill(holder)  # its process dies: the provider reclaims the slot, the waiter goes on
    again = manager.acquire_here(name, "waiter", timeout=30)
    assert again.query("SELECT 1 AS one") == [{"one": 1}]
    assert manager.get_resource_status(name)["total_reclaims"] == 1
    manager.release(name, "waiter")
    assert manager.get_resource_status(name)["owners"] == []


def test_acquire_here_of_sqlite_on_this_node_connects_here_and_of_memory_is_a_handle(
        manager, uid, tmp_path):
    name = f"herelite{uid}"
    manager.register_provider(name, DatabaseResourceAdapter(name, "sqlite",
                                                            database=str(tmp_path / "h.db")),
                              PoolConfig(min_size=0, max_size=2))
    db = manager.acquire_here(name, "o")  # a file on this node: opened here
    assert type(db).__name__ == "DatabaseConnection" and db.query("SELECT 2 AS x") == [{"x": 2}]
    manager.release(name, "o")
    name = f"heremem{uid}"
    manager.register_provider(name, DatabaseResourceAdapter(name, "memory"))
    db = manager.acquire_here(name, "o")  # lives in the provider's process: a handle
    assert isinstance(db, DatabaseHandle) and db.query("SELECT 3 AS x") == [{"x": 3}]
    manager.release(name, "o")


def test_a_state_uses_a_resource_registered_with_the_cluster_manager(manager, uid, tmp_path):
    """The seed's order: ``manager.register_provider("database", ...)``, then
    ``SimpleFSM(config)`` whose states name it (no ``resources:`` section, no resources=)."""
    from fsm_actors import SimpleFSM
    from fsm_actors.platform.errors import FSMConfigError

    name = f"shareddb{uid}"
    config, functions = _lookup_config(name, 8)
    with pytest.raises(FSMConfigError, match="register them first"):
        SimpleFSM(config, custom_functions=functions, actors=1)
    manager.register_provider(name, DatabaseResourceAdapter(name, "sqlite",
                                                            database=str(tmp_path / "s.db")))
    fsm = SimpleFSM(config, custom_functions=functions, actors=1)
    try:
        result = fsm.process({"x": 1})
        assert result["success"], result
        assert result["data"] == {"x": 1, "n": 8}
    finally:
        fsm.close()
    assert name in manager.resource_names()  # the FSM does not own (or end) it
