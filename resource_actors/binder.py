"""The FSM engine's view of resources: a ``ResourceBinder`` over a ``ResourceManager``.

The engine calls ``acquire(names, owner_id)`` before a state that declares ``resources`` runs
(owner ids are ``state_<state>_<execution id>``) and ``release``/``release_all`` after it.
``register_fsm_resources`` registers what ``SimpleFSM(config, resources={...})`` receives.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from resource_actors.errors import ResourceError
from resource_actors.manager import ResourceManager
from resource_actors.simple import UnavailableResourceProvider

log = logging.getLogger(__name__)


class ManagerResourceBinder:
    """Implements the engine's ``ResourceBinder`` protocol on a ``ResourceManager``.

    ``acquire`` is all-or-nothing: when one resource cannot be had, the ones this call took
    are released and the ``ResourceError`` is raised. Thread-safe as the manager is.
    """

    def __init__(self, manager: ResourceManager) -> None:
        self.manager = manager

    def close(self) -> None:
        """Close the manager: its registrations and its owners' leases end."""
        self.manager.close()

    def acquire(self, names: Iterable[str], owner_id: str, timeout: float | None = None) -> dict[str, Any]:
        """``{name: resource}`` for every name, leased to ``owner_id``."""
        taken: dict[str, Any] = {}
        try:
            for name in names:
                if name not in taken:
                    taken[name] = self.manager.acquire(name, owner_id, timeout)
        except BaseException:
            self.release(list(taken), owner_id)
            raise
        return taken

    def release(self, names: Iterable[str], owner_id: str) -> None:
        """End ``owner_id``'s leases on ``names``."""
        for name in names:
            self.manager.release(name, owner_id)

    def release_all(self, owner_id: str) -> None:
        """End every lease of ``owner_id``."""
        self.manager.release_all(owner_id)


def register_fsm_resources(manager: ResourceManager, resources: Mapping[str, Any]) -> list[str]:
    """Register the ``resources`` of an FSM; returns the names registered.

    Values are providers or dicts (``{"backend": "postgresql", "host": ...}``,
    ``{"type": "filesystem", "base_path": ...}``, ``{"data": ...}``, see
    ``resource_actors.factory``). A dict of a type no adapter exists for (``{"type": "redis"}``)
    is registered as unavailable, with a warning: the FSM still builds, and a state that needs
    it fails with a ``ResourceError`` that says why.
    """
    names: list[str] = []
    for name, spec in resources.items():
        if isinstance(spec, Mapping):
            try:
                manager.register_from_dict(name, spec)
            except ResourceError as exc:
                if exc.operation != "configure":
                    raise
                log.warning("resource %r is unavailable: %s", name, exc)
                manager.register_provider(name, UnavailableResourceProvider(name, str(exc)))
        else:
            manager.register_provider(name, spec)
        names.append(name)
    return names


def prepare_fsm_resources(resources: Mapping[str, Any], local: bool = False
                          ) -> tuple[dict[str, Any] | None, ManagerResourceBinder]:
    """Register an FSM's ``resources`` and return ``(spec, binder)``.

    ``local=True``: an in-process manager; the spec is None (live resources stay here).
    Otherwise the resources go to the cluster's ``resource-manager`` and ``spec`` (plain,
    picklable) lets ``binder_from_spec`` build a binder in any worker of the cluster. The
    binder's ``close()`` unregisters the resources (shared registrations stay until the last
    one closes).
    """
    manager = ResourceManager(local=local)
    names = register_fsm_resources(manager, resources)
    spec = None if local else {"names": names}
    return spec, ManagerResourceBinder(manager)


def binder_from_spec(spec: Mapping[str, Any]) -> ManagerResourceBinder:
    """A binder, in this process, over the cluster's resources that ``spec`` names."""
    return ManagerResourceBinder(ResourceManager())
