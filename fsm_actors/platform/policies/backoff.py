"""The wait before each retry, by ``BackoffStrategy`` (plain core, injectable randomness).

``Backoff`` reads its rules from any object with the fields of ``BackoffRules`` (the
``RetryConfig`` of ``patterns.error_recovery``, the ``RetrySpec`` of ``retry_core``).
"""

from __future__ import annotations

import random
from enum import StrEnum
from typing import Protocol


class BackoffStrategy(StrEnum):
    """How the wait before retry ``n`` (1, 2, ...) grows; every one is capped at ``max_delay``.

    FIXED ``initial``; LINEAR ``initial * n``; EXPONENTIAL ``initial * multiplier**(n-1)``;
    RANDOM uniform in ``[initial, max_delay]``; JITTER the exponential delay ``e`` jittered:
    ``full`` uniform in ``[0, e]``, ``equal`` ``e/2 + uniform[0, e/2]``, ``range``
    ``e * uniform[1-r, 1+r]`` with ``r = jitter_range``; DECORRELATED uniform in
    ``[initial, 3 * previous]``.
    """

    FIXED = "fixed"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"
    RANDOM = "random"
    JITTER = "jitter"
    DECORRELATED = "decorrelated"


class BackoffRules(Protocol):
    """The fields a ``Backoff`` reads."""

    backoff_strategy: BackoffStrategy
    initial_delay: float
    max_delay: float
    backoff_multiplier: float
    jitter: str
    jitter_range: float


def exponential_delay(initial: float, multiplier: float, max_delay: float, n: int) -> float:
    """``initial * multiplier**(n-1)`` capped at ``max_delay`` (no overflow for a huge ``n``)."""
    exponent = min(n - 1, 1024)
    try:
        return min(max_delay, initial * multiplier ** exponent)
    except OverflowError:
        return max_delay


class Backoff:
    """Delays for retries 1, 2, ... of one execution; ``next()`` gives the next one.

    One instance per execution: DECORRELATED remembers the previous delay. Every delay is in
    ``[0, max_delay]``. Not thread-safe.
    """

    __slots__ = ("_config", "_rng", "_retry", "_previous")

    def __init__(self, config: BackoffRules, rng: random.Random | None = None) -> None:
        self._config = config
        self._rng = rng or random
        self._retry = 0
        self._previous = config.initial_delay

    def next(self) -> float:
        """The wait before the next retry, in seconds."""
        self._retry += 1
        c = self._config
        n = self._retry
        s = c.backoff_strategy
        if s is BackoffStrategy.FIXED:
            delay = c.initial_delay
        elif s is BackoffStrategy.LINEAR:
            delay = c.initial_delay * n
        elif s is BackoffStrategy.EXPONENTIAL:
            delay = self._exponential(n)
        elif s is BackoffStrategy.RANDOM:
            delay = self._rng.uniform(c.initial_delay, c.max_delay)
        elif s is BackoffStrategy.JITTER:
            delay = self._jittered(min(self._exponential(n), c.max_delay))
        else:  # DECORRELATED (the AWS architecture blog's "decorrelated jitter")
            delay = self._rng.uniform(c.initial_delay, max(c.initial_delay, self._previous * 3))
        delay = min(delay, c.max_delay)
        self._previous = delay
        return delay

    def _exponential(self, n: int) -> float:
        c = self._config
        return exponential_delay(c.initial_delay, c.backoff_multiplier, c.max_delay, n)

    def _jittered(self, delay: float) -> float:
        c = self._config
        if c.jitter == "full":
            return self._rng.uniform(0.0, delay)
        if c.jitter == "equal":
            return delay / 2 + self._rng.uniform(0.0, delay / 2)
        return delay * self._rng.uniform(1 - c.jitter_range, 1 + c.jitter_range)
