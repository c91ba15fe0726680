"""``BrokerClient``: a process's view of the cluster's resources (behind ``ResourceManager``).

Same methods as ``LocalBroker``. Leases go straight to the resource's provider actor
(``resource/<name>``, found by name and cached): ``acquire`` is one actor call, ``release``
another. Registering creates the provider actor from this process, so it is owned by it
(``lifetime="detached"`` to keep it after this process ends). Whole-cluster reads
(``names``, ``all_status``, ``stats``, ``release_all``, ``sweep``) go to the
``resource-manager`` broker; while it restarts, those calls wait for it, up to
``BROKER_WAIT`` seconds. Acquisitions carry the caller's process identity (its own actor,
or an ``OwnerAnchor`` made once per process) so providers can reclaim the leases of a
process that died.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import ray
from ray.exceptions import RayActorError, RayTaskError

from fsm_actors.platform import runtime
from resource_actors.actors import OwnerAnchor, ProviderActor, provider_actor_name
from resource_actors.base import IResourceProvider, ResourceHealth, ResourceMetrics
from resource_actors.broker_actor import forget_broker, get_broker
from resource_actors.errors import ResourceError
from resource_actors.handle import build_handle, cause_of
from resource_actors.host import metrics_view
from resource_actors.local import fingerprint_of, unknown_resource
from resource_actors.pool import PoolConfig

T = TypeVar("T")

#: Seconds a whole-cluster call waits for a restarting (or re-created) broker.
BROKER_WAIT = 30.0

_anchor_lock = threading.Lock()
_anchor: tuple[str, str, Any] | None = None  # (job id, actor id, handle)


def owner_identity() -> tuple[str, Any]:
    """``(actor id, actor handle)`` standing for the calling process.

    Inside an actor: the actor itself. In a driver or task: an ``OwnerAnchor`` created once per
    process and job, named ``owner/<job>/<node ip>/<pid>``, which dies with it.
    """
    global _anchor
    ctx = ray.get_runtime_context()
    actor_id = ctx.get_actor_id()
    if actor_id is not None:
        return actor_id, ctx.current_actor
    job = ctx.get_job_id()
    session = (ctx.get_session_name(), job)  # a Ray restarted in this process repeats job ids
    with _anchor_lock:
        if _anchor is None or _anchor[0] != session:
            kind = "driver" if ctx.worker.mode == ray.SCRIPT_MODE else "task worker"
            where = f"{ray.util.get_node_ip_address()}/{os.getpid()}"
            whose = f"{kind} pid {os.getpid()} of job {job} on {socket.gethostname()}"
            opts: dict[str, Any] = {"namespace": runtime.namespace(), "name": f"owner/{job}/{where}"}
            try:
                handle = OwnerAnchor.options(**opts).remote(whose)
            except ValueError:  # the name of a previous anchor of this pid is still taken
                opts["name"] += f"/{time.monotonic_ns()}"
                handle = OwnerAnchor.options(**opts).remote(whose)
            _anchor = (session, ray.get(handle.actor_id.remote()), handle)
        return _anchor[1], _anchor[2]


def _threads_for(pool_config: PoolConfig | None) -> int:
    """Threads of a provider actor: a holder's call and a waiter each block one (waiters
    past that queue in Ray; their timeout still counts from when they were sent)."""
    cap = pool_config.max_size if pool_config else 8
    return min(256, 2 * cap + 8)


class BrokerClient:
    """Talks to the provider actors directly and to the broker for whole-cluster reads."""

    def __init__(self, address: str | None = None) -> None:
        runtime.ensure_ray(address)
        get_broker()  # the cluster has one from the first client on
        self._providers: dict[str, Any] = {}
        self._introduced: dict[str, str] = {}  # resource -> owner key whose handle it has
        #: (resource, owner) -> (provider copy, resource) of leases made in this process
        self._here: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------------------------
    def _broker(self, method: str, *args: Any, operation: str) -> Any:
        deadline = time.monotonic() + BROKER_WAIT
        pause = 0.05
        while True:
            actor = get_broker()
            try:
                return ray.get(getattr(actor, method).remote(*args))
            except RayTaskError as exc:
                raise cause_of(exc) from None
            except RayActorError as exc:
                if time.monotonic() >= deadline:
                    raise ResourceError(
                        f"the cluster's resource-manager broker did not come back within "
                        f"{BROKER_WAIT:.0f}s ({type(exc).__name__}); check the cluster's health "
                        "(`ray status`)", None, operation) from None
                forget_broker(actor)
                time.sleep(pause)
                pause = min(1.0, pause * 2)

    def _provider(self, name: str, operation: str, owner_id: str | None = None,
                  required: bool = True) -> Any:
        with self._lock:
            actor = self._providers.get(name)
        if actor is not None:
            return actor
        try:
            actor = ray.get_actor(provider_actor_name(name), namespace=runtime.namespace())
        except ValueError:
            if not required:
                return None
            raise unknown_resource(name, self.names(), operation, owner_id) from None
        with self._lock:
            self._providers[name] = actor
        return actor

    def _forget(self, name: str, actor: Any) -> None:
        with self._lock:
            if self._providers.get(name) is actor:
                del self._providers[name]
            self._introduced.pop(name, None)

    def _call(self, name: str, method: str, *args: Any, operation: str,
              owner_id: str | None = None, missing: Callable[[], T] | None = None) -> Any:
        """One call to the provider of ``name``. A provider that died is looked up again
        once; ``missing()`` answers when it is gone (else ``ResourceError``)."""
        for attempt in range(2):
            actor = self._provider(name, operation, owner_id, required=missing is None)
            if actor is None:
                return missing()  # type: ignore[misc]
            try:
                return ray.get(getattr(actor, method).remote(*args))
            except RayTaskError as exc:
                raise cause_of(exc) from None
            except RayActorError as exc:
                self._forget(name, actor)
                if attempt == 1:
                    if missing is not None:
                        return missing()
                    raise ResourceError(
                        f"the provider actor of resource {name!r} died during {operation} "
                        f"({type(exc).__name__}); it restarts by itself: try again",
                        name, operation, owner_id=owner_id) from None
        raise AssertionError("unreachable")

    # -- registry ----------------------------------------------------------------------------
    def register(self, name: str, provider: IResourceProvider, pool_config: PoolConfig | None,
                 reg_id: str, *, lifetime: str | None = None,
                 actor_options: dict[str, Any] | None = None) -> None:
        """Create (or join) the ``resource/<name>`` actor for ``provider``."""
        fingerprint = fingerprint_of(provider)
        opts = runtime.actor_options("provider", name=provider_actor_name(name),
                                     get_if_exists=True, max_concurrency=_threads_for(pool_config),
                                     max_restarts=-1, **(actor_options or {}))
        if lifetime == "detached":
            opts["lifetime"] = "detached"
        for attempt in range(100):  # a just-killed provider's name is freed asynchronously
            actor = ProviderActor.options(**opts).remote(name, provider, pool_config, fingerprint)
            try:
                ray.get(actor.join.remote(reg_id, fingerprint, pool_config))
                break
            except RayTaskError as exc:
                error = cause_of(exc)
                if not (isinstance(error, ResourceError) and error.operation == "register-retry"):
                    raise error from None
            except RayActorError as exc:
                if getattr(exc, "actor_init_failed", False) or attempt == 99:
                    raise ResourceError(f"provider actor of resource {name!r} failed to start: "
                                        f"{exc}", name, "register") from None
            time.sleep(0.05)
        with self._lock:
            self._providers[name] = actor

    def unregister(self, name: str, reg_id: str | None) -> None:
        """Drop a registration; the last one closes the provider and stops its actor."""
        actor = self._provider(name, "unregister", required=False)
        if actor is None:
            return
        try:
            if ray.get(actor.leave.remote(reg_id)):
                ray.get(actor.close.remote())
                ray.kill(actor)
        except RayActorError:
            pass  # gone already
        except RayTaskError as exc:
            raise cause_of(exc) from None
        self._forget(name, actor)

    # -- leases ------------------------------------------------------------------------------
    def acquire(self, name: str, owner_id: str, timeout: float | None = None) -> Any:
        (info, _), actor = self._admit(name, owner_id, timeout, "acquire")
        return build_handle(info, actor)

    def warm_up(self) -> None:
        """Create this process's owner identity (``owner_identity``) ahead of its first lease."""
        owner_identity()

    def acquire_here(self, name: str, owner_id: str, timeout: float | None = None) -> Any:
        """A lease on ``name``'s cap whose resource is made in this process from the
        provider's ``lessee_copy`` (a handle when the provider has none)."""
        with self._lock:
            held = self._here.get((name, owner_id))
        if held is not None:
            return held[1]
        (info, _, provider), actor = self._admit(name, owner_id, timeout, "acquire_here",
                                                 ray.get_runtime_context().get_node_id())
        if provider is None:
            return build_handle(info, actor)
        try:
            resource = provider.acquire()
        except BaseException:
            self.release(name, owner_id)  # give the slot back
            raise
        with self._lock:
            self._here[(name, owner_id)] = (provider, resource)
        return resource

    def _admit(self, name: str, owner_id: str, timeout: float | None,
               method: str, *extra: Any) -> tuple[tuple[Any, ...], Any]:
        """``(the provider actor's reply to method, the actor)`` of one lease; every reply
        starts with ``(lease info, provider knows this process's handle)``."""
        key, handle = owner_identity()
        sent_at = time.time()
        while True:
            send = handle if self._introduced.get(name) != key else None
            actor = self._provider(name, "acquire", owner_id)
            try:
                reply = ray.get(getattr(actor, method).remote(owner_id, timeout, sent_at, key, send,
                                                              *extra))
                break
            except RayTaskError as exc:
                raise cause_of(exc) from None
            except RayActorError as exc:  # died mid-call: nothing was leased; it restarts
                self._forget(name, actor)
                if timeout is not None and time.time() - sent_at >= timeout:
                    raise ResourceError(
                        f"the provider actor of resource {name!r} died while {owner_id!r} "
                        f"acquired it ({type(exc).__name__}) and did not come back in time",
                        name, "acquire", owner_id=owner_id) from None
                time.sleep(0.1)
        if not reply[1]:
            actor.introduce.remote(key, handle)
        self._introduced[name] = key
        return reply, actor

    def _drop_here(self, name: str, owner_id: str) -> None:
        """Close the resource this process made for ``owner_id``'s lease on ``name``."""
        with self._lock:
            held = self._here.pop((name, owner_id), None)
        if held is None:
            return
        provider, resource = held
        try:
            provider.release(resource)
        finally:
            provider.close()

    def release(self, name: str, owner_id: str) -> bool:
        self._drop_here(name, owner_id)
        actor = self._provider(name, "release", owner_id)
        try:
            return ray.get(actor.release.remote(owner_id))
        except RayTaskError as exc:
            raise cause_of(exc) from None
        except RayActorError:  # the provider died: the lease died with it
            self._forget(name, actor)
            return False

    def release_all(self, owner_id: str) -> list[str]:
        with self._lock:
            mine = [name for name, owner in self._here if owner == owner_id]
        for name in mine:
            self._drop_here(name, owner_id)
        return self._broker("release_all", owner_id, operation="release_all")

    def get_resource(self, name: str, owner_id: str) -> Any:
        actor = self._provider(name, "get_resource", required=False)
        if actor is None:
            return None
        try:
            info = ray.get(actor.grant.remote(owner_id))
        except RayActorError:
            self._forget(name, actor)
            return None
        return build_handle(info, actor) if info is not None else None

    def has_resource(self, name: str, owner_id: str) -> bool:
        return owner_id in self.owners(name)

    def owners(self, name: str) -> set[str]:
        return self._call(name, "owners", operation="owners", missing=set)

    # -- reports -----------------------------------------------------------------------------
    def names(self) -> list[str]:
        return self._broker("names", operation="names")

    def status(self, name: str) -> dict[str, Any]:
        return self._call(name, "status", operation="status", missing=lambda: {
            "provider_exists": False, "has_pool": False, "active_count": 0, "owners": []})

    def all_status(self) -> dict[str, dict[str, Any]]:
        return self._broker("all_status", operation="status")

    def stats(self) -> dict[str, Any]:
        return self._broker("stats", operation="stats")

    def metrics(self, name: str | None = None) -> dict[str, ResourceMetrics]:
        names = self.names()
        return metrics_view(name, names, lambda n: self._call(n, "metrics", operation="metrics",
                                                              missing=lambda: None))

    def health(self, name: str | None = None) -> dict[str, ResourceHealth]:
        out: dict[str, ResourceHealth] = {}
        for n in self.names() if name is None else [name]:
            actor = self._provider(n, "health_check", required=False)
            if actor is None:
                out[n] = ResourceHealth.UNKNOWN
                continue
            try:
                out[n] = ray.get(actor.health_check.remote(), timeout=30)
            except Exception:
                out[n] = ResourceHealth.UNHEALTHY
        return out

    def validate(self, name: str) -> bool:
        try:
            return bool(self._call(name, "validate", operation="validate", missing=lambda: False))
        except ResourceError:
            return False

    def sweep(self) -> int:
        """Reclaim dead owners' and expired leases now (providers also do it periodically)."""
        return self._broker("sweep", operation="sweep")
