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
import concurrent.futures
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_THREAD_NAME = "fsm-actors-sync-bridge"
#: seconds a cancelled ``run_sync`` waits for the coroutine's own clean-up
CANCEL_GRACE = 30.0
#: how often a waiting ``run_sync`` wakes to let a pending Ctrl-C through
POLL = 0.1
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


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Start ``coro`` on the bridge loop without waiting (``asyncio.wrap_future`` awaits it
    from another loop)."""
    return asyncio.run_coroutine_threadsafe(coro, _background_loop())


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the bridge loop and return its result (re-raising its exception)."""
    if on_bridge_thread():
        coro.close()
        raise RuntimeError(
            "run_sync was called from the sync bridge's own loop, where it would wait on "
            "itself; await the coroutine there instead (or run this code in a worker thread)"
        )
    settled = threading.Event()
    future = asyncio.run_coroutine_threadsafe(_settling(coro, settled), _background_loop())
    try:
        return _wait(future, timeout)
    except BaseException:
        future.cancel()
        # Let the coroutine run its clean-up (an interrupted job stops its workers and drops
        # its temp files) before the caller goes on, or the process exits under it.
        end = time.monotonic() + CANCEL_GRACE
        while not settled.wait(POLL) and time.monotonic() < end:
            pass
        raise


def _wait(future: concurrent.futures.Future[T], timeout: float | None) -> T:
    """``future.result(timeout)`` in short waits: Python runs signal handlers only in the
    main thread and only between bytecodes, and a Ctrl-C that the kernel hands to another
    thread does not wake a blocked wait, so a single long wait would not see it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        step = POLL if deadline is None else min(POLL, max(0.0, deadline - time.monotonic()))
        done, _ = concurrent.futures.wait([future], step)
        if done:  # its own TimeoutError, if it raised one, is the caller's to see
            return future.result()
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"no result within {timeout} seconds")


async def _settling(coro: Coroutine[Any, Any, T], settled: threading.Event) -> T:
    try:
        return await coro
    finally:
        settled.set()


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Drive an async iterator from sync code, one item per step."""
    loop = _background_loop()
    try:
        while True:
            future = asyncio.run_coroutine_threadsafe(agen.__anext__(), loop)
            try:
                yield _wait(future, None)
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
