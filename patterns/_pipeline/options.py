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

from patterns._task_policy import STRATEGIES
from patterns.errors import PatternError


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


class _Sections(BaseModel):
    """The two sections as one model, so validation errors carry their key paths."""

    model_config = ConfigDict(extra="ignore")

    options: JobOptions | None = None
    error_handling: ErrorHandling | None = None


def parse_sections(raw: dict[str, Any], where: str, unsupported: dict[str, str],
                   kind: str) -> tuple[JobOptions | None, ErrorHandling | None]:
    """The job's ``options`` and ``error_handling`` checked; an option the kind cannot honour
    is a ``PatternError`` saying why (never accepted and ignored). A job at the top of its
    file raises from the ``ValidationError`` (its key paths locate the lines)."""
    given = {k: raw[k] for k in ("options", "error_handling") if raw.get(k) is not None}
    if not given:
        return None, None
    try:
        sections = _Sections(**given)
    except ValidationError as exc:
        problems = "; ".join(
            ".".join(str(p) for p in e["loc"]) + ": "
            + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"])
            for e in exc.errors(include_url=False))
        error = PatternError(f"{where}: {problems}")
        if ": steps[" in where:  # the key paths are relative to the step, not to the file
            raise error from None
        raise error from exc
    for key in ("options", "error_handling"):
        section = getattr(sections, key)
        for name in section.given() if section is not None else ():
            reason = unsupported.get(f"{key}.{name}") or unsupported.get(key)
            if reason:
                raise PatternError(f"{where}: {key}.{name} is not supported by kind {kind}: "
                                   f"{reason}")
    return sections.options, sections.error_handling
