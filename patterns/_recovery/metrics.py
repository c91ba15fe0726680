"""The counts of an ``ErrorRecoveryWorkflow`` and the seed's and dataknobs' keys over them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class WorkflowCounts:
    """Executions and their outcomes; ``calls`` counts calls of the protected function."""

    executions: int = 0
    calls: int = 0
    successes: int = 0
    failures: int = 0
    fallbacks: int = 0
    compensations: int = 0
    deadlines_exceeded: int = 0
    consecutive_failures: int = 0
    last_execution_time: float = 0.0
    total_execution_time: float = 0.0

    def summary(self, retries: int) -> dict[str, Any]:
        """The seed's keys (``total_attempts`` = calls, ``success_rate``,
        ``avg_retry_count``) and dataknobs' (``attempts`` = ``retries``, not calls)."""
        n = self.executions
        return {
            "executions": n,
            "total_attempts": self.calls,
            "success_rate": self.successes / n if n else 0.0,
            "avg_retry_count": retries / n if n else 0.0,
            "attempts": retries,
            "successes": self.successes,
            "failures": self.failures,
            "fallbacks": self.fallbacks,
            "compensations": self.compensations,
            "consecutive_failures": self.consecutive_failures,
            "last_execution_time": self.last_execution_time,
            "total_execution_time": self.total_execution_time,
        }
