"""Progress records handed to ``on_progress`` callbacks of long runs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Timed:
    """Base of progress records: ``start_time`` (keyword-only) and ``elapsed``."""

    start_time: float = field(default_factory=time.time, kw_only=True)

    @property
    def elapsed(self) -> float:
        """Seconds since ``start_time``."""
        return time.time() - self.start_time


@dataclass
class BatchProgress(Timed):
    """Progress of ``process_batch``: records done so far out of ``total``."""

    total: int
    completed: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def rate(self) -> float:
        """Records per second so far."""
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0
