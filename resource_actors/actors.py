"""Actor shells of the provider side: ``ProviderActor`` and ``OwnerAnchor``.

``ProviderActor`` (named ``resource/<name>``) hosts one ``ProviderHost``: the provider, its
pool, and the truth about its leases (the lease book: cap, holders, FIFO waiters). Callers
acquire and release here directly, one call each; the broker is not on that path. It is
threaded, so a slow query of one lease does not stall the others. Acquisitions run in their
own concurrency group (``acquire``, ``ACQUIRE_THREADS`` threads): a waiting acquirer blocks
one of those, never a thread that a holder's call or a release needs, so holders always
finish and hand their slot on (more waiters than that queue in Ray, in arrival order, and
their timeout still counts from when they were sent). An upkeep thread reclaims leases past their TTL
and those of owner processes that died (noticed by ``__ray_ready__`` failing with
``ActorDiedError`` on the owner's actor or its ``OwnerAnchor``), and evicts idle resources.

The actor restarts when its process dies (``max_restarts=-1``). The restarted actor rebuilds
the provider from its creation arguments and its registrations from a journal in Ray's
internal KV; its leases are broken (their resources died with the process), which a holder
learns from a ``ResourceError`` on its next call, and new acquisitions work at once.

``OwnerAnchor`` is a do-nothing actor a driver (or a task) creates to stand for itself,
named ``owner/<job>/<node>/<pid>``: it dies with its creator, which tells the providers the
owner's leases can be reclaimed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import ray
from ray.exceptions import ActorDiedError, GetTimeoutError

from fsm_actors.platform.journal import Journal
from resource_actors.base import IResourceProvider, ResourceHealth, ResourceMetrics
from resource_actors.errors import ResourceError
from resource_actors.host import LeaseInfo, ProviderHost, Upkeep
from resource_actors.lease_book import Registration
from resource_actors.pool import PoolConfig, PoolMetrics

log = logging.getLogger(__name__)

#: Seconds between upkeep rounds (dead owners, expired leases, idle eviction).
SWEEP_INTERVAL = 0.5
#: Prefix of provider actor names: ``resource/<resource name>``.
PROVIDER_PREFIX = "resource/"
_KV_NAMESPACE = "fsm_actors"
#: Threads of the ``acquire`` concurrency group (waiting acquirers block these only).
ACQUIRE_THREADS = 64


def provider_actor_name(name: str) -> str:
    return f"{PROVIDER_PREFIX}{name}"


def _journal(name: str) -> Journal:
    return Journal(f"resource-registrations/{name}", _KV_NAMESPACE, codec="json")


@ray.remote(concurrency_groups={"acquire": ACQUIRE_THREADS})
class ProviderActor:
    """One provider, its pool and its leases (see the module docstring)."""

    def __init__(self, name: str, provider: IResourceProvider, pool_config: PoolConfig | None,
                 fingerprint: str | None) -> None:
        self._name = name
        self._kind = type(provider).__name__
        self._actor_id = ray.get_runtime_context().get_actor_id()
        self._host = ProviderHost(name, provider, pool_config, incarnation=uuid.uuid4().hex[:8])
        self._registration = Registration(name, fingerprint, pool_config)
        self._closing = False
        journal = _journal(name).load() or {}
        # the same actor id: this is a restart of the actor that wrote it (else a stale one)
        restarted = journal.get("actor_id") == self._actor_id
        if restarted:
            self._registration.ids = set(journal.get("ids", []))
            log.warning("provider of resource %r restarted: its leases are broken", name)
        self._owners: dict[str, Any] = {}  # owner process key -> its actor handle
        self._checks: dict[str, Any] = {}  # owner key -> in-flight __ray_ready__ ref
        idle = pool_config.max_idle_time if pool_config else 60.0
        self._evict_period = max(1.0, min(30.0, idle / 2))
        self._evicted_at = time.monotonic()
        self._upkeep = Upkeep(name, SWEEP_INTERVAL,
                              [self._host.reclaim_expired, self._sweep_owners, self._evict])
        if restarted:
            self._host.start()

    # -- registrations -----------------------------------------------------------------------
    def join(self, reg_id: str, fingerprint: str | None, pool_config: PoolConfig | None) -> bool:
        """Add a registration (journaled); True for the first. Conflicts raise."""
        if self._closing:
            raise ResourceError(f"resource {self._name!r} is being unregistered; register it "
                                "again in a moment", self._name, "register-retry")
        first = self._registration.join(reg_id, fingerprint, pool_config)
        self._journal()
        if first:
            self._host.start()
        return first

    def leave(self, reg_id: str | None) -> bool:
        """Drop a registration; True (and closing) when it was the last."""
        last = self._registration.leave(reg_id)
        if last:
            self._closing = True
            _journal(self._name).clear()
        else:
            self._journal()
        return last

    def _journal(self) -> None:
        record = {"actor_id": self._actor_id, "ids": sorted(self._registration.ids)}
        _journal(self._name).save(record)

    # -- leases ------------------------------------------------------------------------------
    @ray.method(concurrency_group="acquire")
    def acquire(self, owner_id: str, timeout: float | None, sent_at: float,
                owner_key: str | None, owner_handle: Any) -> tuple[LeaseInfo, bool]:
        """``(lease info, provider knows the owner's handle)``. ``timeout`` counts from
        ``sent_at`` (the caller's clock), so time spent queued counts against it."""
        wait, knows = self._prologue(timeout, sent_at, owner_key, owner_handle)
        return self._host.describe(self._host.acquire(owner_id, wait, owner_key)), knows

    @ray.method(concurrency_group="acquire")
    def acquire_here(self, owner_id: str, timeout: float | None, sent_at: float,
                     owner_key: str | None, owner_handle: Any, node_id: str | None = None
                     ) -> tuple[LeaseInfo | None, bool, IResourceProvider | None]:
        """``acquire`` for a lessee (on node ``node_id``) that makes the resource itself:
        ``(None, knows, provider copy)`` with a slot of the cap taken, or, when the provider
        has no ``lessee_copy`` for it, ``acquire``'s ``(lease info, knows, None)``."""
        copier = getattr(self._host.provider, "lessee_copy", None)
        same_node = node_id is not None and node_id == ray.get_runtime_context().get_node_id()
        dup = copier(same_node=same_node) if callable(copier) else None
        if dup is None:
            return (*self.acquire(owner_id, timeout, sent_at, owner_key, owner_handle), None)
        wait, knows = self._prologue(timeout, sent_at, owner_key, owner_handle)
        self._host.admit_lessee(owner_id, wait, owner_key)
        return None, knows, dup

    def _prologue(self, timeout: float | None, sent_at: float, owner_key: str | None,
                  owner_handle: Any) -> tuple[float, bool]:
        """Learn the owner's handle (when sent); ``(seconds left to wait, handle known)``."""
        if owner_key and owner_handle is not None:
            self._owners[owner_key] = owner_handle
        wait = (self._host.default_timeout if timeout is None else timeout) - max(
            0.0, time.time() - sent_at)
        return max(0.0, wait), owner_key is None or owner_key in self._owners

    def introduce(self, owner_key: str, owner_handle: Any) -> None:
        """Learn the handle that stands for the owner process ``owner_key``."""
        self._owners[owner_key] = owner_handle

    def release(self, owner_id: str) -> bool:
        return self._host.release(owner_id)

    def grant(self, owner_id: str) -> LeaseInfo | None:
        lease = self._host.lease_of(owner_id)
        return self._host.describe(lease) if lease is not None else None

    def owners(self) -> set[str]:
        return self._host.owners()

    def call(self, lease_id: str, method: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        return self._host.call(lease_id, method, args, kwargs)

    def stream(self, lease_id: str, method: str, args: tuple, kwargs: dict[str, Any]) -> Iterator[Any]:
        # a plain loop: Ray calls send() on the generator, which `yield from` forwards
        for item in self._host.stream(lease_id, method, args, kwargs):  # noqa: UP028
            yield item

    def get_attribute(self, lease_id: str, name: str) -> Any:
        return self._host.get_attribute(lease_id, name)

    # -- reclaim -----------------------------------------------------------------------------
    def sweep(self) -> int:
        """Reclaim expired leases and those of dead owners now; returns how many."""
        return self._host.reclaim_expired() + self._sweep_owners(wait=2.0)

    def _sweep_owners(self, wait: float = 0.0) -> int:
        keys = self._host.owner_keys()
        for key in list(self._checks):
            if key not in keys:
                self._checks.pop(key, None)
        reclaimed = 0
        for key in keys:
            handle = self._owners.get(key)
            if handle is None:
                continue
            ref = self._checks.get(key)
            if ref is None:  # one check in flight per owner: a busy owner answers late, not twice
                ref = self._checks[key] = handle.__ray_ready__.remote()
            try:
                ray.get(ref, timeout=wait)
            except GetTimeoutError:
                continue
            except ActorDiedError:
                reclaimed += self._host.reclaim_owner_key(key, f"owner process (actor {key[:12]}) died")
                self._owners.pop(key, None)
            except Exception as exc:  # unreachable for now (a node going away): ask again
                log.debug("owner check of %s failed: %s", key[:12], exc)
            self._checks.pop(key, None)
        return reclaimed

    def _evict(self) -> None:
        if time.monotonic() - self._evicted_at >= self._evict_period:
            self._evicted_at = time.monotonic()
            self._host.evict_idle()

    # -- reports -----------------------------------------------------------------------------
    def validate(self) -> bool:
        return self._host.validate()

    def health_check(self) -> ResourceHealth:
        health = self._host.health_check()
        self._host.record_health(health)
        return health

    def status(self) -> dict[str, Any]:
        return self._host.status()

    def stats(self) -> dict[str, Any]:
        """Live counters of this resource (keys: see ``ProviderHost.stats``)."""
        return self._host.stats()

    def metrics(self) -> tuple[ResourceMetrics, PoolMetrics | None]:
        return self._host.lease_metrics(), self._host.pool_metrics()

    def close(self) -> bool:
        self._upkeep.stop()
        self._host.close()
        return True

    def __repr__(self) -> str:
        return f"ProviderActor(resource={self._name!r}, provider={self._kind})"


@ray.remote(num_cpus=0)
class OwnerAnchor:
    """Stands for the driver or task that created it (``whose``); it dies with its creator."""

    def __init__(self, whose: str) -> None:
        self._whose = whose

    def actor_id(self) -> str:
        return ray.get_runtime_context().get_actor_id()

    def __repr__(self) -> str:
        return f"OwnerAnchor(for {self._whose})"
