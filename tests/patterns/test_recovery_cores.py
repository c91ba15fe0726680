"""The pure policy cores with an injected clock: backoff, retry decisions, breaker, bucket."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from fsm_actors.platform.policies.backoff import Backoff
from patterns._recovery.breaker_core import FAILURE, IGNORED, PROBE, SLOW_SUCCESS, SUCCESS
from patterns.error_recovery import (
    BackoffStrategy,
    BreakerCore,
    CircuitBreakerConfig,
    CircuitBreakerState,
    CircuitOpenError,
    DeadlineExceeded,
    Kind,
    RetryConfig,
    RetryCore,
    TokenBucket,
)


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


class Fraction(random.Random):
    """``uniform(a, b)`` at a fixed fraction of the range, so jittered sequences are exact."""

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction


def delays(strategy, n=6, rng=None, **kw) -> list[float]:
    cfg = RetryConfig(backoff_strategy=strategy, initial_delay=1.0, max_delay=10.0, **kw)
    backoff = Backoff(cfg, rng)
    return [round(backoff.next(), 6) for _ in range(n)]


def test_backoff_sequences_by_strategy():
    assert delays(BackoffStrategy.FIXED) == [1, 1, 1, 1, 1, 1]
    assert delays("linear") == [1, 2, 3, 4, 5, 6]
    assert delays("exponential") == [1, 2, 4, 8, 10, 10]
    assert delays("exponential", backoff_multiplier=3.0) == [1, 3, 9, 10, 10, 10]
    assert delays("random", rng=Fraction(0.5)) == [5.5] * 6
    assert delays("jitter", rng=Fraction(0.5)) == [0.5, 1, 2, 4, 5, 5]  # full jitter
    assert delays("jitter", rng=Fraction(0.5), jitter="equal") == [0.75, 1.5, 3, 6, 7.5, 7.5]
    assert delays("jitter", rng=Fraction(1.0), jitter="range", jitter_range=0.1) == \
        [1.1, 2.2, 4.4, 8.8, 10, 10]
    # decorrelated: uniform(initial, 3 * previous), capped
    assert delays("decorrelated", rng=Fraction(1.0)) == [3, 9, 10, 10, 10, 10]
    assert delays("decorrelated", rng=Fraction(0.0)) == [1] * 6


def test_backoff_stays_within_cap_with_real_randomness():
    for strategy in BackoffStrategy:
        assert all(0 <= d <= 10.0 for d in delays(strategy, n=200, rng=random.Random(7)))


def test_retry_decisions_count_attempts_and_waits():
    clock = Clock()
    core = RetryCore(RetryConfig(max_attempts=3, initial_delay=0.5, backoff_strategy="fixed"),
                     clock)
    state = core.start()
    assert state.attempt_timeout() is None
    first = state.on_error(ConnectionError("down"))
    assert (first.kind, first.delay) == (Kind.SLEEP, 0.5)
    state.attempt_timeout()
    assert state.on_result("ok").kind is Kind.RETURN
    assert (state.attempts, state.retries) == (2, 1)
    state = core.start()
    for _ in range(2):
        state.attempt_timeout()
        assert state.on_error(ValueError("x")).kind is Kind.SLEEP
    state.attempt_timeout()
    last = state.on_error(ValueError("third"))
    assert last.kind is Kind.RAISE and str(last.error) == "third"
    assert core.stats.as_dict() == {
        "successful_calls_without_retry": 0, "successful_calls_with_retry": 1,
        "failed_calls_without_retry": 0, "failed_calls_with_retry": 1, "retries": 3}


def test_permanent_and_unlisted_errors_are_not_retried():
    core = RetryCore(RetryConfig(retry_on_exceptions=[ConnectionError], transient_errors=[KeyError],
                                 permanent_errors=[ConnectionRefusedError], initial_delay=0))
    for error, kind in [(ConnectionError(), Kind.SLEEP), (KeyError(), Kind.SLEEP),
                        (ConnectionRefusedError(), Kind.RAISE), (ValueError(), Kind.RAISE),
                        (CircuitOpenError("open"), Kind.RAISE)]:
        state = core.start()
        state.attempt_timeout()
        assert state.on_error(error).kind is kind, error
    predicate = RetryCore(RetryConfig(retry_on_exception=lambda e: "again" in str(e)))
    state = predicate.start()
    state.attempt_timeout()
    assert state.on_error(RuntimeError("no")).kind is Kind.RAISE


def test_retry_on_result_returns_the_last_result_when_exhausted():
    seen = []
    core = RetryCore(RetryConfig(max_attempts=2, initial_delay=0, retry_on_result=lambda r: r is None,
                                 on_retry=lambda n, outcome, d: seen.append((n, outcome, d))))
    state = core.start()
    state.attempt_timeout()
    assert state.on_result(None).kind is Kind.SLEEP
    state.attempt_timeout()
    final = state.on_result(None)
    assert final.kind is Kind.RETURN and final.value is None
    assert seen == [(1, None, 0.0)]
    assert core.stats.failed_with_retry == 1


def test_retry_after_hint_and_total_deadline():
    clock = Clock()
    core = RetryCore(RetryConfig(initial_delay=0.1, max_delay=1, attempt_timeout=5.0,
                                 total_timeout=3.0, max_attempts=10), clock)
    state = core.start()
    assert state.attempt_timeout() == 3.0  # the attempt timeout is cut to the budget left
    hinted = ConnectionError("429")
    hinted.retry_after = 2.0
    assert state.on_error(hinted).delay == 2.0
    clock.advance(2.0)
    assert state.attempt_timeout() == pytest.approx(1.0)
    clock.advance(0.95)
    # a wait that would end past the deadline is not started: the error is raised
    assert state.on_error(ConnectionError("again")).kind is Kind.RAISE
    late = core.start()
    late.attempt_timeout()
    clock.advance(3.5)
    late.on_error(ConnectionError())  # gives up (deadline), nothing to start
    with pytest.raises(DeadlineExceeded):
        core.start(deadline=clock()).attempt_timeout()


def breaker(clock, **kw) -> BreakerCore:
    return BreakerCore(CircuitBreakerConfig(**kw), "test", clock)


def test_count_window_failure_threshold_opens_then_half_open_closes():
    clock = Clock()
    events = []
    core = breaker(clock, failure_threshold=3, window_size=5, timeout=10.0, success_threshold=2,
                   on_state_change=lambda old, new: events.append((old.value, new.value)))
    for code in (FAILURE, SUCCESS, FAILURE, SUCCESS, SUCCESS, SUCCESS):
        core.record(core.try_acquire(), code)
    assert core.state is CircuitBreakerState.CLOSED  # the first failure slid out of the window
    for code in (FAILURE, FAILURE, FAILURE):
        core.record(core.try_acquire(), code)
    assert core.state is CircuitBreakerState.OPEN
    assert core.try_acquire() is None and core.retry_after() == 10.0
    clock.advance(10.0)
    assert core.state is CircuitBreakerState.HALF_OPEN
    probes = [core.try_acquire(), core.try_acquire(), core.try_acquire()]
    assert probes == [PROBE, PROBE, None]  # the probe quota is success_threshold
    core.record(PROBE, SUCCESS)
    core.record(PROBE, SUCCESS)
    assert core.state is CircuitBreakerState.CLOSED
    assert events == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert core.metrics()["not_permitted_calls"] == 2


def test_failed_probe_reopens_and_ignored_errors_count_nothing():
    clock = Clock()
    core = breaker(clock, failure_threshold=1, timeout=1.0, ignore_exceptions=[KeyError])
    assert core.outcome_of(KeyError("k"), 0.0) == IGNORED
    core.record(core.try_acquire(), IGNORED)
    assert core.state is CircuitBreakerState.CLOSED
    core.record(core.try_acquire(), core.outcome_of(RuntimeError(), 0.0))
    assert core.state is CircuitBreakerState.OPEN
    clock.advance(1.0)
    core.record(core.try_acquire(), FAILURE)
    assert core.state is CircuitBreakerState.OPEN


def test_failure_rate_needs_minimum_calls():
    clock = Clock()
    core = breaker(clock, failure_threshold=None, failure_rate_threshold=50, window_size=10,
                   minimum_calls=4)
    for code in (FAILURE, FAILURE, FAILURE):
        core.record(core.try_acquire(), code)
    assert core.state is CircuitBreakerState.CLOSED and core.metrics()["failure_rate"] == -1
    core.record(core.try_acquire(), SUCCESS)  # 3 of 4 = 75% >= 50%
    assert core.state is CircuitBreakerState.OPEN


def test_time_window_forgets_old_calls_and_slow_rate_opens():
    clock = Clock()
    core = breaker(clock, failure_rate_threshold=100, minimum_calls=3, window_type="time",
                   window_duration=10.0)
    core.record(core.try_acquire(), FAILURE)
    core.record(core.try_acquire(), FAILURE)
    clock.advance(11.0)
    core.record(core.try_acquire(), FAILURE)
    assert core.state is CircuitBreakerState.CLOSED and core.metrics()["failed_calls"] == 1
    slow = breaker(clock, failure_threshold=None, slow_call_rate_threshold=50,
                   slow_call_duration=1.0, window_type="time", window_duration=5.0, minimum_calls=2)
    assert slow.outcome_of(None, 1.5) == SLOW_SUCCESS
    slow.record(slow.try_acquire(), SUCCESS)
    slow.record(slow.try_acquire(), slow.outcome_of(None, 2.0))
    assert slow.state is CircuitBreakerState.OPEN


def test_manual_half_open_waits_for_a_call_and_batches_count():
    clock = Clock()
    core = breaker(clock, failure_threshold=4, timeout=1.0, auto_half_open=False)
    core.record_batch([FAILURE, SUCCESS, FAILURE, FAILURE, FAILURE])
    assert core.state is CircuitBreakerState.CLOSED  # 3 in a row, not 4
    core.record_batch([FAILURE, SUCCESS])  # judged one by one: the 4th in a row opens it
    assert core.state is CircuitBreakerState.OPEN
    clock.advance(2.0)
    assert core.state is CircuitBreakerState.OPEN  # no automatic transition
    assert core.try_acquire() == PROBE
    snap = core.snapshot()
    copy = breaker(clock, failure_threshold=4, timeout=1.0)
    copy.restore(snap)
    assert copy.state is CircuitBreakerState.HALF_OPEN


def test_token_bucket_reserves_in_order_and_pauses():
    clock = Clock(0.0)
    bucket = TokenBucket(rate=10, capacity=2, clock=clock)
    assert [bucket.reserve(1) for _ in range(4)] == [0.0, 0.0, pytest.approx(0.1),
                                                      pytest.approx(0.2)]
    assert bucket.reserve(1, max_wait=0.1) is None  # would wait 0.3 s
    clock.advance(1.0)
    assert bucket.available() == pytest.approx(2.0)  # never more than the burst
    bucket.pause(0.5)
    assert bucket.reserve(1) == pytest.approx(0.6)
    bucket.cancel(1)
    snap = bucket.snapshot()
    other = TokenBucket(rate=10, capacity=2, clock=clock)
    other.restore(snap)
    assert other.available() == pytest.approx(bucket.available())


def test_cores_and_the_public_module_import_without_ray():
    code = ("import json, sys\n"
            "import patterns.error_recovery, patterns._recovery.workflow\n"
            "print(json.dumps([m for m in ('ray', 'aiohttp', 'sqlalchemy') if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
