"""``ProviderHost``: one provider, its optional pool and the live resources leased from it.

The host is where live resources stay. In-process (``local=True``) callers get the resources
themselves; across processes the ``ProviderActor`` hosts it and callers reach the leased
resource through a handle, whose calls arrive here as ``call``/``stream``/``get_attribute``
with the lease id. Thread-safe: one thread per concurrent holder may call in.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import inspect
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from resource_actors.base import IResourceProvider, ResourceHealth, ResourceMetrics
from resource_actors.errors import ResourceError
from resource_actors.pool import PoolConfig, PoolMetrics, ResourcePool

log = logging.getLogger(__name__)

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
    """Hosts ``provider`` (pooled when ``pool_config`` is given) and the leases on it."""

    def __init__(self, name: str, provider: IResourceProvider,
                 pool_config: PoolConfig | None = None) -> None:
        self.name = name
        self.provider = provider
        self.pool = ResourcePool(provider, pool_config) if pool_config is not None else None
        self._leases: dict[str, Any] = {}
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

    # -- leases ------------------------------------------------------------------------------
    def lease(self, lease_id: str, owner_id: str, timeout: float | None = None) -> Any:
        """Lease a live resource under ``lease_id``; ``ResourceError`` if none can be had."""
        try:
            if self.pool is not None:
                resource = self.pool.acquire(timeout=timeout, owner_id=owner_id)
            else:
                resource = self.provider.acquire()
        except ResourceError as exc:
            exc.resource_name = exc.resource_name or self.name
            exc.owner_id = exc.owner_id or owner_id
            raise
        except Exception as exc:
            raise ResourceError(
                f"provider of resource {self.name!r} failed to acquire: {type(exc).__name__}: "
                f"{exc}", self.name, "acquire", owner_id=owner_id) from exc
        with self._lock:
            self._leases[lease_id] = resource
        return resource

    def describe(self, lease_id: str, owner_id: str) -> LeaseInfo:
        """How a remote caller should see the resource leased under ``lease_id``."""
        resource = self.resource(lease_id)
        if is_plain(resource):
            return LeaseInfo(self.name, lease_id, owner_id, True, resource)
        cls = type(resource)
        methods, generators = public_methods(cls)
        return LeaseInfo(self.name, lease_id, owner_id, False, None,
                         getattr(resource, "handle_kind", "generic"), cls.__qualname__,
                         methods, generators)

    def resource(self, lease_id: str) -> Any:
        """The live resource of a lease; ``ResourceError`` when the lease is gone."""
        with self._lock:
            try:
                return self._leases[lease_id]
            except KeyError:
                raise ResourceError(
                    f"lease {lease_id[:8]} on resource {self.name!r} is not held any more "
                    "(released, expired or reclaimed); acquire the resource again",
                    self.name, "call") from None

    def release(self, lease_id: str, discard: bool = False) -> bool:
        """Give a lease's resource back (``discard``: close it instead); False if unknown."""
        with self._lock:
            resource = self._leases.pop(lease_id, None)
        if resource is None:
            return False
        if self.pool is not None:
            (self.pool.discard if discard else self.pool.release)(resource)
        else:
            self.provider.release(resource)
        return True

    def lease_count(self) -> int:
        with self._lock:
            return len(self._leases)

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

    def pool_metrics(self) -> PoolMetrics | None:
        """Pool counters, or None when unpooled."""
        if self.pool is None:
            return None
        self.pool.evict_idle()
        return self.pool.get_metrics()

    def provider_metrics(self) -> ResourceMetrics | None:
        """The provider's own metrics, when it keeps any."""
        getter = getattr(self.provider, "get_metrics", None)
        try:
            return getter() if callable(getter) else None
        except Exception:
            return None

    def evict_idle(self) -> int:
        """Close idle pooled resources past ``max_idle_time``."""
        return self.pool.evict_idle() if self.pool is not None else 0

    def close(self) -> None:
        """Discard every lease, close the pool and the provider (``close``/``aclose``/``cleanup``)."""
        with self._lock:
            lease_ids = list(self._leases)
        for lease_id in lease_ids:
            try:
                self.release(lease_id, discard=True)
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
        pool = f", pool={self.pool!r}" if self.pool is not None else ""
        return f"ProviderHost({self.name!r}, leases={self.lease_count()}{pool})"
