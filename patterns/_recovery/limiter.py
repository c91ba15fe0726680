"""``RateLimiter``: a token bucket for this process, or one shared by the whole cluster.

``scope="process"`` drives a ``TokenBucket`` under a lock; ``scope="cluster"`` (with a
``name``) takes tokens in small blocks from the policy actor ``recovery/<group>`` (``group``
defaults to ``name``), so a call costs no actor round trip while its process holds tokens
(see ``patterns._recovery.policy_clients``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from patterns._recovery import backends
from patterns._recovery.errors import rate_limit_timeout as _timeout
from patterns._recovery.limiter_core import TokenBucket
from patterns._recovery.policy_config import RateLimiterConfig, Scope

_DEFAULT = object()


class LocalLimiter:
    """The process-scope driver of a ``TokenBucket``. Thread-safe; usable from any loop."""

    def __init__(self, config: RateLimiterConfig, name: str,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.config = config
        self.name = name
        self._bucket = TokenBucket(config.per_second, config.capacity, clock)
        self._lock = threading.Lock()
        self._sleep = sleep
        self.waiting = 0
        self.timed_out = 0

    def _reserve(self, tokens: int, timeout: float | None) -> float:
        with self._lock:
            wait = self._bucket.reserve(tokens, timeout)
            if wait is None:
                self.timed_out += 1
                raise _timeout(self.name, tokens, timeout, self._bucket.rate)
            if wait > 0:
                self.waiting += 1
            return wait

    async def acquire(self, tokens: int, timeout: float | None) -> float:
        with self._lock:  # _reserve, inlined for the path that does not wait
            wait = self._bucket.reserve(tokens, timeout)
            if wait == 0.0:
                return 0.0
            if wait is None:
                self.timed_out += 1
                raise _timeout(self.name, tokens, timeout, self._bucket.rate)
            self.waiting += 1
        if wait > 0:
            try:
                await self._sleep(wait)
            except asyncio.CancelledError:
                with self._lock:
                    self._bucket.cancel(tokens)
                raise
            finally:
                with self._lock:
                    self.waiting -= 1
        return wait

    def acquire_sync(self, tokens: int, timeout: float | None) -> float:
        wait = self._reserve(tokens, timeout)
        if wait > 0:
            try:
                time.sleep(wait)
            finally:
                with self._lock:
                    self.waiting -= 1
        return wait

    def try_acquire(self, tokens: int) -> bool:
        with self._lock:
            return self._bucket.reserve(tokens, 0.0) is not None

    def take_now(self, tokens: int) -> bool:
        """``tokens`` if the bucket holds them now; ``False`` changes nothing."""
        with self._lock:
            return self._bucket.take(tokens)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._bucket.pause(seconds)

    def metrics(self) -> dict[str, Any]:
        with self._lock:
            return {"available_tokens": self._bucket.available(), "waiting": self.waiting,
                    "granted": self._bucket.granted, "timed_out": self.timed_out,
                    "rate": self._bucket.rate, "burst": self._bucket.capacity,
                    "scope": "process"}

    async def close(self) -> None:
        return None


class RateLimiter:
    """A token bucket: ``rate`` calls per ``period`` seconds with bursts of ``burst``.

    ``await limiter.acquire()`` waits for a token (at most ``timeout``, default the config's
    ``acquire_timeout``) and returns the seconds waited, or raises ``RateLimitTimeout``;
    ``acquire_sync`` is the same for sync code; ``try_acquire`` never waits; ``async with
    limiter:`` takes one token. ``pause(seconds)`` grants nothing for a while (a 429 with
    ``Retry-After``). ``scope="cluster"`` needs ``name``: every process using that name shares
    one limit (Ray required), kept in the policy actor ``recovery/<group>`` (``group``
    defaults to ``name``). Thread-safe.
    """

    def __init__(self, rate: float | None = None, *, burst: int | None = None,
                 period: float = 1.0, acquire_timeout: float | None = None,
                 config: RateLimiterConfig | dict[str, Any] | None = None,
                 name: str | None = None, scope: Scope = "process",
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 group: str | None = None) -> None:
        if config is None:
            config = RateLimiterConfig(rate=rate, burst=burst, period=period,
                                       acquire_timeout=acquire_timeout)
        elif isinstance(config, dict):
            config = RateLimiterConfig(**config)
        self.config = config
        self._default_timeout = config.acquire_timeout
        self.scope = scope
        self.name = name or "rate_limiter"
        self._impl: backends.LimiterBackend = backends.create(
            "rate_limiter", scope, config, name if scope == "cluster" else self.name,
            "RateLimiter", **({"group": group} if scope == "cluster"
                              else {"clock": clock, "sleep": sleep}))
        self._take_now: Callable[[int], bool] | None = getattr(self._impl, "take_now", None)

    def take_now(self, tokens: int = 1) -> bool:
        """Take ``tokens`` when they can be had at once without waiting or asking another
        process; ``False`` takes nothing (then ``await acquire()``). For a hot path: no
        coroutine when a token is there."""
        take = self._take_now
        return take is not None and take(tokens)

    def _timeout(self, timeout: Any) -> float | None:
        return self._default_timeout if timeout is _DEFAULT else timeout

    async def acquire(self, tokens: int = 1, timeout: Any = _DEFAULT) -> float:
        """Wait for ``tokens``; the seconds waited. Raises ``RateLimitTimeout``."""
        return await self._impl.acquire(
            tokens, self._default_timeout if timeout is _DEFAULT else timeout)

    def acquire_sync(self, tokens: int = 1, timeout: Any = _DEFAULT) -> float:
        """``acquire`` from sync code."""
        return self._impl.acquire_sync(tokens, self._timeout(timeout))

    def try_acquire(self, tokens: int = 1) -> bool:
        """Take ``tokens`` if they are there now; never waits."""
        return self._impl.try_acquire(tokens)

    def pause(self, seconds: float) -> None:
        """Grant nothing new for ``seconds``."""
        self._impl.pause(seconds)

    def metrics(self) -> dict[str, Any]:
        """``available_tokens``, ``waiting``, ``granted``, ``timed_out``, ``rate``, ``burst``."""
        return self._impl.metrics()

    async def close(self) -> None:
        """Nothing to flush: unused tokens of a cluster limiter expire by themselves."""
        await self._impl.close()

    async def __aenter__(self) -> RateLimiter:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    def __repr__(self) -> str:
        return (f"RateLimiter({self.name!r}, rate={self.config.per_second:g}/s, "
                f"burst={self.config.capacity}, scope={self.scope})")


backends.register("rate_limiter", "process",
                  lambda config, name, clock=time.monotonic, sleep=asyncio.sleep:
                  LocalLimiter(config, name, clock, sleep))
