"""Many endpoints in one PARALLEL run, and the shortcuts its hot path takes: an endpoint
built from a mapping is the endpoint its constructor builds, a request with nothing to fill
is the request a template would give, the first attempt made inline retries and counts as
``RetryPolicy.run`` does, and a limiter's ``take_now`` grants only what is there."""

from __future__ import annotations

import asyncio
import dataclasses
import re

import pytest

from patterns._api.policies import Limits
from patterns._recovery.limiter_core import TokenBucket
from patterns.api_orchestration import (
    APIConfigError,
    APIEndpoint,
    APIOrchestrationConfig,
    APIOrchestrator,
    OrchestrationMode,
    create_rest_api_orchestrator,
)
from patterns.error_recovery import RateLimiter, RetryPolicy


def test_a_run_of_many_endpoints_has_every_body_and_counts_every_call(server):
    n = 300
    orch = create_rest_api_orchestrator(
        server.url, [{"name": f"m{i}", "path": f"/items/many{i}"} for i in range(n)],
        rate_limit=10**9, mode=OrchestrationMode.PARALLEL, name="many", scope="process")
    result = asyncio.run(orch.orchestrate())
    assert result["errors"] == {}
    assert [result[f"m{i}"]["id"] for i in range(n)] == [f"many{i}" for i in range(n)]
    assert result["_metrics"]["requests"] == n == len(server.calls_to("/items/many"))
    metrics = orch.limits.metrics()
    # the run's one limiter (this process's: a cluster one counts the blocks it fetched)
    assert metrics["api.many"]["granted"] == n
    assert {metrics[f"api.many.m{i}/retry"]["successful_calls_without_retry"]
            for i in range(n)} == {1}


def test_a_retried_endpoint_among_many_is_retried_and_counted(server):
    endpoints = [{"name": f"r{i}", "path": f"/items/rt{i}"} for i in range(20)]
    endpoints.append({"name": "flaky", "path": "/flaky/manyflaky?fail=1&status=503",
                      "retry_count": 2, "retry_delay": 0.01})
    endpoints.append({"name": "gone", "path": "/status/404", "retry_count": 2})
    orch = create_rest_api_orchestrator(server.url, endpoints, mode="parallel", name="rt")
    result = asyncio.run(orch.orchestrate())
    assert result["flaky"] == {"ok": "manyflaky"}
    assert result["errors"]["gone"]["status"] == 404
    assert result["errors"]["gone"]["attempts"] == 1  # a 404 is not retried
    assert result["_metrics"]["endpoints"]["flaky"]["attempts"] == 2
    metrics = orch.limits.metrics()
    assert metrics["api.rt.flaky/retry"]["successful_calls_with_retry"] == 1
    assert metrics["api.rt.gone/retry"]["failed_calls_without_retry"] == 1
    assert metrics["api.rt.r0/retry"]["successful_calls_without_retry"] == 1
    # a second run on the same orchestrator keeps counting on the same policies
    asyncio.run(orch.orchestrate())
    again = orch.limits.metrics()
    assert again["api.rt.r0/retry"]["successful_calls_without_retry"] == 2
    assert again["api.rt.gone/retry"]["failed_calls_without_retry"] == 2


def test_an_endpoint_from_a_mapping_equals_the_constructed_one():
    spec = {"name": "e", "path": "/a/b", "method": "get", "retry_count": 1,
            "retry_on_status": [429], "depends_on": "x", "timeout": 2.0}
    made = APIEndpoint.from_dict(spec, "http://127.0.0.1:9")
    built = APIEndpoint(name="e", url="http://127.0.0.1:9/a/b", method="get", retry_count=1,
                        retry_on_status=[429], depends_on="x", timeout=2.0)
    assert made == built
    assert dataclasses.asdict(made) == dataclasses.asdict(built)
    assert made.method == "GET" and made.depends_on == ("x",)
    assert made.retry_on_status == frozenset({429}) and made.retry == built.retry
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.url = "elsewhere"  # type: ignore[misc]


@pytest.mark.parametrize(("field", "value", "says"), [
    ("method", "FETCH", "method 'FETCH'"),
    ("method", ["GET"], "method ['GET']"),
    ("timeout", 0, "timeout must be a number > 0"),
    ("retry_count", -1, "retry_count must be an integer >= 0"),
    ("burst_limit", True, "burst_limit must be an integer >= 1"),
    ("transform", "upper", "transform must be callable"),
    ("url", "http://127.0.0.1:9/x}", "malformed"),
])
def test_a_bad_mapping_is_refused_as_the_constructor_refuses_it(field, value, says):
    spec = {"name": "bad", "url": "http://127.0.0.1:9/x", field: value}
    with pytest.raises(APIConfigError, match=re.escape(says)) as from_dict:
        APIEndpoint.from_dict(spec)
    with pytest.raises(APIConfigError) as constructed:
        APIEndpoint(**spec)
    assert str(from_dict.value) == str(constructed.value)
    assert from_dict.value.endpoint == "bad"


def test_parallel_refuses_depends_on_and_other_modes_check_the_graph():
    endpoints = [APIEndpoint("a", "http://127.0.0.1:9/a"),
                 APIEndpoint("b", "http://127.0.0.1:9/b", depends_on=["a"])]
    with pytest.raises(APIConfigError, match="depends_on has no effect in PARALLEL"):
        APIOrchestrationConfig(endpoints=endpoints, mode="parallel")
    with pytest.raises(APIConfigError, match="cycle"):
        APIOrchestrationConfig(mode="hybrid", endpoints=[
            APIEndpoint("a", "http://127.0.0.1:9/a", depends_on=["b"]),
            APIEndpoint("b", "http://127.0.0.1:9/b", depends_on=["a"])])
    assert APIOrchestrationConfig(endpoints=endpoints, mode="hybrid").mode == "hybrid"


def test_fixed_requests_and_templated_ones_send_the_same_headers(server):
    endpoints = [APIEndpoint("fixed", f"{server.url}/seen/mfixed", headers={"X-Tag": 7}),
                 APIEndpoint("filled", f"{server.url}/seen/{{key}}", headers={"X-Tag": "{tag}"})]
    orch = APIOrchestrator(APIOrchestrationConfig(
        mode="parallel", headers={"X-Run": "r1"}, endpoints=endpoints))
    assert orch.calls[0]._static is not None and orch.calls[1]._static is None
    result = orch.run({"key": "mfilled", "tag": 7})
    assert result["errors"] == {}
    fixed, filled = server.headers_seen["mfixed"], server.headers_seen["mfilled"]
    assert fixed["X-Tag"] == filled["X-Tag"] == "7"
    assert fixed["X-Run"] == filled["X-Run"] == "r1"


def test_the_inline_first_attempt_retries_and_counts_as_run_does():
    calls = []

    async def flaky(fail: int) -> str:
        calls.append(fail)
        if len(calls) <= fail:
            raise ConnectionError("down")
        return "up"

    async def main() -> None:
        retry = RetryPolicy(max_attempts=3, initial_delay=0.001)
        assert retry.direct_first
        assert await retry.run(flaky, (0,), {}) == "up"
        calls.clear()
        assert await retry.run(flaky, (1,), {}) == "up"
        assert len(calls) == 2
        calls.clear()
        with pytest.raises(ConnectionError) as failed:
            await retry.run(flaky, (5,), {})
        assert len(calls) == 3
        assert "gave up after 3 attempts" in " ".join(failed.value.__notes__)
        assert retry.metrics() == {
            "successful_calls_without_retry": 1, "successful_calls_with_retry": 1,
            "failed_calls_without_retry": 0, "failed_calls_with_retry": 1, "retries": 3}
        timed = RetryPolicy(max_attempts=2, attempt_timeout=5.0)
        assert not timed.direct_first  # a timeout needs the full driver
        calls.clear()
        assert await timed.run(flaky, (1,), {}) == "up"

    asyncio.run(main())


def test_take_now_grants_only_tokens_that_are_there():
    now = [0.0]
    bucket = TokenBucket(10.0, 2, clock=lambda: now[0])
    assert bucket.take(1) and bucket.take(1)
    assert not bucket.take(1)  # empty: nothing taken, nothing owed
    assert bucket.available() == 0 and bucket.granted == 2
    now[0] = 0.1
    assert bucket.take(1) and bucket.granted == 3
    limiter = RateLimiter(1.0, burst=1, name="take-now")
    assert limiter.take_now() and not limiter.take_now()
    assert limiter.metrics()["granted"] == 1


def test_limits_share_the_run_limiter_and_give_each_endpoint_its_own():
    config = APIOrchestrationConfig(
        name="lim", mode="parallel", rate_limit=5,
        endpoints=[APIEndpoint("a", "http://127.0.0.1:9/a"),
                   APIEndpoint("b", "http://127.0.0.1:9/b", rate_limit=60)])
    limits = Limits(config)
    policies = limits.policies()
    assert [x.name for x in policies["a"].limiters] == ["api.lim"]
    assert [x.name for x in policies["b"].limiters] == ["api.lim", "api.lim.b"]
    assert policies["a"].limiters[0] is policies["b"].limiters[0]
    assert policies["a"].retry.name == "api.lim.a"
    asyncio.run(limits.close())
