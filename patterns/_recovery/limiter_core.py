"""The token bucket as a reservation book (plain core, injectable clock).

``reserve(n)`` takes ``n`` tokens now, letting the balance go below zero, and answers how long
the caller must wait before using them (``0``: use them now) or ``None`` when that wait is
longer than ``max_wait`` (then nothing is taken). Reservations are first come first served,
so waiters never starve each other and no driver needs a wake-up list: it only sleeps for
the answer. Not thread-safe: drivers hold a lock around calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` saved up (the burst)."""

    __slots__ = ("rate", "capacity", "_clock", "_tokens", "_at", "granted", "refused")

    def __init__(self, rate: float, capacity: float,
                 clock: Callable[[], float] = time.monotonic, tokens: float | None = None) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity if tokens is None else tokens
        self._at = clock()
        self.granted = 0
        self.refused = 0

    def _refill(self) -> float:
        now = self._clock()
        if now > self._at:
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
        return now

    def reserve(self, n: float = 1, max_wait: float | None = None) -> float | None:
        """Take ``n`` tokens; the wait before using them, or ``None`` if over ``max_wait``."""
        now = self._clock()  # _refill, inlined: this is every call's path
        if now > self._at:
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
        after = self._tokens - n
        wait = 0.0 if after >= 0 else -after / self.rate
        if max_wait is not None and wait > max_wait:
            self.refused += 1
            return None
        self._tokens = after
        self.granted += int(n)
        return wait

    def take(self, n: float = 1) -> bool:
        """Take ``n`` tokens if they are there now (no wait, nothing owed); ``False`` leaves
        the bucket as it was (and counts no refusal)."""
        now = self._clock()
        if now > self._at:
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
        if self._tokens < n:
            return False
        self._tokens -= n
        self.granted += int(n)
        return True

    def cancel(self, n: float) -> None:
        """Give back a reservation that will not be used (its waiter gave up)."""
        self._refill()
        self._tokens = min(self.capacity, self._tokens + n)
        self.granted -= int(n)

    def pause(self, seconds: float) -> None:
        """Grant nothing new for ``seconds`` (a server said ``Retry-After``)."""
        self._refill()
        self._tokens = min(self._tokens, -seconds * self.rate)

    def available(self) -> float:
        """Tokens that can be taken now without waiting (negative: owed to waiters)."""
        self._refill()
        return self._tokens

    def snapshot(self) -> dict[str, Any]:
        """The state to restore from (``tokens`` at clock time ``at``)."""
        self._refill()
        return {"tokens": self._tokens, "at": self._at, "granted": self.granted}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Take over a ``snapshot`` made with the same kind of clock."""
        self._tokens = min(self.capacity, float(snapshot["tokens"]))
        self._at = float(snapshot["at"])
        self.granted = int(snapshot.get("granted", 0))
