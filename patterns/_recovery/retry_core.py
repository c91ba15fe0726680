"""The retry core bound to the recovery errors: ``fsm_actors.platform.policies.retry_core``
(the project's one retry engine) with ``CallNotPermittedError`` and ``DeadlineExceeded``
never retried and ``DeadlineExceeded`` raised when the deadline passes."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from fsm_actors.platform.policies import retry_core as _core
from fsm_actors.platform.policies.retry_core import Action, Kind, RetryRules, RetryState, RetryStats
from patterns._recovery.errors import CallNotPermittedError, DeadlineExceeded

__all__ = ["Action", "Kind", "RetryCore", "RetryState", "RetryStats"]


class RetryCore(_core.RetryCore):
    """``RetryCore(config, clock, rng)`` with the recovery errors (see the module docstring)."""

    def __init__(self, config: RetryRules, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        super().__init__(config, clock, rng, not_retried=(CallNotPermittedError, DeadlineExceeded),
                         deadline_error=DeadlineExceeded)
