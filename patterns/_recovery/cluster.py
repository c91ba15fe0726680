"""Cluster scope: clients of the policy actors ``recovery/<name>/<policy>``.

No actor round trip per call on the hot path:

- ``ClusterLimiter`` takes tokens in blocks of about 0.1 s of the rate (at least 1, at most the
  burst), one block request in flight per process; unused tokens expire after
  ``TOKEN_TTL`` seconds, so a process can never save up more than one block. The actor grants
  by reservation, so the cluster's rate holds (plus one burst) whatever the number of workers.
- ``ClusterBreaker`` decides CLOSED calls locally and reports outcomes in batches at least
  every ``FLUSH_INTERVAL`` seconds; each report's reply carries the cluster's state, so every
  calling worker sees an OPEN breaker within ~``FLUSH_INTERVAL`` + one round trip. A process
  that has heard nothing for ``STALE_AFTER`` seconds asks before its next call. HALF_OPEN
  probes are granted by the actor (the quota holds cluster-wide). State-change callbacks run
  in each process that sees the change.
- ``ClusterBulkhead`` is one round trip per permit (a permit is a lease of this process:
  its own actor, or an ``OwnerAnchor`` that dies with it); the release is not awaited.

A policy actor (0 CPU) belongs to the process that first used its name and lives as long as
that process: create the policy in the driver before starting workers that share it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from fsm_actors.platform import runtime
from fsm_actors.platform.event_loop import run_sync
from patterns._recovery import backends
from patterns._recovery.actors import REMOTE
from patterns._recovery.breaker_core import (
    CLOSED_PERMIT,
    IGNORED,
    PROBE,
    CircuitBreakerState,
    outcome_of,
)
from patterns._recovery.config import BulkheadConfig, CircuitBreakerConfig, RateLimiterConfig
from patterns._recovery.errors import (
    PolicyUnavailableError,
    RecoveryConfigError,
    RecoveryError,
)
from patterns._recovery.errors import rate_limit_timeout as _timeout

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.1
STALE_AFTER = 0.5
MAX_BATCH = 512
BLOCK_SECONDS = 0.1
TOKEN_TTL = 0.5

_actors_lock = threading.Lock()
_actors: dict[tuple[str, str], Any] = {}  # (job id, actor name) -> handle, kept for life


def require_name(name: str | None, what: str) -> str:
    if not name or "/" in name:
        raise RecoveryConfigError(
            f"{what}: scope='cluster' needs a name without '/' (it names the shared actor), "
            f"got {name!r}", field="name")
    return name


def actor_name(name: str, kind: str) -> str:
    return f"recovery/{name}/{kind}"


def policy_actor(name: str, kind: str, config: Any) -> Any:
    """The policy actor ``recovery/<name>/<kind>``, created on first use (0 CPU,
    restarted by Ray with its journaled state)."""
    runtime.ensure_ray()
    full = actor_name(name, kind)
    key = (ray.get_runtime_context().get_job_id(), full)
    with _actors_lock:
        handle = _actors.get(key)
        if handle is None:
            opts = runtime.actor_options("broker", name=full, get_if_exists=True,
                                         max_restarts=-1, max_concurrency=64)
            handle = REMOTE[kind].options(**opts).remote(full, config)
            _actors[key] = handle
        return handle


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, RayTaskError) and isinstance(getattr(exc, "cause", None), BaseException):
        exc = exc.cause
    return exc


def _unavailable(name: str, kind: str, exc: BaseException) -> PolicyUnavailableError:
    return PolicyUnavailableError(
        f"{kind} {name!r}: its policy actor {actor_name(name, kind)} cannot be reached "
        f"({type(exc).__name__}); the call was not made. Ray restarts it with its state: try "
        "again, or keep the process that created the policy alive", policy=name)


class ClusterLimiter:
    """A process's share of the cluster-wide token bucket (see the module docstring)."""

    def __init__(self, config: RateLimiterConfig, name: str) -> None:
        self.config = config
        self.name = name
        self._actor = policy_actor(name, "rate_limiter", config)
        self._block = max(1, min(config.capacity, round(config.per_second * BLOCK_SECONDS)))
        self._lock = threading.Lock()
        self._tokens = 0
        self._expires = 0.0
        self._inflight: tuple[concurrent.futures.Future[int], float | None] | None = None
        self.waiting = 0
        self.granted = 0

    def _fetch(self, need: int, deadline: float | None, now: float
               ) -> concurrent.futures.Future[int]:
        """Ask for a block of tokens (under the lock). The caller hands the future
        ``_landed`` once it let go of the lock: a reply that is already there runs the
        callback at once, and ``_landed`` takes the lock."""
        left = None if deadline is None else max(0.0, deadline - now)
        future = self._actor.take.remote(max(need, self._block), need, left).future()
        self._inflight = (future, deadline)
        return future

    def _landed(self, future: concurrent.futures.Future[int]) -> None:
        with self._lock:
            self._inflight = None
            if future.cancelled() or future.exception() is not None:
                return
            got = future.result()
            if got:
                now = time.monotonic()
                self._tokens = (self._tokens if now < self._expires else 0) + got
                self._expires = now + TOKEN_TTL

    def _take_local(self, tokens: int, now: float) -> bool:
        if now >= self._expires:
            self._tokens = 0
        if self._tokens >= tokens:
            self._tokens -= tokens
            self.granted += tokens
            return True
        return False

    async def acquire(self, tokens: int, timeout: float | None) -> float:
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        while True:
            fetched = None
            with self._lock:
                now = time.monotonic()
                if self._take_local(tokens, now):
                    return now - start
                if self._inflight is None:
                    fetched = self._fetch(tokens, deadline, now)
                future, asked = self._inflight  # type: ignore[misc]
                self.waiting += 1
            if fetched is not None:
                fetched.add_done_callback(self._landed)
            try:
                got = await asyncio.wrap_future(future)
            except RayActorError as exc:
                raise _unavailable(self.name, "rate_limiter", exc) from None
            except RayTaskError as exc:
                raise _unwrap(exc) from None
            finally:
                with self._lock:
                    self.waiting -= 1
            if got == 0 and deadline is not None and (asked is None or asked >= deadline - 1e-6
                                                      or time.monotonic() >= deadline):
                raise _timeout(self.name, tokens, timeout, self.config.per_second)

    def acquire_sync(self, tokens: int, timeout: float | None) -> float:
        return run_sync(self.acquire(tokens, timeout))

    def try_acquire(self, tokens: int) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._take_local(tokens, now):
                return True
            fetched = self._fetch(tokens, now, now) if self._inflight is None else None
        if fetched is not None:
            fetched.add_done_callback(self._landed)
        return False

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._tokens = 0
        self._actor.pause.remote(seconds)

    def metrics(self) -> dict[str, Any]:
        shared = ray.get(self._actor.metrics.remote(), timeout=30)
        with self._lock:
            local = {"local_tokens": self._tokens, "local_waiting": self.waiting,
                     "local_granted": self.granted, "block": self._block}
        return {**shared, **local, "scope": "cluster", "actor": actor_name(self.name,
                                                                           "rate_limiter")}

    async def close(self) -> None:
        return None


def _for_actor(config: CircuitBreakerConfig) -> CircuitBreakerConfig:
    """The config without what only workers use (callbacks, exception classes)."""
    return config.model_copy(update={"on_open": None, "on_close": None, "on_half_open": None,
                                     "on_state_change": None, "record_exceptions": (Exception,),
                                     "ignore_exceptions": ()})


class ClusterBreaker:
    """A process's view of the cluster-wide breaker (see the module docstring)."""

    def __init__(self, config: CircuitBreakerConfig, name: str) -> None:
        self.config = config
        self.name = name
        self._actor = policy_actor(name, "circuit_breaker", _for_actor(config))
        self._lock = threading.Lock()
        self._state = CircuitBreakerState.CLOSED
        self._retry_at = 0.0
        self._hold_until = 0.0
        self._heard = 0.0
        self._sent = 0.0
        self._pending: list[int] = []
        self._refused = 0
        self._reporting = False

    # -- replies -------------------------------------------------------------------------
    def _apply(self, reply: tuple[str, float]) -> None:
        state, retry_after = CircuitBreakerState(reply[0]), reply[1]
        now = time.monotonic()
        with self._lock:
            old = self._state
            self._state, self._retry_at, self._heard = state, now + retry_after, now
        if old is not state:
            self._notify(old, state)

    def _notify(self, old: CircuitBreakerState, new: CircuitBreakerState) -> None:
        c = self.config
        hook = {CircuitBreakerState.OPEN: c.on_open, CircuitBreakerState.CLOSED: c.on_close,
                CircuitBreakerState.HALF_OPEN: c.on_half_open}[new]
        try:
            if hook is not None:
                hook()
            if c.on_state_change is not None:
                c.on_state_change(old, new)
        except Exception:
            log.exception("circuit breaker %r: state-change callback failed", self.name)

    def _reported(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._reporting = False
        if not future.cancelled() and future.exception() is None:
            self._apply(future.result())

    def _probe_recorded(self, future: concurrent.futures.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._apply(future.result())

    def _report_if_due(self, now: float) -> concurrent.futures.Future[Any] | None:
        """Send the batch (under the lock) when it is full or ``FLUSH_INTERVAL`` old, or ask
        for the state when nothing was heard for that long. Returns the reply's future: the
        caller hands it ``_reported`` once it let go of the lock (a reply that is already
        there runs the callback at once, and ``_reported`` takes the lock)."""
        if self._reporting or now - self._sent < FLUSH_INTERVAL and len(self._pending) < MAX_BATCH:
            return None
        codes, refused = self._pending, self._refused
        self._pending, self._refused = [], 0
        self._reporting, self._sent = True, now
        return self._actor.report.remote(codes, refused).future()

    # -- calls ---------------------------------------------------------------------------
    async def acquire(self) -> str:
        now = time.monotonic()
        sent = None
        with self._lock:
            stale = now - self._heard > STALE_AFTER
            if not stale:
                sent = self._report_if_due(now)
            state, retry_at, hold = self._state, self._retry_at, self._hold_until
        if sent is not None:
            sent.add_done_callback(self._reported)
        if stale:
            with self._lock:
                codes, refused = self._pending, self._refused
                self._pending, self._refused = [], 0
            try:
                self._apply(await self._actor.report.remote(codes, refused))
            except RayActorError:  # restarting: decide on the last state heard, report later
                with self._lock:
                    self._pending[:0], self._refused = codes, self._refused + refused
                    self._heard = time.monotonic()
            with self._lock:
                state, retry_at = self._state, self._retry_at
        if state is CircuitBreakerState.CLOSED:
            return CLOSED_PERMIT
        if now < hold or (state is CircuitBreakerState.OPEN and now < retry_at):
            with self._lock:
                self._refused += 1
            raise self._refusal(state, max(retry_at, hold) - now)
        try:
            permit, *reply = await self._actor.probe.remote()
        except RayActorError as exc:
            raise _unavailable(self.name, "circuit_breaker", exc) from None
        self._apply(tuple(reply))  # type: ignore[arg-type]
        if permit is None:
            with self._lock:
                self._hold_until = time.monotonic() + FLUSH_INTERVAL
            raise self._refusal(self._state, max(reply[1], FLUSH_INTERVAL))
        return permit

    def _refusal(self, state: CircuitBreakerState, retry_after: float) -> RecoveryError:
        from patterns._recovery.breaker import open_error

        return open_error(self.name, state.value, max(0.0, retry_after))

    def record(self, permit: str, error: BaseException | None, duration: float) -> None:
        code = outcome_of(self.config, error, duration)
        if permit == PROBE:
            self._actor.record_probe.remote(permit, code).future().add_done_callback(
                self._probe_recorded)
            return
        if code == IGNORED:
            return
        with self._lock:
            self._pending.append(code)
            sent = self._report_if_due(time.monotonic())
        if sent is not None:
            sent.add_done_callback(self._reported)

    def state(self) -> CircuitBreakerState:
        with self._lock:
            return self._state

    def force(self, state: CircuitBreakerState) -> None:
        self._apply(ray.get(self._actor.force.remote(state.value), timeout=30))

    def metrics(self) -> dict[str, Any]:
        shared = ray.get(self._actor.metrics.remote(), timeout=30)
        with self._lock:
            local = {"local_state": self._state.value, "unreported": len(self._pending)}
        return {**shared, **local, "scope": "cluster",
                "actor": actor_name(self.name, "circuit_breaker")}

    async def close(self) -> None:
        """Send what is still unreported."""
        with self._lock:
            codes, refused = self._pending, self._refused
            self._pending, self._refused = [], 0
        if codes or refused:
            self._apply(await self._actor.report.remote(codes, refused))


class ClusterBulkhead:
    """Cluster-wide bulkhead permits, leased by this process (see the module docstring)."""

    def __init__(self, config: BulkheadConfig, name: str) -> None:
        self.config = config
        self.name = name
        self._actor = policy_actor(name, "bulkhead", config)
        self._introduced: set[str] = set()

    async def acquire(self, holder: str | None, timeout: float | None) -> str:
        from resource_actors.remote import owner_identity

        key, handle = owner_identity()
        # an actor handle in the arguments costs a borrower registration: send it once
        send = handle if key not in self._introduced else None
        try:
            lease = await self._actor.acquire.remote(key, send, timeout)
        except RayActorError as exc:
            raise _unavailable(self.name, "bulkhead", exc) from None
        except RayTaskError as exc:
            raise _unwrap(exc) from None
        self._introduced.add(key)
        return lease

    def release(self, lease: str) -> None:
        self._actor.release.remote(lease)

    def metrics(self) -> dict[str, Any]:
        return {**ray.get(self._actor.metrics.remote(), timeout=30), "scope": "cluster",
                "actor": actor_name(self.name, "bulkhead")}

    async def close(self) -> None:
        return None


def _named(make: Any, what: str) -> Any:
    return lambda config, name, **_: make(config, require_name(name, what))


backends.register("circuit_breaker", "cluster", _named(ClusterBreaker, "CircuitBreaker"))
backends.register("rate_limiter", "cluster", _named(ClusterLimiter, "RateLimiter"))
backends.register("bulkhead", "cluster", _named(ClusterBulkhead, "Bulkhead"))
