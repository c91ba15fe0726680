"""The seed's factory functions (and dataknobs-fsm 0.5.0's keywords)."""

from __future__ import annotations

from typing import Any

from patterns._recovery.policy_config import BackoffStrategy, RecoveryStrategy, Scope
from patterns._recovery.workflow import ErrorRecoveryWorkflow
from patterns._recovery.workflow_config import ErrorRecoveryConfig

_UNSET: Any = object()


def create_retry_workflow(max_attempts: int = 3,
                          backoff_strategy: BackoffStrategy | str = BackoffStrategy.EXPONENTIAL,
                          *, name: str = "retry_workflow", scope: Scope = "process",
                          **retry_fields: Any) -> ErrorRecoveryWorkflow:
    """A workflow that retries: ``RetryConfig`` fields as keywords (``initial_delay``,
    ``max_delay``, ``attempt_timeout``, ``retry_on_exceptions``...)."""
    return ErrorRecoveryWorkflow(ErrorRecoveryConfig(
        name=name, scope=scope, primary_strategy=RecoveryStrategy.RETRY,
        retry_config={"max_attempts": max_attempts, "backoff_strategy": backoff_strategy,
                      **retry_fields}))


def create_circuit_breaker_workflow(failure_threshold: int = 5, timeout: float = 60.0, *,
                                    name: str = "circuit_breaker_workflow",
                                    scope: Scope = "process",
                                    **breaker_fields: Any) -> ErrorRecoveryWorkflow:
    """A workflow behind a circuit breaker: ``CircuitBreakerConfig`` fields as keywords."""
    return ErrorRecoveryWorkflow(ErrorRecoveryConfig(
        name=name, scope=scope, primary_strategy=RecoveryStrategy.CIRCUIT_BREAKER,
        circuit_breaker_config={"failure_threshold": failure_threshold, "timeout": timeout,
                                **breaker_fields}))


def create_resilient_workflow(primary_strategy: RecoveryStrategy | str = RecoveryStrategy.RETRY,
                              enable_circuit_breaker: bool = True, enable_fallback: bool = True,
                              enable_bulkhead: bool = False, *,
                              fallback_value: Any = _UNSET, fallback_function: Any = None,
                              fallback_service: Any = None, name: str = "resilient_workflow",
                              scope: Scope = "process", **config_fields: Any,
                              ) -> ErrorRecoveryWorkflow:
    """Retry (or ``primary_strategy``) with a breaker, a fallback and a bulkhead.

    The fallback is added when ``enable_fallback`` and one of ``fallback_value``,
    ``fallback_function`` or ``fallback_service`` is given (a fallback that silently
    answers ``None`` hides every error). ``config_fields`` are ``ErrorRecoveryConfig``
    fields (``retry_config={...}``, ``bulkhead_config={...}``...).
    """
    secondary: list[RecoveryStrategy] = []
    if enable_circuit_breaker:
        secondary.append(RecoveryStrategy.CIRCUIT_BREAKER)
    if enable_bulkhead:
        secondary.append(RecoveryStrategy.BULKHEAD)
    fallback: dict[str, Any] = {}
    if fallback_value is not _UNSET:
        fallback["fallback_value"] = fallback_value
    if fallback_function is not None:
        fallback["fallback_function"] = fallback_function
    if fallback_service is not None:
        fallback["fallback_service"] = fallback_service
    if enable_fallback and fallback:
        secondary.append(RecoveryStrategy.FALLBACK)
        config_fields.setdefault("fallback_config", fallback)
    return ErrorRecoveryWorkflow(ErrorRecoveryConfig(
        name=name, scope=scope, primary_strategy=primary_strategy,
        secondary_strategies=secondary, **config_fields))
