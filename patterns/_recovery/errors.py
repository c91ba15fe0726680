"""The errors of the recovery policies, all under ``PatternError``.

Each carries ``policy`` (the policy's name, e.g. ``orders/circuit_breaker``) and the figures
that explain it (``retry_after``, ``limit``, ``waited``...). They survive pickling with their
attributes, because Ray ships exceptions between processes.
"""

from __future__ import annotations

from typing import Any

from patterns.errors import PatternError


class RecoveryError(PatternError):
    """Base of the recovery errors; ``policy`` names the policy, ``details`` holds the rest."""

    def __init__(self, message: str, *, policy: str | None = None, **details: Any) -> None:
        super().__init__(message, pattern="error_recovery")
        self.policy = policy
        self.details = details
        for key, value in details.items():
            setattr(self, key, value)

    def __reduce__(self):  # keep policy and details when Ray ships the error
        return (_rebuild, (self.__class__, self.message, self.policy, self.details))


def _rebuild(cls: type[RecoveryError], message: str, policy: str | None,
             details: dict[str, Any]) -> RecoveryError:
    return cls(message, policy=policy, **details)


class RecoveryConfigError(RecoveryError, ValueError):
    """A recovery config is invalid; ``field`` names the first bad field (dotted path)."""


class CallNotPermittedError(RecoveryError):
    """A policy refused the call without running it (breaker open, bulkhead full, no token).

    The retry policy does not retry these by default: the refusing policy already says when
    to come back (``retry_after``)."""


class CircuitOpenError(CallNotPermittedError):
    """The circuit breaker is OPEN (or HALF_OPEN with its probe quota taken)."""


class BulkheadFullError(CallNotPermittedError):
    """No bulkhead permit: the queue is full, or the wait for a permit timed out."""


class PolicyUnavailableError(CallNotPermittedError):
    """A cluster policy's actor could not be reached (restarting, or its owner is gone);
    the call was not made. Safe to try again once the actor is back."""


class RateLimitTimeout(CallNotPermittedError, TimeoutError):
    """No rate-limit token could be had within the acquire timeout."""


class AttemptTimeout(RecoveryError, TimeoutError):
    """One attempt ran past its ``attempt_timeout`` and was cancelled (retried by default)."""


class DeadlineExceeded(RecoveryError, TimeoutError):
    """The time budget of the whole execution ran out; the running attempt was cancelled.
    Never retried."""


class SagaFailed(RecoveryError):
    """A saga step failed; ``result`` says which steps ran, failed and were compensated."""


def open_error(name: str, state: str, retry_after: float) -> CircuitOpenError:
    """The refusal of a breaker that is ``state`` (OPEN, or HALF_OPEN without a probe)."""
    return CircuitOpenError(
        f"circuit breaker {name!r} is {state}: call not permitted; retry in "
        f"{retry_after:.3g}s (the service behind it has been failing)",
        policy=name, state=state, retry_after=retry_after)


def rate_limit_timeout(name: str, tokens: int, timeout: float | None,
                       rate: float) -> RateLimitTimeout:
    """No ``tokens`` within ``timeout`` at ``rate``/s."""
    return RateLimitTimeout(
        f"rate limiter {name!r}: no {tokens} token(s) within {timeout:g}s at {rate:g}/s; raise "
        "acquire_timeout, lower the call rate or raise the limit",
        policy=name, tokens=tokens, timeout=timeout, rate=rate)
