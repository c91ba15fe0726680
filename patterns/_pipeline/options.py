"""The sections every pipeline job may carry: ``options:`` and ``error_handling:``.

::

    options: {batch_size: 1000, parallel_workers: 4, memory_limit: "1GB"}
    options: {stream: true, buffer_size: 8192, backpressure: true}
    error_handling: {strategy: exponential_backoff, max_retries: 3, timeout: 30,
                     on_failure: compensate}

``batch_size`` is the records per task, ``parallel_workers`` the worker actors,
``memory_limit`` bounds the bytes of batches in flight (reading waits) and is each worker's
Ray ``memory`` request. ``stream`` reads the input incrementally (``false``: a whole file per
task), ``buffer_size`` is the read block in bytes, ``backpressure`` bounds the batches read
ahead (``false``: reading never waits for the workers). ``error_handling`` is the retry
policy of each task (``strategy`` names the backoff, ``timeout`` bounds each attempt) and
what a task that still fails does: ``fail`` the job (default), ``skip`` it (its records go to
the error file), or ``compensate`` (run the job's compensation — remove the partial output,
or the function named by ``compensation`` — then fail). A kind that cannot honour an option
refuses it, saying why. Plain core.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ByteSize, ConfigDict, Field, ValidationError

from patterns.errors import PatternError

#: ``strategy`` names -> ``RetryConfig.backoff_strategy``
STRATEGIES = {
    "exponential_backoff": "exponential", "exponential": "exponential",
    "linear_backoff": "linear", "linear": "linear",
    "fixed": "fixed", "fixed_delay": "fixed",
    "jitter": "jitter", "exponential_jitter": "jitter",
}


class JobOptions(BaseModel):
    """``options:`` of a pipeline job (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int | None = Field(None, ge=1, description="records per task")
    parallel_workers: int | None = Field(None, ge=1, description="worker actors")
    memory_limit: ByteSize | None = Field(
        None, description="bytes of batches in flight at most (reading waits), and each "
                          "worker's Ray memory request: a number or '512MB', '1GB', '1GiB'")
    stream: bool | None = Field(None, description="read inputs incrementally, chunk by chunk")
    buffer_size: int | None = Field(None, ge=1024, description="read block size in bytes")
    backpressure: bool | None = Field(
        None, description="reading waits while the workers are busy (false: reads ahead "
                          "without bound)")

    def given(self) -> list[str]:
        """The option names set in the file."""
        return sorted(self.model_fields_set)


class ErrorHandling(BaseModel):
    """``error_handling:`` of a pipeline job: the retry policy of its tasks."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal[tuple(STRATEGIES)] = Field(  # type: ignore[valid-type]
        "exponential_backoff", description="the backoff between attempts")
    max_retries: int = Field(3, ge=0, description="retries after the first attempt")
    initial_delay: float = Field(0.5, ge=0, description="seconds before the first retry")
    timeout: float | None = Field(None, gt=0, description="seconds each attempt may take")
    on_failure: Literal["fail", "skip", "compensate"] = Field(
        "fail", description="what a task that still fails does")
    compensation: str | None = Field(
        None, description="on_failure: compensate runs this function (a dotted path or "
                          "lambda taking the job's spec) instead of removing partial output")

    def given(self) -> list[str]:
        return sorted(self.model_fields_set)


def parse_sections(raw: dict[str, Any], where: str, unsupported: dict[str, str],
                   kind: str) -> tuple[JobOptions | None, ErrorHandling | None]:
    """The job's ``options`` and ``error_handling`` checked; an option the kind cannot honour
    is a ``PatternError`` saying why (never accepted and ignored)."""
    out: list[Any] = []
    for key, model in (("options", JobOptions), ("error_handling", ErrorHandling)):
        value = raw.get(key)
        if value is None:
            out.append(None)
            continue
        if not isinstance(value, dict):
            raise PatternError(f"{where}.{key}: a mapping is needed, got {value!r}"
                               if ": " in where else f"{where}: {key}: a mapping is needed")
        try:
            section = model(**value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{key}.{'.'.join(str(p) for p in e['loc'])}: "
                + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"])
                for e in exc.errors(include_url=False))
            raise PatternError(f"{where}: {problems}") from None
        for name in section.given():
            reason = unsupported.get(f"{key}.{name}") or unsupported.get(key)
            if reason:
                raise PatternError(f"{where}: {key}.{name} is not supported by kind {kind}: "
                                   f"{reason}")
        out.append(section)
    return out[0], out[1]
