"""``ResourceManager``: the facade of the resource layer (the seed's whole API).

By default it works on the cluster's resources: providers live in ``resource/<name>``
actors (which own their leases, cap and FIFO waiters, and restart by themselves), leases
are taken there directly, and ``acquire`` returns serializable handles; whole-cluster reads
go through the restartable ``resource-manager`` broker (see ``resource_actors.broker_actor``).
``ResourceManager(local=True)`` keeps everything in this process and returns live resources.
Both enforce the same caps, serve waiters first come first served, keep the same metrics and
raise the same ``ResourceError``.

A facade owns what it registered: ``close()`` releases the leases of the owners it acquired
for and unregisters its providers (a provider registered identically by several facades
stays until the last one closes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fsm_actors.functions import ResourceConfig
from resource_actors.base import IResourceProvider, ResourceHealth, ResourceMetrics
from resource_actors.errors import NotAProviderError, RegistrationConflict, ResourceError
from resource_actors.factory import create_provider_from_dict
from resource_actors.lease_book import new_registration_id
from resource_actors.local import LocalBroker, fingerprint_of
from resource_actors.pool import PoolConfig
from resource_actors.static_providers import SimpleResourceProvider

log = logging.getLogger(__name__)


class ResourceManager:
    """Registry, leases, pooling, health and metrics of resources (see the module docstring).

    ``ResourceManager(local=False, address=None)``: ``address`` is passed to
    ``fsm_actors.platform.runtime.ensure_ray`` when Ray is not connected yet. Thread-safe.
    """

    def __init__(self, local: bool = False, *, address: str | None = None) -> None:
        self.local = local
        if local:
            self._impl: Any = LocalBroker()
        else:
            from resource_actors.remote import BrokerClient

            self._impl = BrokerClient(address)
        #: name -> (registration id, fingerprint, pool config) of this manager's registrations
        self._registered: dict[str, tuple[str, str | None, PoolConfig | None]] = {}
        self._owners: set[str] = set()
        self._closed = False

    def _check_open(self, name: str | None, operation: str, owner_id: str | None = None) -> None:
        if self._closed:
            raise ResourceError("Resource manager is closed", name, operation, owner_id=owner_id)

    # -- registration ------------------------------------------------------------------------
    def register_provider(self, name: str, provider: IResourceProvider,
                          pool_config: PoolConfig | Mapping[str, Any] | None = None, *,
                          lifetime: str | None = None,
                          actor_options: Mapping[str, Any] | None = None) -> None:
        """Register ``provider`` under ``name``, pooled when ``pool_config`` is given.

        Registering an identical provider (same class, name, config and pool config) again
        is a no-op, here and from any other manager of the cluster (the registration is
        shared: the provider stays until the last one is dropped). Anything else under a
        taken name raises ``RegistrationConflict`` (a ``ResourceError``, and a ``ValueError``);
        an object that is not a provider raises ``NotAProviderError`` (also a ``TypeError``).

        In the cluster the provider runs in its own actor, owned by this process: it goes
        (and its leases with it) when this process ends, unless ``lifetime="detached"``,
        which keeps it until it is unregistered. ``actor_options`` are extra Ray options
        of that actor (e.g. ``resources`` to place it). Both are ignored with ``local=True``.
        """
        self._check_open(name, "register")
        if not (callable(getattr(provider, "acquire", None)) and callable(getattr(provider, "release", None))):
            raise NotAProviderError(
                f"provider for {name!r} must have acquire() and release() (IResourceProvider), "
                f"got {type(provider).__name__}", name, "register")
        if lifetime not in (None, "detached"):
            raise ResourceError(f"lifetime of resource {name!r} must be None or 'detached', "
                                f"got {lifetime!r}", name, "register")
        fingerprint = fingerprint_of(provider)
        config = PoolConfig.coerce(pool_config)
        mine = self._registered.get(name)
        if mine is not None:
            if fingerprint is not None and mine[1:] == (fingerprint, config):
                return  # the identical registration again: a no-op
            raise RegistrationConflict(
                f"resource {name!r} is already registered with this manager with another "
                "provider or pool config; choose another name or unregister it first",
                name, "register")
        reg_id = new_registration_id()
        self._impl.register(name, provider, config, reg_id, lifetime=lifetime,
                            actor_options=dict(actor_options or {}))
        self._registered[name] = (reg_id, fingerprint, config)

    def unregister_provider(self, name: str, *, force: bool = False) -> None:
        """Drop this manager's registration of ``name`` (closing the provider if it was the
        last). ``force``: drop every registration of ``name``, whoever made it (e.g. a
        ``detached`` provider whose registrar is gone); the provider closes."""
        mine = self._registered.pop(name, None)
        if force:
            self._impl.unregister(name, None)
        elif mine is not None:
            self._impl.unregister(name, mine[0])

    def create_provider_from_dict(self, name: str, config: Mapping[str, Any]) -> IResourceProvider:
        """Build the provider a dict describes (see ``resource_actors.factory``)."""
        return create_provider_from_dict(name, config)

    def register_from_dict(self, name: str, config: Mapping[str, Any],
                           pool_config: PoolConfig | Mapping[str, Any] | None = None, *,
                           lifetime: str | None = None,
                           actor_options: Mapping[str, Any] | None = None) -> IResourceProvider:
        """Build the provider ``config`` describes (``type``/``backend``/``data``) and register it
        (see ``register_provider``).

        A ``pool`` key in ``config`` (a ``PoolConfig`` mapping) is used when ``pool_config`` is None.
        """
        config = dict(config)
        pool = pool_config if pool_config is not None else config.pop("pool", None)
        provider = create_provider_from_dict(name, config)
        self.register_provider(name, provider, pool, lifetime=lifetime, actor_options=actor_options)
        return provider

    def create_simple_provider(self, name: str, data: Any) -> SimpleResourceProvider:
        """A provider serving ``data`` (not registered)."""
        return SimpleResourceProvider(name, data)

    def resource_names(self) -> list[str]:
        """Names of every registered resource."""
        return self._impl.names()

    # -- leases ------------------------------------------------------------------------------
    def acquire(self, name: str, owner_id: str, timeout: float | None = None) -> Any:
        """Lease ``name`` to ``owner_id`` (the same lease while it holds it).

        Waits up to ``timeout`` seconds (default: the pool's ``acquire_timeout``, else 30) when
        the resource is at its cap. Returns the live resource (local) or a handle (cluster);
        plain data comes by value. Raises ``ResourceError`` for an unknown resource, a timeout
        (naming the cap and the holders) or a provider failure.
        """
        self._check_open(name, "acquire", owner_id)
        resource = self._impl.acquire(name, owner_id, timeout)
        self._owners.add(owner_id)
        return resource

    def warm_up(self) -> None:
        """Make what this process's first lease needs now (on the cluster: the actor that
        stands for this process, so providers can reclaim its leases should it die), so a
        caller can overlap it with other start-up work. Local managers: nothing to do."""
        self._impl.warm_up()

    def acquire_here(self, name: str, owner_id: str, timeout: float | None = None) -> Any:
        """Like ``acquire``, but the live resource is made in this process when its provider
        allows it (PostgreSQL and MySQL databases; SQLite files on the provider's node): the
        lease still takes a slot of the resource's one cap (first come first served,
        reclaimed when this process dies, seen by status and metrics), and calls on the
        resource skip the provider actor, for bulk data paths. Other providers (and local
        managers): the same as ``acquire``. ``release`` closes the resource and frees the
        slot."""
        self._check_open(name, "acquire", owner_id)
        resource = self._impl.acquire_here(name, owner_id, timeout)
        self._owners.add(owner_id)
        return resource

    def release(self, name: str, owner_id: str) -> None:
        """End ``owner_id``'s lease on ``name``: its resource goes back to the pool (reset:
        transaction rolled back) before the slot is given to the next waiter.

        A registered resource that ``owner_id`` does not hold: a no-op. A name that is not
        registered raises ``ResourceError`` (a typo would otherwise leak the real lease)."""
        self._impl.release(name, owner_id)

    def release_all(self, owner_id: str) -> None:
        """End every lease of ``owner_id``."""
        self._impl.release_all(owner_id)
        self._owners.discard(owner_id)

    @contextmanager
    def resource_context(self, name: str, owner_id: str, timeout: float | None = None) -> Iterator[Any]:
        """``with manager.resource_context(name, owner_id) as r:`` releases on exit."""
        resource = self.acquire(name, owner_id, timeout)
        try:
            yield resource
        finally:
            self.release(name, owner_id)

    def has_resource(self, name: str, owner_id: str) -> bool:
        return self._impl.has_resource(name, owner_id)

    def get_resource(self, name: str, owner_id: str) -> Any:
        """The resource ``owner_id`` holds on ``name``, or None."""
        return self._impl.get_resource(name, owner_id)

    def get_resource_owners(self, name: str) -> set[str]:
        return set(self._impl.owners(name))

    def configure_from_requirements(self, requirements: Iterable[ResourceConfig | Mapping[str, Any] | str],
                                    owner_id: str) -> dict[str, Any]:
        """Acquire every requirement for ``owner_id``: ``{name: resource}``.

        A requirement not registered yet but carrying a ``type`` is registered first. An
        optional (``required=False``) one that fails is skipped and logged; a required one that
        fails releases what this call acquired and raises ``ResourceError`` (operation
        ``configure``).
        """
        acquired: dict[str, Any] = {}
        new: list[str] = []
        for item in requirements:
            req = _as_requirement(item)
            try:
                if req.type and req.name not in self._impl.names():
                    self.register_from_dict(req.name, {"type": req.type, **req.connection_params},
                                            {"max_size": req.pool_size} if req.pool_size else None)
                held = self._impl.has_resource(req.name, owner_id)
                acquired[req.name] = self.acquire(req.name, owner_id, req.timeout)
                if not held:
                    new.append(req.name)
            except (ResourceError, ValueError, TypeError) as exc:
                if not req.required:
                    log.info("optional resource %r skipped for %r: %s", req.name, owner_id, exc)
                    continue
                for name in new:
                    self.release(name, owner_id)
                raise ResourceError(f"failed to acquire required resource {req.name!r} for "
                                    f"{owner_id!r}: {exc}", req.name, "configure",
                                    owner_id=owner_id) from exc
        return acquired

    # -- reports -----------------------------------------------------------------------------
    def get_resource_status(self, name: str) -> dict[str, Any]:
        """``provider_exists``, ``has_pool``, ``active_count``, ``owners`` (and totals)."""
        return self._impl.status(name)

    def get_all_resources(self) -> dict[str, dict[str, Any]]:
        """``get_resource_status`` of every resource."""
        return self._impl.all_status()

    def stats(self) -> dict[str, Any]:
        """Live counters: ``resources``, ``leases`` held, ``waiting`` acquirers and
        ``by_resource`` (each resource's ``stats``: leases, waiting, owners, by process)."""
        return self._impl.stats()

    def get_metrics(self, name: str | None = None) -> dict[str, ResourceMetrics]:
        """``{name: ResourceMetrics, "<name>_pool": PoolMetrics}``; ``"<name>_pool"`` alone works."""
        return self._impl.metrics(name)

    def health_check(self, name: str | None = None) -> dict[str, ResourceHealth]:
        """``{name: ResourceHealth}`` of one or every resource (UNKNOWN when not registered)."""
        return self._impl.health(name)

    def validate_resource(self, name: str) -> bool:
        """True when a resource of ``name`` can be had and validates."""
        return self._impl.validate(name)

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Release this manager's owners' leases and unregister its providers; terminal."""
        if self._closed:
            return
        self._closed = True
        if self.local:
            self._impl.close()
            return
        for owner in list(self._owners):
            try:
                self._impl.release_all(owner)
            except ResourceError as exc:
                log.warning("releasing the leases of %r failed: %s", owner, exc)
        for name, (reg_id, *_) in reversed(list(self._registered.items())):
            try:
                self._impl.unregister(name, reg_id)
            except ResourceError as exc:
                log.warning("unregistering %r failed: %s", name, exc)
        self._registered.clear()
        self._owners.clear()

    async def cleanup(self) -> None:
        """``close()`` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> ResourceManager:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "local" if self.local else "cluster"
        state = "closed" if self._closed else f"registered={list(self._registered)}"
        return f"ResourceManager({where}, {state})"


def _as_requirement(item: ResourceConfig | Mapping[str, Any] | str) -> ResourceConfig:
    if isinstance(item, ResourceConfig):
        return item
    if isinstance(item, str):
        return ResourceConfig(item)
    if isinstance(item, Mapping):
        return ResourceConfig(**dict(item))
    return ResourceConfig(item.name, required=getattr(item, "required", True),
                          timeout=getattr(item, "timeout", None))
