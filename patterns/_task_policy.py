"""``error_handling:`` of a pipeline job as the policy of its tasks, shared by the kinds
(``patterns._pipeline.kind_*``) and the file job (``patterns._files.job``).

``TaskRetry`` is plain data (it is pickled to the job's workers). ``call`` drives the
project's one retry engine (``patterns.error_recovery.RetryPolicy`` over
``fsm_actors.platform.policies.retry_core``): ``strategy`` names the backoff, ``timeout``
bounds each attempt (a sync attempt runs on a thread; a timed-out one is abandoned and its
late result dropped), ``max_retries`` counts the retries after the first attempt.
``on_failure`` is what the kind does with a task that still fails: ``fail`` the job, ``skip``
it (its records go to the error file), ``compensate`` (undo the run, then fail).
``remove_partial_output`` is the default compensation of a file job.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

T = TypeVar("T")

#: ``strategy`` names -> ``RetryConfig.backoff_strategy``
STRATEGIES = {
    "exponential_backoff": "exponential", "exponential": "exponential",
    "linear_backoff": "linear", "linear": "linear",
    "fixed": "fixed", "fixed_delay": "fixed",
    "jitter": "jitter", "exponential_jitter": "jitter",
}


@dataclass(frozen=True)
class TaskRetry:
    """The retry policy of one task (see the module docstring)."""

    strategy: str = "exponential_backoff"
    max_retries: int = 3
    initial_delay: float = 0.5
    timeout: float | None = None
    on_failure: str = "fail"

    @classmethod
    def of(cls, section: Any) -> Self | None:
        """The policy of an ``ErrorHandling`` section (``None`` for none)."""
        if section is None:
            return None
        return cls(section.strategy, section.max_retries, section.initial_delay,
                   section.timeout, section.on_failure)

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    def config(self, **extra: Any) -> Any:
        """The ``RetryConfig`` of this policy (``extra``: more of its fields)."""
        from patterns.error_recovery import RetryConfig

        return RetryConfig(max_attempts=self.attempts, initial_delay=self.initial_delay,
                           max_delay=max(60.0, self.initial_delay),
                           backoff_strategy=STRATEGIES[self.strategy],
                           attempt_timeout=self.timeout, **extra)

    def call(self, attempt: Callable[[], T], again: Callable[[T], bool] | None = None) -> T:
        """``attempt()`` until it returns a result ``again`` does not want retried, or the
        attempts run out: the last result, or the last error raised."""
        from patterns.error_recovery import RetryPolicy

        extra = {"retry_on_result": again} if again is not None else {}
        return RetryPolicy(self.config(**extra), name="error_handling").call_sync(attempt)


def remove_partial_output(kind: Any) -> str:
    """Undo a failed file job (a ``FileJobKind``): its staged parts and its checkpoint go, so
    nothing is left to resume; the old output was never replaced."""
    plan = kind.plan
    shutil.rmtree(plan.staging, ignore_errors=True)
    if plan.checkpoint_dir is not None and plan.checkpoint_dir.is_dir():
        from fsm_actors.platform.jobs.checkpoint import CheckpointStore

        CheckpointStore(plan.checkpoint_dir).path(kind.run_id).unlink(missing_ok=True)
    kind.cleanup()
    return "removed the run's partial output and checkpoint"


def compensator(error_handling: Any, info: dict[str, Any]) -> Callable[[Any, str], str] | None:
    """``error_handling``'s compensation for a file job, or ``None`` unless ``on_failure`` is
    ``compensate``: the named function (called with ``info`` plus ``error``), else
    ``remove_partial_output``. The result says what was done."""
    if getattr(error_handling, "on_failure", None) != "compensate":
        return None
    function = getattr(error_handling, "compensation", None)

    def compensate(kind: Any, error: str) -> str:
        if callable(function):
            function({**info, "error": error})
            return f"ran {getattr(function, '__name__', 'the compensation')}"
        return remove_partial_output(kind)

    return compensate
