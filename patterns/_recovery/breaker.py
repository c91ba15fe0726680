"""``CircuitBreaker``: the breaker core driven in this process, or shared by the cluster.

``scope="process"`` (``LocalBreaker``) holds a ``BreakerCore`` under a lock; with ``auto_half_open`` a timer
moves an OPEN breaker to HALF_OPEN when its wait ends, so the callback fires on time even
when no call comes. ``scope="cluster"`` (with a ``name``) keeps the state in the policy actor
``recovery/<group>`` (one per policy name): workers decide CLOSED calls locally and report outcomes
in batches (see ``patterns._recovery.policy_clients``).
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

from patterns._recovery import backends
from patterns._recovery.breaker_core import BreakerCore, CircuitBreakerState
from patterns._recovery.errors import open_error
from patterns._recovery.policy_config import CircuitBreakerConfig, Scope


class LocalBreaker:
    """The process-scope driver of a ``BreakerCore``. Thread-safe."""

    def __init__(self, config: CircuitBreakerConfig, name: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.clock = clock
        self.core = BreakerCore(config, name, clock)
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        if config.auto_half_open and clock is time.monotonic:
            self.core.listeners.append(self._schedule)

    def _schedule(self, old: CircuitBreakerState, new: CircuitBreakerState) -> None:
        if new is CircuitBreakerState.OPEN:
            timer = threading.Timer(self.core.config.timeout + 0.001, self._poll)
            timer.daemon = True
            self._timer = timer
            timer.start()

    def _poll(self) -> None:
        with self._lock:
            _ = self.core.state

    async def acquire(self) -> str:
        return self.acquire_now()

    def acquire_now(self) -> str:
        with self._lock:
            permit = self.core.try_acquire()
            if permit is None:
                raise open_error(self.name, self.core.state.value, self.core.retry_after())
            return permit

    def record(self, permit: str, error: BaseException | None, duration: float) -> None:
        with self._lock:
            if error is None:
                self.core.record_success(permit, duration)
            else:
                self.core.record(permit, self.core.outcome_of(error, duration))

    def state(self) -> CircuitBreakerState:
        with self._lock:
            return self.core.state

    def force(self, state: CircuitBreakerState) -> None:
        with self._lock:
            self.core.force(state)

    def metrics(self) -> dict[str, Any]:
        with self._lock:
            return {**self.core.metrics(), "scope": "process"}

    async def settle(self, error: BaseException | None) -> None:
        return None

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class CircuitBreaker:
    """Stops calling a failing service for a while, then probes it (see
    ``CircuitBreakerConfig``).

    ``await breaker.call(fn, *args)`` / ``breaker.call_sync(fn, *args)`` run ``fn`` if the
    breaker permits and record the outcome; a refused call raises ``CircuitOpenError`` (with
    ``retry_after``). For other drivers: ``permit = await breaker.acquire()``, then
    ``breaker.record(permit, error_or_None, seconds)``. ``scope="cluster"`` needs ``name``.
    """

    def __init__(self, config: CircuitBreakerConfig | dict[str, Any] | None = None, *,
                 name: str | None = None, scope: Scope = "process",
                 clock: Callable[[], float] = time.monotonic, group: str | None = None,
                 **fields: Any) -> None:
        self.config = config = CircuitBreakerConfig.given(config, fields)
        self.scope = scope
        self.name = name or "circuit_breaker"
        self._clock = clock
        self._timed = config.slow_call_duration is not None  # else durations count for nothing
        self._impl: backends.BreakerBackend = backends.create(
            "circuit_breaker", scope, config, name if scope == "cluster" else self.name,
            "CircuitBreaker", **({"group": group} if scope == "cluster" else {"clock": clock}))

    async def acquire(self) -> str:
        """A permit for one call; raises ``CircuitOpenError`` when refused."""
        return await self._impl.acquire()

    def record(self, permit: str, error: BaseException | None, duration: float) -> None:
        """The outcome of the call made with ``permit`` (``error`` None: it succeeded)."""
        self._impl.record(permit, error, duration)

    async def settle(self, error: BaseException | None) -> None:
        """After ``record``: wait until the outcome is judged (a cluster breaker's failure
        is judged by its actor before the caller's next call)."""
        await self._impl.settle(error)

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` through the breaker."""
        impl = self._impl
        permit = await impl.acquire()
        timed = self._timed
        start = self._clock() if timed else 0.0
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            impl.record(permit, exc, self._clock() - start if timed else 0.0)
            await impl.settle(exc)
            raise
        impl.record(permit, None, self._clock() - start if timed else 0.0)
        return result

    def call_sync(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call`` for a sync callable from sync code (process scope)."""
        if self.scope != "process":
            from fsm_actors.platform.event_loop import run_sync

            return run_sync(self.call(fn, *args, **kwargs))
        impl = self._impl
        permit = impl.acquire_now()  # type: ignore[attr-defined]
        timed = self._timed
        start = self._clock() if timed else 0.0
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            impl.record(permit, exc, self._clock() - start if timed else 0.0)
            raise
        impl.record(permit, None, self._clock() - start if timed else 0.0)
        return result

    @property
    def state(self) -> CircuitBreakerState:
        """CLOSED, OPEN or HALF_OPEN now (for a cluster breaker: as this process last heard)."""
        return self._impl.state()

    def force(self, state: CircuitBreakerState | str) -> None:
        """Move to ``state`` now (e.g. ``"open"`` for maintenance, ``"closed"`` to reset)."""
        self._impl.force(CircuitBreakerState(state))

    def metrics(self) -> dict[str, Any]:
        """State, failure and slow-call rates (percent, -1 before ``minimum_calls``), buffered,
        failed and slow calls, not-permitted calls."""
        return self._impl.metrics()

    async def close(self) -> None:
        """Stop timers and send what is still unreported (cluster scope)."""
        await self._impl.close()

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, scope={self.scope})"


backends.register("circuit_breaker", "process",
                  lambda config, name, clock=time.monotonic: LocalBreaker(config, name, clock))
