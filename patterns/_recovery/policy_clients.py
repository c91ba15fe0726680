"""Cluster scope: clients of the policy actors ``recovery/<group>`` (one per policy name).

No actor round trip per call on the hot path:

- ``ClusterLimiter`` takes tokens in blocks of about 0.1 s of the rate (at least 1, at most the
  burst), one block request in flight per process; unused tokens expire after
  ``TOKEN_TTL`` seconds, so a process can never save up more than one block. The actor grants
  by reservation, so the cluster's rate holds (plus one burst) whatever the number of workers.
- ``ClusterBreaker`` decides CLOSED calls locally. A failure is reported at once (``call``
  waits for the reply, so the caller's next call already sees an OPEN breaker); successes go
  in batches, sent when ``FLUSH_INTERVAL`` old, by the next call or by a timer when the
  process goes idle (nothing stays unreported). The actor judges a batch outcome by outcome.
  Each reply carries the cluster's state; a process that has heard nothing for
  ``STALE_AFTER`` seconds asks before its next call, so every user, including one created
  after the breaker opened, is refused within ``STALE_AFTER`` + one round trip. HALF_OPEN
  probes are granted by the actor (the quota holds cluster-wide). State-change callbacks run
  in each process that sees the change.
- ``ClusterBulkhead`` is one round trip per permit (a permit is a lease of this process:
  its own actor, or an ``OwnerAnchor`` that dies with it); the release is not awaited.

One policy actor (0 CPU) per policy name, ``recovery/<group>`` (``group`` defaults to the
policy's name; an API run puts its limiter and every endpoint's breaker in the run's one
actor). It belongs to the process that first used it. Every client holds a
``PolicyLink``: when the actor died (``ray.kill``, its owner gone) the link makes it again
under the same name (``restore=True``: it takes over the journaled state) and retries, for at
most ``RECONNECT_WAIT`` seconds, then raises ``PolicyUnavailableError``. A new user sends
its config (``configure``): other limits under the same name replace the old ones for
every user of the name, with a warning (one policy per name).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import uuid
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
from patterns._recovery.errors import (
    PolicyUnavailableError,
    RecoveryConfigError,
    RecoveryError,
    open_error,
)
from patterns._recovery.errors import rate_limit_timeout as _timeout
from patterns._recovery.policy_config import BulkheadConfig, CircuitBreakerConfig, RateLimiterConfig

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.1
STALE_AFTER = 0.25
MAX_BATCH = 512
BLOCK_SECONDS = 0.1
TOKEN_TTL = 0.5
RECONNECT_WAIT = 15.0
_RECONNECT_PAUSE = 0.2

_actors_lock = threading.Lock()
_actors: dict[tuple[str, str], Any] = {}  # (job id, actor name) -> handle


def require_name(name: str | None, what: str) -> str:
    if not name or "/" in name:
        raise RecoveryConfigError(
            f"{what}: scope='cluster' needs a name without '/' (it names the shared actor), "
            f"got {name!r}", field="name")
    return name


def actor_name(group: str) -> str:
    return f"recovery/{group}"


def policy_actor(group: str, restore: bool = False, dead: Any = None) -> Any:
    """The policy actor ``recovery/<group>``, created on first use (0 CPU). ``dead``: a
    handle found dead, dropped from the cache; a new actor then restores the journals."""
    runtime.ensure_ray()
    full = actor_name(group)
    ctx = ray.get_runtime_context()  # a Ray restarted in this process repeats job ids
    key = (ctx.get_session_name(), ctx.get_job_id(), full)
    with _actors_lock:
        handle = _actors.get(key)
        if handle is None or (dead is not None and handle is dead):
            opts = runtime.actor_options("broker", name=full, get_if_exists=True,
                                         max_restarts=-1, max_concurrency=64)
            handle = REMOTE.options(**opts).remote(full, restore)
            _actors[key] = handle
        return handle


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, RayTaskError) and isinstance(getattr(exc, "cause", None), BaseException):
        exc = exc.cause
    return exc


def _unavailable(name: str, kind: str, group: str, exc: BaseException) -> PolicyUnavailableError:
    return PolicyUnavailableError(
        f"{kind} {name!r}: its policy actor {actor_name(group)} could not be reached "
        f"or made again within {RECONNECT_WAIT:g}s ({type(exc).__name__}); the call was not "
        "made. Try again later, or check the Ray cluster", policy=name)


_WAITING = frozenset({"take", "acquire"})


class PolicyLink:
    """This process's connection to one policy (``kind`` named ``name``) in the actor of
    ``group``, made again when the actor died. Every call carries the config, so a host
    made again builds the policy from it (and restores its journal)."""

    def __init__(self, name: str, kind: str, config: Any, group: str | None = None) -> None:
        self.name, self.kind, self.config = name, kind, config
        self.group = group or name
        self.key = "" if self.group == name else name
        self.handle = policy_actor(self.group)
        self.reconnects = 0

    def reconnect(self, dead: Any) -> Any:
        """A live handle after ``dead`` failed (the cached one if another user remade it)."""
        if self.handle is dead:
            self.handle = policy_actor(self.group, restore=True, dead=dead)
            self.reconnects += 1
        return self.handle

    def remote(self, handle: Any, method: str, *args: Any) -> Any:
        """The object ref of ``method(*args)`` on ``handle``."""
        entry = handle.wait if method in _WAITING else handle.do
        return entry.remote(self.kind, self.key, self.config, method, *args)

    def unavailable(self, exc: BaseException) -> PolicyUnavailableError:
        return _unavailable(self.name, self.kind, self.group, exc)

    async def call(self, method: str, *args: Any) -> Any:
        """``method(*args)``, reconnecting for at most ``RECONNECT_WAIT`` seconds."""
        deadline = time.monotonic() + RECONNECT_WAIT
        while True:
            handle = self.handle
            try:
                return await self.remote(handle, method, *args)
            except RayActorError as exc:
                if time.monotonic() >= deadline:
                    raise self.unavailable(exc) from None
                await asyncio.sleep(_RECONNECT_PAUSE)
                self.reconnect(handle)
            except RayTaskError as exc:
                raise _unwrap(exc) from None

    def call_sync(self, method: str, *args: Any) -> Any:
        """``call`` from sync code."""
        deadline = time.monotonic() + RECONNECT_WAIT
        while True:
            handle = self.handle
            try:
                return ray.get(self.remote(handle, method, *args), timeout=30)
            except RayActorError as exc:
                if time.monotonic() >= deadline:
                    raise self.unavailable(exc) from None
                time.sleep(_RECONNECT_PAUSE)
                self.reconnect(handle)
            except RayTaskError as exc:
                raise _unwrap(exc) from None

    def send(self, method: str, *args: Any) -> concurrent.futures.Future[Any]:
        """Fire ``method(*args)``; its future (a dead actor is noticed by the next awaited
        call)."""
        return self.remote(self.handle, method, *args).future()


class ClusterLimiter:
    """A process's share of the cluster-wide token bucket (see the module docstring)."""

    def __init__(self, config: RateLimiterConfig, name: str, group: str | None = None) -> None:
        self.config = config
        self.name = name
        self._link = PolicyLink(name, "rate_limiter", config, group)
        # not awaited here (an async actor's constructor must not block): the first
        # acquire waits for it
        self._configured: concurrent.futures.Future[Any] | None = self._link.send(
            "configure", config)
        self._block = max(1, min(config.capacity, round(config.per_second * BLOCK_SECONDS)))
        self._lock = threading.Lock()
        self._tokens = 0
        self._expires = 0.0
        self._inflight: tuple[concurrent.futures.Future[int], float | None, Any] | None = None
        self.waiting = 0
        self.granted = 0

    def _fetch(self, need: int, deadline: float | None, now: float
               ) -> concurrent.futures.Future[int]:
        """Ask for a block of tokens (under the lock). The caller hands the future
        ``_landed`` once it let go of the lock: a reply that is already there runs the
        callback at once, and ``_landed`` takes the lock."""
        left = None if deadline is None else max(0.0, deadline - now)
        handle = self._link.handle
        future = self._link.remote(handle, "take", max(need, self._block), need, left).future()
        self._inflight = (future, deadline, handle)
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
        lost_since: float | None = None
        if self._configured is not None:
            try:
                await asyncio.wrap_future(self._configured)
            except (RayActorError, RayTaskError):
                pass  # the actor is gone: the fetch below reconnects
            self._configured = None
        while True:
            fetched = None
            with self._lock:
                now = time.monotonic()
                if self._take_local(tokens, now):
                    return now - start
                if self._inflight is None:
                    fetched = self._fetch(tokens, deadline, now)
                future, asked, handle = self._inflight  # type: ignore[misc]
                self.waiting += 1
            if fetched is not None:
                fetched.add_done_callback(self._landed)
            try:
                got = await asyncio.wrap_future(future)
            except RayActorError as exc:
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since >= RECONNECT_WAIT:
                    raise self._link.unavailable(exc) from None
                await asyncio.sleep(_RECONNECT_PAUSE)
                self._link.reconnect(handle)
                continue
            except RayTaskError as exc:
                raise _unwrap(exc) from None
            finally:
                with self._lock:
                    self.waiting -= 1
            lost_since = None
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
        configured = self._configured
        if configured is None or configured.done():
            self._link.send("pause", seconds)
        else:  # never block a caller's loop: the pause follows this user's configure
            configured.add_done_callback(lambda _: self._link.send("pause", seconds))

    def _configured_sync(self) -> None:
        """Wait for this user's ``configure`` (the policy actor is async: Ray does not keep
        the order of its calls, so a call sent after it could overtake it)."""
        configured, self._configured = self._configured, None
        if configured is not None:
            try:
                configured.result()
            except (RayActorError, RayTaskError):
                pass  # the actor is gone: the next call reconnects

    def metrics(self) -> dict[str, Any]:
        self._configured_sync()
        shared = self._link.call_sync("metrics")
        with self._lock:
            local = {"local_tokens": self._tokens, "local_waiting": self.waiting,
                     "local_granted": self.granted, "block": self._block,
                     "reconnects": self._link.reconnects}
        return {**shared, **local, "scope": "cluster", "actor": actor_name(self._link.group)}

    async def close(self) -> None:
        return None


def _for_actor(config: CircuitBreakerConfig) -> CircuitBreakerConfig:
    """The config without what only workers use (callbacks, exception classes)."""
    return config.model_copy(update={"on_open": None, "on_close": None, "on_half_open": None,
                                     "on_state_change": None, "record_exceptions": (Exception,),
                                     "ignore_exceptions": ()})


class ClusterBreaker:
    """A process's view of the cluster-wide breaker (see the module docstring)."""

    def __init__(self, config: CircuitBreakerConfig, name: str, group: str | None = None) -> None:
        self.config = config
        self.name = name
        shared = _for_actor(config)
        self._link = PolicyLink(name, "circuit_breaker", shared, group)
        self._lock = threading.Lock()
        self._state = CircuitBreakerState.CLOSED
        self._retry_at = 0.0
        self._hold_until = 0.0
        self._heard = 0.0
        self._sent = 0.0
        self._pending: list[int] = []
        self._refused = 0
        self._source = uuid.uuid4().hex[:12]  # this user, for its consecutive failures
        self._reporting: concurrent.futures.Future[Any] | None = None
        self._timer: threading.Timer | None = None
        # not awaited (an async actor's constructor must not block); the first call asks
        # for the state (``_heard`` is 0), after the configure on the actor's queue
        self._link.send("configure", shared).add_done_callback(self._configured)

    def _configured(self, future: concurrent.futures.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._apply(future.result())

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
            self._reporting = None
            failed = future.cancelled() or future.exception() is not None
            if failed:  # the actor is gone: ask (and reconnect) before the next call
                self._heard = 0.0
        if not failed:
            self._apply(future.result())

    def _send(self, now: float) -> concurrent.futures.Future[Any]:
        """Send the batch (under the lock); the caller hands the future ``_reported`` once
        it let go of the lock (a reply already there runs the callback at once)."""
        codes, refused = self._pending, self._refused
        self._pending, self._refused = [], 0
        self._sent = now
        self._reporting = self._link.send("report", codes, refused, self._source)
        return self._reporting

    def _report_if_due(self, now: float) -> concurrent.futures.Future[Any] | None:
        """Send the batch (under the lock) when it is full or ``FLUSH_INTERVAL`` old; else
        arm the idle timer so it is sent anyway."""
        if not self._pending and not self._refused:
            return None
        if self._reporting is None and (now - self._sent >= FLUSH_INTERVAL
                                        or len(self._pending) >= MAX_BATCH):
            return self._send(now)
        if self._timer is None:
            self._timer = threading.Timer(FLUSH_INTERVAL, self._on_timer)
            self._timer.daemon = True
            self._timer.start()
        return None

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            sent = self._report_if_due(self._sent + FLUSH_INTERVAL)
        if sent is not None:
            sent.add_done_callback(self._reported)

    async def flush(self) -> None:
        """Send what is unreported and wait for the state (the in-flight batch first)."""
        for _ in range(2):
            with self._lock:
                future = self._reporting
                sent = None
                if future is None and (self._pending or self._refused):
                    future = sent = self._send(time.monotonic())
            if future is None:
                return
            if sent is not None:
                sent.add_done_callback(self._reported)
            try:
                await asyncio.wrap_future(future)
            except (RayActorError, RayTaskError):
                return  # noticed by the next call, which reconnects

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
            self._apply(await self._link.call("report", codes, refused, self._source))
            with self._lock:
                state, retry_at = self._state, self._retry_at
            now = time.monotonic()
        if state is CircuitBreakerState.CLOSED:
            return CLOSED_PERMIT
        if now < hold or (state is CircuitBreakerState.OPEN and now < retry_at):
            with self._lock:
                self._refused += 1
                sent = self._report_if_due(now)
            if sent is not None:
                sent.add_done_callback(self._reported)
            raise self._refusal(state, max(retry_at, hold) - now)
        permit, *reply = await self._link.call("probe")
        self._apply(tuple(reply))  # type: ignore[arg-type]
        if permit is None:
            with self._lock:
                self._hold_until = time.monotonic() + FLUSH_INTERVAL
            raise self._refusal(self._state, max(reply[1], FLUSH_INTERVAL))
        return permit

    def _refusal(self, state: CircuitBreakerState, retry_after: float) -> RecoveryError:
        return open_error(self.name, state.value, max(0.0, retry_after))

    def record(self, permit: str, error: BaseException | None, duration: float) -> None:
        code = outcome_of(self.config, error, duration)
        if permit == PROBE:
            self._link.send("record_probe", permit, code).add_done_callback(self._reported_probe)
            return
        if code == IGNORED:
            return
        with self._lock:
            self._pending.append(code)
            sent = self._report_if_due(time.monotonic())
        if sent is not None:
            sent.add_done_callback(self._reported)

    def _reported_probe(self, future: concurrent.futures.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._apply(future.result())

    async def settle(self, error: BaseException | None) -> None:
        """After ``record``: a failure waits for the cluster's verdict (see the module
        docstring); a success does not wait."""
        if error is not None:
            await self.flush()

    def state(self) -> CircuitBreakerState:
        with self._lock:
            return self._state

    def force(self, state: CircuitBreakerState) -> None:
        self._apply(self._link.call_sync("force", state.value))

    def metrics(self) -> dict[str, Any]:
        shared = self._link.call_sync("metrics")
        with self._lock:
            local = {"local_state": self._state.value, "unreported": len(self._pending),
                     "reconnects": self._link.reconnects}
        return {**shared, **local, "scope": "cluster", "actor": actor_name(self._link.group)}

    async def close(self) -> None:
        """Send what is still unreported."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            codes, refused = self._pending, self._refused
            self._pending, self._refused = [], 0
        if codes or refused:
            self._apply(await self._link.call("report", codes, refused, self._source))


class ClusterBulkhead:
    """Cluster-wide bulkhead permits, leased by this process (see the module docstring)."""

    def __init__(self, config: BulkheadConfig, name: str, group: str | None = None) -> None:
        self.config = config
        self.name = name
        self._link = PolicyLink(name, "bulkhead", config, group)
        self._introduced: set[tuple[str, int]] = set()

    async def acquire(self, holder: str | None, timeout: float | None) -> str:
        from resource_actors.remote import owner_identity

        key, handle = owner_identity()
        # an actor handle in the arguments costs a borrower registration: send it once
        # per actor (a remade actor knows the holders from its journal, but is told again)
        target = self._link.handle
        send = handle if (key, id(target)) not in self._introduced else None
        lease = await self._link.call("acquire", key, send, timeout)
        self._introduced.add((key, id(target)))
        return lease

    def release(self, lease: str) -> None:
        self._link.send("release", lease)

    def metrics(self) -> dict[str, Any]:
        return {**self._link.call_sync("metrics"), "scope": "cluster",
                "actor": actor_name(self._link.group)}

    async def close(self) -> None:
        return None


def _named(make: Any, what: str) -> Any:
    def build(config: Any, name: str, group: str | None = None, **_: Any) -> Any:
        return make(config, require_name(name, what),
                    None if group is None else require_name(group, what))
    return build


backends.register("circuit_breaker", "cluster", _named(ClusterBreaker, "CircuitBreaker"))
backends.register("rate_limiter", "cluster", _named(ClusterLimiter, "RateLimiter"))
backends.register("bulkhead", "cluster", _named(ClusterBulkhead, "Bulkhead"))
