"""Error recovery: retry, circuit breaker, rate limiter (and, composed, the workflow).

STABLE API for other patterns (names and signatures kept; add keywords only with defaults)::

    from patterns.error_recovery import (
        BackoffStrategy, RetryConfig, RetryPolicy,          # retry: await p.call(fn, *a)
        CircuitBreakerConfig, CircuitBreaker, CircuitBreakerState,
        RateLimiter, RateLimiterConfig,                      # await limiter.acquire()
        RecoveryError, RecoveryConfigError, CallNotPermittedError, CircuitOpenError,
        RateLimitTimeout, AttemptTimeout, DeadlineExceeded,
    )

- ``RetryPolicy(RetryConfig | dict | None, **fields)``: ``await call(fn, *args, **kw)``,
  ``await run(fn, args, kwargs, deadline=None)``, ``call_sync(fn, *args)``, ``metrics()``.
  An error with a ``retry_after`` attribute (seconds) waits at least that long; results are
  retried while ``retry_on_result(result)`` is true.
- ``CircuitBreaker(config | dict | None, name=None, scope="process"|"cluster", **fields)``:
  ``await call(fn, *a)``, ``call_sync``, ``permit = await acquire()`` +
  ``record(permit, error_or_None, seconds)``, ``state``, ``force(state)``, ``metrics()``.
- ``RateLimiter(rate, burst=None, period=1.0, acquire_timeout=None, name=None,
  scope="process"|"cluster")``: ``await acquire(tokens=1, timeout=...)``, ``acquire_sync``,
  ``try_acquire``, ``pause(seconds)`` (429 Retry-After), ``async with limiter``, ``metrics()``.
- Pure cores (no I/O, injectable clock) for other drivers: ``RetryCore`` / ``RetryState``
  (``attempt_timeout()``, ``on_result``, ``on_error`` -> ``Action``), ``BreakerCore``,
  ``TokenBucket``.

Every config raises ``RecoveryConfigError`` (``field`` names the bad field) at construction.
"""

from __future__ import annotations

from patterns._recovery.breaker import BreakerCore, CircuitBreakerState
from patterns._recovery.bucket import TokenBucket
from patterns._recovery.circuit import CircuitBreaker
from patterns._recovery.config import (
    BackoffStrategy,
    BulkheadConfig,
    CircuitBreakerConfig,
    RateLimiterConfig,
    RecoveryStrategy,
    RetryConfig,
)
from patterns._recovery.errors import (
    AttemptTimeout,
    BulkheadFullError,
    CallNotPermittedError,
    CircuitOpenError,
    DeadlineExceeded,
    RateLimitTimeout,
    RecoveryConfigError,
    RecoveryError,
    SagaFailed,
)
from patterns._recovery.limiter import RateLimiter
from patterns._recovery.retry import Action, Kind, RetryCore, RetryState
from patterns._recovery.retrying import RetryPolicy

__all__ = [
    "Action",
    "AttemptTimeout",
    "BackoffStrategy",
    "BreakerCore",
    "BulkheadConfig",
    "BulkheadFullError",
    "CallNotPermittedError",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerState",
    "CircuitOpenError",
    "DeadlineExceeded",
    "Kind",
    "RateLimitTimeout",
    "RateLimiter",
    "RateLimiterConfig",
    "RecoveryConfigError",
    "RecoveryError",
    "RecoveryStrategy",
    "RetryConfig",
    "RetryCore",
    "RetryPolicy",
    "RetryState",
    "SagaFailed",
    "TokenBucket",
]
