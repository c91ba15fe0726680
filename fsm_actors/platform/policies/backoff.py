"""The wait before each retry, by ``BackoffStrategy`` (plain core, injectable randomness)."""

from __future__ import annotations

import random

from patterns._recovery.config import BackoffStrategy, RetryConfig


class Backoff:
    """Delays for retries 1, 2, ... of one execution; ``next()`` gives the next one.

    One instance per execution: DECORRELATED remembers the previous delay. Every delay is in
    ``[0, max_delay]``. Not thread-safe.
    """

    __slots__ = ("_config", "_rng", "_retry", "_previous")

    def __init__(self, config: RetryConfig, rng: random.Random | None = None) -> None:
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
        # a huge exponent would overflow float; anything past the cap is the cap
        exponent = min(n - 1, 1024)
        try:
            return c.initial_delay * c.backoff_multiplier ** exponent
        except OverflowError:
            return c.max_delay

    def _jittered(self, delay: float) -> float:
        c = self._config
        if c.jitter == "full":
            return self._rng.uniform(0.0, delay)
        if c.jitter == "equal":
            return delay / 2 + self._rng.uniform(0.0, delay / 2)
        return delay * self._rng.uniform(1 - c.jitter_range, 1 + c.jitter_range)
