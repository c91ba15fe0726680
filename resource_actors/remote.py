"""``RemoteBroker``: the client side of the ``resource-manager`` actor.

Same methods as ``LocalBroker``; each is one call to the broker actor. Acquisitions carry the
caller's process identity (its own actor, or an ``OwnerAnchor`` made once per process) so the
broker can reclaim leases when that process dies.
"""

from __future__ import annotations

import threading
from typing import Any

import ray

from fsm_actors import runtime
from resource_actors.actors import OwnerAnchor
from resource_actors.base import IResourceProvider, ResourceHealth, ResourceMetrics
from resource_actors.broker_actor import get_broker
from resource_actors.handle import build_handle, remote_get
from resource_actors.pool import PoolConfig

_anchor_lock = threading.Lock()
_anchor: tuple[str, str, Any] | None = None  # (job id, actor id, handle)


def owner_identity() -> tuple[str, Any]:
    """``(actor id, actor handle)`` standing for the calling process.

    Inside an actor: the actor itself. In a driver or task: an ``OwnerAnchor`` created once per
    process and job, which dies with it.
    """
    global _anchor
    ctx = ray.get_runtime_context()
    actor_id = ctx.get_actor_id()
    if actor_id is not None:
        return actor_id, ctx.current_actor
    job = ctx.get_job_id()
    with _anchor_lock:
        if _anchor is None or _anchor[0] != job:
            handle = OwnerAnchor.options(namespace=runtime.namespace()).remote()
            _anchor = (job, ray.get(handle.actor_id.remote()), handle)
        return _anchor[1], _anchor[2]


class RemoteBroker:
    """Talks to the cluster's ``resource-manager`` actor (created on first use)."""

    def __init__(self, address: str | None = None) -> None:
        runtime.ensure_ray(address)
        self._actor = get_broker()
        self._introduced: set[str] = set()  # owner keys whose handle the broker has

    def _get(self, ref: Any, name: str | None, operation: str) -> Any:
        return remote_get(lambda: ray.get(ref), name, operation)

    def register(self, name: str, provider: IResourceProvider, pool_config: PoolConfig | None) -> None:
        self._get(self._actor.register.remote(name, provider, pool_config), name, "register")

    def unregister(self, name: str, force: bool = False) -> None:
        self._get(self._actor.unregister.remote(name, force), name, "unregister")

    def acquire(self, name: str, owner_id: str, timeout: float | None = None) -> Any:
        key, handle = owner_identity()
        # an actor handle in the arguments costs a borrower registration: send it once
        send = handle if key not in self._introduced else None
        info, actor = self._get(self._actor.acquire.remote(name, owner_id, timeout, key, send),
                                name, "acquire")
        self._introduced.add(key)
        return build_handle(info, actor)

    def release(self, name: str, owner_id: str) -> bool:
        return self._get(self._actor.release.remote(name, owner_id), name, "release")

    def release_all(self, owner_id: str) -> list[str]:
        return self._get(self._actor.release_all.remote(owner_id), None, "release_all")

    def get_resource(self, name: str, owner_id: str) -> Any:
        grant = self._get(self._actor.get_resource.remote(name, owner_id), name, "get_resource")
        return build_handle(*grant) if grant is not None else None

    def has_resource(self, name: str, owner_id: str) -> bool:
        return owner_id in self.owners(name)

    def owners(self, name: str) -> set[str]:
        return self._get(self._actor.owners.remote(name), name, "owners")

    def names(self) -> list[str]:
        return self._get(self._actor.names.remote(), None, "names")

    def status(self, name: str) -> dict[str, Any]:
        return self._get(self._actor.status.remote(name), name, "status")

    def all_status(self) -> dict[str, dict[str, Any]]:
        return self._get(self._actor.all_status.remote(), None, "status")

    def metrics(self, name: str | None = None) -> dict[str, ResourceMetrics]:
        return self._get(self._actor.metrics.remote(name), name, "metrics")

    def health(self, name: str | None = None) -> dict[str, ResourceHealth]:
        return self._get(self._actor.health.remote(name), name, "health_check")

    def validate(self, name: str) -> bool:
        return self._get(self._actor.validate.remote(name), name, "validate")

    def sweep(self) -> int:
        """Reclaim dead owners' and expired leases now (the broker also does it periodically)."""
        return self._get(self._actor.sweep.remote(), None, "sweep")
