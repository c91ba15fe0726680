"""``RetryPolicy``: the retry core with an async driver and a sync driver, each a few lines.

Thread- and task-safe: every call gets its own ``RetryState``.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from patterns._recovery.errors import AttemptTimeout, DeadlineExceeded
from patterns._recovery.invoke import invoke, invoke_sync
from patterns._recovery.policy_config import RetryConfig
from patterns._recovery.retry_core import Action, Kind, RetryCore, RetryState


def first_needs_no_state(config: RetryConfig) -> bool:
    """Whether a first attempt under ``config`` can run without retry state: no attempt or
    total timeout applies and no result is retried (``RetryPolicy.direct_first``)."""
    return (config.attempt_timeout is None and config.total_timeout is None
            and config.retry_on_result is None)


class RetryPolicy:
    """Calls a function again on failure, as its ``RetryConfig`` says.

    ``RetryPolicy(RetryConfig(...))``, ``RetryPolicy({"max_attempts": 5})`` or
    ``RetryPolicy(max_attempts=5)``. ``await call(fn, *args, **kwargs)`` takes sync and async
    callables; ``call_sync`` is for sync callables from sync code. ``clock``, ``sleep``
    (async) and ``rng`` are injectable for tests. The last error is re-raised with a note
    saying how many attempts were made.
    """

    def __init__(self, config: RetryConfig | dict[str, Any] | None = None, *,
                 name: str = "retry", clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 rng: random.Random | None = None, **fields: Any) -> None:
        self.config = config = RetryConfig.given(config, fields)
        self.name = name
        self.core = RetryCore(config, clock, rng)
        self._sleep = sleep
        self._direct_first = first_needs_no_state(config)

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with retries; its result, or its last error raised."""
        return await self.run(fn, args, kwargs)

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                  deadline: float | None = None) -> Any:
        """``call`` with the arguments as values and an outer ``deadline`` (clock time)."""
        if deadline is not None or not self.direct_first:
            return await self._drive(self.core.start(deadline), None, fn, args, kwargs)
        # The common case on a hot path: the first attempt is the call itself; the retry
        # state is made only when it fails (the decisions are the same).
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            failed = exc
        else:
            self.core.stats.successful_without_retry += 1
            return result
        return await self.after_failed_first(failed, fn, args, kwargs)

    @property
    def direct_first(self) -> bool:
        """Whether a driver may make the first attempt itself (no attempt or total timeout,
        no ``retry_on_result``), then report it with ``first_succeeded`` or
        ``after_failed_first``."""
        return self._direct_first

    def first_succeeded(self, times: int = 1) -> None:
        """The first attempt, made by the caller, succeeded (counted as ``run`` counts it;
        ``times`` such calls at once)."""
        self.core.stats.successful_without_retry += times

    async def after_failed_first(self, error: Exception, fn: Callable[..., Any],
                                 args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Go on as ``run`` would after its first attempt raised ``error``: retry ``fn`` as
        the config says, or raise. Only when ``direct_first``."""
        state = self.core.start(None)
        state.attempt_timeout()  # counts the attempt made
        return await self._drive(state, state.on_error(error), fn, args, kwargs)

    async def _drive(self, state: RetryState, action: Action | None, fn: Callable[..., Any],
                     args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Attempts and waits from ``state`` (``action``: the decision already made)."""
        while True:
            if action is None:
                timeout = state.attempt_timeout()
                try:
                    result = await invoke(fn, args, kwargs, timeout, self._timeout_error(state))
                except Exception as exc:
                    action = state.on_error(exc)
                else:
                    action = state.on_result(result)
            if action.kind is Kind.SLEEP:
                await self._sleep(action.delay)
                action = None
            elif action.kind is Kind.RETURN:
                return action.value
            else:
                raise action.error  # type: ignore[misc]

    def call_sync(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call`` for a sync callable from sync code (waits with ``time.sleep``)."""
        state = self.core.start()
        while True:
            timeout = state.attempt_timeout()
            try:
                result = invoke_sync(fn, args, kwargs, timeout, self._timeout_error(state))
            except Exception as exc:
                action = state.on_error(exc)
            else:
                action = state.on_result(result)
            if action.kind is Kind.SLEEP:
                time.sleep(action.delay)
            elif action.kind is Kind.RETURN:
                return action.value
            else:
                raise action.error  # type: ignore[misc]

    def _timeout_error(self, state: RetryState) -> Callable[[float], BaseException]:
        def make(timeout: float) -> BaseException:
            if state.deadline is not None and self.core.clock() >= state.deadline - 1e-3:
                return DeadlineExceeded(
                    f"{self.name}: the time budget ran out during attempt {state.attempts}",
                    policy=self.name, attempts=state.attempts)
            return AttemptTimeout(
                f"{self.name}: attempt {state.attempts} did not finish within {timeout:g}s "
                "(attempt_timeout)", policy=self.name, timeout=timeout, attempt=state.attempts)
        return make

    def metrics(self) -> dict[str, int]:
        """Executions by outcome (resilience4j's four counts) and the retries made."""
        return self.core.stats.as_dict()

    def __repr__(self) -> str:
        c = self.config
        return (f"RetryPolicy({self.name!r}, max_attempts={c.max_attempts}, "
                f"backoff={c.backoff_strategy.value})")
