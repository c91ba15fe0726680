"""Configs of the composed workflow: fallback, cache, compensation, ``ErrorRecoveryConfig``.

``ErrorRecoveryConfig`` takes the seed's names (``name``, ``primary_strategy="retry"``,
``retry_config={...}`` as a dict) and dataknobs-fsm 0.5.0's (``secondary_strategies``,
``*_config``, ``max_total_attempts``, ``global_timeout``, ``transient_errors``,
``permanent_errors``, ``log_errors``, ``metrics_enabled``, ``alert_threshold``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field, field_validator, model_validator

from patterns._recovery.policy_config import (
    BulkheadConfig,
    CircuitBreakerConfig,
    ErrorClasses,
    FieldError,
    RateLimiterConfig,
    RecoveryModel,
    RecoveryStrategy,
    RetryConfig,
    Scope,
    enum_value,
    error_classes,
)


class FallbackConfig(RecoveryModel):
    """What to answer when the protected call fails.

    The first that is set wins: the cached last good result for the same arguments
    (``use_cache``, kept ``cache_ttl`` seconds), ``fallback_function``, ``fallback_service``
    (a callable, or an object with ``execute``/``call``, called the same way), else
    ``fallback_value``. A function is called with the protected call's arguments
    (``fn(*args, **kwargs)``), or with the error alone (dataknobs-fsm 0.5's
    ``fallback_function(e)``) when its signature says so: one positional parameter that is
    annotated with an exception class or named ``e``/``err``/``error``/``exc``/``exception``,
    or one positional parameter while the call has another number of arguments. It applies to errors that are instances of
    ``fallback_on_exceptions`` (default ``Exception``); timeouts only when
    ``fallback_on_timeout``.
    """

    fallback_value: Any = None
    fallback_function: Callable[..., Any] | None = None
    fallback_service: Any = None
    use_cache: bool = False
    cache_ttl: float = Field(300.0, gt=0)
    fallback_on_exceptions: ErrorClasses | None = None
    fallback_on_timeout: bool = True

    @field_validator("fallback_on_exceptions", mode="before")
    @classmethod
    def _classes(cls, value: Any) -> Any:
        return error_classes(value)

    @field_validator("fallback_service")
    @classmethod
    def _service(cls, value: Any) -> Any:
        if value is not None and not (callable(value) or hasattr(value, "execute")
                                      or hasattr(value, "call")):
            raise ValueError("fallback_service must be callable or have execute()/call()")
        return value


class CacheConfig(RecoveryModel):
    """Results by argument key: kept ``ttl`` seconds, at most ``max_entries``;
    ``key_function(*args, **kwargs)`` replaces the default key (function + arguments)."""

    ttl: float = Field(300.0, gt=0)
    max_entries: int = Field(1024, ge=1)
    key_function: Callable[..., Any] | None = None


class CompensationConfig(RecoveryModel):
    """Undo on failure. ``compensation_actions`` ``[a, b, c]`` run in reverse order (``c``,
    ``b``, ``a``: undo the last effect first, as a saga does; dataknobs-fsm 0.5 ran them in
    listed order) when the protected call fails, each retried by ``compensation_retry``. An
    action taking no parameter is called with nothing; one taking a parameter gets the state
    saved before the call (``save_state``): ``{"args": ..., "kwargs": ...}`` (deep copies
    where possible) plus ``"error"``, the failure (``None`` with ``save_state=False``); the
    failure is raised as ``SagaFailed`` whose ``result`` says what ran.
    ``on_compensation_start(failed_step, completed)`` and ``on_compensation_complete(result)``
    are called around them; ``saga_timeout`` bounds a saga's run. ``save_state`` and
    ``use_sagas`` are dataknobs' names, accepted (step results are always kept)."""

    compensation_actions: list[Any] = Field(default_factory=list)
    compensation_retry: RetryConfig = Field(
        default_factory=lambda: RetryConfig(max_attempts=3, initial_delay=0.1, max_delay=2.0))
    save_state: bool = True
    use_sagas: bool = False
    saga_timeout: float = Field(300.0, gt=0)
    on_compensation_start: Callable[..., Any] | None = None
    on_compensation_complete: Callable[..., Any] | None = None


class ErrorRecoveryConfig(RecoveryModel):
    """The policies of one ``ErrorRecoveryWorkflow``.

    ``primary_strategy`` and ``secondary_strategies`` choose the policies (enum members or
    names, any case); a policy also runs when its ``*_config`` is given. Which wraps which
    does not depend on primary or secondary: see ``WRAP_ORDER`` in
    ``patterns._recovery.workflow``. An explicit ``retry_config.max_attempts`` is what runs;
    an explicit ``max_total_attempts`` below it is a config error naming both;
    ``global_timeout`` is the DEADLINE budget (applied when DEADLINE is chosen or
    ``global_timeout`` is given); ``transient_errors`` / ``permanent_errors`` go to
    the retry policy. ``scope="cluster"`` keeps breaker, bulkhead and rate-limit state in
    one actor ``recovery/<name>`` shared by every process using ``name``.
    ``alert_threshold`` consecutive failures log a warning.
    """

    name: str = "error_recovery"
    primary_strategy: RecoveryStrategy = RecoveryStrategy.RETRY
    secondary_strategies: list[RecoveryStrategy] = Field(default_factory=list)
    retry_config: RetryConfig | None = None
    circuit_breaker_config: CircuitBreakerConfig | None = None
    fallback_config: FallbackConfig | None = None
    compensation_config: CompensationConfig | None = None
    bulkhead_config: BulkheadConfig | None = None
    cache_config: CacheConfig | None = None
    rate_limit_config: RateLimiterConfig | None = None
    max_total_attempts: int = Field(10, ge=1)
    global_timeout: float = Field(300.0, gt=0)
    transient_errors: ErrorClasses | None = None
    permanent_errors: ErrorClasses | None = None
    log_errors: bool = True
    metrics_enabled: bool = True
    alert_threshold: int = Field(10, ge=1)
    scope: Scope = "process"

    @field_validator("primary_strategy", mode="before")
    @classmethod
    def _primary(cls, value: Any) -> Any:
        return enum_value(RecoveryStrategy, value)

    @field_validator("secondary_strategies", mode="before")
    @classmethod
    def _secondary(cls, value: Any) -> Any:
        if value is None:
            return []
        items = [value] if isinstance(value, str) else list(value)
        return [enum_value(RecoveryStrategy, v) for v in items]

    @field_validator("transient_errors", "permanent_errors", mode="before")
    @classmethod
    def _classes(cls, value: Any) -> Any:
        return error_classes(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value or "/" in value:
            raise ValueError("name must be non-empty and without '/' (it names actors)")
        return value

    @model_validator(mode="after")
    def _needs(self) -> ErrorRecoveryConfig:
        chosen = self.strategies
        if RecoveryStrategy.FALLBACK in chosen and self.fallback_config is None:
            raise FieldError("fallback_config", "FALLBACK needs fallback_config (a value, "
                             "function or service to answer with)")
        if RecoveryStrategy.COMPENSATE in chosen and self.compensation_config is None:
            raise FieldError("compensation_config", "COMPENSATE needs compensation_config "
                             "with compensation_actions")
        if RecoveryStrategy.RATE_LIMIT in chosen and self.rate_limit_config is None:
            raise FieldError("rate_limit_config", "RATE_LIMIT needs rate_limit_config "
                             "(e.g. {'rate': 100})")
        retry = self.retry_config
        if retry is not None and "max_total_attempts" in self.model_fields_set \
                and retry.max_attempts > self.max_total_attempts:
            raise FieldError("max_total_attempts", f"retry_config.max_attempts "
                             f"({retry.max_attempts}) is above max_total_attempts "
                             f"({self.max_total_attempts}); raise max_total_attempts or "
                             "lower max_attempts")
        return self

    @property
    def strategies(self) -> set[RecoveryStrategy]:
        """Every policy that runs: the chosen ones and those whose config is given."""
        chosen = {self.primary_strategy, *self.secondary_strategies}
        for strategy, config in ((RecoveryStrategy.RETRY, self.retry_config),
                                 (RecoveryStrategy.CIRCUIT_BREAKER, self.circuit_breaker_config),
                                 (RecoveryStrategy.FALLBACK, self.fallback_config),
                                 (RecoveryStrategy.COMPENSATE, self.compensation_config),
                                 (RecoveryStrategy.BULKHEAD, self.bulkhead_config),
                                 (RecoveryStrategy.CACHE, self.cache_config),
                                 (RecoveryStrategy.RATE_LIMIT, self.rate_limit_config)):
            if config is not None:
                chosen.add(strategy)
        if "global_timeout" in self.model_fields_set:
            chosen.add(RecoveryStrategy.DEADLINE)
        return chosen

    def effective_retry(self) -> RetryConfig:
        """The retry config with ``max_total_attempts`` and the error lists applied."""
        retry = self.retry_config or RetryConfig()
        update: dict[str, Any] = {}
        if self.retry_config is None and retry.max_attempts > self.max_total_attempts:
            update["max_attempts"] = self.max_total_attempts
        if self.transient_errors and not retry.transient_errors:
            update["transient_errors"] = self.transient_errors
        if self.permanent_errors and not retry.permanent_errors:
            update["permanent_errors"] = self.permanent_errors
        return retry.model_copy(update=update) if update else retry
