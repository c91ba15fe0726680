"""The resource layer without a single point of failure (issue 11) and the cluster halves of
the adapter fixes: the broker killed while leases are held and acquirers wait, a provider
killed mid-call, broker and holder killed together, FIFO waiters, provider lifetime, FSM
resource scopes. The multi-node runs are in test_multinode.py."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import ray

from resource_actors import (
    DatabaseResourceAdapter,
    HTTPResourceAdapter,
    PoolConfig,
    ResourceError,
    ResourceHealth,
    ResourceManager,
)
from resource_actors.binder import ManagerResourceBinder
from tests.helpers.providers import FactoryProvider
from tests.servers import free_port

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


class Sleeper:
    """A live resource with a slow method (to be killed in the middle of)."""

    def __init__(self) -> None:
        self.calls = 0

    def nap(self, seconds: float) -> int:
        time.sleep(seconds)
        self.calls += 1
        return self.calls


@ray.remote(num_cpus=0)
class Holder:
    def hold(self, name: str) -> int:
        self.manager = ResourceManager()
        self.res = self.manager.acquire(name, "holder")
        return self.res.nap(0)


def _broker():
    return ray.get_actor("resource-manager")


def _wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout}s")


def _waiter(manager: ResourceManager, name: str, owner: str, out: dict, timeout: float = 60) -> threading.Thread:
    def run() -> None:
        try:
            out[owner] = manager.acquire(name, owner, timeout=timeout)
        except ResourceError as exc:
            out[owner] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_broker_killed_while_leases_are_held_and_acquirers_wait(manager, uid):
    name = f"rk{uid}"
    manager.register_provider(name, FactoryProvider(name, Sleeper), PoolConfig(min_size=0, max_size=1))
    held = manager.acquire(name, "first")
    got: dict = {}
    waiter = _waiter(manager, name, "second", got)
    _wait_for(lambda: manager.get_resource_status(name)["waiting"] == 1, what="a waiter")
    ray.kill(_broker(), no_restart=False)  # its process dies; Ray restarts it
    started = time.monotonic()
    assert name in manager.resource_names()  # waits for the restarted broker
    recovery = time.monotonic() - started
    print(f"broker recovery: {recovery:.2f}s")
    assert manager.get_all_resources()[name]["owners"] == ["first"]  # owners still listed
    assert held.nap(0) == 1  # a handle acquired before the restart still works
    with pytest.raises(ResourceError, match="exhausted"):  # the cap still holds
        manager.acquire(name, "third", timeout=0.3)
    assert "second" not in got  # still waiting, never handed the held slot
    stats = manager.stats()
    assert stats["by_resource"][name]["leases"] == 1 and stats["by_resource"][name]["waiting"] == 1
    assert stats["by_owner"] == {"first": [name]}
    manager.release(name, "first")  # honoured: frees the slot for the waiter
    waiter.join(30)
    assert got["second"].nap(0) == 2  # the pool's one resource, passed on
    assert manager.get_resource_owners(name) == {"second"}
    m = manager.get_metrics(name)[name]
    assert m.total_acquisitions == 2 and m.active_connections == 1 and m.total_timeout_events == 1
    ray.kill(_broker())  # gone for good: the next caller makes a new one
    assert manager.get_resource_status(name)["owners"] == ["second"]
    assert manager.get_all_resources()[name]["owners"] == ["second"]
    manager.release(name, "second")


def test_provider_killed_mid_call_breaks_its_leases_and_restarts(manager, uid):
    name = f"pk{uid}"
    manager.register_provider(name, FactoryProvider(name, Sleeper), PoolConfig(min_size=0, max_size=1))
    res = manager.acquire(name, "holder")
    errors: list = []

    def call() -> None:
        try:
            res.nap(30)
        except ResourceError as exc:
            errors.append(exc)
    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    time.sleep(0.5)
    ray.kill(ray.get_actor(f"resource/{name}"), no_restart=False)
    caller.join(30)
    assert errors and "died during 'nap'" in str(errors[0]) and errors[0].resource_name == name
    with pytest.raises(ResourceError, match="broken"):  # next call: a clear error
        res.nap(0)
    fresh = manager.acquire(name, "newcomer", timeout=20)  # the slot of the dead lease is free
    assert fresh.nap(0) == 1
    with pytest.raises(ResourceError, match="broken: the provider's process died and was restarted"):
        res.nap(0)  # the restarted provider knows the lease is from its previous life
    assert manager.get_resource_owners(name) == {"newcomer"}
    manager.release(name, "holder")  # the broken lease is gone: a no-op
    manager.release(name, "newcomer")
    assert manager.stats()["by_resource"][name]["leases"] == 0


def test_broker_and_holder_killed_together(manager, uid):
    name = f"bh{uid}"
    manager.register_provider(name, FactoryProvider(name, Sleeper), PoolConfig(min_size=0, max_size=1))
    holder = Holder.remote()
    assert ray.get(holder.hold.remote(name)) == 1
    got: dict = {}
    waiter = _waiter(manager, name, "waiter", got)
    _wait_for(lambda: manager.get_resource_status(name)["waiting"] == 1, what="a waiter")
    ray.kill(_broker(), no_restart=False)
    ray.kill(holder)
    waiter.join(40)  # the provider reclaims the dead holder's lease, broker or not
    assert got["waiter"].nap(0) == 1
    status = manager.get_all_resources()[name]  # through the restarted broker
    assert status["owners"] == ["waiter"] and status["total_reclaims"] == 1
    manager.release(name, "waiter")


@pytest.mark.parametrize("local", [True, False])
def test_waiters_are_served_first_come_first_served(uid, local):
    name = f"fifo{uid}"
    manager = ResourceManager(local=local)
    try:
        manager.register_provider(name, FactoryProvider(name, Sleeper), PoolConfig(min_size=0, max_size=1))
        manager.acquire(name, "holder")
        served: list[str] = []
        got: dict = {}
        lock = threading.Lock()

        def run(owner: str, timeout: float) -> None:
            try:
                manager.acquire(name, owner, timeout=timeout)
            except ResourceError as exc:
                got[owner] = exc
                return
            with lock:
                served.append(owner)
            time.sleep(0.05)
            manager.release(name, owner)
        threads = []
        for i in range(5):  # w2 gives up while queued: it must never be served later
            threads.append(threading.Thread(target=run, args=(f"w{i}", 1.0 if i == 2 else 60),
                                            daemon=True))
            threads[-1].start()
            _wait_for(lambda n=i + 1: manager.get_resource_status(name)["waiting"] == n,
                      what=f"{i + 1} waiters")
        _wait_for(lambda: "w2" in got, what="w2's timeout")
        manager.release(name, "holder")
        for thread in threads:
            thread.join(30)
        assert served == ["w0", "w1", "w3", "w4"]
        assert "exhausted" in str(got["w2"])
        assert manager.get_resource_owners(name) == set()
        assert manager.get_metrics(name)[name].total_acquisitions == 5
    finally:
        manager.close()


_LIFETIME = """
import sys
from fsm_actors.platform import runtime
from resource_actors import ResourceManager
runtime.ensure_ray(address=sys.argv[1])
manager = ResourceManager()
manager.register_from_dict(sys.argv[2], {"data": {"k": 1}})
manager.register_from_dict(sys.argv[3], {"data": {"k": 2}}, lifetime="detached")
manager.acquire(sys.argv[2], "leaver")
print("registered", flush=True)
"""  # exits without close()


def test_providers_go_with_their_registrar_unless_detached(manager, uid, ray_session):
    owned, detached = f"owned{uid}", f"kept{uid}"
    run = subprocess.run([sys.executable, "-c", _LIFETIME, ray_session.address, owned, detached],
                         capture_output=True, text=True, timeout=120)
    assert "registered" in run.stdout, run.stderr[-2000:]
    _wait_for(lambda: owned not in manager.resource_names(), what="the owned provider's end")
    assert detached in manager.resource_names()
    assert manager.acquire(detached, "o") == {"k": 2}
    with pytest.raises(ResourceError, match=f"unknown resource '{owned}'"):
        manager.acquire(owned, "o")
    manager.register_from_dict(detached, {"data": {"k": 2}})  # join it: one more registration
    manager.unregister_provider(detached)
    assert detached in manager.resource_names()  # the dead registrar's registration stays
    manager.unregister_provider(detached, force=True)
    assert detached not in manager.resource_names()


def test_release_of_an_unknown_name_raises_in_the_cluster(manager, uid):  # issue 10 item 4
    name = f"known{uid}"
    manager.register_from_dict(name, {"data": 1})
    manager.acquire(name, "o")
    with pytest.raises(ResourceError, match=f"unknown resource 'typo{uid}'"):
        manager.release(f"typo{uid}", "o")
    manager.release(name, "not-a-holder")  # documented no-op
    assert manager.get_resource_owners(name) == {"o"}


def test_registration_conflicts_are_resource_errors_and_identical_ones_no_ops(manager, uid):
    name = f"reg{uid}"
    manager.register_from_dict(name, {"backend": "memory"})
    manager.register_from_dict(name, {"backend": "memory"})  # identical: a no-op
    with pytest.raises(ResourceError, match="already registered"):
        manager.register_from_dict(name, {"data": 1})
    with pytest.raises(ResourceError, match="already registered"):
        ResourceManager().register_from_dict(name, {"backend": "memory"}, {"max_size": 2})
    with pytest.raises(ResourceError, match="must have acquire"):
        manager.register_provider(f"x{uid}", object())


def test_cluster_http_validate_and_health_of_a_closed_port(manager, uid):  # issue 10 item 3
    name = f"down{uid}"
    manager.register_provider(name, HTTPResourceAdapter(name, f"http://127.0.0.1:{free_port()}",
                                                        timeout=2))
    assert manager.validate_resource(name) is False
    assert manager.health_check(name) == {name: ResourceHealth.UNHEALTHY}


def test_handles_insert_the_union_of_keys_and_reset(manager, uid, tmp_path):  # 9.7, 9.3
    name = f"ins{uid}"
    manager.register_provider(name, DatabaseResourceAdapter(name, "sqlite", database=str(tmp_path / "u.db")),
                              PoolConfig(min_size=0, max_size=1))
    binder = ManagerResourceBinder(manager)
    leased = binder.acquire([name], "state_t_1")
    db = leased[name]
    db.execute("CREATE TABLE t (id INTEGER, name TEXT, note TEXT)")
    db.insert_batch("t", [{"id": 20, "name": "a"}, {"id": 21, "name": "b", "note": "x"}])
    assert db.query("SELECT note FROM t ORDER BY id") == [{"note": None}, {"note": "x"}]
    db.begin()
    db.execute("DELETE FROM t")
    assert binder.reset(leased) == [name]  # the open transaction is rolled back
    assert binder.reset(leased) == [] and db.query("SELECT count(*) AS n FROM t") == [{"n": 2}]
    binder.release_all("state_t_1")


def _scoped_fsm(db_path: str, local: bool):
    from fsm_actors import SimpleFSM

    config = {"name": "scoped",
              "states": [{"name": "start", "is_start": True},
                         {"name": "look", "resources": ["database"], "functions": {"transform": "look"}},
                         {"name": "end", "is_end": True}],
              "arcs": [{"from": "start", "to": "look"}, {"from": "look", "to": "end"}]}

    def look(data, context):
        return {**data, "v": context.resources["database"].query("SELECT v FROM t")[0]["v"]}

    return SimpleFSM(config, resources={"database": {"backend": "sqlite", "database": db_path}},
                     custom_functions={"look": look}, local=local, actors=1)


@pytest.mark.parametrize("local", [True, False])
def test_each_fsm_sees_its_own_resources(manager, tmp_path, local):  # issue 10 item 1
    from sqlalchemy import create_engine, text

    paths = []
    for value in (1, 2):
        path = str(tmp_path / f"db{value}.db")
        engine = create_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (v INTEGER)"))
            conn.execute(text(f"INSERT INTO t VALUES ({value})"))
        engine.dispose()
        paths.append(path)
    if not local:  # the seed's order: a cluster "database" first, then FSMs with their own
        manager.register_provider("database", DatabaseResourceAdapter("database", "memory"))
    first, second = _scoped_fsm(paths[0], local), _scoped_fsm(paths[1], local)
    try:
        one, two = first.process({"x": 1}), second.process({"x": 2})
        assert one["success"] and two["success"], (one, two)
        assert one["data"]["v"] == 1 and two["data"]["v"] == 2
        batch = first.process_batch([{"x": i} for i in range(4)])
        assert [r["data"]["v"] for r in batch] == [1] * 4
    finally:
        first.close()
        second.close()
    if not local:
        assert "database" in manager.resource_names()  # the cluster's own is untouched


def test_a_scope_resolves_its_own_names_first_then_the_clusters(manager, uid):  # issue 10 item 1
    from resource_actors.binder import register_fsm_resources

    manager.register_from_dict(f"cfg{uid}", {"data": {"from": "cluster"}})
    manager.register_from_dict(f"own{uid}", {"data": {"from": "cluster"}})
    scoped = register_fsm_resources(manager, {f"own{uid}": {"data": {"from": "fsm"}}}, scope=f"fsm-{uid}")
    assert scoped == [f"fsm-{uid}/own{uid}"]
    binder = ManagerResourceBinder(manager, {f"own{uid}": scoped[0]})
    got = binder.acquire([f"own{uid}", f"cfg{uid}"], "state_s_1")
    assert got == {f"own{uid}": {"from": "fsm"}, f"cfg{uid}": {"from": "cluster"}}
    binder.release_all("state_s_1")
