"""``ErrorRecoveryWorkflow``: the chosen policies composed around one call.

The wrap order is fixed (outermost first), whichever policy is primary::

    FALLBACK > CACHE > DEADLINE > COMPENSATE > RETRY > CIRCUIT_BREAKER > RATE_LIMIT > BULKHEAD > call

So a cache hit skips everything; the fallback also answers for a passed deadline, an open
breaker or a full bulkhead; the deadline bounds all retries and cancels the running attempt;
every retry attempt passes the breaker, takes a rate-limit token and holds a bulkhead permit
only while it runs (not while it waits to retry). One async implementation; ``execute_sync``
runs it through the sync bridge.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fsm_actors.platform.event_loop import run_sync
from patterns._recovery.breaker import CircuitBreaker
from patterns._recovery.bulkhead import Bulkhead
from patterns._recovery.cache import MISS, TTLCache, call_key
from patterns._recovery.errors import (
    AttemptTimeout,
    DeadlineExceeded,
    SagaFailed,
)
from patterns._recovery.invoke import invoke
from patterns._recovery.limiter import RateLimiter
from patterns._recovery.metrics import WorkflowCounts
from patterns._recovery.policy_config import RecoveryStrategy as S
from patterns._recovery.retry import RetryPolicy
from patterns._recovery.saga import SagaStep, as_steps, compensate, run_saga
from patterns._recovery.workflow_config import ErrorRecoveryConfig

log = logging.getLogger(__name__)

#: Outermost first; ``call`` is innermost.
WRAP_ORDER = (S.FALLBACK, S.CACHE, S.DEADLINE, S.COMPENSATE, S.RETRY, S.CIRCUIT_BREAKER,
              S.RATE_LIMIT, S.BULKHEAD)


@dataclass(slots=True)
class _Call:
    """One execution on its way through the layers."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    deadline: float | None = None


Layer = Callable[[_Call], Awaitable[Any]]


class ErrorRecoveryWorkflow:
    """Runs calls under the policies of an ``ErrorRecoveryConfig`` (see the module docstring).

    ``await execute(func, *args, **kwargs)`` takes sync callables, async callables and
    coroutine functions (``processor.process``); ``execute_sync`` is for sync code;
    ``await execute_saga(steps, *args)`` runs a saga and returns what ran. ``get_metrics()``
    gives the seed's keys (``total_attempts`` = calls of the function, ``success_rate``,
    ``avg_retry_count``), dataknobs' keys (``attempts`` = retries, ``successes``,
    ``failures``, ``fallbacks``, ``compensations``) and one dict per policy. An execution
    the fallback answered counts as a success and a fallback. Counts are exact for calls
    from one event loop at a time.
    """

    def __init__(self, config: ErrorRecoveryConfig | dict[str, Any], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(config, dict):
            config = ErrorRecoveryConfig(**config)
        self.config = config
        self._clock = clock
        self._m = WorkflowCounts()
        self.strategies = config.strategies
        name, scope = config.name, config.scope
        on = self.strategies.__contains__
        self.retry = RetryPolicy(config.effective_retry(), name=f"{name}/retry",
                                 clock=clock) if on(S.RETRY) else None
        self.breaker = CircuitBreaker(config.circuit_breaker_config, name=name, scope=scope,
                                      clock=clock) if on(S.CIRCUIT_BREAKER) else None
        self.limiter = RateLimiter(config=config.rate_limit_config, name=name,
                                   scope=scope) if on(S.RATE_LIMIT) else None
        self.bulkhead = Bulkhead(config.bulkhead_config, name=name,
                                 scope=scope) if on(S.BULKHEAD) else None
        cache = config.cache_config
        self.cache = TTLCache(cache.ttl if cache else 300.0, cache.max_entries if cache else 1024,
                              clock) if on(S.CACHE) else None
        fallback = config.fallback_config
        self._last_good = TTLCache(fallback.cache_ttl, 1024, clock) \
            if fallback is not None and fallback.use_cache else None
        compensation = config.compensation_config
        self._compensation_retry = RetryPolicy(
            compensation.compensation_retry if compensation else None,
            name=f"{name}/compensation", clock=clock)
        self._attempt_timeout = self.retry.config.attempt_timeout if self.retry else None
        self._chain = self._build()

    # -- the layers ----------------------------------------------------------------------
    def _build(self) -> Layer:
        layer: Layer = self._call
        builders = {S.FALLBACK: self._fallback, S.CACHE: self._cached, S.DEADLINE: self._deadline,
                    S.COMPENSATE: self._compensate, S.RETRY: self._retried,
                    S.CIRCUIT_BREAKER: self._broken, S.RATE_LIMIT: self._limited,
                    S.BULKHEAD: self._bulkheaded}
        for strategy in reversed(WRAP_ORDER):
            if strategy in self.strategies:
                layer = builders[strategy](layer)
        return layer

    async def _call(self, c: _Call) -> Any:
        self._m.calls += 1
        attempt = self._attempt_timeout
        if c.deadline is None and attempt is None:
            return await invoke(c.fn, c.args, c.kwargs)
        # with a time limit a sync callable runs on a thread, so the wait for it can end
        left = None if c.deadline is None else c.deadline - self._clock()
        if left is not None and left <= 0:
            raise self._deadline_error()
        if attempt is not None and (left is None or attempt < left):
            return await invoke(c.fn, c.args, c.kwargs, attempt, self._attempt_error)
        return await invoke(c.fn, c.args, c.kwargs, left, lambda _: self._deadline_error())

    def _attempt_error(self, timeout: float) -> AttemptTimeout:
        return AttemptTimeout(f"{self.config.name}: an attempt did not finish within "
                              f"{timeout:g}s (attempt_timeout)",
                              policy=f"{self.config.name}/retry", timeout=timeout)

    def _retried(self, inner: Layer) -> Layer:
        retry = self.retry
        assert retry is not None

        async def layer(c: _Call) -> Any:
            return await retry.run(inner, (c,), {}, c.deadline)
        return layer

    def _broken(self, inner: Layer) -> Layer:
        breaker, clock = self.breaker, self._clock
        assert breaker is not None

        async def layer(c: _Call) -> Any:
            permit = await breaker.acquire()
            start = clock()
            try:
                result = await inner(c)
            except BaseException as exc:
                breaker.record(permit, exc, clock() - start)
                await breaker.settle(exc)
                raise
            breaker.record(permit, None, clock() - start)
            return result
        return layer

    def _limited(self, inner: Layer) -> Layer:
        limiter = self.limiter
        assert limiter is not None

        async def layer(c: _Call) -> Any:
            timeout = limiter.config.acquire_timeout
            if c.deadline is not None:
                left = max(0.0, c.deadline - self._clock())
                timeout = left if timeout is None else min(timeout, left)
            await limiter.acquire(timeout=timeout)
            return await inner(c)
        return layer

    def _bulkheaded(self, inner: Layer) -> Layer:
        bulkhead = self.bulkhead
        assert bulkhead is not None

        async def layer(c: _Call) -> Any:
            lease = await bulkhead.acquire()
            try:
                return await inner(c)
            finally:
                bulkhead.release(lease)
        return layer

    def _deadline(self, inner: Layer) -> Layer:
        budget = self.config.global_timeout

        async def layer(c: _Call) -> Any:
            own = self._clock() + budget
            c.deadline = own if c.deadline is None else min(c.deadline, own)
            try:
                async with asyncio.timeout(budget) as scope:
                    return await inner(c)
            except DeadlineExceeded:
                self._m.deadlines_exceeded += 1
                raise
            except TimeoutError:
                if scope.expired():
                    self._m.deadlines_exceeded += 1
                    raise self._deadline_error() from None
                raise
        return layer

    def _deadline_error(self) -> DeadlineExceeded:
        budget = self.config.global_timeout
        return DeadlineExceeded(
            f"{self.config.name}: the execution ran past its {budget:g}s budget "
            "(global_timeout) and its running attempt was cancelled; raise global_timeout or "
            "make the call faster", policy=f"{self.config.name}/deadline", budget=budget)

    def _compensate(self, inner: Layer) -> Layer:
        config = self.config.compensation_config
        assert config is not None
        steps = [SagaStep(f"compensation_{i}", _no_action, action)
                 for i, action in enumerate(config.compensation_actions)]

        async def layer(c: _Call) -> Any:
            saved = _saved_state(c) if config.save_state else None
            try:
                return await inner(c)
            except Exception as exc:
                result: dict[str, Any] = {
                    "status": "compensated", "completed": [s.name for s in steps],
                    "failed_step": getattr(c.fn, "__name__", "call"),
                    "error": f"{type(exc).__name__}: {exc}", "compensated": [],
                    "compensation_errors": {}, "results": {}}
                if config.on_compensation_start is not None:
                    config.on_compensation_start(result["failed_step"], result["completed"])
                state = dict(saved, error=exc) if saved is not None else None
                await compensate([(s, state) for s in steps], self._compensation_retry, result)
                self._m.compensations += len(result["compensated"])
                if config.on_compensation_complete is not None:
                    config.on_compensation_complete(result)
                raise SagaFailed(
                    f"{self.config.name}: the call failed ({result['error']}); ran "
                    f"{len(result['compensated'])} of {len(steps)} compensation(s)",
                    policy=f"{self.config.name}/compensate", result=result) from exc
        return layer

    def _cached(self, inner: Layer) -> Layer:
        cache = self.cache
        assert cache is not None
        keyer = self.config.cache_config.key_function if self.config.cache_config else None

        async def layer(c: _Call) -> Any:
            key = keyer(*c.args, **c.kwargs) if keyer else call_key(c.fn, c.args, c.kwargs)
            hit = cache.get(key)
            if hit is not MISS:
                return hit
            result = await inner(c)
            cache.put(key, result)
            return result
        return layer

    def _fallback(self, inner: Layer) -> Layer:
        config = self.config.fallback_config
        assert config is not None
        kinds = config.fallback_on_exceptions or (Exception,)
        last_good = self._last_good

        async def layer(c: _Call) -> Any:
            key = call_key(c.fn, c.args, c.kwargs) if last_good is not None else None
            try:
                result = await inner(c)
            except Exception as exc:
                timeout = isinstance(exc, TimeoutError | AttemptTimeout | DeadlineExceeded)
                if not isinstance(exc, kinds) or (timeout and not config.fallback_on_timeout):
                    raise
                self._m.fallbacks += 1
                if last_good is not None:
                    cached = last_good.get(key)
                    if cached is not MISS:
                        return cached
                return await _fallback_answer(config, c, exc)
            if last_good is not None:
                last_good.put(key, result)
            return result
        return layer

    # -- the public calls ----------------------------------------------------------------
    async def execute(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)`` under the policies; its result or the final error."""
        m = self._m
        m.executions += 1
        start = self._clock()
        try:
            result = await self._chain(_Call(func, args, kwargs))
        except Exception as exc:
            m.failures += 1
            m.consecutive_failures += 1
            self._log_failure(exc)
            raise
        else:
            m.successes += 1
            m.consecutive_failures = 0
            return result
        finally:
            m.last_execution_time = self._clock() - start
            m.total_execution_time += m.last_execution_time

    def execute_sync(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``execute`` from sync code."""
        return run_sync(self.execute(func, *args, **kwargs))

    async def execute_saga(self, steps: Sequence[SagaStep | tuple[Any, ...] | dict[str, Any]],
                           *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run a saga: each step's action with ``args``; on failure the completed steps'
        compensations in reverse order, each retried. Returns what ran (see
        ``patterns._recovery.saga``); never raises for a failed step."""
        config = self.config.compensation_config
        timeout = config.saga_timeout if config else None
        self._m.executions += 1
        async with asyncio.timeout(timeout):
            result, _ = await run_saga(
                as_steps(steps), args, kwargs, self._compensation_retry,
                config.on_compensation_start if config else None,
                config.on_compensation_complete if config else None)
        self._m.compensations += len(result["compensated"])
        if result["status"] == "completed":
            self._m.successes += 1
        else:
            self._m.failures += 1
        return result

    def _log_failure(self, exc: BaseException) -> None:
        m, config = self._m, self.config
        if config.log_errors:
            log.warning("%s: execution failed: %s: %s", config.name, type(exc).__name__, exc)
        if m.consecutive_failures == config.alert_threshold:
            log.error("%s: %d executions in a row failed (alert_threshold)", config.name,
                      m.consecutive_failures)

    # -- reports -------------------------------------------------------------------------
    def get_metrics(self) -> dict[str, Any]:
        """The seed's, dataknobs' and per-policy figures (see the class docstring)."""
        retries = self.retry.core.stats.retries if self.retry else 0
        out = {"name": self.config.name, **self._m.summary(retries),
               "strategies": sorted(s.value for s in self.strategies)}
        if self.retry:
            out["retry"] = self.retry.metrics()
        if self.breaker:
            out["circuit_breaker"] = self.breaker.metrics()
        if self.bulkhead:
            out["bulkhead"] = self.bulkhead.metrics()
        if self.limiter:
            out["rate_limiter"] = self.limiter.metrics()
        if self.cache:
            out["cache"] = self.cache.metrics()
        if S.DEADLINE in self.strategies:
            out["deadline"] = {"budget": self.config.global_timeout,
                               "exceeded": self._m.deadlines_exceeded}
        return out

    def reset_metrics(self) -> None:
        """Zero the workflow's own counts (policy state is kept)."""
        self._m = WorkflowCounts()

    async def close(self) -> None:
        """Flush cluster reports and stop timers and thread pools."""
        for policy in (self.breaker, self.bulkhead, self.limiter):
            if policy is not None:
                await policy.close()

    def __repr__(self) -> str:
        return f"ErrorRecoveryWorkflow({self.config.name!r}, " \
               f"{', '.join(s.value for s in WRAP_ORDER if s in self.strategies)})"


def _no_action() -> None:
    return None


def _saved_state(c: _Call) -> dict[str, Any]:
    """The call's arguments before it ran (deep copies where they can be made)."""
    try:
        return {"args": copy.deepcopy(c.args), "kwargs": copy.deepcopy(c.kwargs)}
    except Exception:
        return {"args": c.args, "kwargs": dict(c.kwargs)}


_ERROR_NAMES = frozenset({"e", "err", "error", "exc", "exception"})


def takes_error(fn: Callable[..., Any], call_args: int) -> bool:
    """True when ``fn`` is a dataknobs-style ``fallback(e)`` (see ``FallbackConfig``)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) != 1 or any(p.kind is p.VAR_POSITIONAL for p in params):
        return False
    first = positional[0]
    hint = first.annotation
    if isinstance(hint, type) and issubclass(hint, BaseException):
        return True
    if isinstance(hint, str) and ("Exception" in hint or "Error" in hint):
        return True
    return first.name in _ERROR_NAMES or call_args != 1


async def _fallback_answer(config: Any, c: _Call, error: BaseException) -> Any:
    if config.fallback_function is not None:
        fn = config.fallback_function
        if takes_error(fn, len(c.args) + len(c.kwargs)):
            return await invoke(fn, (error,), {})
        return await invoke(fn, c.args, c.kwargs)
    service = config.fallback_service
    if service is not None:
        target = getattr(service, "execute", None) or getattr(service, "call", None) or service
        return await invoke(target, c.args, c.kwargs)
    return config.fallback_value
