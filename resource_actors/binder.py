"""The FSM engine's view of resources: a ``ResourceBinder`` over a ``ResourceManager``.

The engine calls ``acquire(names, owner_id)`` before a state that declares ``resources`` runs
(owner ids are ``state_<state>_<execution id>``) and ``release``/``release_all`` after it.

Whose resources a state sees (the scope rule): the resources given to
``SimpleFSM(config, resources={...})`` are that FSM's own. They are registered under the
FSM's scope, ``fsm-<id>/<name>``, so two FSMs (or an FSM and the cluster) can each have a
``"database"`` of their own. A state resolves a name in its FSM's scope first, then among
the cluster's resources (registered with a ``ResourceManager``). Registering an identical
provider under a taken name is a no-op everywhere; a different one raises
``RegistrationConflict``.

Batches: the FSM worker may hold one lease per resource for a whole batch. Between records
it calls ``ManagerResourceBinder.reset(leased)``: each record then sees its resources as a
fresh lease would (a database connection's open or failed transaction is rolled back, see
``DatabaseConnection.reset``).
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fsm_actors.platform.extensions import register
from resource_actors.errors import ResourceError
from resource_actors.static_providers import UnavailableResourceProvider

if TYPE_CHECKING:  # imported where used: registering this hook loads no manager
    from resource_actors.manager import ResourceManager

log = logging.getLogger(__name__)


def reset_lease(resource: Any) -> bool:
    """Make a held resource look freshly leased: calls its ``reset()`` when it has one (local
    objects and handles alike); True when that undid something (a transaction rolled back)."""
    if isinstance(resource, dict | list | tuple | str | int | float | bool | type(None)):
        return False  # plain data travels by value: nothing to reset
    offers = getattr(type(resource), "offers", None)  # a handle: ask it, not its provider
    if offers is not None and not resource.offers("reset"):
        return False
    reset = getattr(resource, "reset", None)
    return bool(reset()) if callable(reset) else False


class ManagerResourceBinder:
    """Implements the engine's ``ResourceBinder`` protocol on a ``ResourceManager``.

    ``scope`` maps the FSM's own names to their registered names (the scope rule above).
    ``acquire`` is all-or-nothing: when one resource cannot be had, the ones this call took
    are released and the ``ResourceError`` is raised. Results are keyed by the names asked
    for. Thread-safe as the manager is.
    """

    def __init__(self, manager: ResourceManager, scope: Mapping[str, str] | None = None) -> None:
        self.manager = manager
        self.scope = dict(scope or {})

    def resolve(self, name: str) -> str:
        """The registered name a state's ``name`` stands for: the FSM's own, else the cluster's."""
        return self.scope.get(name, name)

    def close(self) -> None:
        """Close the manager: its registrations and its owners' leases end."""
        self.manager.close()

    def acquire(self, names: Iterable[str], owner_id: str, timeout: float | None = None) -> dict[str, Any]:
        """``{name: resource}`` for every name, leased to ``owner_id``."""
        taken: dict[str, Any] = {}
        try:
            for name in names:
                if name not in taken:
                    taken[name] = self.manager.acquire(self.resolve(name), owner_id, timeout)
        except BaseException:
            self.release(list(taken), owner_id)
            raise
        return taken

    def release(self, names: Iterable[str], owner_id: str) -> None:
        """End ``owner_id``'s leases on ``names``."""
        for name in names:
            self.manager.release(self.resolve(name), owner_id)

    def release_all(self, owner_id: str) -> None:
        """End every lease of ``owner_id``."""
        self.manager.release_all(owner_id)

    def reset(self, leased: Mapping[str, Any]) -> list[str]:
        """Give each held resource of ``leased`` (an ``acquire`` answer) the state of a fresh
        lease; returns the names where something was undone. Call it between records that
        share a lease."""
        return [name for name, resource in leased.items() if reset_lease(resource)]


def register_fsm_resources(manager: ResourceManager, resources: Mapping[str, Any],
                           scope: str | None = None) -> list[str]:
    """Register the ``resources`` of an FSM; returns the names registered.

    ``scope``: registered as ``<scope>/<name>`` (see the scope rule above); None: as given.
    Values are providers or dicts (``{"backend": "postgresql", "host": ...}``,
    ``{"type": "filesystem", "base_path": ...}``, ``{"data": ...}``, see
    ``resource_actors.factory``). A dict of a type no adapter exists for (``{"type": "redis"}``)
    is registered as unavailable, with a warning: the FSM still builds, and a state that needs
    it fails with a ``ResourceError`` that says why.
    """
    names: list[str] = []
    for name, spec in resources.items():
        registered = f"{scope}/{name}" if scope else name
        if isinstance(spec, Mapping):
            try:
                manager.register_from_dict(registered, spec)
            except ResourceError as exc:
                if exc.operation != "configure":
                    raise
                log.warning("resource %r is unavailable: %s", name, exc)
                manager.register_provider(registered, UnavailableResourceProvider(registered, str(exc)))
        else:
            manager.register_provider(registered, spec)
        names.append(registered)
    return names


def prepare_fsm_resources(resources: Mapping[str, Any], local: bool = False
                          ) -> tuple[dict[str, Any] | None, ManagerResourceBinder]:
    """Register an FSM's own ``resources`` in a scope of its own; return ``(spec, binder)``.

    ``local=True``: an in-process manager; the spec is None (live resources stay here).
    Otherwise the resources go to the cluster and ``spec`` (plain, picklable) lets
    ``binder_from_spec`` build a binder with the same scope in any worker of the cluster.
    The binder's ``close()`` unregisters the resources.
    """
    from resource_actors.manager import ResourceManager

    scope = f"fsm-{uuid.uuid4().hex[:10]}"
    manager = ResourceManager(local=local)
    registered = register_fsm_resources(manager, resources, scope)
    aliases = dict(zip(resources, registered, strict=True))
    spec = None if local else BinderSpec(aliases)
    return spec, ManagerResourceBinder(manager, aliases)


@dataclass(frozen=True)
class BinderSpec:
    """What a worker anywhere in the cluster needs to reach an FSM's registered resources
    (``state name -> registered name``). Pickled into the worker; ``bind()`` there."""

    aliases: dict[str, str]

    def bind(self) -> ManagerResourceBinder:
        """A binder, in this process, over the cluster's resources this spec names."""
        from resource_actors.manager import ResourceManager

        return ManagerResourceBinder(ResourceManager(), self.aliases)


def registered_names(address: str | None, names: list[str]) -> set[str]:
    """Those of ``names`` registered with the cluster's ``ResourceManager``."""
    from resource_actors.manager import ResourceManager

    manager = ResourceManager(address=address)
    try:
        return set(manager.resource_names()) & set(names)
    finally:
        manager.close()


register("fsm_resources", sys.modules[__name__])
