"""``Bulkhead``: at most N calls at once, a bounded queue, a max wait.

``PermitWaiters`` is the async driver of a ``PermitBook``; it is safe across threads and event
loops (the cluster actor serves acquires and releases on two concurrency groups, each with its
own loop), so a grant is handed to a waiter's own loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from collections.abc import Callable
from typing import Any

from patterns._recovery import backends
from patterns._recovery.bulkhead_core import PermitBook
from patterns._recovery.errors import BulkheadFullError
from patterns._recovery.invoke import invoke
from patterns._recovery.policy_config import BulkheadConfig, Scope

_DEFAULT = object()


class PermitWaiters:
    """Acquire and release permits of a ``PermitBook`` from any thread or loop."""

    def __init__(self, book: PermitBook, name: str,
                 on_change: Callable[[], Any] | None = None) -> None:
        self.book = book
        self.name = name
        self.lock = threading.Lock()
        self._waiters: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future[str]]] = {}
        self._ids = itertools.count(1)
        self._on_change = on_change

    async def acquire(self, holder: str | None, timeout: float | None) -> str:
        """A lease id; raises ``BulkheadFullError`` when the queue is full or the wait ends."""
        loop = asyncio.get_running_loop()
        with self.lock:
            lease = self.book.try_acquire(holder)
            if lease is None:
                waiter = f"w{next(self._ids)}"
                if timeout == 0 or not self.book.enqueue(waiter, holder):
                    if timeout == 0:
                        self.book.rejected += 1
                    raise self._full("its queue is full" if timeout != 0 else "no permit free")
                future: asyncio.Future[str] = loop.create_future()
                self._waiters[waiter] = (loop, future)
        if lease is not None:
            self._changed()
            return lease
        try:
            return await asyncio.wait_for(future, timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            with self.lock:
                if self.book.cancel(waiter, timed_out=isinstance(exc, TimeoutError)):
                    self._waiters.pop(waiter, None)
            # a grant already on its way sees the cancelled future and gives the lease back
            if isinstance(exc, TimeoutError):
                raise self._full(f"no permit within {timeout:g}s (queue_timeout)") from None
            raise

    def release(self, lease: str) -> None:
        """End ``lease`` and hand freed permits to the longest waiters."""
        with self.lock:
            self._hand_out(self.book.release(lease))
        self._changed()

    def release_holder(self, holder: str) -> int:
        """End every lease of a holder that died; how many."""
        with self.lock:
            count, grants = self.book.release_holder(holder)
            self._hand_out(grants)
        self._changed()
        return count

    def _hand_out(self, grants: list[tuple[str, str]]) -> None:
        for waiter, lease in grants:
            loop, future = self._waiters.pop(waiter)
            loop.call_soon_threadsafe(self._deliver, future, lease)

    def _deliver(self, future: asyncio.Future[str], lease: str) -> None:
        if future.done():  # its waiter gave up meanwhile
            self.release(lease)
        else:
            future.set_result(lease)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _full(self, why: str) -> BulkheadFullError:
        m = self.book.metrics()
        return BulkheadFullError(
            f"bulkhead {self.name!r}: call refused, {why} ({m['active']}/{m['max_concurrent']} "
            f"running, {m['queued']}/{m['max_queue']} queued); raise max_concurrent, "
            "max_queue_size or queue_timeout, or send fewer calls at once",
            policy=self.name, **{k: m[k] for k in ("active", "max_concurrent", "queued")})

    def metrics(self) -> dict[str, Any]:
        with self.lock:
            return self.book.metrics()


class Bulkhead:
    """At most ``max_concurrent`` calls at once (see ``BulkheadConfig``).

    ``await bulkhead.execute(fn, *args)`` (alias ``call``) runs ``fn`` holding a permit;
    ``lease = await acquire()`` / ``release(lease)`` for other drivers. ``scope="cluster"``
    (with ``name``) shares the permits with every process: a permit is a lease of the calling
    process, freed when that process dies.
    """

    def __init__(self, config: BulkheadConfig | dict[str, Any] | None = None, *,
                 name: str | None = None, scope: Scope = "process", group: str | None = None,
                 **fields: Any) -> None:
        self.config = config = BulkheadConfig.given(config, fields)
        self.name = name or "bulkhead"
        self.scope = scope
        self._threads = (concurrent.futures.ThreadPoolExecutor(config.thread_pool_size,
                                                               f"bulkhead-{self.name}")
                         if config.use_thread_pool else None)
        self._impl: backends.BulkheadBackend = backends.create(
            "bulkhead", scope, config, name if scope == "cluster" else self.name, "Bulkhead",
            **({"group": group} if scope == "cluster" else {}))

    async def acquire(self, timeout: Any = _DEFAULT) -> str:
        """A permit's lease id; raises ``BulkheadFullError``."""
        wait = self.config.queue_timeout if timeout is _DEFAULT else timeout
        return await self._impl.acquire(None, wait)

    def release(self, lease: str) -> None:
        """Give the permit of ``lease`` back."""
        self._impl.release(lease)

    async def execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` holding a permit."""
        lease = await self.acquire()
        try:
            return await invoke(fn, args, kwargs, executor=self._threads)
        finally:
            self._impl.release(lease)

    call = execute

    def metrics(self) -> dict[str, Any]:
        """``available``, ``max_concurrent``, ``active``, ``queued``, ``max_queue``,
        ``executed``, ``rejected``, ``timeout``."""
        return self._impl.metrics()

    async def close(self) -> None:
        """Stop the thread pool (and, cluster scope, nothing else: leases end on release)."""
        if self._threads is not None:
            self._threads.shutdown(wait=False)

    def __repr__(self) -> str:
        return f"Bulkhead({self.name!r}, max_concurrent={self.config.max_concurrent}, " \
               f"scope={self.scope})"


backends.register("bulkhead", "process", lambda config, name: PermitWaiters(
    PermitBook(config.max_concurrent, config.max_queue_size), name))
