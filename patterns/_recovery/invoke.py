"""Calling whatever the user gave: sync callables, async callables, coroutine functions.

A sync callable runs inline when no timeout applies (the cheapest path), and on a worker
thread when one does, so the wait can end on time; a thread cannot be interrupted, so a
timed-out sync call finishes in the background and its result is dropped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
from collections.abc import Callable
from typing import Any

TimeoutFactory = Callable[[float], BaseException]


def is_async_callable(fn: Any) -> bool:
    """True for coroutine functions, bound async methods, partials of them and objects with
    an ``async def __call__``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = type(fn).__dict__.get("__call__") if not inspect.isroutine(fn) else None
    return call is not None and inspect.iscoroutinefunction(call)


async def invoke(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 timeout: float | None = None, on_timeout: TimeoutFactory | None = None,
                 executor: concurrent.futures.Executor | None = None) -> Any:
    """``fn(*args, **kwargs)``, awaited if it gives an awaitable, within ``timeout`` seconds.

    Past the timeout the call is cancelled and ``on_timeout(timeout)`` is raised (default
    ``TimeoutError``). ``executor`` runs sync callables (default: the loop's)."""
    if timeout is None and executor is None:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result
    try:
        async with asyncio.timeout(timeout) as scope:
            if is_async_callable(fn):
                return await fn(*args, **kwargs)
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(executor, functools.partial(fn, *args, **kwargs))
            if inspect.isawaitable(result):
                result = await result
            return result
    except TimeoutError:
        if scope.expired() and timeout is not None:
            raise (on_timeout(timeout) if on_timeout else TimeoutError(
                f"call did not finish within {timeout:g}s")) from None
        raise


_threads: concurrent.futures.ThreadPoolExecutor | None = None


def invoke_sync(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                timeout: float | None = None, on_timeout: TimeoutFactory | None = None) -> Any:
    """The sync counterpart of ``invoke`` for sync callables (a timed call runs on a thread)."""
    if timeout is None:
        return fn(*args, **kwargs)
    global _threads
    if _threads is None:
        _threads = concurrent.futures.ThreadPoolExecutor(16, "fsm-actors-recovery")
    future = _threads.submit(fn, *args, **kwargs)
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise (on_timeout(timeout) if on_timeout else TimeoutError(
            f"call did not finish within {timeout:g}s")) from None
