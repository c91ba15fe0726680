"""``ResourceManagerActor``: the cluster's broker, named ``resource-manager``.

Where the truth lives: with the provider actors. Each ``resource/<name>`` actor owns its
lease book (cap, holders, FIFO waiters, metrics) next to the live resources it describes,
so a lease and its resource can never disagree, and callers acquire and release there
directly (one actor call each, no broker hop). Registrations are journaled by each
provider in Ray's internal KV, so a restarted provider keeps them.

The broker is therefore an index and a read-out, not a store: it finds the providers by
their names (``ray.util.list_named_actors``), answers ``names``, fans ``all_status``,
``stats``, ``release_all`` and ``sweep`` out to them, and holds nothing that a restart could
lose. It restarts by itself when its process dies (``max_restarts=-1``; calls in flight are
retried) and rebuilds its index on start; if it is gone for good (its creator exited), the
next caller creates it again (``get_broker``). While it is down, leases, waits, releases and
reclaims go on at the providers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import ray
from ray.exceptions import RayActorError

from fsm_actors.platform import runtime
from resource_actors.actors import PROVIDER_PREFIX

log = logging.getLogger(__name__)

BROKER_NAME = "resource-manager"


class ResourceManagerActor:
    """The broker (see the module docstring). All methods are coroutines on one event loop."""

    def __init__(self) -> None:
        self._namespace = runtime.namespace()
        self._index: dict[str, Any] = {}
        self._refresh()

    def _refresh(self) -> list[str]:
        """Re-read the live provider actors from Ray's named-actor table."""
        found = sorted(
            entry["name"].removeprefix(PROVIDER_PREFIX)
            for entry in ray.util.list_named_actors(all_namespaces=True)
            if entry["namespace"] == self._namespace and entry["name"].startswith(PROVIDER_PREFIX))
        for name in list(self._index):
            if name not in found:
                del self._index[name]
        for name in found:
            if name not in self._index:
                try:
                    self._index[name] = ray.get_actor(f"{PROVIDER_PREFIX}{name}",
                                                      namespace=self._namespace)
                except ValueError:  # gone between the listing and the lookup
                    continue
        return [n for n in found if n in self._index]

    async def _each(self, method: str, *args: Any) -> dict[str, Any]:
        """``method(*args)`` on every provider; a handle found dead (a provider re-created
        under its name) is looked up again once; providers that fail are left out."""
        names = self._refresh()
        out: dict[str, Any] = {}
        for attempt in range(2):
            refs = [getattr(self._index[n], method).remote(*args) for n in names]
            results = await asyncio.gather(*refs, return_exceptions=True)
            retry = []
            for name, result in zip(names, results, strict=True):
                if not isinstance(result, BaseException):
                    out[name] = result
                elif isinstance(result, RayActorError) and attempt == 0:
                    del self._index[name]
                    retry.append(name)
            names = [n for n in self._refresh() if n in retry]
            if not names:
                break
        return out

    async def ping(self) -> bool:
        return True

    async def names(self) -> list[str]:
        """Names of the registered resources (live provider actors)."""
        return self._refresh()

    async def all_status(self) -> dict[str, dict[str, Any]]:
        """``status`` of every resource."""
        return await self._each("status")

    async def release_all(self, owner_id: str) -> list[str]:
        """End every lease of ``owner_id``; returns the resource names released."""
        return sorted(n for n, ok in (await self._each("release", owner_id)).items() if ok)

    async def sweep(self) -> int:
        """Reclaim dead owners' and expired leases at every provider now; returns how many."""
        return sum((await self._each("sweep")).values())

    async def stats(self) -> dict[str, Any]:
        """Live counters for ``fsm-actors status``: ``resources`` (count), ``leases`` (held
        now), ``waiting`` (acquirers queued), ``by_resource`` (each provider's ``stats``:
        ``leases``, ``waiting``, ``max_size``, ``owners``, ``by_process``, totals,
        ``incarnation``), ``by_owner`` (owner id -> resource names it holds) and
        ``unreachable`` (providers that did not answer)."""
        per = await self._each("stats")
        by_owner: dict[str, list[str]] = {}
        for name, stats in per.items():
            for owner in stats["owners"]:
                by_owner.setdefault(owner, []).append(name)
        return {"resources": len(per), "leases": sum(s["leases"] for s in per.values()),
                "waiting": sum(s["waiting"] for s in per.values()), "by_resource": per,
                "by_owner": by_owner, "unreachable": sorted(set(self._index) - set(per))}

    def __repr__(self) -> str:
        return f"ResourceManagerActor({BROKER_NAME}, namespace={self._namespace!r})"


RemoteResourceManagerActor = ray.remote(ResourceManagerActor)

_lock = threading.Lock()
_broker: tuple[str, Any] | None = None  # (job id, handle), kept for the life of the process


def broker_options(**extra: Any) -> dict[str, Any]:
    """Ray options of the broker: 0 CPU, restarted when its process dies, calls retried."""
    return runtime.actor_options("broker", name=BROKER_NAME, get_if_exists=True,
                                 max_concurrency=1000, max_restarts=-1, max_task_retries=-1,
                                 **extra)


def get_broker(**extra: Any) -> Any:
    """The cluster's ``resource-manager`` actor, created on first use.

    It is not detached: it is owned by the first process that needed it and keeps its
    handle for life. When that process ends, the next caller makes a new one (see
    ``forget_broker``), which finds the providers again. ``extra`` Ray options (placement)
    apply only when this call creates it.
    """
    global _broker
    runtime.ensure_ray()
    ctx = ray.get_runtime_context()
    # the job id repeats when Ray is restarted in this process: the session tells them apart
    job = (ctx.get_session_name(), ctx.get_job_id())
    with _lock:
        if _broker is None or _broker[0] != job:
            _broker = (job, RemoteResourceManagerActor.options(**broker_options(**extra)).remote())
        return _broker[1]


def forget_broker(handle: Any) -> None:
    """Drop a broker handle that answered ``ActorDiedError``: ``get_broker`` looks again."""
    global _broker
    with _lock:
        if _broker is not None and _broker[1] is handle:
            _broker = None
