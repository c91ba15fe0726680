"""``LocalBroker``: the broker core driven in-process, with threads (``ResourceManager(local=True)``).

Callers get live resources themselves. Thread-safe; waiting acquirers block their own thread
on a condition until a lease ends or their timeout passes. Leases past their TTL are
reclaimed whenever the broker is called.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from resource_actors.base import IResourceProvider, ResourceHealth, ResourceMetrics
from resource_actors.broker import Broker, Lease, metrics_view
from resource_actors.errors import ResourceError
from resource_actors.host import ProviderHost
from resource_actors.pool import PoolConfig

log = logging.getLogger(__name__)

#: Acquire timeout (seconds) of a resource registered without a pool config.
DEFAULT_ACQUIRE_TIMEOUT = 30.0


def fingerprint_of(provider: Any) -> str | None:
    """The provider's registration fingerprint, when it has one."""
    fn = getattr(provider, "fingerprint", None)
    try:
        return fn() if callable(fn) else None
    except Exception:
        return None


class LocalBroker:
    """Registry, leases and live resources of one process."""

    def __init__(self) -> None:
        self._core = Broker()
        self._hosts: dict[str, ProviderHost] = {}
        self._cond = threading.Condition()

    # -- registry ----------------------------------------------------------------------------
    def register(self, name: str, provider: IResourceProvider, pool_config: PoolConfig | None) -> None:
        """Host ``provider`` under ``name`` (an identical registration is shared)."""
        with self._cond:
            if not self._core.register(name, pool_config, fingerprint_of(provider)):
                return
            host = ProviderHost(name, provider, pool_config)
            self._hosts[name] = host
        host.start()

    def unregister(self, name: str) -> None:
        """Drop a registration; the last one closes the provider and its leases."""
        with self._cond:
            leases = self._core.unregister(name)
            host = self._hosts.pop(name, None) if leases is not None else None
            self._cond.notify_all()
        if host is not None:
            host.close()

    # -- leases ------------------------------------------------------------------------------
    def acquire(self, name: str, owner_id: str, timeout: float | None = None,
                owner_key: str | None = None) -> Any:
        """The live resource leased to ``owner_id`` (the same one while it holds it)."""
        started = time.monotonic()
        with self._cond:
            config = self._core.pool_config(name)
            if timeout is None:
                timeout = config.acquire_timeout if config else DEFAULT_ACQUIRE_TIMEOUT
            deadline = started + timeout
            while True:
                self._reclaim_expired()
                decision = self._core.begin_acquire(name, owner_id, owner_key)
                if decision.kind == "existing":
                    return decision.lease.grant  # type: ignore[union-attr]
                if decision.kind == "admitted":
                    lease = decision.lease
                    host = self._hosts[name]
                    break
                now = time.monotonic()
                remaining = deadline - now
                if remaining <= 0:
                    raise self._core.timeout_error(name, owner_id, now - started)
                expiry = self._core.next_expiry()
                if expiry is not None:
                    remaining = min(remaining, max(0.01, expiry - now))
                self._cond.wait(remaining)
        assert lease is not None
        try:
            resource = host.lease(lease.lease_id, owner_id, max(0.0, deadline - time.monotonic()))
        except BaseException:
            with self._cond:
                self._core.fail_acquire(lease)
                self._cond.notify_all()
            raise
        with self._cond:
            try:
                self._core.complete_acquire(lease, resource)
            except ResourceError:
                host.release(lease.lease_id, discard=True)
                raise
            finally:
                self._cond.notify_all()
        return resource

    def _reclaim_expired(self) -> None:
        for lease in self._core.expired():
            if self._core.reclaim(lease, "lease TTL expired"):
                host = self._hosts.get(lease.resource_name)
                if host is not None:
                    threading.Thread(target=host.release, args=(lease.lease_id, True),
                                     daemon=True).start()

    def release(self, name: str, owner_id: str) -> bool:
        """End ``owner_id``'s lease on ``name``; False when it held none."""
        with self._cond:
            lease = self._core.lease(name, owner_id)
            host = self._hosts.get(name)
        if lease is None or host is None:
            return False
        try:
            host.release(lease.lease_id)
        finally:
            with self._cond:
                self._core.release(name, owner_id)
                self._cond.notify_all()
        return True

    def release_all(self, owner_id: str) -> list[str]:
        """End every lease of ``owner_id``; returns the resource names released."""
        with self._cond:
            names = [n for n in self._core.names() if self._core.lease(n, owner_id) is not None]
        return [n for n in names if self.release(n, owner_id)]

    def get_resource(self, name: str, owner_id: str) -> Any:
        with self._cond:
            lease = self._core.lease(name, owner_id)
            return lease.grant if lease is not None else None

    def has_resource(self, name: str, owner_id: str) -> bool:
        with self._cond:
            return self._core.lease(name, owner_id) is not None

    def owners(self, name: str) -> set[str]:
        with self._cond:
            return self._core.owners(name)

    def leases(self) -> list[Lease]:
        with self._cond:
            return [lease for n in self._core.names() for o in self._core.owners(n)
                    if (lease := self._core.lease(n, o)) is not None]

    # -- reports -----------------------------------------------------------------------------
    def names(self) -> list[str]:
        with self._cond:
            return self._core.names()

    def status(self, name: str) -> dict[str, Any]:
        with self._cond:
            self._reclaim_expired()
            return self._core.status(name)

    def all_status(self) -> dict[str, dict[str, Any]]:
        with self._cond:
            self._reclaim_expired()
            return {n: self._core.status(n) for n in self._core.names()}

    def metrics(self, name: str | None = None) -> dict[str, ResourceMetrics]:
        with self._cond:
            hosts = dict(self._hosts)
            return metrics_view(self._core, name, lambda n: hosts[n].pool_metrics())

    def health(self, name: str | None = None) -> dict[str, ResourceHealth]:
        with self._cond:
            names = self._core.names() if name is None else [name]
            hosts = {n: self._hosts.get(n) for n in names}
        out = {n: (h.health_check() if h is not None else ResourceHealth.UNKNOWN)
               for n, h in hosts.items()}
        with self._cond:
            for n, health in out.items():
                self._core.record_health(n, health)
        return out

    def validate(self, name: str) -> bool:
        with self._cond:
            host = self._hosts.get(name)
        return host.validate() if host is not None else False

    def close(self) -> None:
        """Release every lease and close every provider; later calls raise ``ResourceError``."""
        with self._cond:
            self._core.close()
            hosts, self._hosts = list(self._hosts.values()), {}
            self._cond.notify_all()
        for host in hosts:
            host.close()
