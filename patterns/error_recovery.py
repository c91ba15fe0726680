"""Error recovery: retry, circuit breaker, rate limiter, bulkhead, deadline, fallback, cache,
compensation, composed by ``ErrorRecoveryWorkflow``.

The seed's API::

    from patterns.error_recovery import ErrorRecoveryWorkflow, ErrorRecoveryConfig
    workflow = ErrorRecoveryWorkflow(ErrorRecoveryConfig(
        name="monitored_workflow", primary_strategy="retry",
        retry_config={"max_attempts": 3, "backoff_strategy": "exponential"}))
    await workflow.execute(some_function, arg1, arg2)     # or workflow.execute_sync(...)
    workflow.get_metrics()["total_attempts"]

Policies wrap each other in a fixed order (``WRAP_ORDER``, outermost first): FALLBACK,
CACHE, DEADLINE, COMPENSATE, RETRY, CIRCUIT_BREAKER, RATE_LIMIT, BULKHEAD, then the call.

STABLE API for other patterns (names and signatures kept; add keywords only with defaults)::

    from patterns.error_recovery import (
        BackoffStrategy, RetryConfig, RetryPolicy,          # retry: await p.call(fn, *a)
        CircuitBreakerConfig, CircuitBreaker, CircuitBreakerState,
        RateLimiter, RateLimiterConfig,                      # await limiter.acquire()
        RecoveryError, RecoveryConfigError, CallNotPermittedError, CircuitOpenError,
        RateLimitTimeout, AttemptTimeout, DeadlineExceeded, PolicyUnavailableError,
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

Modules come in pairs, a plain core and its driver: ``retry_core``/``retry``,
``breaker_core``/``breaker``, ``limiter_core``/``limiter``, ``bulkhead_core``/``bulkhead``;
a driver holds a backend chosen by scope through ``patterns._recovery.backends``
(process-local, or cluster-wide from ``patterns._recovery.policy_clients``).

Every config raises ``RecoveryConfigError`` (``field`` names the bad field) at construction.
"""

from __future__ import annotations

from patterns._recovery.breaker import CircuitBreaker
from patterns._recovery.breaker_core import BreakerCore, CircuitBreakerState
from patterns._recovery.bulkhead import Bulkhead
from patterns._recovery.errors import (
    AttemptTimeout,
    BulkheadFullError,
    CallNotPermittedError,
    CircuitOpenError,
    DeadlineExceeded,
    PolicyUnavailableError,
    RateLimitTimeout,
    RecoveryConfigError,
    RecoveryError,
    SagaFailed,
)
from patterns._recovery.factories import (
    create_circuit_breaker_workflow,
    create_resilient_workflow,
    create_retry_workflow,
)
from patterns._recovery.limiter import RateLimiter
from patterns._recovery.limiter_core import TokenBucket
from patterns._recovery.policy_config import (
    BackoffStrategy,
    BulkheadConfig,
    CircuitBreakerConfig,
    RateLimiterConfig,
    RecoveryStrategy,
    RetryConfig,
)
from patterns._recovery.retry import RetryPolicy
from patterns._recovery.retry_core import Action, Kind, RetryCore, RetryState
from patterns._recovery.saga import SagaStep
from patterns._recovery.workflow import WRAP_ORDER, ErrorRecoveryWorkflow
from patterns._recovery.workflow_config import (
    CacheConfig,
    CompensationConfig,
    ErrorRecoveryConfig,
    FallbackConfig,
)

__all__ = [
    "Action",
    "AttemptTimeout",
    "BackoffStrategy",
    "BreakerCore",
    "Bulkhead",
    "BulkheadConfig",
    "BulkheadFullError",
    "CacheConfig",
    "CallNotPermittedError",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerState",
    "CircuitOpenError",
    "CompensationConfig",
    "DeadlineExceeded",
    "ErrorRecoveryConfig",
    "ErrorRecoveryWorkflow",
    "FallbackConfig",
    "Kind",
    "PolicyUnavailableError",
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
    "SagaStep",
    "TokenBucket",
    "WRAP_ORDER",
    "create_circuit_breaker_workflow",
    "create_resilient_workflow",
    "create_retry_workflow",
]
