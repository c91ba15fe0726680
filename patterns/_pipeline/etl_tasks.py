"""An ETL job's partition tasks under a pipeline file's ``error_handling:``.

``RetriedStepSpec`` wraps the ETL step recipe shipped to the workers (``DatabaseETL(
step_wrapper=)``). A task that raises runs again under the retry policy, on a step built
afresh (new connections): each batch committed with its checkpoint row, so the retry goes on
from the first batch not committed, never loading one twice. When the attempts run out,
``skip`` runs the partition once more with every record of its remaining batches rejected
(the rejects table, then the error file, with the reason), so the run completes;
``fail``/``compensate`` raise ``PatternError``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from patterns._task_policy import TaskRetry
from patterns.errors import PatternError


class PartitionSkipped(Exception):
    """Raised for each record of a skipped partition (its reject's reason)."""


@dataclass(frozen=True)
class SkipRecords:
    """A record step that rejects every record, saying why (``on_failure: skip``)."""

    reason: str

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        raise PartitionSkipped(self.reason)


@dataclass
class RetriedStepSpec:
    """The step recipe ``inner`` whose tasks run under ``retry`` (picklable)."""

    inner: Any
    retry: TaskRetry

    def build(self, context: Any) -> RetriedStep:
        return RetriedStep(self, context)


class RetriedStep:
    """Runs partition tasks of ``spec.inner`` under ``spec.retry`` (see the module docstring)."""

    def __init__(self, spec: RetriedStepSpec, context: Any) -> None:
        self.spec = spec
        self.context = context
        self.step = spec.inner.build(context)

    def run(self, task: Any) -> Any:
        policy = self.spec.retry

        def attempt() -> Any:
            try:
                return self.step.run(task)
            except Exception:
                self._renew(self.spec.inner)  # its connections may be in a failed transaction
                raise

        try:
            return policy.call(attempt)
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc
            reason = f"{type(cause).__name__}: {getattr(cause, 'message', None) or cause}"
        why = (f"partition {task.partition} failed {policy.attempts} attempts "
               f"(error_handling.on_failure: {policy.on_failure}): {reason}")
        if policy.on_failure != "skip":
            raise PatternError(why, pattern="etl")
        skip = SkipRecords(f"skipped after {policy.attempts} attempts: {reason}")
        inner = self.spec.inner
        self._renew(replace(inner, pipeline={"key": inner.pipeline.get("key") or [],
                                             "transformations": [skip]}))
        try:
            return self.step.run(task)
        except Exception as exc:
            raise PatternError(f"{why}; its records could not be rejected either: {exc}",
                               pattern="etl") from None
        finally:
            self._renew(inner)

    def _renew(self, spec: Any) -> None:
        try:
            self.step.close()
        except Exception:  # a broken step holds nothing worth keeping
            pass
        self.step = spec.build(self.context)

    def close(self) -> None:
        self.step.close()
