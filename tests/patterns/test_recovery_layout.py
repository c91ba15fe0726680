"""Issue 21 for the recovery policies: one retry engine (``resource_actors.RetryPolicy`` is
driven by ``fsm_actors.platform.policies``), HTTP on the one sync bridge, backends chosen by
registration."""

from __future__ import annotations

import asyncio
import threading

import pytest

from fsm_actors.platform.policies.retry_core import RetryCore, RetrySpec
from patterns.error_recovery import CircuitBreaker, RecoveryConfigError, RetryConfig
from resource_actors import RetryPolicy as HTTPRetryPolicy
from resource_actors.http import HTTPResourceAdapter
from tests.patterns.api_servers import APITestServer


def test_the_http_retry_policy_is_the_platform_retry_core():
    policy = HTTPRetryPolicy(retry_count=2, backoff=0.1, max_backoff=0.15)
    assert isinstance(policy.core, RetryCore)
    assert [policy.delay(n, 503) for n in range(3)] == [0.1, 0.15, None]
    assert policy.delay(0, 404) is None and policy.delay(0, 503, method="POST") is None


def test_the_recovery_retry_config_drives_the_same_core():
    core = RetryCore(RetryConfig(max_attempts=2, initial_delay=0.5, jitter="equal"))
    plain = RetryCore(RetrySpec(max_attempts=2, initial_delay=0.5))
    for c in (core, plain):
        state = c.start()
        state.attempt_timeout()
        assert state.on_error(ConnectionError()).kind.value == "sleep"


def test_http_requests_run_on_the_sync_bridge_not_a_thread_of_their_own():
    server = APITestServer().start()
    adapter = HTTPResourceAdapter("layout-http", server.url)
    try:
        client = adapter.acquire()
        assert client.get("/items/a").json()["id"] == "a"
        assert asyncio.run(client.aget("/items/b")).json()["id"] == "b"
        names = {t.name for t in threading.enumerate()}
        assert "fsm-actors-sync-bridge" in names and "http-resource" not in names
    finally:
        adapter.close()
        server.stop()


def test_an_unknown_scope_is_a_config_error():
    with pytest.raises(RecoveryConfigError, match="scope must be 'process' or 'cluster'"):
        CircuitBreaker(name="x", scope="galaxy")  # type: ignore[arg-type]
