"""``ProviderHost``: one provider, its optional pool, its lease book and the live resources
leased from it.

The host is where live resources and the truth about their leases stay together. In-process
(``local=True``) callers get the resources themselves; across processes a ``ProviderActor``
hosts it and callers reach the leased resource through a handle, whose calls arrive here as
``call``/``stream``/``get_attribute`` with the lease id. Thread-safe: one thread per
concurrent holder or waiter may call in.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from resource_actors.admission import Admission
from resource_actors.base import IResourceProvider, ResourceHealth, ResourceMetrics
from resource_actors.errors import ResourceError
from resource_actors.lease_book import Lease, LeaseBook
from resource_actors.pool import PoolConfig, PoolMetrics, ResourcePool

log = logging.getLogger(__name__)

#: The grant of a lease whose resource the lessee made in its own process.
IN_LESSEE = "<made in the lessee's process>"

#: Acquire timeout (seconds) of a resource registered without a pool config.
DEFAULT_ACQUIRE_TIMEOUT = 30.0

_SCALARS = (str, int, float, bool, bytes, type(None), datetime.date, datetime.time,
            datetime.timedelta, decimal.Decimal)


def is_plain(value: Any, depth: int = 0) -> bool:
    """True for builtin data (scalars and containers of them) that is shipped by value."""
    if isinstance(value, _SCALARS):
        return True
    if depth > 20:
        return False
    if isinstance(value, dict):
        return all(is_plain(k, depth + 1) and is_plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return all(is_plain(v, depth + 1) for v in value)
    return False


@dataclass(frozen=True)
class LeaseInfo:
    """What a caller in another process needs to use a leased resource.

    Plain data resources travel by ``value``; others are described by their public
    ``methods`` and ``generators`` (streamed) and a ``kind`` that picks the handle class.
    """

    resource_name: str
    lease_id: str
    owner_id: str
    by_value: bool
    value: Any = None
    kind: str = "generic"
    type_name: str = ""
    methods: frozenset[str] = frozenset()
    generators: frozenset[str] = frozenset()


_TYPE_CACHE: dict[type, tuple[frozenset[str], frozenset[str]]] = {}


def public_methods(cls: type) -> tuple[frozenset[str], frozenset[str]]:
    """(plain methods, generator methods) of ``cls`` that do not start with ``_``."""
    cached = _TYPE_CACHE.get(cls)
    if cached is not None:
        return cached
    methods: set[str] = set()
    generators: set[str] = set()
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        if isinstance(attr, staticmethod | classmethod):
            attr = attr.__func__
        if inspect.isgeneratorfunction(attr):
            generators.add(name)
        elif inspect.isfunction(attr) or inspect.ismethoddescriptor(attr) or inspect.isbuiltin(attr):
            methods.add(name)
    _TYPE_CACHE[cls] = (frozenset(methods), frozenset(generators))
    return _TYPE_CACHE[cls]


def _finish(result: Any) -> Any:
    return asyncio.run(result) if inspect.isawaitable(result) else result


class ProviderHost:
    """Hosts ``provider`` (pooled when ``pool_config`` is given) and the leases on it.

    The lease book is the one cap of the resource: the pool's admission when pooled (its
    ``max_size``), else an unbounded book. ``acquire`` waits first come first served; a lease
    ends only once its resource is back in the pool (or closed), so ``max_size`` leases are
    never exceeded. ``incarnation`` prefixes the lease ids, so a lease granted by a
    previous life of a restarted provider actor is recognised as broken.
    """

    def __init__(self, name: str, provider: IResourceProvider,
                 pool_config: PoolConfig | None = None, *, incarnation: str = "") -> None:
        self.name = name
        self.provider = provider
        self.pool_config = pool_config
        self.incarnation = incarnation
        self.pool = ResourcePool(provider, pool_config) if pool_config is not None else None
        if self.pool is not None:
            self.admission = self.pool.admission
        else:
            self.admission = Admission(LeaseBook(name))
        self.admission.book.name = name
        self.admission.book.id_prefix = f"{incarnation}:" if incarnation else ""
        self._resources: dict[str, Any] = {}  # lease id -> live resource
        self._lock = threading.Lock()

    def start(self) -> None:
        """Warm the pool up to ``min_size``; a provider that cannot connect yet only logs."""
        if self.pool is None:
            return
        try:
            self.pool.fill()
        except Exception as exc:
            log.warning("could not pre-create resources for %r (%s); they will be created on "
                        "first acquire", self.name, exc)

    @property
    def default_timeout(self) -> float:
        return self.pool_config.acquire_timeout if self.pool_config else DEFAULT_ACQUIRE_TIMEOUT

    # -- leases ------------------------------------------------------------------------------
    def acquire(self, owner_id: str, timeout: float | None = None,
                owner_key: str | None = None) -> Lease:
        """``owner_id``'s lease (the same one while it holds it); ``lease.grant`` is the live
        resource. Waits up to ``timeout`` (default: the pool's ``acquire_timeout``, else 30 s)
        first come first served; ``ResourceError`` on timeout or when none can be had."""
        wait = self.default_timeout if timeout is None else timeout
        started = time.monotonic()
        lease, existing = self.admission.admit(owner_id, owner_key, wait)
        if existing:
            return lease
        resource = self.admission.lease_with(
            lease, lambda: self._lease_resource(owner_id, started))
        with self._lock:
            self._resources[lease.lease_id] = resource
        try:
            self.admission.complete(lease, resource)
        except ResourceError:
            self._give_back(lease, discard=True)
            raise
        return lease

    def admit_lessee(self, owner_id: str, timeout: float | None = None,
                     owner_key: str | None = None) -> Lease:
        """A lease that takes a slot of the cap but leaves making the resource to the lessee
        (``provider.lessee_copy()`` in its own process); waits like ``acquire``. Releasing
        and reclaiming it free the slot. ``ResourceError`` when ``owner_id`` holds a lease on
        a resource made here."""
        wait = self.default_timeout if timeout is None else timeout
        lease, existing = self.admission.admit(owner_id, owner_key, wait)
        if existing:
            if lease.grant != IN_LESSEE:
                raise ResourceError(
                    f"{owner_id!r} already holds a lease on resource {self.name!r} whose "
                    "resource lives in the provider; release it before acquire_here",
                    self.name, "acquire", owner_id=owner_id)
            return lease
        self.admission.complete(lease, IN_LESSEE)
        self._make_room()
        return lease

    def _make_room(self) -> None:
        """Keep every open resource under the one cap: the lessees' own plus the pool's
        (idle ones too), closing idle pooled ones as lessees take slots."""
        if self.pool is None:
            return
        lessees = self.admission.read(
            lambda book: sum(1 for lease in book.active() if lease.grant == IN_LESSEE))
        self.pool.trim(self.pool.config.max_size - lessees)

    def _lease_resource(self, owner_id: str, started: float) -> Any:
        try:
            if self.pool is not None:
                return self.pool.checkout(owner_id, started)
            return self.provider.acquire()
        except ResourceError as exc:
            exc.resource_name = exc.resource_name or self.name
            exc.owner_id = exc.owner_id or owner_id
            raise
        except Exception as exc:
            raise ResourceError(
                f"provider of resource {self.name!r} failed to acquire: {type(exc).__name__}: "
                f"{exc}", self.name, "acquire", owner_id=owner_id) from exc

    def release(self, owner_id: str) -> bool:
        """End ``owner_id``'s lease once its resource is back (reset: transaction rolled back,
        temp files gone); False when it holds none."""
        lease = self.admission.end_lease(owner_id)
        if lease is None:
            return False
        try:
            self._give_back(lease, discard=False)
        finally:
            self.admission.settle(lease)
        return True

    def reclaim(self, lease: Lease, reason: str) -> bool:
        """End a lease its owner cannot release (dead owner, TTL); its resource is discarded,
        not re-pooled: the owner may have died mid-transaction. False if it already ended."""
        if not self.admission.take(lease):
            return False
        log.warning("reclaimed lease of resource %r held by %r: %s", self.name, lease.owner_id,
                    reason)
        try:
            self._give_back(lease, discard=True)
        finally:
            self.admission.settle(lease)
        return True

    def reclaim_expired(self) -> int:
        """Reclaim the leases past their TTL; returns how many."""
        expired = self.admission.read(lambda book: book.expired())
        return sum(self.reclaim(lease, "lease TTL expired") for lease in expired)

    def reclaim_owner_key(self, owner_key: str, reason: str) -> int:
        """Reclaim every lease of the process ``owner_key``; returns how many."""
        leases = self.admission.read(
            lambda book: [lease for lease in book.active() if lease.owner_key == owner_key])
        return sum(self.reclaim(lease, reason) for lease in leases)

    def owner_keys(self) -> set[str]:
        """Process identities holding leases."""
        return self.admission.read(
            lambda book: {lease.owner_key for lease in book.active() if lease.owner_key})

    def _give_back(self, lease: Lease, discard: bool) -> None:
        with self._lock:
            resource = self._resources.pop(lease.lease_id, None)
        if resource is None:
            return
        if self.pool is not None:
            (self.pool.checkout_discard if discard else self.pool.checkin)(resource)
        else:
            self.provider.release(resource)

    def lease_of(self, owner_id: str) -> Lease | None:
        """``owner_id``'s active lease, if any."""
        return self.admission.read(lambda book: book.lease(owner_id))

    def owners(self) -> set[str]:
        return self.admission.read(lambda book: book.owners())

    def describe(self, lease: Lease) -> LeaseInfo:
        """How a remote caller should see the resource leased under ``lease``."""
        resource = self.resource(lease.lease_id)
        if is_plain(resource):
            return LeaseInfo(self.name, lease.lease_id, lease.owner_id, True, resource)
        cls = type(resource)
        methods, generators = public_methods(cls)
        return LeaseInfo(self.name, lease.lease_id, lease.owner_id, False, None,
                         getattr(resource, "handle_kind", "generic"), cls.__qualname__,
                         methods, generators)

    def resource(self, lease_id: str) -> Any:
        """The live resource of a lease; ``ResourceError`` when the lease is gone."""
        with self._lock:
            resource = self._resources.get(lease_id)
        if resource is not None:
            return resource
        if self.incarnation and not lease_id.startswith(f"{self.incarnation}:"):
            raise ResourceError(
                f"lease {lease_id[:8]} on resource {self.name!r} is broken: the provider's "
                "process died and was restarted after the lease was granted, so the resource "
                "it held (and any open transaction) is gone; acquire the resource again",
                self.name, "call")
        raise ResourceError(
            f"lease {lease_id[:8]} on resource {self.name!r} is not held any more "
            "(released, expired or reclaimed); acquire the resource again", self.name, "call")

    # -- calls from handles ------------------------------------------------------------------
    def _method(self, lease_id: str, method: str) -> Any:
        if method.startswith("_"):
            raise ResourceError(f"private method {method!r} cannot be called through a handle",
                                self.name, "call")
        resource = self.resource(lease_id)
        try:
            return getattr(resource, method)
        except AttributeError:
            raise AttributeError(f"{type(resource).__name__} of resource {self.name!r} has no "
                                 f"attribute {method!r}") from None

    def call(self, lease_id: str, method: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        """Run ``resource.method(*args, **kwargs)`` on the leased resource (coroutines awaited)."""
        return _finish(self._method(lease_id, method)(*args, **kwargs))

    def stream(self, lease_id: str, method: str, args: tuple, kwargs: dict[str, Any]) -> Iterator[Any]:
        """Iterate ``resource.method(*args, **kwargs)`` (a generator method)."""
        for item in self._method(lease_id, method)(*args, **kwargs):  # noqa: UP028 (Ray sends)
            yield item

    def get_attribute(self, lease_id: str, name: str) -> Any:
        """A public attribute (or property) of the leased resource."""
        return self._method(lease_id, name)

    # -- provider-level ----------------------------------------------------------------------
    def validate(self) -> bool:
        """True when a resource can be had and validates (pooled: an idle one is checked)."""
        try:
            if self.pool is not None:
                try:
                    resource = self.pool.acquire(timeout=0)
                except ResourceError:
                    return self.health_check() is not ResourceHealth.UNHEALTHY
                try:
                    return bool(self.provider.validate(resource))
                finally:
                    self.pool.release(resource)
            resource = self.provider.acquire()
            try:
                return bool(self.provider.validate(resource))
            finally:
                self.provider.release(resource)
        except Exception as exc:
            log.info("validation of resource %r failed: %s", self.name, exc)
            return False

    def health_check(self) -> ResourceHealth:
        """The provider's health; UNHEALTHY when the check itself raises."""
        try:
            health = self.provider.health_check()
        except Exception as exc:
            log.info("health check of resource %r raised %s", self.name, exc)
            return ResourceHealth.UNHEALTHY
        return health if isinstance(health, ResourceHealth) else ResourceHealth.UNKNOWN

    def record_health(self, health: ResourceHealth) -> None:
        self.admission.read(lambda book: book.metrics.record_health_check(
            health is ResourceHealth.HEALTHY))

    def lease_metrics(self) -> ResourceMetrics:
        """A copy of the lease metrics (``total_acquisitions == total_releases +
        total_reclaims + active_connections``)."""
        return self.admission.read(lambda book: book.snapshot())

    def pool_metrics(self) -> PoolMetrics | None:
        """Pool counters, or None when unpooled."""
        if self.pool is None:
            return None
        self.pool.evict_idle()
        return self.pool.get_metrics()

    def status(self) -> dict[str, Any]:
        """``provider_exists``, ``has_pool``, ``active_count``, ``owners``, ``max_size``,
        ``waiting`` and lease totals."""
        status = self.admission.read(lambda book: book.status())
        return {"provider_exists": True, "has_pool": self.pool is not None, **status}

    def stats(self) -> dict[str, Any]:
        """Live counters: ``resource``, ``leases`` (held now), ``waiting``, ``max_size``,
        ``owners`` (owner id -> leases held, 0 or 1), ``by_process`` (owner process identity
        -> leases held), ``total_acquires``/``total_releases``/``total_reclaims``/
        ``total_timeouts``, ``incarnation``."""
        def read(book: LeaseBook) -> dict[str, Any]:
            active = book.active()
            by_process: dict[str, int] = {}
            for lease in active:
                key = lease.owner_key or "in-process"
                by_process[key] = by_process.get(key, 0) + 1
            m = book.metrics
            return {"resource": self.name, "leases": len(active), "waiting": book.waiting(),
                    "max_size": book.cap, "owners": {lease.owner_id: 1 for lease in active},
                    "by_process": by_process, "total_acquires": m.total_acquisitions,
                    "total_releases": m.total_releases, "total_reclaims": m.total_reclaims,
                    "total_timeouts": m.total_timeout_events, "incarnation": self.incarnation}
        return self.admission.read(read)

    def evict_idle(self) -> int:
        """Close idle pooled resources past ``max_idle_time``."""
        return self.pool.evict_idle() if self.pool is not None else 0

    def close(self) -> None:
        """End every lease, close the pool and the provider (``close``/``aclose``/``cleanup``)."""
        for lease in self.admission.close():
            try:
                self._give_back(lease, discard=True)
            except Exception as exc:
                log.debug("discarding lease of %r failed: %s", self.name, exc)
        if self.pool is not None:
            self.pool.close()
        for hook in ("close", "aclose", "cleanup"):
            fn = getattr(self.provider, hook, None)
            if callable(fn):
                try:
                    _finish(fn())
                except Exception as exc:
                    log.warning("closing provider of %r failed: %s", self.name, exc)
                break

    def __repr__(self) -> str:
        return f"ProviderHost({self.name!r}, {type(self.provider).__name__})"


class Upkeep:
    """A daemon thread running a host's periodic chores (TTL reclaims, idle eviction, dead
    owners) every ``period`` seconds until ``stop``; a failing chore only logs."""

    def __init__(self, name: str, period: float, chores: list[Callable[[], Any]]) -> None:
        self._stop = threading.Event()
        self._chores = chores
        self._thread = threading.Thread(target=self._loop, args=(period,), daemon=True,
                                        name=f"upkeep-{name}")
        self._thread.start()

    def _loop(self, period: float) -> None:
        while not self._stop.wait(period):
            for chore in self._chores:
                try:
                    chore()
                except Exception:
                    log.exception("resource upkeep failed")

    def stop(self) -> None:
        self._stop.set()


def metrics_view(name: str | None, names: list[str],
                 fetch: Callable[[str], tuple[ResourceMetrics, PoolMetrics | None] | None]
                 ) -> dict[str, ResourceMetrics]:
    """``get_metrics`` answer: ``{name: lease metrics, "<name>_pool": pool metrics}``.

    ``name=None``: every resource; ``"<name>_pool"``: only that pool's metrics; unknown: ``{}``.
    ``fetch(name)`` gives one resource's (lease metrics, pool metrics or None), None if gone.
    """
    if name is not None and name not in names:
        base = name.removesuffix("_pool")
        if base == name or base not in names:
            return {}
        got = fetch(base)
        return {name: got[1]} if got is not None and got[1] is not None else {}
    out: dict[str, ResourceMetrics] = {}
    for each in names if name is None else [name]:
        got = fetch(each)
        if got is None:
            continue
        out[each] = got[0]
        if got[1] is not None:
            out[f"{each}_pool"] = got[1]
    return out
