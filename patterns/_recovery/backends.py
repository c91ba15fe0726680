"""Where a policy keeps its state: the backend protocols and the registry that picks one.

A driver (``CircuitBreaker``, ``RateLimiter``, ``Bulkhead``) holds a backend of its kind:
the process-local one (registered by the driver's own module) or the cluster-wide one
(registered by ``patterns._recovery.policy_clients``). ``provide(scope, module)`` names a module
that registers the backends of ``scope`` when first needed (the cluster module is named by
default, so importing the public API loads no Ray).
``create(kind, scope, config, name, what, **options)`` builds the one registered for
``scope``; the drivers never import a backend module, so the modules form no cycle.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal, Protocol

from patterns._recovery.breaker_core import CircuitBreakerState
from patterns._recovery.errors import RecoveryConfigError

Kind = Literal["circuit_breaker", "rate_limiter", "bulkhead"]
SCOPES = ("process", "cluster")


class BreakerBackend(Protocol):
    """A circuit breaker's state: ask ``acquire`` before a call, ``record`` after it."""

    async def acquire(self) -> str: ...
    def record(self, permit: str, error: BaseException | None, duration: float) -> None: ...
    async def settle(self, error: BaseException | None) -> None:
        """After ``record``: wait until the outcome is judged where the state lives."""
    def state(self) -> CircuitBreakerState: ...
    def force(self, state: CircuitBreakerState) -> None: ...
    def metrics(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...


class LimiterBackend(Protocol):
    """A token bucket; ``acquire`` returns the seconds waited."""

    async def acquire(self, tokens: int, timeout: float | None) -> float: ...
    def acquire_sync(self, tokens: int, timeout: float | None) -> float: ...
    def try_acquire(self, tokens: int) -> bool: ...
    def pause(self, seconds: float) -> None: ...
    def metrics(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...


class BulkheadBackend(Protocol):
    """Bulkhead permits as leases: ``acquire`` gives a lease id, ``release`` ends it."""

    async def acquire(self, holder: str | None, timeout: float | None) -> str: ...
    def release(self, lease: str) -> None: ...
    def metrics(self) -> dict[str, Any]: ...


Factory = Callable[..., Any]
_registry: dict[tuple[str, str], Factory] = {}
#: scope -> the module that registers its backends (imported on first use, so a process
#: that only unpickled a driver finds them too)
_providers: dict[str, str] = {"cluster": "patterns._recovery.policy_clients"}


def register(kind: Kind, scope: str, factory: Factory) -> None:
    """Make ``factory(config, name, **options)`` the backend of ``kind`` for ``scope``."""
    _registry[(kind, scope)] = factory


def provide(scope: str, module: str) -> None:
    """``module`` registers the backends of ``scope`` when imported (imported on first use)."""
    _providers[scope] = module


def create(kind: Kind, scope: str, config: Any, name: str, what: str, **options: Any) -> Any:
    """The ``scope`` backend of ``kind``; a ``RecoveryConfigError`` for an unknown scope."""
    if scope not in SCOPES:
        raise RecoveryConfigError(f"{what} scope must be 'process' or 'cluster', got {scope!r}",
                                  field="scope")
    factory = _registry.get((kind, scope))
    if factory is None and scope in _providers:
        importlib.import_module(_providers[scope])
        factory = _registry.get((kind, scope))
    if factory is None:
        raise RecoveryConfigError(
            f"{what}: no {scope!r} backend is registered; import patterns.error_recovery "
            "(it registers the cluster backends) before building the policy", field="scope")
    return factory(config, name, **options)
