"""The circuit breaker as a state machine with no I/O (injectable clock).

A driver asks ``try_acquire()`` before a call: ``CLOSED_PERMIT`` or ``PROBE`` (a HALF_OPEN
probe), or ``None`` (refused: raise ``CircuitOpenError`` with ``retry_after()``). After the
call it reports ``record(permit, outcome)`` with an outcome code from ``outcome_of``. Cluster
workers report closed-state outcomes in batches with ``record_batch``. The rules are in
``CircuitBreakerConfig``'s docstring. Not thread-safe: drivers serialize calls.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from patterns._recovery.policy_config import CircuitBreakerConfig

log = logging.getLogger(__name__)


class CircuitBreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


#: Outcome codes: bit 1 = failed, bit 2 = slow. ``IGNORED`` counts as nothing.
SUCCESS, FAILURE, SLOW_SUCCESS, SLOW_FAILURE, IGNORED = 0, 1, 2, 3, -1
CLOSED_PERMIT, PROBE = "closed", "probe"


def outcome_of(config: CircuitBreakerConfig, error: BaseException | None, duration: float) -> int:
    """The outcome code of a call that raised ``error`` (None: succeeded) in ``duration`` s."""
    slow = config.slow_call_duration is not None and duration >= config.slow_call_duration
    if error is None:
        return SLOW_SUCCESS if slow else SUCCESS
    if isinstance(error, config.ignore_exceptions) or not isinstance(error,
                                                                     config.record_exceptions):
        return IGNORED
    return SLOW_FAILURE if slow else FAILURE


class _CountWindow:
    """The outcomes of the last ``size`` calls."""

    def __init__(self, size: int) -> None:
        self._codes: deque[int] = deque(maxlen=size)
        self.calls = self.failed = self.slow = 0

    def add(self, code: int, now: float) -> None:
        codes = self._codes
        if len(codes) == codes.maxlen:
            old = codes[0]
            self.calls -= 1
            self.failed -= old & 1
            self.slow -= (old >> 1) & 1
        codes.append(code)
        self.calls += 1
        self.failed += code & 1
        self.slow += (code >> 1) & 1

    def counts(self, now: float) -> tuple[int, int, int]:
        return self.calls, self.failed, self.slow

    def codes(self) -> list[int]:
        return list(self._codes)


class _TimeWindow:
    """The outcomes of the last ``duration`` seconds, in 20 buckets (5% resolution)."""

    BUCKETS = 20

    def __init__(self, duration: float) -> None:
        self._width = duration / self.BUCKETS
        self._buckets: deque[list[float]] = deque()  # [bucket index, calls, failed, slow]

    def _expire(self, now: float) -> None:
        oldest = math.floor(now / self._width) - self.BUCKETS + 1
        while self._buckets and self._buckets[0][0] < oldest:
            self._buckets.popleft()

    def add(self, code: int, now: float) -> None:
        index = math.floor(now / self._width)
        self._expire(now)
        if not self._buckets or self._buckets[-1][0] != index:
            self._buckets.append([index, 0, 0, 0])
        bucket = self._buckets[-1]
        bucket[1] += 1
        bucket[2] += code & 1
        bucket[3] += (code >> 1) & 1

    def counts(self, now: float) -> tuple[int, int, int]:
        self._expire(now)
        calls = failed = slow = 0
        for _, c, f, s in self._buckets:
            calls += int(c)
            failed += int(f)
            slow += int(s)
        return calls, failed, slow

    def codes(self) -> list[int]:
        return []


class BreakerCore:
    """The breaker of one ``CircuitBreakerConfig`` (see the module docstring)."""

    def __init__(self, config: CircuitBreakerConfig, name: str = "circuit_breaker",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.name = name
        self._clock = clock
        self._state = CircuitBreakerState.CLOSED
        self._window = self._new_window()
        self._opened_at = 0.0
        self._consecutive = 0  # failures since the last success (the count rule)
        self._streaks: dict[str, int] = {}  # the same per reporting user (record_batch)
        self._probes = 0
        self._probe_successes = 0
        self.not_permitted = 0
        self.transitions = 0
        self.listeners: list[Callable[[CircuitBreakerState, CircuitBreakerState], Any]] = []
        self._timed = config.window_type == "time"
        self._rates = config.failure_rate_threshold is not None or \
            config.slow_call_rate_threshold is not None
        #: whether a driver must time calls (slow calls count for something)
        self.times_calls = config.slow_call_duration is not None

    def _new_window(self) -> _CountWindow | _TimeWindow:
        c = self.config
        return _CountWindow(c.window_size) if c.window_type == "count" else _TimeWindow(
            c.window_duration)

    # -- state -------------------------------------------------------------------------------
    @property
    def state(self) -> CircuitBreakerState:
        """The state now (an OPEN breaker past its wait reads HALF_OPEN when ``auto_half_open``)."""
        if self.config.auto_half_open:
            self._poll()
        return self._state

    def _poll(self) -> None:
        if self._state is CircuitBreakerState.OPEN and \
                self._clock() - self._opened_at >= self.config.timeout:
            self._move(CircuitBreakerState.HALF_OPEN)

    def retry_after(self) -> float:
        """Seconds until an OPEN breaker lets a probe through (0 when not OPEN)."""
        if self._state is not CircuitBreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.config.timeout - self._clock())

    def _move(self, new: CircuitBreakerState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        self.transitions += 1
        if new is CircuitBreakerState.OPEN:
            self._opened_at = self._clock()
        elif new is CircuitBreakerState.CLOSED:
            self._window = self._new_window()
        self._consecutive = 0
        self._streaks.clear()
        self._probes = self._probe_successes = 0
        c = self.config
        hook = {CircuitBreakerState.OPEN: c.on_open, CircuitBreakerState.CLOSED: c.on_close,
                CircuitBreakerState.HALF_OPEN: c.on_half_open}[new]
        for callback in [hook, c.on_state_change, *self.listeners]:
            if callback is None:
                continue
            try:
                callback() if callback is hook else callback(old, new)
            except Exception:  # a broken callback must not break the protected call
                log.exception("circuit breaker %r: state-change callback failed", self.name)

    def force(self, state: CircuitBreakerState) -> None:
        """Move to ``state`` now (operators; the cluster actor's state for a worker)."""
        self._move(state)

    # -- calls -------------------------------------------------------------------------------
    def try_acquire(self) -> str | None:
        """A permit (``CLOSED_PERMIT`` or ``PROBE``) or ``None`` when the call is refused."""
        if self._state is CircuitBreakerState.CLOSED:  # the hot path: nothing to poll
            return CLOSED_PERMIT
        self._poll()
        state = self._state
        if state is CircuitBreakerState.CLOSED:
            return CLOSED_PERMIT
        if state is CircuitBreakerState.HALF_OPEN and self._probes < self.config.probe_quota:
            self._probes += 1
            return PROBE
        self.not_permitted += 1
        return None

    def outcome_of(self, error: BaseException | None, duration: float) -> int:
        """The outcome code of a call that raised ``error`` (None: succeeded) in ``duration``."""
        return outcome_of(self.config, error, duration)

    def record(self, permit: str, code: int) -> None:
        """Report the outcome of a call made with ``permit``."""
        if permit == PROBE:
            self._probe_done(code)
        elif code != IGNORED and self._state is CircuitBreakerState.CLOSED:
            now = self._clock()
            self._add(code, now)
            self._judge(now)

    def record_success(self, permit: str, duration: float) -> None:
        """``record(permit, outcome_of(None, duration))``, the hot path of a good call."""
        c = self.config
        slow = c.slow_call_duration is not None and duration >= c.slow_call_duration
        if permit == PROBE:
            self._probe_done(SLOW_SUCCESS if slow else SUCCESS)
            return
        if self._state is not CircuitBreakerState.CLOSED:
            return
        self._consecutive = 0
        if self._timed:
            now = self._clock()
            self._window.add(SLOW_SUCCESS if slow else SUCCESS, now)
            if self._rates:
                self._judge(now)
        else:
            self._window.add(SLOW_SUCCESS if slow else SUCCESS, 0.0)
            if self._rates:
                self._judge(0.0)

    def record_batch(self, codes: list[int], source: str = "") -> None:
        """Closed-state outcomes reported together by one user (``source``, a cluster
        worker), judged one by one in their order: three failures then successes open a
        breaker of threshold 3. Consecutive failures are counted per source: batches of
        different users arrive out of order, so another user's successes do not reset them."""
        now = self._clock()
        streak = self._streaks.get(source, 0)
        try:
            for code in codes:
                if self._state is not CircuitBreakerState.CLOSED:
                    return
                if code == IGNORED:
                    continue
                self._window.add(code, now)
                streak = streak + 1 if code & 1 else 0
                self._consecutive = streak
                self._judge(now)
        finally:
            if streak and self._state is CircuitBreakerState.CLOSED:
                self._streaks[source] = streak
            else:
                self._streaks.pop(source, None)

    def _add(self, code: int, now: float) -> None:
        self._window.add(code, now)
        self._consecutive = self._consecutive + 1 if code & 1 else 0

    def _probe_done(self, code: int) -> None:
        if self._state is not CircuitBreakerState.HALF_OPEN:
            return
        if code == IGNORED:
            self._probes -= 1
            return
        judged_bad = code & 1 or (code & 2 and self.config.slow_call_rate_threshold is not None)
        if judged_bad:
            self._move(CircuitBreakerState.OPEN)
            return
        self._probe_successes += 1
        if self._probe_successes >= self.config.success_threshold:
            self._move(CircuitBreakerState.CLOSED)

    def _judge(self, now: float) -> None:
        c = self.config
        trip = c.failure_threshold is not None and self._consecutive >= c.failure_threshold
        if trip or (c.failure_rate_threshold is None and c.slow_call_rate_threshold is None):
            if trip:
                self._move(CircuitBreakerState.OPEN)
            return
        calls, failed, slow = self._window.counts(now)
        if calls and calls >= c.min_calls:
            trip = (c.failure_rate_threshold is not None
                    and failed * 100.0 / calls >= c.failure_rate_threshold) or \
                   (c.slow_call_rate_threshold is not None
                    and slow * 100.0 / calls >= c.slow_call_rate_threshold)
        if trip:
            self._move(CircuitBreakerState.OPEN)

    # -- reports -----------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        """resilience4j's figures: rates in percent, ``-1`` until ``minimum_calls`` calls."""
        state = self.state
        calls, failed, slow = self._window.counts(self._clock())
        judged = calls >= self.config.min_calls and calls > 0
        return {
            "state": state.value,
            "failure_rate": failed * 100.0 / calls if judged else -1.0,
            "slow_call_rate": slow * 100.0 / calls if judged else -1.0,
            "buffered_calls": calls,
            "failed_calls": failed,
            "slow_calls": slow,
            "failure_count": failed,
            "consecutive_failures": self._consecutive,
            "not_permitted_calls": self.not_permitted,
            "state_transitions": self.transitions,
            "retry_after": self.retry_after(),
        }

    def snapshot(self) -> dict[str, Any]:
        """What a restarted cluster actor restores: state, when it opened, the count window."""
        return {"state": self._state.value, "opened_at": self._opened_at,
                "codes": self._window.codes(), "not_permitted": self.not_permitted,
                "consecutive": self._consecutive, "streaks": dict(self._streaks)}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Take over a ``snapshot`` made with the same kind of clock (no callbacks fire)."""
        self._state = CircuitBreakerState(snapshot["state"])
        self._opened_at = float(snapshot["opened_at"])
        self.not_permitted = int(snapshot.get("not_permitted", 0))
        self._consecutive = int(snapshot.get("consecutive", 0))
        self._streaks = {str(k): int(v) for k, v in snapshot.get("streaks", {}).items()}
        self._window = self._new_window()
        now = self._clock()
        for code in snapshot.get("codes", []):
            self._window.add(int(code), now)
