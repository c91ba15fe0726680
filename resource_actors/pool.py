"""``PoolConfig`` and ``ResourcePool``: a bounded pool of live resources from one provider.

The pool behaves like SQLAlchemy's ``QueuePool``: at most ``max_size`` resources are handed
out; an ``acquire`` past that waits (first come, first served) up to ``acquire_timeout`` and
then raises ``ResourceError`` naming the limit, the holders and the remedy; idle resources
are validated before hand-out (pre-ping) and dead ones replaced; resources idle past
``max_idle_time`` (or older than ``max_lifetime``) are closed while the pool keeps
``min_size``. The cap is the pool's ``admission`` (the broker core's ``LeaseBook``): the
resource manager leases a pooled resource through that same admission (``checkout`` /
``checkin``), so a resource has one cap and one "exhausted" error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from resource_actors.admission import Admission
from resource_actors.base import IResourceProvider, ResourceMetrics
from resource_actors.errors import ResourceError
from resource_actors.lease_book import LeaseBook

log = logging.getLogger(__name__)


class PoolConfig(BaseModel):
    """Sizing and timing of a pool (seconds). Also the cluster-wide cap of a resource.

    ``idle_timeout`` (dataknobs-fsm 0.5's name) is accepted for ``max_idle_time``.
    ``validation_interval``: an idle resource is validated before hand-out when it has been idle
    at least this long (0: always, when ``pre_ping``). ``lease_ttl``: a lease older than this
    is reclaimed by the manager even if its owner is alive (None: never).
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    min_size: int = Field(1, ge=0)
    max_size: int = Field(10, ge=1)
    max_idle_time: float = Field(
        300.0, gt=0, validation_alias=AliasChoices("max_idle_time", "idle_timeout")
    )
    acquire_timeout: float = Field(30.0, ge=0)
    max_lifetime: float | None = Field(3600.0, gt=0)
    pre_ping: bool = True
    validation_interval: float = Field(0.0, ge=0)
    lease_ttl: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _sizes(self) -> PoolConfig:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must not exceed max_size ({self.max_size})")
        return self

    @property
    def idle_timeout(self) -> float:
        """dataknobs-fsm 0.5's name for ``max_idle_time``."""
        return self.max_idle_time

    @classmethod
    def coerce(cls, value: PoolConfig | Mapping[str, Any] | None) -> PoolConfig | None:
        """Accept a ``PoolConfig``, a mapping of its fields, or None."""
        if value is None or isinstance(value, PoolConfig):
            return value
        return cls(**dict(value))


@dataclass
class PoolMetrics(ResourceMetrics):
    """Pool counters: ``size`` resources exist, ``available`` of them idle, ``in_use`` handed out."""

    size: int = 0
    available: int = 0
    in_use: int = 0
    min_size: int = 0
    max_size: int = 0
    created: int = 0
    destroyed: int = 0
    evicted_idle: int = 0
    replaced_invalid: int = 0
    peak_in_use: int = 0


@dataclass
class _Idle:
    resource: Any
    created_at: float
    idle_since: float


@dataclass
class _Out:
    resource: Any
    created_at: float
    owner_id: str | None
    since: float


class ResourcePool:
    """A thread-safe pool over ``provider``. Provider calls run outside the pool's lock.

    ``acquire(timeout=None, owner_id=None)`` returns a live resource (LIFO, so cold resources
    age out); ``release(resource)`` returns it (``provider.reset(resource)`` runs first when the
    provider has one; a failing reset discards the resource); ``discard(resource)`` closes it
    instead. ``checkout``/``checkin``/``checkout_discard`` do the same for a caller that holds
    a slot of ``admission`` already. A provider managed by a pool is told so through its
    optional ``attach_pool(config)``.
    """

    def __init__(
        self,
        provider: IResourceProvider,
        config: PoolConfig | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        base = PoolConfig.coerce(config) or PoolConfig()
        if "idle_timeout" in kwargs:
            kwargs["max_idle_time"] = kwargs.pop("idle_timeout")
        self.config = PoolConfig(**{**base.model_dump(), **kwargs}) if kwargs else base
        self.provider = provider
        self.name = getattr(provider, "name", type(provider).__name__)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._idle: list[_Idle] = []
        self._out: dict[int, _Out] = {}
        self._pending = 0  # slots reserved for resources being created or validated
        self._closed = False
        self._owner_of: dict[int, str] = {}  # resource id -> admission owner (acquire/release)
        #: The pool's one cap: who holds a slot, FIFO waiters (see ``resource_actors.lease_book``).
        self.admission = Admission(LeaseBook(self.name, self.config.max_size, self.config.lease_ttl))
        self.metrics = PoolMetrics(min_size=self.config.min_size, max_size=self.config.max_size)
        attach = getattr(provider, "attach_pool", None)
        if callable(attach):
            attach(self.config)

    # -- sizes -------------------------------------------------------------------------------
    def size(self) -> int:
        """Resources that exist: idle, handed out, or being created."""
        with self._lock:
            return len(self._idle) + len(self._out) + self._pending

    def available(self) -> int:
        """Idle resources ready for hand-out."""
        with self._lock:
            return len(self._idle)

    def in_use(self) -> int:
        """Resources handed out and not yet returned."""
        with self._lock:
            return len(self._out)

    # -- acquire / release -------------------------------------------------------------------
    def acquire(self, timeout: float | None = None, owner_id: str | None = None) -> Any:
        """A validated live resource; waits up to ``timeout`` (default ``acquire_timeout``),
        first come first served.

        An owner holds at most one resource of the pool: acquiring again returns the one it
        holds. Raises ``ResourceError`` (operation ``acquire``) when the pool is closed,
        exhausted past the timeout, or the provider cannot create a resource.
        """
        wait = self.config.acquire_timeout if timeout is None else timeout
        started = time.monotonic()
        owner = owner_id if owner_id is not None else self.admission.read(
            lambda book: book.anonymous_owner())
        try:
            lease, existing = self.admission.admit(owner, None, wait)
        except ResourceError:
            if not self.admission.book.closed:
                with self._cond:
                    self.metrics.record_timeout()
                    self.metrics.record_failure()
            raise
        if existing:
            return lease.grant
        resource = self.admission.lease_with(lease, lambda: self.checkout(owner_id, started))
        with self._cond:
            self._owner_of[id(resource)] = owner
        self.admission.complete(lease, resource)
        return resource

    def release(self, resource: Any) -> None:
        """Return a resource from ``acquire``; unknown resources raise ``ResourceError``.

        After ``close()`` a release is a no-op (the pool already closed the resource)."""
        self._end(resource, discard=False)

    def discard(self, resource: Any) -> None:
        """Close a handed-out resource instead of returning it (e.g. its owner died mid-use)."""
        self._end(resource, discard=True)

    def _end(self, resource: Any, discard: bool) -> None:
        with self._cond:
            owner = self._owner_of.pop(id(resource), None)
        lease = self.admission.end_lease(owner) if owner is not None else None
        try:
            (self.checkout_discard if discard else self.checkin)(resource)
        finally:
            if lease is not None:
                self.admission.settle(lease)

    # -- hand-out without admission (the caller holds a slot of ``admission``) ---------------
    def checkout(self, owner_id: str | None = None, started: float | None = None) -> Any:
        """A validated live resource for a caller already admitted by ``admission``: an idle
        one (LIFO, so cold resources age out) or a new one."""
        started = time.monotonic() if started is None else started
        while True:
            candidate, create = self._reserve(owner_id)
            if candidate is not None:
                if self._still_good(candidate):
                    return self._hand_out(candidate.resource, candidate.created_at, owner_id, started)
                self._drop(candidate.resource, replaced=True)
                continue
            if create:
                return self._create(owner_id, started)

    def _reserve(self, owner_id: str | None) -> tuple[_Idle | None, bool]:
        with self._cond:
            while True:
                if self._closed:
                    raise ResourceError(
                        f"pool of resource {self.name!r} is closed", self.name, "acquire",
                        owner_id=owner_id,
                    )
                if self._idle:
                    self._pending += 1
                    return self._idle.pop(), False
                if len(self._out) + self._pending < self.config.max_size:
                    self._pending += 1
                    return None, True
                # admitted, so a slot is ours: a warm-up (fill) is still creating it
                self._cond.wait(0.05)

    def _still_good(self, idle: _Idle) -> bool:
        now = time.monotonic()
        lifetime = self.config.max_lifetime
        if lifetime is not None and now - idle.created_at > lifetime:
            return False
        if not self.config.pre_ping or now - idle.idle_since < self.config.validation_interval:
            return True
        try:
            return bool(self.provider.validate(idle.resource))
        except Exception:
            return False

    def _create(self, owner_id: str | None, started: float) -> Any:
        try:
            resource = self.provider.acquire()
        except Exception as exc:
            with self._cond:
                self._pending -= 1
                self.metrics.record_failure()
                self._cond.notify()
            if isinstance(exc, ResourceError):
                exc.owner_id = exc.owner_id or owner_id
                raise
            raise ResourceError(
                f"could not create a resource for {self.name!r}: {type(exc).__name__}: {exc}",
                self.name, "acquire", owner_id=owner_id,
            ) from exc
        with self._cond:
            self.metrics.created += 1
        return self._hand_out(resource, time.monotonic(), owner_id, started)

    def _hand_out(self, resource: Any, created_at: float, owner_id: str | None, started: float) -> Any:
        now = time.monotonic()
        with self._cond:
            self._pending -= 1
            self._out[id(resource)] = _Out(resource, created_at, owner_id, now)
            self.metrics.record_acquisition(now - started)
            self.metrics.peak_in_use = max(self.metrics.peak_in_use, len(self._out))
        return resource

    def checkin(self, resource: Any) -> None:
        """Take back a checked-out resource (``provider.reset`` first; a failing reset
        discards it)."""
        out = self._take_back(resource)
        if out is None:
            return
        reset = getattr(self.provider, "reset", None)
        if callable(reset):
            try:
                reset(resource)
            except Exception as exc:
                log.warning("reset of a %r resource failed (%s); discarding it", self.name, exc)
                self._drop(resource, replaced=False)
                return
        with self._cond:
            if self._closed:
                keep = False
            else:
                keep = True
                self._idle.append(_Idle(resource, out.created_at, time.monotonic()))
            self._cond.notify()
        if not keep:
            self._close_one(resource)

    def checkout_discard(self, resource: Any) -> None:
        """Close a checked-out resource instead of taking it back."""
        if self._take_back(resource) is not None:
            self._drop(resource, replaced=False)

    def _take_back(self, resource: Any) -> _Out | None:
        with self._cond:
            out = self._out.pop(id(resource), None)
            if out is None:
                if self._closed:
                    return None
                raise ResourceError(
                    f"resource returned to pool {self.name!r} was not handed out by it",
                    self.name, "release",
                )
            self.metrics.record_release(time.monotonic() - out.since)
            return out

    def _drop(self, resource: Any, *, replaced: bool) -> None:
        with self._cond:
            if replaced:
                self._pending -= 1
                self.metrics.replaced_invalid += 1
            self._cond.notify()
        self._close_one(resource)

    def _close_one(self, resource: Any) -> None:
        try:
            self.provider.release(resource)
        except Exception as exc:  # a resource that fails to close is gone anyway
            log.debug("closing a %r resource failed: %s", self.name, exc)
        with self._cond:
            self.metrics.destroyed += 1

    # -- upkeep ------------------------------------------------------------------------------
    def fill(self) -> int:
        """Create idle resources up to ``min_size``; returns how many were created."""
        made = 0
        while True:
            with self._cond:
                if self._closed or len(self._idle) + len(self._out) + self._pending >= self.config.min_size:
                    return made
                self._pending += 1
            try:
                resource = self.provider.acquire()
            except Exception:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify()
                raise
            now = time.monotonic()
            with self._cond:
                self._pending -= 1
                self._idle.append(_Idle(resource, now, now))
                self.metrics.created += 1
                self._cond.notify()
            made += 1

    def trim(self, limit: int) -> int:
        """Close idle resources (the coldest first) until at most ``limit`` exist (idle,
        handed out or being created); returns how many were closed. For a cap shared with
        resources made outside the pool (leases of ``acquire_here``)."""
        with self._cond:
            excess = len(self._idle) + len(self._out) + self._pending - max(0, limit)
            victims = [self._idle.pop(0).resource for _ in range(min(max(0, excess), len(self._idle)))]
            self.metrics.evicted_idle += len(victims)
        for resource in victims:
            self._close_one(resource)
        return len(victims)

    def evict_idle(self) -> int:
        """Close idle resources past ``max_idle_time`` or ``max_lifetime``, keeping ``min_size``."""
        now = time.monotonic()
        victims: list[Any] = []
        with self._cond:
            keep: list[_Idle] = []
            total = len(self._idle) + len(self._out) + self._pending
            lifetime = self.config.max_lifetime
            for idle in self._idle:  # oldest first, so the coldest go first
                stale = now - idle.idle_since > self.config.max_idle_time
                old = lifetime is not None and now - idle.created_at > lifetime
                if (stale or old) and (old or total > self.config.min_size):
                    victims.append(idle.resource)
                    total -= 1
                else:
                    keep.append(idle)
            self._idle = keep
            self.metrics.evicted_idle += len(victims)
        for resource in victims:
            self._close_one(resource)
        return len(victims)

    def get_metrics(self) -> PoolMetrics:
        """A snapshot of the pool's counters and sizes."""
        with self._lock:
            snap = PoolMetrics(**self.metrics.__dict__)
            snap.available = len(self._idle)
            snap.in_use = len(self._out)
            snap.size = len(self._idle) + len(self._out) + self._pending
            return snap

    def close(self) -> None:
        """Close every resource, idle or handed out; later acquires fail, releases are no-ops."""
        self.admission.close()
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            out = [o.resource for o in self._out.values()]
            self._out.clear()
            self._cond.notify_all()
        for item in idle:
            self._close_one(item.resource)
        for resource in out:
            self._close_one(resource)

    def __repr__(self) -> str:
        return (f"ResourcePool({self.name!r}, size={self.size()}, available={self.available()}, "
                f"max_size={self.config.max_size})")
