"""``ResourceManagerActor``: the cluster-wide broker, named ``resource-manager``.

An asyncio actor driving the ``Broker`` core: it starts one ``ProviderActor`` per registered
resource, admits acquirers up to each resource's cap (waiters wait here, without holding a
thread), and every ``sweep_interval`` seconds reclaims the leases whose TTL expired or whose
owner process died (noticed by ``__ray_ready__`` failing with ``ActorDiedError`` on the
owner's actor or its ``OwnerAnchor``). Reclaimed resources are discarded, not re-pooled:
their owner may have died mid-transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

import ray
from ray.exceptions import ActorDiedError
from ray.util.metrics import Counter, Gauge

from fsm_actors import runtime
from resource_actors.actors import ProviderActor
from resource_actors.base import IResourceProvider, ResourceHealth, ResourceMetrics
from resource_actors.broker import Broker, Lease, metrics_view
from resource_actors.errors import ResourceError
from resource_actors.handle import cause_of
from resource_actors.local import DEFAULT_ACQUIRE_TIMEOUT, fingerprint_of
from resource_actors.pool import PoolConfig

log = logging.getLogger(__name__)

BROKER_NAME = "resource-manager"
#: Seconds between sweeps for dead owners and expired leases.
SWEEP_INTERVAL = 0.5


def provider_actor_name(name: str) -> str:
    return f"resource/{name}"


class ResourceManagerActor:
    """The broker (see the module docstring). All methods are coroutines on one event loop."""

    def __init__(self, sweep_interval: float = SWEEP_INTERVAL) -> None:
        self._core = Broker()
        self._providers: dict[str, Any] = {}
        self._owners: dict[str, Any] = {}
        self._checks: dict[str, asyncio.Future[Any]] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = defaultdict(list)
        self._sweep_interval = sweep_interval
        self._sweeper: asyncio.Task[None] | None = None
        tags = ("resource",)
        self._m_acquired = Counter("fsm_actors_resource_acquisitions", "Leases granted", tag_keys=tags)
        self._m_failed = Counter("fsm_actors_resource_failed_acquisitions",
                                 "Acquisitions that failed or timed out", tag_keys=tags)
        self._m_reclaimed = Counter("fsm_actors_resource_reclaims",
                                    "Leases reclaimed from dead owners or past their TTL", tag_keys=tags)
        self._m_active = Gauge("fsm_actors_resource_active_leases", "Leases held now", tag_keys=tags)

    def _gauge(self, name: str) -> None:
        self._m_active.set(len(self._core.owners(name)), {"resource": name})

    # -- registry ----------------------------------------------------------------------------
    async def register(self, name: str, provider: IResourceProvider,
                       pool_config: PoolConfig | None) -> bool:
        """Start ``resource/<name>`` for ``provider``; False when an identical one was joined."""
        if not self._core.register(name, pool_config, fingerprint_of(provider)):
            return False
        try:
            actor = await self._start_provider(name, provider, pool_config)
        except BaseException:
            self._core.unregister(name)
            raise
        self._providers[name] = actor
        return True

    async def _start_provider(self, name: str, provider: IResourceProvider,
                              pool_config: PoolConfig | None) -> Any:
        threads = max(8, 2 * (pool_config.max_size if pool_config else 8) + 4)
        opts = runtime.actor_options("provider", name=provider_actor_name(name),
                                     max_concurrency=threads)
        for attempt in range(50):  # the name of a just-killed provider is freed asynchronously
            try:
                actor = ProviderActor.options(**opts).remote(name, provider, pool_config)
                break
            except ValueError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        try:
            await actor.start.remote()
        except Exception as exc:
            ray.kill(actor)
            raise ResourceError(f"provider actor of resource {name!r} failed to start: "
                                f"{cause_of(exc)}", name, "register") from None
        return actor

    async def unregister(self, name: str, force: bool = False) -> bool:
        """Drop one registration (``force``: every one); the last one closes the provider and
        ends its leases."""
        leases = self._core.unregister(name, force)
        if leases is None:
            return False
        actor = self._providers.pop(name, None)
        self._wake(name)
        if actor is not None:
            try:
                await actor.close.remote()
            except Exception as exc:
                log.warning("closing provider %r failed: %s", name, cause_of(exc))
            ray.kill(actor)
        return True

    # -- leases ------------------------------------------------------------------------------
    async def acquire(self, name: str, owner_id: str, timeout: float | None,
                      owner_key: str | None, owner_handle: Any) -> tuple[Any, Any]:
        """``(LeaseInfo, provider actor)`` of ``owner_id``'s lease on ``name``."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        config = self._core.pool_config(name)
        if timeout is None:
            timeout = config.acquire_timeout if config else DEFAULT_ACQUIRE_TIMEOUT
        deadline = started + timeout
        while True:
            decision = self._core.begin_acquire(name, owner_id, owner_key)
            if decision.kind == "existing":
                return decision.lease.grant  # type: ignore[union-attr]
            if decision.kind == "admitted":
                lease = decision.lease
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                self._m_failed.inc(1, {"resource": name})
                raise self._core.timeout_error(name, owner_id, loop.time() - started)
            waiter = loop.create_future()
            self._waiters[name].append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass
            finally:
                if waiter in self._waiters[name]:
                    self._waiters[name].remove(waiter)
        assert lease is not None
        if owner_key and owner_handle is not None:  # sent once per process: kept until it dies
            self._owners[owner_key] = owner_handle
        self._ensure_sweeper()
        actor = self._providers[name]
        try:
            info = await actor.lease.remote(lease.lease_id, owner_id, max(0.0, deadline - loop.time()))
        except BaseException as exc:
            self._core.fail_acquire(lease)
            self._m_failed.inc(1, {"resource": name})
            self._wake(name)
            raise cause_of(exc) from None
        try:
            self._core.complete_acquire(lease, (info, actor))
        except ResourceError:
            actor.release.remote(lease.lease_id, True)
            raise
        finally:
            self._wake(name)
        self._m_acquired.inc(1, {"resource": name})
        self._gauge(name)
        return info, actor

    def _wake(self, name: str) -> None:
        for waiter in self._waiters.pop(name, []):
            if not waiter.done():
                waiter.set_result(None)

    async def release(self, name: str, owner_id: str) -> bool:
        """End ``owner_id``'s lease on ``name`` once the provider has the resource back (its
        reset done: transaction rolled back, temp files gone); False when it held none."""
        lease = self._core.lease(name, owner_id)
        actor = self._providers.get(name)
        if lease is None or actor is None:
            return False
        try:
            await actor.release.remote(lease.lease_id)
        except Exception as exc:
            log.warning("returning a lease of %r to its provider failed: %s", name, cause_of(exc))
        finally:
            self._core.release(name, owner_id)
            self._wake(name)
            self._gauge(name)
        return True

    async def release_all(self, owner_id: str) -> list[str]:
        """End every lease of ``owner_id``; returns the resource names released."""
        names = [n for n in self._core.names() if self._core.lease(n, owner_id) is not None]
        done = await asyncio.gather(*(self.release(n, owner_id) for n in names))
        return [n for n, ok in zip(names, done, strict=True) if ok]

    async def get_resource(self, name: str, owner_id: str) -> tuple[Any, Any] | None:
        lease = self._core.lease(name, owner_id)
        return lease.grant if lease is not None else None

    async def owners(self, name: str) -> set[str]:
        return self._core.owners(name)

    # -- reclaim -----------------------------------------------------------------------------
    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("lease sweep failed")

    async def sweep(self) -> int:
        """Reclaim expired leases and those of dead owners now; returns how many."""
        reclaimed = 0
        for lease in self._core.expired():
            reclaimed += await self._reclaim(lease, "lease TTL expired")
        by_key = self._core.leases_by_owner_key()
        for key in list(self._checks):
            if key not in by_key:
                self._checks.pop(key, None)
        for key, leases in by_key.items():
            if not self._owner_dead(key):
                continue
            for lease in leases:
                reclaimed += await self._reclaim(lease, f"owner process (actor {key[:12]}) died")
            self._owners.pop(key, None)
        return reclaimed

    def _owner_dead(self, key: str) -> bool:
        handle = self._owners.get(key)
        if handle is None:
            return False
        check = self._checks.get(key)
        if check is None:  # one check in flight per owner: a busy owner answers late, not twice
            self._checks[key] = asyncio.wrap_future(handle.__ray_ready__.remote().future())
            return False
        if not check.done():
            return False
        del self._checks[key]
        error = check.exception()
        return isinstance(error, ActorDiedError)

    async def _reclaim(self, lease: Lease, reason: str) -> int:
        if not self._core.reclaim(lease, reason):
            return 0
        self._m_reclaimed.inc(1, {"resource": lease.resource_name})
        self._gauge(lease.resource_name)
        actor = self._providers.get(lease.resource_name)
        if actor is not None:
            try:
                await actor.release.remote(lease.lease_id, True)
            except Exception as exc:
                log.warning("discarding reclaimed lease of %r failed: %s", lease.resource_name,
                            cause_of(exc))
        self._wake(lease.resource_name)
        return 1

    # -- reports -----------------------------------------------------------------------------
    async def names(self) -> list[str]:
        return self._core.names()

    async def status(self, name: str) -> dict[str, Any]:
        return self._core.status(name)

    async def all_status(self) -> dict[str, dict[str, Any]]:
        return {n: self._core.status(n) for n in self._core.names()}

    async def metrics(self, name: str | None = None) -> dict[str, ResourceMetrics]:
        wanted = self._core.names() if name is None else [name, name.removesuffix("_pool")]
        pooled = [n for n in dict.fromkeys(wanted)
                  if n in self._providers and self._core.pool_config(n) is not None]
        results = await asyncio.gather(*(self._providers[n].pool_metrics.remote() for n in pooled),
                                       return_exceptions=True)
        pools = {n: r for n, r in zip(pooled, results, strict=True) if not isinstance(r, BaseException)}
        return metrics_view(self._core, name, pools.get)

    async def health(self, name: str | None = None) -> dict[str, ResourceHealth]:
        names = self._core.names() if name is None else [name]

        async def one(n: str) -> ResourceHealth:
            actor = self._providers.get(n)
            if actor is None:
                return ResourceHealth.UNKNOWN
            try:
                return await asyncio.wait_for(actor.health_check.remote(), 30)
            except Exception:
                return ResourceHealth.UNHEALTHY
        results = await asyncio.gather(*(one(n) for n in names))
        for n, health in zip(names, results, strict=True):
            self._core.record_health(n, health)
        return dict(zip(names, results, strict=True))

    async def validate(self, name: str) -> bool:
        actor = self._providers.get(name)
        if actor is None:
            return False
        try:
            return bool(await actor.validate.remote())
        except Exception:
            return False

    def __repr__(self) -> str:
        leases = sum(len(self._core.owners(n)) for n in self._core.names())
        return f"ResourceManagerActor(resources={len(self._core.names())}, leases={leases})"


RemoteResourceManagerActor = ray.remote(ResourceManagerActor)


_broker: tuple[str, Any] | None = None  # (job id, handle), kept for the life of the process


def get_broker() -> Any:
    """The cluster's ``resource-manager`` actor, created on first use (0 CPU, non-detached).

    A non-detached actor dies when its creator holds no handle to it any more, so the handle
    is kept for the life of this process: the broker lives as long as the driver that created
    it.
    """
    global _broker
    runtime.ensure_ray()
    job = ray.get_runtime_context().get_job_id()
    if _broker is None or _broker[0] != job:
        opts = runtime.actor_options("broker", name=BROKER_NAME, get_if_exists=True,
                                     max_concurrency=1000)
        _broker = (job, RemoteResourceManagerActor.options(**opts).remote())
    return _broker[1]
