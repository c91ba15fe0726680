"""The broker core: registry, leases by (resource, owner), caps, lease metrics. No I/O.

``Broker`` decides; drivers carry the decisions out. The in-process driver is
``resource_actors.local.LocalBroker`` (threads), the cluster-wide one is the
``ResourceManagerActor`` (asyncio). An acquisition is two-phase: ``begin_acquire`` answers
*existing* (the owner already holds the resource), *admitted* (a slot is reserved: the driver
now leases a live resource from the provider and reports ``complete_acquire`` or
``fail_acquire``) or *wait* (the resource is at its cap; the driver waits for a release and
asks again, or gives up with ``timeout_error``).

Not thread-safe: drivers serialize calls (a lock, or one event loop).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from resource_actors.base import ResourceHealth, ResourceMetrics
from resource_actors.errors import ResourceError
from resource_actors.pool import PoolConfig

log = logging.getLogger(__name__)


@dataclass
class Lease:
    """One owner's hold on one resource. ``grant`` is what the driver hands to the owner."""

    lease_id: str
    resource_name: str
    owner_id: str
    reserved_at: float
    owner_key: str | None = None
    acquired_at: float | None = None
    expires_at: float | None = None
    grant: Any = None

    @property
    def active(self) -> bool:
        """False while the provider is still leasing the resource."""
        return self.acquired_at is not None


@dataclass(frozen=True)
class Decision:
    """Answer of ``begin_acquire``."""

    kind: Literal["existing", "admitted", "wait"]
    lease: Lease | None = None


@dataclass
class _Entry:
    name: str
    pool_config: PoolConfig | None
    fingerprint: str | None
    registrations: int = 1
    metrics: ResourceMetrics = field(default_factory=ResourceMetrics)
    leases: dict[str, Lease] = field(default_factory=dict)

    @property
    def cap(self) -> int | None:
        return self.pool_config.max_size if self.pool_config else None


class Broker:
    """Registry and lease book of every resource (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self.closed = False

    # -- registry ----------------------------------------------------------------------------
    def register(self, name: str, pool_config: PoolConfig | None, fingerprint: str | None) -> bool:
        """Add a resource; True when new, False when an identical registration was joined.

        Raises ``ValueError`` when ``name`` is taken by a different provider (no fingerprint,
        or another fingerprint or pool config) and ``ResourceError`` when closed.
        """
        self._check_open(name, "register")
        entry = self._entries.get(name)
        if entry is None:
            self._entries[name] = _Entry(name, pool_config, fingerprint)
            return True
        if fingerprint is None or entry.fingerprint != fingerprint or entry.pool_config != pool_config:
            raise ValueError(
                f"resource {name!r} is already registered with another provider; choose another "
                "name or unregister it first")
        entry.registrations += 1
        return False

    def unregister(self, name: str, force: bool = False) -> list[Lease] | None:
        """Drop one registration (``force``: all of them). When it was the last, the resource
        goes and its leases (reserved or active) are returned for the driver to release;
        else None."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        entry.registrations = 0 if force else entry.registrations - 1
        if entry.registrations > 0:
            return None
        del self._entries[name]
        return list(entry.leases.values())

    def has(self, name: str) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return list(self._entries)

    def pool_config(self, name: str) -> PoolConfig | None:
        entry = self._entries.get(name)
        return entry.pool_config if entry else None

    def _entry(self, name: str, operation: str, owner_id: str | None = None) -> _Entry:
        self._check_open(name, operation, owner_id)
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(sorted(self._entries)) or "none"
            raise ResourceError(
                f"unknown resource {name!r} (registered: {known}); register it with "
                "register_provider() or register_from_dict() first", name, operation,
                owner_id=owner_id)
        return entry

    def _check_open(self, name: str | None, operation: str, owner_id: str | None = None) -> None:
        if self.closed:
            raise ResourceError("Resource manager is closed", name, operation, owner_id=owner_id)

    # -- acquisition -------------------------------------------------------------------------
    def begin_acquire(self, name: str, owner_id: str, owner_key: str | None = None) -> Decision:
        """Existing lease, a reserved slot, or wait (see the module docstring)."""
        entry = self._entry(name, "acquire", owner_id)
        lease = entry.leases.get(owner_id)
        if lease is not None:
            return Decision("existing", lease) if lease.active else Decision("wait")
        cap = entry.cap
        if cap is not None and len(entry.leases) >= cap:
            return Decision("wait")
        lease = Lease(uuid.uuid4().hex, name, owner_id, self._clock(), owner_key)
        entry.leases[owner_id] = lease
        return Decision("admitted", lease)

    def complete_acquire(self, lease: Lease, grant: Any) -> None:
        """The provider leased the resource: the lease becomes active."""
        entry = self._entries.get(lease.resource_name)
        if entry is None or entry.leases.get(lease.owner_id) is not lease:
            raise ResourceError(f"resource {lease.resource_name!r} was unregistered while being "
                                "acquired", lease.resource_name, "acquire", owner_id=lease.owner_id)
        now = self._clock()
        lease.acquired_at = now
        lease.grant = grant
        ttl = entry.pool_config.lease_ttl if entry.pool_config else None
        lease.expires_at = now + ttl if ttl else None
        entry.metrics.record_acquisition(now - lease.reserved_at)

    def fail_acquire(self, lease: Lease) -> None:
        """The provider could not lease the resource: free the slot, count a failure."""
        entry = self._entries.get(lease.resource_name)
        if entry is not None and entry.leases.get(lease.owner_id) is lease:
            del entry.leases[lease.owner_id]
            entry.metrics.record_failure()

    def timeout_error(self, name: str, owner_id: str, waited: float) -> ResourceError:
        """Count a timed-out acquisition and build the error that names the cap and holders."""
        entry = self._entries.get(name)
        if entry is None:
            return ResourceError(f"resource {name!r} was unregistered while waiting",
                                 name, "acquire", owner_id=owner_id)
        entry.metrics.record_timeout()
        entry.metrics.record_failure()
        holders = sorted(lease.owner_id for lease in entry.leases.values())
        shown = ", ".join(repr(h) for h in holders[:5]) + (
            f" and {len(holders) - 5} more" if len(holders) > 5 else "")
        return ResourceError(
            f"pool of resource {name!r} is exhausted: {len(holders)} of max_size={entry.cap} "
            f"leases in use (held by {shown or 'nobody'}); {owner_id!r} waited {waited:.1f}s. "
            "Release leases sooner (use resource_context), raise PoolConfig.max_size, or "
            "raise the acquire timeout.", name, "acquire", owner_id=owner_id)

    # -- release -----------------------------------------------------------------------------
    def release(self, name: str, owner_id: str) -> Lease | None:
        """End ``owner_id``'s active lease on ``name``; None when it holds none."""
        entry = self._entries.get(name)
        lease = entry.leases.get(owner_id) if entry else None
        if entry is None or lease is None or not lease.active:
            return None
        del entry.leases[owner_id]
        entry.metrics.record_release(self._clock() - (lease.acquired_at or lease.reserved_at))
        return lease

    def release_all(self, owner_id: str) -> list[Lease]:
        """End every active lease of ``owner_id``."""
        ended = [self.release(name, owner_id) for name in list(self._entries)]
        return [lease for lease in ended if lease is not None]

    def reclaim(self, lease: Lease, reason: str) -> bool:
        """End a lease its owner cannot release (dead owner, expired TTL); False if already gone."""
        entry = self._entries.get(lease.resource_name)
        if entry is None or entry.leases.get(lease.owner_id) is not lease or not lease.active:
            return False
        del entry.leases[lease.owner_id]
        entry.metrics.record_release(self._clock() - (lease.acquired_at or lease.reserved_at),
                                     reclaimed=True)
        log.warning("reclaimed lease of resource %r held by %r: %s",
                    lease.resource_name, lease.owner_id, reason)
        return True

    def expired(self) -> list[Lease]:
        """Active leases past their TTL."""
        now = self._clock()
        return [lease for entry in self._entries.values() for lease in entry.leases.values()
                if lease.active and lease.expires_at is not None and lease.expires_at <= now]

    def next_expiry(self) -> float | None:
        """Clock time of the earliest lease expiry, if any."""
        times = [lease.expires_at for entry in self._entries.values()
                 for lease in entry.leases.values() if lease.expires_at is not None]
        return min(times) if times else None

    def leases_by_owner_key(self) -> dict[str, list[Lease]]:
        """Active leases grouped by the process identity of their owner."""
        out: dict[str, list[Lease]] = {}
        for entry in self._entries.values():
            for lease in entry.leases.values():
                if lease.active and lease.owner_key:
                    out.setdefault(lease.owner_key, []).append(lease)
        return out

    def close(self) -> list[Lease]:
        """Refuse further work; returns every lease for the driver to release."""
        self.closed = True
        leases = [lease for entry in self._entries.values() for lease in entry.leases.values()]
        self._entries.clear()
        return leases

    # -- queries -----------------------------------------------------------------------------
    def lease(self, name: str, owner_id: str) -> Lease | None:
        """``owner_id``'s active lease on ``name``."""
        entry = self._entries.get(name)
        lease = entry.leases.get(owner_id) if entry else None
        return lease if lease is not None and lease.active else None

    def owners(self, name: str) -> set[str]:
        """Owner ids holding ``name``."""
        entry = self._entries.get(name)
        return {o for o, lease in entry.leases.items() if lease.active} if entry else set()

    def status(self, name: str) -> dict[str, Any]:
        """``provider_exists``, ``has_pool``, ``active_count``, ``owners`` and totals."""
        entry = self._entries.get(name)
        if entry is None:
            return {"provider_exists": False, "has_pool": False, "active_count": 0, "owners": []}
        owners = sorted(self.owners(name))
        m = entry.metrics
        return {"provider_exists": True, "has_pool": entry.pool_config is not None,
                "active_count": len(owners), "owners": owners, "max_size": entry.cap,
                "total_acquires": m.total_acquisitions, "total_releases": m.total_releases,
                "total_reclaims": m.total_reclaims}

    def metrics(self, name: str) -> ResourceMetrics | None:
        """A copy of the lease metrics of ``name``."""
        entry = self._entries.get(name)
        return replace(entry.metrics) if entry else None

    def record_health(self, name: str, health: ResourceHealth) -> None:
        entry = self._entries.get(name)
        if entry is not None:
            entry.metrics.record_health_check(health is ResourceHealth.HEALTHY)


def metrics_view(broker: Broker, name: str | None,
                 pool_metrics: Callable[[str], ResourceMetrics | None]) -> dict[str, ResourceMetrics]:
    """``get_metrics`` answer: ``{name: lease metrics, "<name>_pool": pool metrics}``.

    ``name=None``: every resource; ``"<name>_pool"``: only that pool's metrics; unknown: ``{}``.
    """
    if name is None:
        names = broker.names()
    elif broker.has(name):
        names = [name]
    elif name.endswith("_pool") and broker.has(name[:-5]):
        pool = pool_metrics(name[:-5])
        return {name: pool} if pool is not None else {}
    else:
        return {}
    out: dict[str, ResourceMetrics] = {}
    for each in names:
        metrics = broker.metrics(each)
        if metrics is None:
            continue
        out[each] = metrics
        if broker.pool_config(each) is not None:
            pool = pool_metrics(each)
            if pool is not None:
                out[f"{each}_pool"] = pool
    return out
