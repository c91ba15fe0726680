"""Retry, breaker and limiter drivers against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request

import aiohttp
import pytest

from patterns.error_recovery import (
    AttemptTimeout,
    CircuitBreaker,
    CircuitBreakerState,
    CircuitOpenError,
    RateLimiter,
    RateLimitTimeout,
    RetryPolicy,
)
from tests.helpers.api import get_json


def get_json_sync(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


FAST = {"initial_delay": 0.01, "max_delay": 0.05, "backoff_strategy": "exponential"}


async def test_retries_seen_by_the_server_equal_the_configured_ones(fresh):
    policy = RetryPolicy(max_attempts=4, retry_on_exceptions=[aiohttp.ClientError], **FAST)
    fresh.fail_next(2, 503)
    assert await policy.call(get_json, f"{fresh.url}/users/7") == {"id": 7, "name": "user7"}
    assert fresh.hits == 3
    fresh.fail_next(10, 500)
    with pytest.raises(aiohttp.ClientResponseError) as info:
        await policy.call(get_json, f"{fresh.url}/users/1")
    assert fresh.hits == 3 + 4
    assert "gave up after 4 attempts" in "".join(info.value.__notes__)
    assert policy.metrics() == {
        "successful_calls_without_retry": 0, "successful_calls_with_retry": 1,
        "failed_calls_without_retry": 0, "failed_calls_with_retry": 1, "retries": 5}


async def test_permanent_errors_hit_the_server_once(fresh):
    class NotFound(Exception):
        pass

    async def fetch():
        async with aiohttp.ClientSession() as s, s.get(f"{fresh.url}/users/1") as resp:
            if resp.status == 404:
                raise NotFound()
            resp.raise_for_status()
            return await resp.json()

    fresh.fail_next(5, 404)
    with pytest.raises(NotFound):
        await RetryPolicy(max_attempts=5, permanent_errors=[NotFound], **FAST).call(fetch)
    assert fresh.hits == 1


def test_sync_driver_with_a_sync_callable(fresh):
    fresh.fail_next(1, 502)
    policy = RetryPolicy(max_attempts=3, retry_on_exceptions=[urllib.error.URLError], **FAST)
    assert policy.call_sync(get_json_sync, f"{fresh.url}/users/2")["id"] == 2
    assert fresh.hits == 2


async def test_async_driver_takes_sync_callables_and_bound_coroutine_methods(fresh):
    class Processor:
        def __init__(self) -> None:
            self.calls = 0

        async def process(self) -> dict:
            self.calls += 1
            return await get_json(f"{fresh.url}/users/{self.calls}")

    fresh.fail_next(1, 503)
    processor = Processor()
    assert (await RetryPolicy(**FAST).call(processor.process))["id"] == 2
    fresh.fail_next(1, 503)
    policy = RetryPolicy(retry_on_exceptions=[urllib.error.URLError], **FAST)
    assert (await policy.call(get_json_sync, f"{fresh.url}/users/3"))["id"] == 3
    assert fresh.hits == 4


async def test_retry_on_result_retries_a_returned_status(fresh):
    async def status() -> int:
        async with aiohttp.ClientSession() as s, s.get(f"{fresh.url}/users/1") as resp:
            return resp.status

    fresh.fail_next(2, 503)
    policy = RetryPolicy(max_attempts=5, retry_on_result=lambda code: code >= 500, **FAST)
    assert await policy.call(status) == 200
    assert fresh.hits == 3


async def test_attempt_timeout_cancels_slow_attempts_and_is_retried(fresh):
    policy = RetryPolicy(max_attempts=2, attempt_timeout=0.2, **FAST)
    with pytest.raises(AttemptTimeout) as info:
        await policy.call(get_json, f"{fresh.url}/slow?delay=2")
    assert fresh.hits == 2 and info.value.attempt == 2


async def test_breaker_stops_calling_the_server_when_open(fresh):
    opened = threading.Event()
    half = threading.Event()
    breaker = CircuitBreaker(failure_threshold=3, timeout=0.2, success_threshold=1,
                             on_open=opened.set, on_half_open=half.set)
    fresh.fail_next(3, 500)
    for _ in range(3):
        with pytest.raises(aiohttp.ClientResponseError):
            await breaker.call(get_json, f"{fresh.url}/users/1")
    assert opened.is_set() and breaker.state is CircuitBreakerState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(get_json, f"{fresh.url}/users/1")
    assert fresh.hits == 3 and info.value.retry_after > 0
    assert await asyncio.to_thread(half.wait, 5)  # the timer moved it without any call
    assert breaker.call_sync(get_json_sync, f"{fresh.url}/users/4")["id"] == 4
    assert breaker.state is CircuitBreakerState.CLOSED
    assert breaker.metrics()["not_permitted_calls"] == 1


async def test_rate_limiter_waits_then_times_out():
    limiter = RateLimiter(rate=5, burst=2, acquire_timeout=0.01)
    assert limiter.try_acquire() and limiter.try_acquire()
    assert not limiter.try_acquire()
    with pytest.raises(RateLimitTimeout) as info:
        await limiter.acquire()
    assert info.value.rate == 5
    waited = await limiter.acquire(timeout=None)
    assert waited > 0
    limiter.pause(0.05)
    with pytest.raises(RateLimitTimeout):
        limiter.acquire_sync(timeout=0.0)
    limiter.acquire_sync(timeout=5)
    assert limiter.metrics()["granted"] == 4
