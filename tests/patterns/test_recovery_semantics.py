"""What the recovery settings mean (issue 23 items 2-5): consecutive failures, rate configs
judged by their rate, an explicit max_attempts, dataknobs-fsm's callables."""

from __future__ import annotations

import asyncio

import pytest

from patterns.error_recovery import (
    CircuitBreaker,
    CircuitOpenError,
    ErrorRecoveryConfig,
    ErrorRecoveryWorkflow,
    RecoveryConfigError,
    SagaFailed,
    create_retry_workflow,
)


class Down(Exception):
    pass


def calls_until_open(breaker: CircuitBreaker, outcomes) -> int | None:
    """The number of calls that reached the service before the breaker refused one."""
    reached = 0
    for fail in outcomes:
        def call(fail=fail):
            if fail:
                raise Down("down")
            return "ok"
        try:
            breaker.call_sync(call)
        except Down:
            pass
        except CircuitOpenError:
            return reached
        reached += 1
    return None


@pytest.mark.parametrize("threshold", [11, 15, 30])
def test_failure_threshold_counts_consecutive_failures_beyond_the_window(threshold):
    breaker = CircuitBreaker(failure_threshold=threshold, timeout=60)  # window_size 10
    assert calls_until_open(breaker, [True] * 100) == threshold  # pybreaker opens there too


def test_a_success_starts_the_count_again():
    breaker = CircuitBreaker(failure_threshold=3, timeout=60)
    assert calls_until_open(breaker, [True, True, False] * 20) is None
    assert calls_until_open(breaker, [True] * 5) == 3


def test_a_rate_config_is_judged_by_its_rate():
    breaker = CircuitBreaker(failure_rate_threshold=50, window_type="time", timeout=60)
    every_32nd = [i % 32 == 0 for i in range(1, 301)]  # 3.1% failures
    assert calls_until_open(breaker, every_32nd) is None
    assert breaker.metrics()["failure_rate"] < 5
    half = CircuitBreaker(failure_rate_threshold=50, window_type="time", minimum_calls=10,
                          timeout=60)
    assert calls_until_open(half, [True, False] * 20) == 10  # judged from minimum_calls on


def test_the_count_rule_applies_to_a_rate_config_when_asked_for():
    breaker = CircuitBreaker(failure_rate_threshold=50, failure_threshold=2,
                             window_type="time", timeout=60)
    assert calls_until_open(breaker, [True] * 5) == 2


def test_an_explicit_max_attempts_is_what_runs():
    calls = []

    def fail():
        calls.append(1)
        raise Down("down")

    workflow = create_retry_workflow(max_attempts=15, initial_delay=0.0, max_delay=0.0)
    with pytest.raises(Down):
        workflow.execute_sync(fail)
    assert len(calls) == 15


def test_a_cap_below_max_attempts_is_a_config_error_naming_both():
    with pytest.raises(RecoveryConfigError) as info:
        ErrorRecoveryConfig(primary_strategy="retry", retry_config={"max_attempts": 15},
                            max_total_attempts=10)
    assert info.value.field == "max_total_attempts"
    assert "15" in str(info.value) and "10" in str(info.value)


def test_dataknobs_style_fallback_gets_the_error():
    def fallback(e):
        return {"fallback": type(e).__name__}

    def fetch(user_id, region):
        raise Down(f"{user_id} in {region}")

    workflow = ErrorRecoveryWorkflow(ErrorRecoveryConfig(
        primary_strategy="fallback", fallback_config={"fallback_function": fallback}))
    assert workflow.execute_sync(fetch, 7, "eu") == {"fallback": "Down"}

    def typed(error: Exception) -> str:  # one argument on both sides: the annotation says
        return f"error: {error}"

    workflow = ErrorRecoveryWorkflow(ErrorRecoveryConfig(
        primary_strategy="fallback", fallback_config={"fallback_function": typed}))
    assert workflow.execute_sync(lambda user: (_ for _ in ()).throw(Down("x")), 7) == "error: x"


def test_seed_style_fallback_still_gets_the_call_arguments():
    def cached_profile(user_id, region):
        return {"user": user_id, "region": region, "stale": True}

    def fetch(user_id, region):
        raise Down("down")

    workflow = ErrorRecoveryWorkflow(ErrorRecoveryConfig(
        primary_strategy="fallback", fallback_config={"fallback_function": cached_profile}))
    assert workflow.execute_sync(fetch, 7, "eu") == {"user": 7, "region": "eu", "stale": True}


def test_compensations_run_last_first_with_the_saved_state():
    ran = []

    def undo(tag):
        def action(state):
            ran.append((tag, state["args"], type(state["error"]).__name__))
        return action

    def book(order):
        order["booked"] = True  # changed by the call: the saved state is from before
        raise Down("payment declined")

    workflow = ErrorRecoveryWorkflow(ErrorRecoveryConfig(
        primary_strategy="compensate",
        compensation_config={"compensation_actions": [undo("a"), undo("b"), undo("c"),
                                                      lambda: ran.append("no-arg")]}))
    with pytest.raises(SagaFailed):
        asyncio.run(workflow.execute(book, {"id": 1}))
    assert ran == ["no-arg"] + [(t, ({"id": 1},), "Down") for t in "cba"]


def test_a_cluster_breaker_counts_each_users_failures_in_a_row():
    from patterns.error_recovery import BreakerCore, CircuitBreakerConfig, CircuitBreakerState

    core = BreakerCore(CircuitBreakerConfig(failure_threshold=3, timeout=60))
    core.record_batch([1, 1], "a")  # two failures of user a
    core.record_batch([0] * 5, "b")  # user b's successes, reported in between
    core.record_batch([1], "a")  # a's third in a row
    assert core.state is CircuitBreakerState.OPEN
