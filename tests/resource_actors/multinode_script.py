"""Resources on a multi-node cluster, driven by test_multinode.py in its own process.

A ``ray.cluster_utils.Cluster`` head with no CPUs and two worker nodes ``a`` and ``b``. The
broker and the provider run on ``b``; the lease holder is an actor on ``a``, the driver on
the head. The broker is killed (it restarts) while the holder's lease is held and the driver
waits; then node ``a`` is removed without grace, and its holder's lease must be reclaimed for
the waiter. Prints one JSON line with what was seen; any broken promise is an assertion.
"""

from __future__ import annotations

import json
import threading
import time

import ray

from fsm_actors.platform import runtime
from resource_actors import BaseResourceProvider, PoolConfig, ResourceError, ResourceManager
from resource_actors.broker_actor import BROKER_NAME, get_broker
from tests.ops.ray_heads import fast_failover_cluster


class Tally:
    def __init__(self) -> None:
        self.n = 0

    def bump(self) -> int:
        self.n += 1
        return self.n


class TallyProvider(BaseResourceProvider):
    def acquire(self, **kwargs):
        return Tally()

    def release(self, resource):
        return None


@ray.remote(num_cpus=0, resources={"node_a": 0.01})
class Holder:
    def hold(self, name: str) -> tuple[int, list[str]]:
        self.manager = ResourceManager()
        self.res = self.manager.acquire(name, "holder-on-a")
        return self.res.bump(), self.manager.resource_names()

    def use(self) -> tuple[int, list[str]]:
        return self.res.bump(), self.manager.resource_names()


def actor_nodes(prefix: str) -> dict[str, str]:
    """Name -> node id of the live actors whose name starts with ``prefix``."""
    table = ray._private.state.state.actor_table(None)
    return {info["Name"]: info["Address"]["NodeID"] for info in table.values()
            if info.get("Name", "").startswith(prefix) and info["State"] == "ALIVE"}


def wait_for(predicate, timeout: float = 60.0) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.1)
    return time.monotonic() - started


def main() -> None:
    cluster = fast_failover_cluster()
    node_a = cluster.add_node(num_cpus=1, resources={"node_a": 1})
    node_b = cluster.add_node(num_cpus=1, resources={"node_b": 1})
    cluster.wait_for_nodes()
    runtime.ensure_ray(cluster.address)
    get_broker(resources={"node_b": 0.01})  # the broker's node is not the callers'
    manager = ResourceManager()
    name = "tally"
    manager.register_provider(name, TallyProvider(name), PoolConfig(min_size=0, max_size=1),
                              actor_options={"resources": {"node_b": 0.01}})
    placed = actor_nodes("")
    assert placed[BROKER_NAME] == placed[f"resource/{name}"] == node_b.node_id, placed

    holder = Holder.remote()
    assert ray.get(holder.hold.remote(name)) == (1, [name])
    got: dict = {}

    def wait() -> None:
        try:
            got["lease"] = manager.acquire(name, "driver-waiter", timeout=120)
        except ResourceError as exc:
            got["error"] = exc
    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    wait_for(lambda: manager.get_resource_status(name)["waiting"] == 1)

    ray.kill(ray.get_actor(BROKER_NAME), no_restart=False)
    started = time.monotonic()
    assert ray.get(holder.use.remote()) == (2, [name])  # the holder on a rides through
    broker_back = time.monotonic() - started
    stats = manager.stats()
    assert stats["by_owner"] == {"holder-on-a": [name]} and stats["waiting"] == 1, stats
    with_cap = False
    try:
        manager.acquire(name, "intruder", timeout=0.5)
    except ResourceError as exc:
        with_cap = "exhausted" in str(exc)
    assert with_cap and "lease" not in got

    cluster.remove_node(node_a, allow_graceful=False)
    removed = time.monotonic()
    waiter.join(120)
    reclaimed_after = time.monotonic() - removed
    assert "lease" in got, got
    assert got["lease"].bump() == 1  # reclaimed resources are discarded, not re-pooled
    status = manager.get_all_resources()[name]
    assert status["owners"] == ["driver-waiter"] and status["total_reclaims"] == 1, status
    manager.release(name, "driver-waiter")
    manager.close()
    print(json.dumps({"scenario": "resources_multinode", "broker_node_is_b": True,
                      "broker_back_s": round(broker_back, 2),
                      "reclaimed_after_node_loss_s": round(reclaimed_after, 2),
                      "owners_after": status["owners"]}), flush=True)
    runtime.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main()
