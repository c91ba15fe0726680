"""The endpoint's resilience policies, all from ``patterns.error_recovery``: retry, rate
limiters, circuit breaker.

``Limits(config)`` holds the run's limiters and breakers where the calls run
(the driver, or each FANOUT worker actor): the run's limiter is named ``api.<config name>``,
an endpoint's limiter and breaker ``api.<config name>.<endpoint>``; with ``scope="cluster"``
every process that uses a name shares one limit (the driver makes the policy actors first, so
they live as long as the run's driver, not as long as a worker). Breakers are shared by the
cluster only when ``scope="cluster"`` is asked for; under ``"auto"`` each process (each FANOUT
worker) judges its own calls, which keeps the breaker off the hot path's actor traffic. ``EndpointPolicy.run`` wraps one endpoint call as
breaker(retry(limiters(attempt))): every HTTP attempt takes a token from each limiter that
applies; the breaker judges whole calls (after their retries), so a call's retries are never
cut short by its own failures. A 429 with ``Retry-After`` pauses the limiters that apply, so
every caller sharing them slows down, and the retry waits at least that long.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from patterns._api.call import EndpointCall
from patterns._api.config import APIOrchestrationConfig
from patterns._api.errors import PermanentCallError, TransientCallError
from patterns._recovery.retry import first_needs_no_state
from patterns.error_recovery import (
    CallNotPermittedError,
    CircuitBreaker,
    CircuitBreakerConfig,
    RateLimiter,
    RetryConfig,
    RetryPolicy,
)


class EndpointPolicy:
    """Retry + limiters + breaker of one endpoint, bound where the calls run.

    A process-scope breaker is made by ``make_breaker(name=...)`` at the endpoint's first
    failed call: its rule (``failure_threshold`` failures in a row) reads nothing from the
    successes before that, so a run of thousands of endpoints that succeed builds no breakers
    at all. The ``RetryPolicy`` is made at the first failed attempt (or when ``retry`` is
    read): until then the first attempts that succeed are only counted."""

    __slots__ = ("name", "retry_config", "direct_first", "limiters", "breaker", "make_breaker",
                 "_retry", "_first_ok")

    def __init__(self, name: str, retry_config: RetryConfig, limiters: list[RateLimiter],
                 breaker: CircuitBreaker | None,
                 make_breaker: Callable[..., CircuitBreaker] | None = None, *,
                 direct_first: bool | None = None) -> None:
        self.name = name
        self.retry_config = retry_config
        #: whether the first attempt may run without retry state (``RetryPolicy.direct_first``)
        self.direct_first = (first_needs_no_state(retry_config) if direct_first is None
                             else direct_first)
        self.limiters = limiters
        self.breaker = breaker
        self.make_breaker = make_breaker
        self._retry: RetryPolicy | None = None
        self._first_ok = 0

    @property
    def retry(self) -> RetryPolicy:
        """The endpoint's ``RetryPolicy`` (its ``metrics`` count every call made so far)."""
        retry = self._retry
        if retry is None:
            retry = self._retry = RetryPolicy(self.retry_config, name=self.name)
            retry.first_succeeded(self._first_ok)
            self._first_ok = 0
        return retry

    def slow_down(self, seconds: float | None) -> None:
        """A 429 said to come back in ``seconds``: pause the limiters that apply."""
        if seconds:
            for limiter in self.limiters:
                limiter.pause(seconds)

    async def _attempt(self, call: EndpointCall, session: Any, url: str, kw: dict[str, Any],
                       outcome: Any) -> Any:
        for limiter in self.limiters:
            if not limiter.take_now():
                await limiter.acquire()
        return await call.attempt(session, url, kw, outcome, self.slow_down)

    async def run(self, call: EndpointCall, session: Any, url: str, kw: dict[str, Any],
                  outcome: Any) -> Any:
        """The parsed body of the first good attempt; raises the last error when retries are
        spent or the error is not retried, ``CircuitOpenError`` while the breaker is open."""
        if self.breaker is not None:
            return await self.breaker.call(self.retry.run, self._attempt,
                                           (call, session, url, kw, outcome), {})
        started = time.monotonic() if self.make_breaker is not None else 0.0
        try:
            if not self.direct_first:
                return await self.retry.run(self._attempt, (call, session, url, kw, outcome), {})
            # retry.run's first attempt, inline (no retry state, two coroutines fewer)
            try:
                for limiter in self.limiters:
                    if not limiter.take_now():
                        await limiter.acquire()
                result = await call.attempt(session, url, kw, outcome, self.slow_down)
            except Exception as exc:
                failed = exc
            else:
                if self._retry is None:
                    self._first_ok += 1
                else:
                    self._retry.first_succeeded()
                return result
            return await self.retry.after_failed_first(failed, self._attempt,
                                                       (call, session, url, kw, outcome), {})
        except TransientCallError as exc:  # the first failure a breaker would count
            if self.make_breaker is None:
                raise
            if self.breaker is None:
                self.breaker = self.make_breaker(name=self.name)
            breaker = self.breaker
            try:
                permit = await breaker.acquire()
            except CallNotPermittedError:  # opened by a call that failed meanwhile
                raise exc from None
            breaker.record(permit, exc, time.monotonic() - started)
            raise


def _limiter_scope(config: APIOrchestrationConfig) -> str:
    """Where the run's named limiters live: under ``scope="auto"`` the cluster whenever this
    process is connected to Ray (one limiter per name across orchestrators, modes, actors
    and drivers), else the process."""
    ray = sys.modules.get("ray")
    if config.scope == "auto" and ray is not None and ray.is_initialized():
        return "cluster"
    return config.limit_scope


class Limits:
    """The policies of one config, built where its calls run (a worker actor builds its own
    from the config)."""

    def __init__(self, config: APIOrchestrationConfig, *, scope: str | None = None) -> None:
        self.config = config
        self.scope = scope or _limiter_scope(config)
        self.breaker_scope = "cluster" if (scope or config.scope) == "cluster" else "process"
        self._policies: dict[str, EndpointPolicy] | None = None

    def name(self, endpoint: str | None = None) -> str:
        """The policy name of the run (or of one endpoint); no '/' (it names an actor)."""
        base = "api." + self.config.name.replace("/", "_")
        return base if endpoint is None else f"{base}.{endpoint.replace('/', '_')}"

    def _limiter(self, name: str, per_second: float, burst: int | None) -> RateLimiter:
        return RateLimiter(per_second, burst=burst, name=name, scope=self.scope,  # type: ignore[arg-type]
                           group=self.name())

    def policies(self) -> dict[str, EndpointPolicy]:
        """One ``EndpointPolicy`` per endpoint (made once; they keep their state across runs)."""
        if self._policies is not None:
            return self._policies
        config = self.config
        rate = config.global_rate()
        #: the run's limiter, one list for every endpoint without a limiter of its own
        shared: list[RateLimiter] = ([] if rate is None
                                     else [self._limiter(self.name(), rate, config.burst)])
        policies = {}
        threshold = config.breaker_threshold()
        breaker_config = None if threshold is None else CircuitBreakerConfig(
            failure_threshold=threshold, window_size=max(10, 2 * threshold),
            timeout=config.circuit_breaker_timeout, record_exceptions=(TransientCallError,),
            ignore_exceptions=(PermanentCallError,))  # one for every endpoint's breaker
        group = self.name()  # one policy actor per run
        make_breaker = None if breaker_config is None else partial(
            CircuitBreaker, breaker_config, scope=self.breaker_scope, group=group)
        shared_breakers = make_breaker is not None and self.breaker_scope == "cluster"
        direct: dict[int, bool] = {}  # by retry config (endpoints share them)
        for endpoint in config.endpoints:
            name = f"{group}.{endpoint.name.replace('/', '_')}"  # self.name(endpoint.name)
            limiters = shared
            if endpoint.rate_limit is not None:
                limiters = [*shared, self._limiter(
                    name, endpoint.rate_limit / config.rate_limit_window, endpoint.burst_limit)]
            retry = endpoint.retry
            first = direct.get(id(retry))
            if first is None:
                first = direct[id(retry)] = first_needs_no_state(retry)
            if shared_breakers:  # shared state: consulted from the start
                policy = EndpointPolicy(name, retry, limiters, make_breaker(name=name),  # type: ignore[misc]
                                        direct_first=first)
            else:
                policy = EndpointPolicy(name, retry, limiters, None, make_breaker,
                                        direct_first=first)
            policies[endpoint.name] = policy
        self._policies = policies
        return policies

    def metrics(self) -> dict[str, Any]:
        """Limiter and breaker figures by policy name (empty before the first run)."""
        out: dict[str, Any] = {}
        for name, policy in (self._policies or {}).items():
            for limiter in policy.limiters:
                if limiter.name not in out:
                    out[limiter.name] = limiter.metrics()
            if policy.breaker is not None:
                out[f"{policy.breaker.name}/circuit_breaker"] = policy.breaker.metrics()
            out[f"{self.name(name)}/retry"] = policy.retry.metrics()
        return out

    async def close(self) -> None:
        closed: set[int] = set()  # the run's limiter is shared by every endpoint
        for policy in (self._policies or {}).values():
            if policy.breaker is not None:
                await policy.breaker.close()
            for limiter in policy.limiters:
                close = getattr(limiter, "close", None)
                if close is not None and id(limiter) not in closed:
                    closed.add(id(limiter))
                    await close()
        self._policies = None
