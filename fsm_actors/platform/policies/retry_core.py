"""The retry decision as a state machine with no I/O (the way tenacity's ``iter()`` works).

``RetryCore(config).start()`` gives a ``RetryState`` for one execution. A driver asks it
``attempt_timeout()`` before each attempt, then reports the outcome with ``on_result`` or
``on_error``; the answer is an ``Action``: ``SLEEP`` (wait ``delay`` seconds, then attempt
again), ``RETURN`` (give ``value`` to the caller) or ``RAISE`` (raise ``error``). The clock and
the randomness are injected, so backoff sequences and deadlines test without sleeping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from patterns._recovery.backoff import Backoff
from patterns._recovery.config import RetryConfig
from patterns._recovery.errors import CallNotPermittedError, DeadlineExceeded


class Kind(Enum):
    SLEEP = "sleep"
    RETURN = "return"
    RAISE = "raise"


@dataclass(frozen=True, slots=True)
class Action:
    """What the driver does next."""

    kind: Kind
    delay: float = 0.0
    value: Any = None
    error: BaseException | None = None


_NOT_RETRIED = (CallNotPermittedError, DeadlineExceeded)


@dataclass(slots=True)
class RetryStats:
    """Executions by outcome, the way resilience4j counts them; ``retries`` counts waits."""

    successful_without_retry: int = 0
    successful_with_retry: int = 0
    failed_without_retry: int = 0
    failed_with_retry: int = 0
    retries: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "successful_calls_without_retry": self.successful_without_retry,
            "successful_calls_with_retry": self.successful_with_retry,
            "failed_calls_without_retry": self.failed_without_retry,
            "failed_calls_with_retry": self.failed_with_retry,
            "retries": self.retries,
        }


class RetryCore:
    """The retry rules of one ``RetryConfig``; ``start()`` begins one execution.

    ``stats`` counts every execution started from this core. Not thread-safe for ``stats``
    under free-threading; each ``RetryState`` belongs to one execution.
    """

    def __init__(self, config: RetryConfig, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng
        self.stats = RetryStats()
        retried = config.retry_on_exceptions or (Exception,)
        self._retried = retried + (config.transient_errors or ())
        self._permanent = _NOT_RETRIED + (config.permanent_errors or ())

    def start(self, deadline: float | None = None) -> RetryState:
        """A state for one execution; ``deadline`` (clock time) tightens ``total_timeout``."""
        return RetryState(self, deadline)

    def retryable(self, error: BaseException) -> bool:
        """Whether ``error`` may be retried under this config (attempts left aside)."""
        if isinstance(error, self._permanent) or not isinstance(error, self._retried):
            return False
        check = self.config.retry_on_exception
        return check is None or bool(check(error))


class RetryState:
    """The decisions of one execution (see the module docstring). ``attempts`` counts the
    attempts started; ``retries`` the waits decided."""

    __slots__ = ("_core", "_deadline", "_backoff", "attempts", "retries")

    def __init__(self, core: RetryCore, deadline: float | None) -> None:
        self._core = core
        total = core.config.total_timeout
        if total is not None:
            own = core.clock() + total
            deadline = own if deadline is None else min(deadline, own)
        self._deadline = deadline
        self._backoff: Backoff | None = None
        self.attempts = 0
        self.retries = 0

    @property
    def deadline(self) -> float | None:
        """Clock time by which the whole execution must end, if any."""
        return self._deadline

    def attempt_timeout(self) -> float | None:
        """Begin an attempt; its timeout in seconds (``None``: unbounded).

        Raises ``DeadlineExceeded`` when no time is left for it."""
        self.attempts += 1
        timeout = self._core.config.attempt_timeout
        if self._deadline is None:
            return timeout
        left = self._deadline - self._core.clock()
        if left <= 0:
            raise DeadlineExceeded(
                f"retry deadline passed before attempt {self.attempts}; raise total_timeout "
                "or lower the backoff delays", attempts=self.attempts - 1)
        return left if timeout is None else min(timeout, left)

    def on_result(self, value: Any) -> Action:
        """The attempt returned ``value``."""
        check = self._core.config.retry_on_result
        if check is not None and check(value):
            return self._again(value, None)
        self._finish(success=True)
        return Action(Kind.RETURN, value=value)

    def on_error(self, error: BaseException) -> Action:
        """The attempt raised ``error``."""
        if not self._core.retryable(error):
            return self._give_up(None, error)
        return self._again(None, error)

    def _again(self, value: Any, error: BaseException | None) -> Action:
        config = self._core.config
        if self.attempts >= config.max_attempts:
            return self._give_up(value, error)
        if self._backoff is None:
            self._backoff = Backoff(config, self._core.rng)
        delay = self._backoff.next()
        hint = getattr(error, "retry_after", None)
        if isinstance(hint, int | float) and hint > delay:
            delay = float(hint)
        if self._deadline is not None and self._core.clock() + delay >= self._deadline:
            return self._give_up(value, error)
        self.retries += 1
        self._core.stats.retries += 1
        if config.on_retry is not None:
            config.on_retry(self.attempts, error if error is not None else value, delay)
        return Action(Kind.SLEEP, delay=delay)

    def _give_up(self, value: Any, error: BaseException | None) -> Action:
        self._finish(success=False)
        config = self._core.config
        if config.on_failure is not None:
            config.on_failure(error if error is not None else value)
        if error is None:
            return Action(Kind.RETURN, value=value)
        if self.attempts > 1:
            error.add_note(f"(gave up after {self.attempts} attempts)")
        return Action(Kind.RAISE, error=error)

    def _finish(self, success: bool) -> None:
        stats = self._core.stats
        retried = self.attempts > 1
        if success:
            if retried:
                stats.successful_with_retry += 1
            else:
                stats.successful_without_retry += 1
        elif retried:
            stats.failed_with_retry += 1
        else:
            stats.failed_without_retry += 1
