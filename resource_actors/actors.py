"""Actor shells of the provider side: ``ProviderActor`` and ``OwnerAnchor``.

``ProviderActor`` (named ``resource/<name>``) hosts one ``ProviderHost``; it is threaded, one
thread per concurrent holder, so a slow query of one lease does not stall the others. All
logic is in ``ProviderHost``. ``OwnerAnchor`` is a do-nothing actor a driver (or a task)
creates to stand for itself: it dies with its creator, which tells the resource manager the
owner's leases can be reclaimed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import ray

from resource_actors.base import IResourceProvider, ResourceHealth, ResourceMetrics
from resource_actors.host import LeaseInfo, ProviderHost
from resource_actors.pool import PoolConfig, PoolMetrics


@ray.remote
class ProviderActor:
    """One provider, its pool and its leased resources (contract: ``ProviderHost``)."""

    def __init__(self, name: str, provider: IResourceProvider, pool_config: PoolConfig | None) -> None:
        self._host = ProviderHost(name, provider, pool_config)
        self._stop = threading.Event()
        if pool_config is not None:
            period = max(1.0, min(30.0, pool_config.max_idle_time / 2))
            threading.Thread(target=self._evict_loop, args=(period,), daemon=True,
                             name=f"evict-{name}").start()

    def _evict_loop(self, period: float) -> None:
        while not self._stop.wait(period):
            self._host.evict_idle()

    def start(self) -> bool:
        """Warm the pool (best effort)."""
        self._host.start()
        return True

    def lease(self, lease_id: str, owner_id: str, timeout: float | None) -> LeaseInfo:
        self._host.lease(lease_id, owner_id, timeout)
        return self._host.describe(lease_id, owner_id)

    def release(self, lease_id: str, discard: bool = False) -> bool:
        return self._host.release(lease_id, discard)

    def call(self, lease_id: str, method: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        return self._host.call(lease_id, method, args, kwargs)

    def stream(self, lease_id: str, method: str, args: tuple, kwargs: dict[str, Any]) -> Iterator[Any]:
        # a plain loop: Ray calls send() on the generator, which `yield from` forwards
        for item in self._host.stream(lease_id, method, args, kwargs):  # noqa: UP028
            yield item

    def get_attribute(self, lease_id: str, name: str) -> Any:
        return self._host.get_attribute(lease_id, name)

    def validate(self) -> bool:
        return self._host.validate()

    def health_check(self) -> ResourceHealth:
        return self._host.health_check()

    def pool_metrics(self) -> PoolMetrics | None:
        return self._host.pool_metrics()

    def provider_metrics(self) -> ResourceMetrics | None:
        return self._host.provider_metrics()

    def lease_count(self) -> int:
        return self._host.lease_count()

    def close(self) -> bool:
        self._stop.set()
        self._host.close()
        return True

    def __repr__(self) -> str:
        return f"ProviderActor({self._host!r})"


@ray.remote(num_cpus=0)
class OwnerAnchor:
    """Stands for the driver or task that created it; it dies with its creator."""

    def actor_id(self) -> str:
        return ray.get_runtime_context().get_actor_id()

    def __repr__(self) -> str:
        return "OwnerAnchor()"
