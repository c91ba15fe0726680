"""The provider contract: ``IResourceProvider``, its status, health and metrics records.

A *provider* hands out live resources (connections, sessions, clients) with ``acquire`` and
takes them back with ``release``. Providers are plain objects (no Ray); the resource manager
hosts them in-process (``local=True``) or inside a ``ProviderActor``. A provider that is shipped
to an actor is pickled, so it must not hold live connections before its first ``acquire``.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, runtime_checkable

#: Config keys whose values are credentials: never shown in repr, logs or errors.
SECRET_KEYS = ("password", "passwd", "secret", "token", "api_key", "apikey", "authorization",
               "auth", "cookie", "credential", "private_key")


def is_secret_key(key: str) -> bool:
    """True when a config or header key names a credential."""
    lowered = key.lower().replace("-", "_")
    return any(word in lowered for word in SECRET_KEYS)


def redact(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with credential values replaced by ``'***'`` (nested dicts too)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if is_secret_key(str(key)) and value is not None:
            out[key] = "***"
        elif isinstance(value, Mapping):
            out[key] = redact(value)
        else:
            out[key] = value
    return out


class ResourceStatus(Enum):
    """Lifecycle state of a provider."""

    IDLE = "idle"
    ACTIVE = "active"
    BUSY = "busy"
    ERROR = "error"
    CLOSED = "closed"
    MAINTENANCE = "maintenance"


class ResourceHealth(Enum):
    """Outcome of a health check."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


@dataclass
class ResourceMetrics:
    """Usage counters of one resource (times in seconds, timestamps from ``time.time()``).

    Invariant kept by the manager: ``total_acquisitions == total_releases + total_reclaims +
    active_connections``. Averages are exact running means.
    """

    total_acquisitions: int = 0
    active_connections: int = 0
    failed_acquisitions: int = 0
    average_hold_time: float = 0.0
    last_acquisition_time: float | None = None
    last_release_time: float | None = None
    health_check_failures: int = 0
    last_health_check: float | None = None
    average_acquisition_time: float = 0.0
    total_timeout_events: int = 0
    last_timeout_time: float | None = None
    total_releases: int = 0
    total_reclaims: int = 0
    peak_active: int = 0

    def record_acquisition(self, acquisition_time: float | None = None) -> None:
        """Count a granted acquisition that took ``acquisition_time`` seconds."""
        self.total_acquisitions += 1
        self.active_connections += 1
        self.peak_active = max(self.peak_active, self.active_connections)
        self.last_acquisition_time = time.time()
        if acquisition_time is not None:
            n = self.total_acquisitions
            self.average_acquisition_time += (acquisition_time - self.average_acquisition_time) / n

    def record_release(self, hold_time: float, *, reclaimed: bool = False) -> None:
        """Count the end of a lease held for ``hold_time`` seconds (by its owner or reclaimed)."""
        if reclaimed:
            self.total_reclaims += 1
        else:
            self.total_releases += 1
        self.active_connections = max(0, self.active_connections - 1)
        self.last_release_time = time.time()
        n = self.total_releases + self.total_reclaims
        self.average_hold_time += (hold_time - self.average_hold_time) / n

    def record_failure(self) -> None:
        """Count an acquisition that failed (error or timeout)."""
        self.failed_acquisitions += 1

    def record_timeout(self) -> None:
        """Count an acquisition that gave up waiting."""
        self.total_timeout_events += 1
        self.last_timeout_time = time.time()

    def record_health_check(self, success: bool) -> None:
        """Count a health check and whether it passed."""
        self.last_health_check = time.time()
        if not success:
            self.health_check_failures += 1


@runtime_checkable
class IResourceProvider(Protocol):
    """What the resource manager needs from a provider.

    ``acquire`` returns a live resource, ``release`` takes it back, ``validate`` tells whether a
    resource still works, ``health_check`` and ``get_metrics`` report on the provider. An
    optional ``close()`` (or ``aclose()``) is called when the provider is unregistered.
    """

    def acquire(self, **kwargs: Any) -> Any: ...

    def release(self, resource: Any) -> None: ...

    def validate(self, resource: Any) -> bool: ...

    def health_check(self) -> ResourceHealth: ...

    def get_metrics(self) -> ResourceMetrics: ...


class BaseResourceProvider(ABC):
    """Helper base for providers: name, config, status, metrics and a default health check.

    Subclasses implement ``acquire`` and ``release``. ``config`` is kept for fingerprints and a
    redacted ``repr``; credentials in it are never shown. Not thread-safe by itself: the pool
    and the provider host serialize what needs it.
    """

    def __init__(self, name: str, config: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.config: dict[str, Any] = dict(config or {})
        self.status = ResourceStatus.IDLE
        self.metrics = ResourceMetrics()
        self._resources: list[Any] = []

    @abstractmethod
    def acquire(self, **kwargs: Any) -> Any:
        """Return a live resource."""

    @abstractmethod
    def release(self, resource: Any) -> None:
        """Take back a resource returned by ``acquire``."""

    def validate(self, resource: Any) -> bool:
        """True when ``resource`` is usable; the default only checks it is not None."""
        return resource is not None

    def health_check(self) -> ResourceHealth:
        """HEALTHY unless the status says otherwise (ERROR/CLOSED: unhealthy, MAINTENANCE: degraded)."""
        if self.status in (ResourceStatus.ERROR, ResourceStatus.CLOSED):
            return ResourceHealth.UNHEALTHY
        if self.status is ResourceStatus.MAINTENANCE:
            return ResourceHealth.DEGRADED
        return ResourceHealth.HEALTHY

    def get_metrics(self) -> ResourceMetrics:
        """The provider's own counters (the manager keeps lease-level metrics separately)."""
        return self.metrics

    def lessee_copy(self, same_node: bool = False) -> IResourceProvider | None:
        """A copy of this provider that a lessee in another process (on the provider's node
        when ``same_node``) may make its own resources with (``ResourceManager.acquire_here``),
        or None when resources must stay in the provider's process (the default: in-memory
        data, sessions)."""
        return None

    def fingerprint(self) -> str:
        """A digest identifying this provider's class, name and config (credentials included,
        so two registrations with other passwords differ; the digest reveals none of them)."""
        cls = type(self)
        items = sorted((str(k), repr(v)) for k, v in self.config.items())
        text = repr((cls.__module__, cls.__qualname__, self.name, items))
        return hashlib.sha256(text.encode()).hexdigest()

    @contextmanager
    def resource_context(self, **kwargs: Any) -> Iterator[Any]:
        """Acquire a resource for the ``with`` block and release it afterwards."""
        started = time.perf_counter()
        try:
            resource = self.acquire(**kwargs)
        except Exception:
            self.metrics.record_failure()
            raise
        self.metrics.record_acquisition(time.perf_counter() - started)
        held = time.perf_counter()
        try:
            yield resource
        finally:
            self.release(resource)
            self.metrics.record_release(time.perf_counter() - held)

    def close(self) -> None:
        """Release what the provider still tracks and mark it closed."""
        for resource in list(self._resources):
            try:
                self.release(resource)
            except Exception:  # closing must go on for the other resources
                pass
        self._resources.clear()
        self.status = ResourceStatus.CLOSED

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, status={self.status.value!r}, config={redact(self.config)!r})"
