"""The bulkhead's permit book: leases by holder and a bounded FIFO queue (plain core).

``try_acquire(holder)`` grants a lease id or answers ``None`` (at the limit); the driver then
``enqueue``s a waiter (refused when the queue is full) and waits for ``release`` to hand it a
lease (``release`` returns the ``(waiter, lease)`` grants it made). ``release_holder`` frees
every lease of a holder that died. Not thread-safe: drivers hold a lock.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any


class PermitBook:
    """``max_concurrent`` permits and up to ``max_queue`` waiters (see the module docstring)."""

    def __init__(self, max_concurrent: int, max_queue: int) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self._leases: dict[str, str | None] = {}  # lease id -> holder
        self._queue: OrderedDict[str, str | None] = OrderedDict()  # waiter id -> holder
        self._ids = itertools.count(1)
        self._prefix = ""
        self.acquired = 0
        self.rejected = 0
        self.timed_out = 0

    def _grant(self, holder: str | None) -> str:
        lease = f"{self._prefix}{next(self._ids)}"
        self._leases[lease] = holder
        self.acquired += 1
        return lease

    def try_acquire(self, holder: str | None = None) -> str | None:
        """A lease id, or ``None`` when every permit is held (or others wait before you)."""
        if len(self._leases) < self.max_concurrent and not self._queue:
            return self._grant(holder)
        return None

    def enqueue(self, waiter: str, holder: str | None = None) -> bool:
        """Queue ``waiter``; False (rejected) when the queue is full."""
        if len(self._queue) >= self.max_queue:
            self.rejected += 1
            return False
        self._queue[waiter] = holder
        return True

    def cancel(self, waiter: str, timed_out: bool = True) -> bool:
        """Take ``waiter`` out of the queue; False when it was already granted."""
        if self._queue.pop(waiter, _MISSING) is _MISSING:
            return False
        if timed_out:
            self.timed_out += 1
        return True

    def release(self, lease: str) -> list[tuple[str, str]]:
        """End ``lease``; the ``(waiter, lease)`` grants made to queued waiters."""
        if self._leases.pop(lease, _MISSING) is _MISSING:
            return []
        return self._fill()

    def release_holder(self, holder: str) -> tuple[int, list[tuple[str, str]]]:
        """End every lease of ``holder``; how many, and the grants made."""
        mine = [lease for lease, h in self._leases.items() if h == holder]
        for lease in mine:
            del self._leases[lease]
        for waiter in [w for w, h in self._queue.items() if h == holder]:
            del self._queue[waiter]
        return len(mine), self._fill()

    def _fill(self) -> list[tuple[str, str]]:
        grants = []
        while self._queue and len(self._leases) < self.max_concurrent:
            waiter, holder = self._queue.popitem(last=False)
            grants.append((waiter, self._grant(holder)))
        return grants

    def holders(self) -> set[str]:
        return {h for h in self._leases.values() if h is not None} | {
            h for h in self._queue.values() if h is not None}

    def metrics(self) -> dict[str, Any]:
        """resilience4j's ``available``/``max`` plus queue and counts."""
        return {"available": self.max_concurrent - len(self._leases),
                "max_concurrent": self.max_concurrent, "active": len(self._leases),
                "queued": len(self._queue), "max_queue": self.max_queue,
                "executed": self.acquired, "rejected": self.rejected, "timeout": self.timed_out}

    def snapshot(self) -> dict[str, Any]:
        """The leases (id -> holder) and counts; waiters are not kept (their calls die with
        the actor and are retried by their callers)."""
        return {"leases": dict(self._leases), "acquired": self.acquired,
                "rejected": self.rejected, "timed_out": self.timed_out}

    def restore(self, snapshot: dict[str, Any], prefix: str) -> None:
        """Take over a ``snapshot``; new lease ids start with ``prefix`` so they never clash."""
        self._leases = dict(snapshot.get("leases", {}))
        self.acquired = int(snapshot.get("acquired", 0))
        self.rejected = int(snapshot.get("rejected", 0))
        self.timed_out = int(snapshot.get("timed_out", 0))
        self._prefix = prefix


_MISSING = object()
