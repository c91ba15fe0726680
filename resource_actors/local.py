"""``LocalBroker``: the resources of one process (``ResourceManager(local=True)``).

A registry of ``ProviderHost``s; callers get live resources themselves. The semantics are the
cluster's: one cap per resource, first come first served waiters, TTL reclaims (a small
upkeep thread per resource with a ``lease_ttl``), identical registrations joined, others
refused with ``RegistrationConflict``. There is no process to die here, so no owner sweep.
Thread-safe.
"""

from __future__ import annotations

import threading
from typing import Any

from resource_actors.base import IResourceProvider, ResourceHealth, ResourceMetrics
from resource_actors.errors import ResourceError
from resource_actors.host import ProviderHost, Upkeep, metrics_view
from resource_actors.lease_book import Registration
from resource_actors.pool import PoolConfig


def fingerprint_of(provider: Any) -> str | None:
    """The provider's registration fingerprint, when it has one."""
    fn = getattr(provider, "fingerprint", None)
    try:
        return fn() if callable(fn) else None
    except Exception:
        return None


def unknown_resource(name: str, known: list[str], operation: str,
                     owner_id: str | None = None) -> ResourceError:
    """The error for a name that is not registered, listing those that are."""
    shown = ", ".join(sorted(known)) or "none"
    return ResourceError(
        f"unknown resource {name!r} (registered: {shown}); register it with "
        "register_provider() or register_from_dict() first, or check the name",
        name, operation, owner_id=owner_id)


class _Entry:
    def __init__(self, registration: Registration, host: ProviderHost) -> None:
        self.registration = registration
        self.host = host
        ttl = host.pool_config.lease_ttl if host.pool_config else None
        self.upkeep = (Upkeep(host.name, max(0.02, min(0.5, ttl / 4)), [host.reclaim_expired])
                       if ttl else None)

    def close(self) -> None:
        if self.upkeep is not None:
            self.upkeep.stop()
        self.host.close()


class LocalBroker:
    """Registry, leases and live resources of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._closed = False

    def _host(self, name: str, operation: str, owner_id: str | None = None) -> ProviderHost:
        with self._lock:
            if self._closed:
                raise ResourceError("Resource manager is closed", name, operation,
                                    owner_id=owner_id)
            entry = self._entries.get(name)
            if entry is None:
                raise unknown_resource(name, list(self._entries), operation, owner_id)
            return entry.host

    def _maybe_host(self, name: str) -> ProviderHost | None:
        with self._lock:
            entry = self._entries.get(name)
            return entry.host if entry is not None else None

    # -- registry ----------------------------------------------------------------------------
    def register(self, name: str, provider: IResourceProvider, pool_config: PoolConfig | None,
                 reg_id: str, **_: Any) -> None:
        """Host ``provider`` under ``name`` (an identical registration is joined)."""
        fingerprint = fingerprint_of(provider)
        with self._lock:
            if self._closed:
                raise ResourceError("Resource manager is closed", name, "register")
            entry = self._entries.get(name)
            if entry is not None:
                entry.registration.join(reg_id, fingerprint, pool_config)
                return
            registration = Registration(name, fingerprint, pool_config)
            registration.join(reg_id, fingerprint, pool_config)
            host = ProviderHost(name, provider, pool_config)
            self._entries[name] = _Entry(registration, host)
        host.start()

    def unregister(self, name: str, reg_id: str | None) -> None:
        """Drop a registration; the last one closes the provider and ends its leases."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is None or not entry.registration.leave(reg_id):
                return
            del self._entries[name]
        entry.close()

    # -- leases ------------------------------------------------------------------------------
    def acquire(self, name: str, owner_id: str, timeout: float | None = None) -> Any:
        """The live resource leased to ``owner_id`` (the same one while it holds it)."""
        return self._host(name, "acquire", owner_id).acquire(owner_id, timeout).grant

    def warm_up(self) -> None:
        """Nothing to prepare in-process."""

    def acquire_here(self, name: str, owner_id: str, timeout: float | None = None) -> Any:
        """In-process resources are made here anyway: ``acquire``."""
        return self.acquire(name, owner_id, timeout)

    def release(self, name: str, owner_id: str) -> bool:
        """End ``owner_id``'s lease on ``name``; False when it held none."""
        return self._host(name, "release", owner_id).release(owner_id)

    def release_all(self, owner_id: str) -> list[str]:
        """End every lease of ``owner_id``; returns the resource names released."""
        with self._lock:
            hosts = {n: e.host for n, e in self._entries.items()}
        return [n for n, host in hosts.items() if host.release(owner_id)]

    def get_resource(self, name: str, owner_id: str) -> Any:
        host = self._maybe_host(name)
        lease = host.lease_of(owner_id) if host is not None else None
        return lease.grant if lease is not None else None

    def has_resource(self, name: str, owner_id: str) -> bool:
        host = self._maybe_host(name)
        return host is not None and host.lease_of(owner_id) is not None

    def owners(self, name: str) -> set[str]:
        host = self._maybe_host(name)
        return host.owners() if host is not None else set()

    # -- reports -----------------------------------------------------------------------------
    def names(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def status(self, name: str) -> dict[str, Any]:
        host = self._maybe_host(name)
        if host is None:
            return {"provider_exists": False, "has_pool": False, "active_count": 0, "owners": []}
        return host.status()

    def all_status(self) -> dict[str, dict[str, Any]]:
        return {n: self.status(n) for n in self.names()}

    def stats(self) -> dict[str, Any]:
        """Live counters of every resource (keys: see ``ProviderHost.stats``), with totals."""
        per = {n: host.stats() for n in self.names() if (host := self._maybe_host(n))}
        return {"resources": len(per), "leases": sum(s["leases"] for s in per.values()),
                "waiting": sum(s["waiting"] for s in per.values()), "by_resource": per}

    def metrics(self, name: str | None = None) -> dict[str, ResourceMetrics]:
        def fetch(n: str) -> Any:
            host = self._maybe_host(n)
            return (host.lease_metrics(), host.pool_metrics()) if host is not None else None
        return metrics_view(name, self.names(), fetch)

    def health(self, name: str | None = None) -> dict[str, ResourceHealth]:
        out: dict[str, ResourceHealth] = {}
        for n in self.names() if name is None else [name]:
            host = self._maybe_host(n)
            out[n] = host.health_check() if host is not None else ResourceHealth.UNKNOWN
            if host is not None:
                host.record_health(out[n])
        return out

    def validate(self, name: str) -> bool:
        host = self._maybe_host(name)
        return host.validate() if host is not None else False

    def close(self) -> None:
        """End every lease and close every provider; later calls raise ``ResourceError``."""
        with self._lock:
            self._closed = True
            entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            entry.close()
