"""ErrorRecoveryWorkflow: composition, deadline, cache, fallback, compensation, bulkhead,
metrics and config errors (process scope, no Ray)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from patterns.error_recovery import (
    WRAP_ORDER,
    BulkheadFullError,
    CircuitOpenError,
    DeadlineExceeded,
    ErrorRecoveryConfig,
    ErrorRecoveryWorkflow,
    RecoveryConfigError,
    RecoveryStrategy,
    SagaFailed,
    SagaStep,
    create_circuit_breaker_workflow,
    create_resilient_workflow,
    create_retry_workflow,
)
from tests.helpers.api import get_json

FAST = {"initial_delay": 0.01, "max_delay": 0.05}


class Flaky:
    """Fails ``failures`` times, then returns its call count."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return {"calls": self.calls, "args": args}


def test_seed_error_recovery_block_runs_literally():
    from patterns.error_recovery import BackoffStrategy, create_retry_workflow

    retry_workflow = create_retry_workflow(
        max_attempts=3,
        backoff_strategy=BackoffStrategy.EXPONENTIAL,
        initial_delay=1.0,
        max_delay=60.0
    )
    assert retry_workflow.retry.config.max_delay == 60.0
    assert retry_workflow.strategies == {RecoveryStrategy.RETRY}


async def test_calls_seen_by_the_server_equal_total_attempts(fresh):
    workflow = create_retry_workflow(max_attempts=4, retry_on_exceptions=[aiohttp.ClientError],
                                     **FAST)
    fresh.fail_next(2, 503)
    assert (await workflow.execute(get_json, f"{fresh.url}/users/5"))["id"] == 5
    fresh.fail_next(9, 500)
    with pytest.raises(aiohttp.ClientResponseError):
        await workflow.execute(get_json, f"{fresh.url}/users/5")
    m = workflow.get_metrics()
    assert fresh.hits == m["total_attempts"] == 3 + 4
    assert (m["attempts"], m["successes"], m["failures"], m["executions"]) == (5, 1, 1, 2)
    assert m["avg_retry_count"] == 2.5 and m["success_rate"] == 0.5
    assert m["retry"]["successful_calls_with_retry"] == 1
    assert m["retry"]["failed_calls_with_retry"] == 1


async def test_deadline_cancels_a_slow_attempt():
    cancelled = asyncio.Event()

    async def slow():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    workflow = ErrorRecoveryWorkflow({"name": "dl", "primary_strategy": "deadline",
                                      "global_timeout": 0.2})
    with pytest.raises(DeadlineExceeded) as info:
        await workflow.execute(slow)
    assert cancelled.is_set() and info.value.budget == 0.2
    with pytest.raises(DeadlineExceeded):  # a sync callable: the wait for it ends on time
        await workflow.execute(time.sleep, 2)
    assert workflow.get_metrics()["deadline"]["exceeded"] == 2


async def test_attempt_timeout_ends_a_slow_sync_attempt_and_retries():
    calls = []

    def slow_then_fast():
        calls.append(1)
        if len(calls) == 1:
            time.sleep(1.0)
        return len(calls)

    workflow = create_retry_workflow(max_attempts=3, attempt_timeout=0.2, **FAST)
    assert await workflow.execute(slow_then_fast) == 2
    assert workflow.get_metrics()["attempts"] == 1


async def test_deadline_bounds_the_retries():
    flaky = Flaky(100)
    workflow = ErrorRecoveryWorkflow(ErrorRecoveryConfig(
        name="budget", primary_strategy="retry", secondary_strategies=["deadline"],
        global_timeout=0.3, retry_config={"max_attempts": 100, "initial_delay": 0.05,
                                          "backoff_strategy": "fixed"}))
    with pytest.raises((DeadlineExceeded, ConnectionError)):
        await workflow.execute(flaky)
    assert 1 < flaky.calls < 100


async def test_cache_as_primary_serves_a_repeat_without_a_call(fresh):
    workflow = ErrorRecoveryWorkflow({"name": "cached", "primary_strategy": "cache",
                                      "cache_config": {"ttl": 60}})
    first = await workflow.execute(get_json, f"{fresh.url}/users/9")
    second = await workflow.execute(get_json, f"{fresh.url}/users/9")
    assert first == second and fresh.hits == 1
    await workflow.execute(get_json, f"{fresh.url}/users/10")
    assert fresh.hits == 2
    assert workflow.get_metrics()["cache"] | {"ttl": 0} == {"hits": 1, "misses": 2, "size": 2,
                                                             "ttl": 0}


async def test_fallback_value_function_service_and_on_which_errors():
    def broken(x):
        raise ConnectionError("down")

    value = ErrorRecoveryWorkflow({"primary_strategy": "fallback",
                                   "fallback_config": {"fallback_value": "default"}})
    assert await value.execute(broken, 1) == "default"
    function = ErrorRecoveryWorkflow({"primary_strategy": "fallback",
                                      "fallback_config": {"fallback_function": lambda x: x * 10}})
    assert await function.execute(broken, 4) == 40

    class Mirror:
        async def execute(self, x):
            return f"mirror {x}"

    service = ErrorRecoveryWorkflow({"primary_strategy": "fallback",
                                     "fallback_config": {"fallback_service": Mirror()}})
    assert await service.execute(broken, 2) == "mirror 2"
    narrow = ErrorRecoveryWorkflow({"primary_strategy": "fallback", "fallback_config": {
        "fallback_value": 0, "fallback_on_exceptions": [KeyError]}})
    with pytest.raises(ConnectionError):
        await narrow.execute(broken, 1)
    assert value.get_metrics()["fallbacks"] == 1 and narrow.get_metrics()["fallbacks"] == 0


async def test_fallback_from_the_cache_of_last_good_results():
    state = {"up": True}

    def service(x):
        if not state["up"]:
            raise ConnectionError("down")
        return {"fresh": x}

    workflow = ErrorRecoveryWorkflow({"primary_strategy": "fallback", "fallback_config": {
        "use_cache": True, "fallback_value": "none"}})
    assert await workflow.execute(service, 1) == {"fresh": 1}
    state["up"] = False
    assert await workflow.execute(service, 1) == {"fresh": 1}
    assert await workflow.execute(service, 2) == "none"


async def test_secondary_breaker_stops_the_retries_and_fallback_answers():
    flaky = Flaky(100)
    workflow = ErrorRecoveryWorkflow(ErrorRecoveryConfig(
        name="composed", primary_strategy=RecoveryStrategy.RETRY,
        secondary_strategies=[RecoveryStrategy.CIRCUIT_BREAKER],
        retry_config={"max_attempts": 5, **FAST},
        circuit_breaker_config={"failure_threshold": 2, "timeout": 60}))
    with pytest.raises(CircuitOpenError):
        await workflow.execute(flaky)
    assert flaky.calls == 2  # the breaker opened after 2; the open error is not retried
    m = workflow.get_metrics()
    assert m["circuit_breaker"]["state"] == "open" and m["total_attempts"] == 2
    resilient = create_resilient_workflow(fallback_value="cached answer",
                                          retry_config={"max_attempts": 2, **FAST},
                                          circuit_breaker_config={"failure_threshold": 1})
    assert await resilient.execute(Flaky(100)) == "cached answer"
    assert await resilient.execute(Flaky(0)) == "cached answer"  # breaker open: no call
    assert WRAP_ORDER.index(RecoveryStrategy.FALLBACK) < WRAP_ORDER.index(RecoveryStrategy.RETRY)


async def test_saga_compensates_in_reverse_order_each_retried():
    log: list[str] = []
    flaky_undo = Flaky(1)

    def undo_b(result):
        flaky_undo()
        log.append(f"undo b({result})")

    def fail(order):
        raise ValueError("card declined")

    workflow = ErrorRecoveryWorkflow({"name": "orders", "primary_strategy": "retry",
                                      "compensation_config": {
                                          "compensation_retry": {"max_attempts": 3, **FAST}}})
    result = await workflow.execute_saga([
        SagaStep("reserve", lambda order: log.append("a") or "r1", lambda r: log.append(f"undo a({r})")),
        ("charge", lambda order: log.append("b") or "c1", undo_b),
        {"name": "ship", "action": fail, "compensation": lambda r: log.append("never")},
    ], {"id": 1})
    assert log == ["a", "b", "undo b(c1)", "undo a(r1)"]
    assert result["status"] == "compensated" and result["failed_step"] == "ship"
    assert result["completed"] == ["reserve", "charge"]
    assert result["compensated"] == ["charge", "reserve"] and flaky_undo.calls == 2
    assert "card declined" in result["error"]


async def test_compensate_strategy_raises_what_ran():
    undone: list[int] = []
    workflow = ErrorRecoveryWorkflow({"primary_strategy": "compensate", "compensation_config": {
        "compensation_actions": [lambda: undone.append(1), lambda: undone.append(2)]}})
    with pytest.raises(SagaFailed) as info:
        await workflow.execute(Flaky(1, KeyError))
    assert undone == [2, 1]
    assert info.value.result["compensated"] == ["compensation_1", "compensation_0"]
    assert workflow.get_metrics()["compensations"] == 2


async def test_bulkhead_bounds_concurrency_queue_and_wait():
    running = peak = 0

    async def work():
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.1)
        running -= 1
        return "done"

    workflow = ErrorRecoveryWorkflow({"primary_strategy": "bulkhead", "bulkhead_config": {
        "max_concurrent": 2, "max_queue_size": 1, "queue_timeout": 5}})
    results = await asyncio.gather(*(workflow.execute(work) for _ in range(4)),
                                   return_exceptions=True)
    assert sorted(map(str, results)).count("done") == 3
    assert sum(isinstance(r, BulkheadFullError) for r in results) == 1 and peak == 2
    assert workflow.get_metrics()["bulkhead"]["rejected"] == 1
    short = ErrorRecoveryWorkflow({"primary_strategy": "bulkhead", "bulkhead_config": {
        "max_concurrent": 1, "queue_timeout": 0.05}})
    outcome = await asyncio.gather(short.execute(work), short.execute(work),
                                   return_exceptions=True)
    assert isinstance(outcome[1], BulkheadFullError) and "queue_timeout" in str(outcome[1])


def test_execute_sync_from_sync_code():
    flaky = Flaky(1)
    workflow = create_retry_workflow(max_attempts=2, **FAST)
    assert workflow.execute_sync(flaky, "x")["args"] == ("x",)
    breaker = create_circuit_breaker_workflow(failure_threshold=1)
    with pytest.raises(ConnectionError):
        breaker.execute_sync(Flaky(5))
    with pytest.raises(CircuitOpenError):
        breaker.execute_sync(Flaky(0))


@pytest.mark.parametrize("build, field", [
    (lambda: ErrorRecoveryConfig(primary_strategy="retrying"), "primary_strategy"),
    (lambda: ErrorRecoveryConfig(secondary_strategies=["nope"]), "secondary_strategies"),
    (lambda: ErrorRecoveryConfig(retry_config={"initial_delay": -1}), "retry_config.initial_delay"),
    (lambda: ErrorRecoveryConfig(retry_config={"initial_delay": 5, "max_delay": 1}),
     "retry_config.max_delay"),
    (lambda: create_retry_workflow(backoff_strategy="bogus"), "retry_config.backoff_strategy"),
    (lambda: create_retry_workflow(max_delay=-2.0), "retry_config.max_delay"),
    (lambda: ErrorRecoveryConfig(primary_strategy="fallback"), "fallback_config"),
    (lambda: create_circuit_breaker_workflow(failure_threshold=0),
     "circuit_breaker_config.failure_threshold"),
    (lambda: ErrorRecoveryConfig(bulkhead_config={"max_concurrent": 0}),
     "bulkhead_config.max_concurrent"),
    (lambda: ErrorRecoveryConfig(name="a/b"), "name"),
    (lambda: ErrorRecoveryConfig(retry_config={"max_attempts": 3, "retries": 2}),
     "retry_config.retries"),
])
def test_bad_configs_fail_at_construction_naming_the_field(build, field):
    with pytest.raises(RecoveryConfigError) as info:
        build()
    assert info.value.field == field and field.split(".")[-1] in str(info.value)
