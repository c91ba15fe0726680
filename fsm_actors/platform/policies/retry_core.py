"""The retry decision as a state machine with no I/O (the way tenacity's ``iter()`` works).

``RetryCore(config).start()`` gives a ``RetryState`` for one execution. A driver asks it
``attempt_timeout()`` before each attempt, then reports the outcome with ``on_result`` or
``on_error``; the answer is an ``Action``: ``SLEEP`` (wait ``delay`` seconds, then attempt
again), ``RETURN`` (give ``value`` to the caller) or ``RAISE`` (raise ``error``). The clock and
the randomness are injected, so backoff sequences and deadlines test without sleeping.

The rules come from any object with the fields of ``RetryRules``: ``RetrySpec`` here (plain
dataclass, for drivers below ``patterns``: the HTTP resource), or the validated
``RetryConfig`` of ``patterns.error_recovery``. Which errors are never retried and the error
raised when the deadline passes are given by the driver (``not_retried``,
``deadline_error``), so this module depends on nothing above the platform.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from fsm_actors.platform.policies.backoff import Backoff, BackoffRules, BackoffStrategy


class RetryRules(BackoffRules, Protocol):
    """The fields a ``RetryCore`` reads (see ``RetrySpec``)."""

    max_attempts: int
    attempt_timeout: float | None
    total_timeout: float | None
    retry_on_exceptions: tuple[type[BaseException], ...] | None
    transient_errors: tuple[type[BaseException], ...] | None
    permanent_errors: tuple[type[BaseException], ...] | None
    retry_on_exception: Callable[[BaseException], bool] | None
    retry_on_result: Callable[[Any], bool] | None
    on_retry: Callable[..., Any] | None
    on_failure: Callable[..., Any] | None


@dataclass(frozen=True, slots=True)
class RetrySpec:
    """Retry rules as plain data (``max_attempts`` counts the first call; delays in
    seconds; see ``BackoffStrategy``). No validation: a driver builds it from checked input."""

    max_attempts: int = 3
    initial_delay: float = 1.0
    max_delay: float = 60.0
    backoff_strategy: BackoffStrategy = BackoffStrategy.EXPONENTIAL
    backoff_multiplier: float = 2.0
    jitter: str = "full"
    jitter_range: float = 0.1
    attempt_timeout: float | None = None
    total_timeout: float | None = None
    retry_on_exceptions: tuple[type[BaseException], ...] | None = None
    transient_errors: tuple[type[BaseException], ...] | None = None
    permanent_errors: tuple[type[BaseException], ...] | None = None
    retry_on_exception: Callable[[BaseException], bool] | None = None
    retry_on_result: Callable[[Any], bool] | None = None
    on_retry: Callable[..., Any] | None = None
    on_failure: Callable[..., Any] | None = None


class DeadlinePassed(TimeoutError):
    """The default ``deadline_error``: no time left for another attempt."""

    def __init__(self, message: str, attempts: int = 0) -> None:
        super().__init__(message)
        self.attempts = attempts


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
    """The retry rules of one ``RetryRules``; ``start()`` begins one execution.

    ``not_retried`` are never retried (beside the rules' ``permanent_errors``);
    ``deadline_error(message, attempts)`` is raised when no time is left for an attempt.
    ``stats`` counts every execution started from this core. Not thread-safe for ``stats``
    under free-threading; each ``RetryState`` belongs to one execution.
    """

    def __init__(self, config: RetryRules, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, *,
                 not_retried: tuple[type[BaseException], ...] = (),
                 deadline_error: Callable[..., BaseException] = DeadlinePassed) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng
        self.stats = RetryStats()
        retried = tuple(config.retry_on_exceptions or (Exception,))
        self._retried = retried + tuple(config.transient_errors or ())
        self._permanent = (*not_retried, DeadlinePassed, *(config.permanent_errors or ()))
        self.deadline_error = deadline_error

    def start(self, deadline: float | None = None) -> RetryState:
        """A state for one execution; ``deadline`` (clock time) tightens ``total_timeout``."""
        return RetryState(self, deadline)

    def backoff_after(self, retry: int) -> float:
        """The wait before retry ``retry`` (1, 2, ...) for a driver that keeps its own count
        (DECORRELATED then draws from ``[initial, 3 * initial]``)."""
        backoff = Backoff(self.config, self.rng)
        backoff._retry = retry - 1
        return backoff.next()

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

        Raises ``deadline_error`` when no time is left for it."""
        self.attempts += 1
        timeout = self._core.config.attempt_timeout
        if self._deadline is None:
            return timeout
        left = self._deadline - self._core.clock()
        if left <= 0:
            raise self._core.deadline_error(
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
