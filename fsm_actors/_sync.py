"""The sync bridge: run async code from synchronous code, the one way the project does it.

A single daemon thread per process runs an event loop; sync facades submit coroutines to it,
and so does the engine for async user functions (the same loop every call, so resources an
async function binds to its loop keep working). This works the same whether or not the
caller already has a running loop (scripts, Jupyter, pytest, a Ray actor). The one thing it
cannot do is wait on itself: code running on the bridge loop must ``await``, not call
``run_sync``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_THREAD_NAME = "fsm-actors-sync-bridge"
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name=_THREAD_NAME, daemon=True
            )
            thread.start()
            _loop = loop
        return _loop


def on_bridge_thread() -> bool:
    """True when called from the bridge loop's own thread."""
    return threading.current_thread().name == _THREAD_NAME


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the bridge loop and return its result (re-raising its exception)."""
    if on_bridge_thread():
        coro.close()
        raise RuntimeError(
            "run_sync was called from the sync bridge's own loop, where it would wait on "
            "itself; await the coroutine there instead (or run this code in a worker thread)"
        )
    future = asyncio.run_coroutine_threadsafe(coro, _background_loop())
    try:
        return future.result(timeout)
    except BaseException:
        future.cancel()
        raise


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Drive an async iterator from sync code, one item per step."""
    loop = _background_loop()
    try:
        while True:
            future = asyncio.run_coroutine_threadsafe(agen.__anext__(), loop)
            try:
                yield future.result()
            except StopAsyncIteration:
                return
    finally:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None:
            asyncio.run_coroutine_threadsafe(aclose(), loop).result()


async def aiter_any(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    """Iterate a sync or an async iterable the same way."""
    if hasattr(items, "__aiter__"):
        async for item in items:  # type: ignore[union-attr]
            yield item
    else:
        for item in items:  # type: ignore[union-attr]
            yield item
