"""Configs of the single policies: retry, circuit breaker, rate limiter, bulkhead (plain core).

Every config is a frozen pydantic model that checks itself at construction and raises
``RecoveryConfigError`` naming the bad field (``field`` attribute, dotted for nested models).
Names of dataknobs-fsm 0.5.0 are accepted beside this project's own (see each docstring).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum, StrEnum
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fsm_actors.platform.policies.backoff import BackoffStrategy
from patterns._recovery.errors import RecoveryConfigError

Scope = Literal["process", "cluster"]


class RecoveryStrategy(StrEnum):
    """The policies an ``ErrorRecoveryWorkflow`` composes (``RATE_LIMIT`` is this project's)."""

    RETRY = "retry"
    CIRCUIT_BREAKER = "circuit_breaker"
    FALLBACK = "fallback"
    COMPENSATE = "compensate"
    DEADLINE = "deadline"
    BULKHEAD = "bulkhead"
    CACHE = "cache"
    RATE_LIMIT = "rate_limit"


def enum_value(enum: type[Enum], value: Any) -> Any:
    """Accept enum members and their names or values in any case (``"exponential"``)."""
    if isinstance(value, str) and not isinstance(value, Enum):
        key = value.strip().lower()
        for member in enum:  # type: ignore[var-annotated]
            if key in (member.value, member.name.lower()):
                return member
        allowed = ", ".join(m.value for m in enum)  # type: ignore[attr-defined]
        raise ValueError(f"unknown {enum.__name__} {value!r}; use one of {allowed}")
    return value


def error_classes(value: Any) -> tuple[type[BaseException], ...] | None:
    """A class or a list of classes as a tuple of exception classes."""
    if value is None:
        return None
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ValueError(f"expected exception classes, got {item!r}")
    return tuple(items)


class FieldError(ValueError):
    """Raised by a model validator to blame one field (``field``) for a cross-field rule."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class RecoveryModel(BaseModel):
    """Base of the configs: frozen, unknown fields refused, errors as ``RecoveryConfigError``."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error(type(self).__name__, exc) from None

    @classmethod
    def given(cls, config: Self | dict[str, Any] | None, fields: dict[str, Any]) -> Self:
        """The config a policy was constructed with: ``config`` itself (``fields`` replacing
        its values), or one made of the dict ``config`` (or nothing) and ``fields``."""
        if config is None or isinstance(config, dict):
            return cls(**{**(config or {}), **fields})
        return config.model_copy(update=fields) if fields else config


def config_error(model: str, exc: ValidationError) -> RecoveryConfigError:
    """The first error of ``exc`` as a ``RecoveryConfigError`` naming its field."""
    first = exc.errors()[0]
    loc = [str(p) for p in first.get("loc", ())]
    blamed = (first.get("ctx") or {}).get("error")
    reason = first.get("msg", "invalid").removeprefix("Value error, ")
    got = first.get("input")
    shown = "" if isinstance(got, dict) or first.get("type") == "missing" else f" (got {got!r})"
    if isinstance(blamed, RecoveryConfigError):  # a nested config's own error
        loc.append(blamed.field)
        reason, shown = blamed.reason, ""
    elif isinstance(blamed, FieldError):
        loc.append(blamed.field)
    field = ".".join(loc) or "(model)"
    more = len(exc.errors()) - 1
    tail = f"; and {more} more error(s)" if more else ""
    return RecoveryConfigError(f"{model}: invalid {field}: {reason}{shown}{tail}",
                               field=field, model=model, reason=f"{reason}{shown}")


ErrorClasses = tuple[type[BaseException], ...]


class RetryConfig(RecoveryModel):
    """When and how often to try again.

    ``max_attempts`` counts the first call. ``attempt_timeout`` cancels one attempt (an
    ``AttemptTimeout``, retried); ``total_timeout`` is the budget of all attempts and waits
    together (no wait is started that would end past it; an attempt's timeout is cut to what
    is left). An error is retried when it is an instance of ``retry_on_exceptions`` (default
    ``Exception``) or of ``transient_errors``, passes ``retry_on_exception`` (a predicate),
    and is not one of ``permanent_errors`` (never retried) nor a ``CallNotPermittedError`` /
    ``DeadlineExceeded``. A result is retried when ``retry_on_result(result)`` is true; when
    retries run out on results the last result is returned. An error with a ``retry_after``
    attribute (seconds) waits at least that long. ``on_retry(attempt, outcome, delay)`` runs
    before each wait, ``on_failure(outcome)`` when giving up.
    """

    max_attempts: int = Field(3, ge=1)
    initial_delay: float = Field(1.0, ge=0)
    max_delay: float = Field(60.0, ge=0)
    backoff_strategy: BackoffStrategy = BackoffStrategy.EXPONENTIAL
    backoff_multiplier: float = Field(2.0, ge=1.0)
    jitter: Literal["full", "equal", "range"] = "full"
    jitter_range: float = Field(0.1, ge=0, le=1)
    attempt_timeout: float | None = Field(None, gt=0)
    total_timeout: float | None = Field(None, gt=0)
    retry_on_exceptions: ErrorClasses | None = None
    transient_errors: ErrorClasses | None = None
    permanent_errors: ErrorClasses | None = None
    retry_on_exception: Callable[[BaseException], bool] | None = None
    retry_on_result: Callable[[Any], bool] | None = None
    on_retry: Callable[..., Any] | None = None
    on_failure: Callable[..., Any] | None = None

    @field_validator("backoff_strategy", mode="before")
    @classmethod
    def _strategy(cls, value: Any) -> Any:
        return enum_value(BackoffStrategy, value)

    @field_validator("retry_on_exceptions", "transient_errors", "permanent_errors",
                     mode="before")
    @classmethod
    def _classes(cls, value: Any) -> Any:
        return error_classes(value)

    @model_validator(mode="after")
    def _delays(self) -> RetryConfig:
        if self.max_delay < self.initial_delay:
            raise FieldError("max_delay", f"max_delay ({self.max_delay}) must be >= "
                             f"initial_delay ({self.initial_delay})")
        return self


class CircuitBreakerConfig(RecoveryModel):
    """When to stop calling a failing service, and how to probe it again.

    The window holds the last ``window_size`` calls (``window_type="count"``) or the calls of
    the last ``window_duration`` seconds (``"time"``). CLOSED opens when
    ``failure_threshold`` calls in a row failed (consecutive failures, pybreaker's and
    dataknobs' rule; any window size; for a cluster breaker, in a row for one user: batches
    of different users arrive out of order), or, once the window has ``minimum_calls`` calls, the
    failure rate reaches ``failure_rate_threshold`` percent or the rate of calls slower than
    ``slow_call_duration`` seconds reaches ``slow_call_rate_threshold`` percent
    (resilience4j's rules). A config that sets a rate threshold and no ``failure_threshold``
    is judged by its rates only (the count rule applies when it is asked for). OPEN refuses calls for ``timeout`` seconds, then is
    HALF_OPEN (by itself when ``auto_half_open``, else on the next call): at most
    ``half_open_max_calls`` probes run; ``success_threshold`` good ones close it, one failed
    (or slow) one opens it again. Errors that are instances of ``record_exceptions`` and not
    of ``ignore_exceptions`` count as failures; ignored ones count as nothing. Callbacks:
    ``on_open()``, ``on_close()``, ``on_half_open()``, ``on_state_change(old, new)``.
    """

    failure_threshold: int | None = Field(5, ge=1)
    failure_rate_threshold: float | None = Field(None, gt=0, le=100)
    slow_call_rate_threshold: float | None = Field(None, gt=0, le=100)
    slow_call_duration: float | None = Field(None, gt=0)
    window_type: Literal["count", "time"] = "count"
    window_size: int = Field(10, ge=1)
    window_duration: float = Field(60.0, gt=0)
    minimum_calls: int | None = Field(None, ge=1)
    timeout: float = Field(60.0, ge=0)
    success_threshold: int = Field(2, ge=1)
    half_open_max_calls: int | None = Field(None, ge=1)
    auto_half_open: bool = True
    record_exceptions: ErrorClasses = (Exception,)
    ignore_exceptions: ErrorClasses = ()
    on_open: Callable[[], Any] | None = None
    on_close: Callable[[], Any] | None = None
    on_half_open: Callable[[], Any] | None = None
    on_state_change: Callable[[Any, Any], Any] | None = None

    @field_validator("record_exceptions", "ignore_exceptions", mode="before")
    @classmethod
    def _classes(cls, value: Any) -> Any:
        return error_classes(value) or ()

    @model_validator(mode="after")
    def _consistent(self) -> CircuitBreakerConfig:
        if "failure_threshold" not in self.model_fields_set and (
                self.failure_rate_threshold is not None
                or self.slow_call_rate_threshold is not None):
            object.__setattr__(self, "failure_threshold", None)  # a rate config: rates only
        if self.failure_threshold is None and self.failure_rate_threshold is None \
                and self.slow_call_rate_threshold is None:
            raise FieldError("failure_threshold", "set failure_threshold, failure_rate_threshold or "
                             "slow_call_rate_threshold, or the breaker never opens")
        if self.slow_call_rate_threshold is not None and self.slow_call_duration is None:
            raise FieldError("slow_call_duration", "slow_call_rate_threshold needs slow_call_duration (seconds)")
        if self.half_open_max_calls is not None and self.half_open_max_calls < self.success_threshold:
            raise FieldError("half_open_max_calls", f"half_open_max_calls "
                             f"({self.half_open_max_calls}) must be >= "
                             f"success_threshold ({self.success_threshold})")
        return self

    @property
    def probe_quota(self) -> int:
        """Probe calls allowed in HALF_OPEN."""
        return self.half_open_max_calls or self.success_threshold

    @property
    def min_calls(self) -> int:
        """Calls the window must hold before a rate is judged."""
        if self.minimum_calls is not None:
            return self.minimum_calls
        return self.window_size if self.window_type == "count" else 10


class RateLimiterConfig(RecoveryModel):
    """A token bucket: ``rate`` tokens per ``period`` seconds, at most ``burst`` saved up
    (default: one second's worth, at least 1); ``acquire_timeout`` (None: wait as long as it
    takes) bounds the wait for a token."""

    rate: float = Field(gt=0)
    period: float = Field(1.0, gt=0)
    burst: int | None = Field(None, ge=1)
    acquire_timeout: float | None = Field(None, ge=0)

    @property
    def per_second(self) -> float:
        return self.rate / self.period

    @property
    def capacity(self) -> int:
        return self.burst if self.burst is not None else max(1, int(self.per_second))


class BulkheadConfig(RecoveryModel):
    """At most ``max_concurrent`` calls at once, at most ``max_queue_size`` waiting, each for
    at most ``queue_timeout`` seconds. ``use_thread_pool`` runs sync callables on a pool of
    ``thread_pool_size`` threads (dataknobs' names); ``track_metrics`` is accepted and always
    on."""

    max_concurrent: int = Field(10, ge=1)
    max_queue_size: int = Field(100, ge=0)
    queue_timeout: float = Field(30.0, ge=0)
    use_thread_pool: bool = False
    thread_pool_size: int = Field(5, ge=1)
    track_metrics: bool = True
