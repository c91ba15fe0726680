"""Issue 23's defects, each against a real aiohttp server on 127.0.0.1 (server-side counts
where requests are involved)."""

from __future__ import annotations

import asyncio

import pytest

from patterns.api_orchestration import APIEndpoint, APIOrchestrationConfig, APIOrchestrator
from tests.patterns.api_servers import APITestServer


@pytest.fixture(scope="module")
def server():
    srv = APITestServer().start()
    yield srv
    srv.stop()


def run(*endpoints, data=None, **config):
    orch = APIOrchestrator(APIOrchestrationConfig(endpoints=list(endpoints),
                                                  mode=config.pop("mode", "parallel"), **config))
    return asyncio.run(orch.orchestrate(data))


def test_a_post_that_timed_out_is_not_sent_again_unless_idempotent(server):
    slow = "/slow/{}?delay=0.5"
    result = run(APIEndpoint("post", server.url + slow.format("p9"), "POST", body={},
                             timeout=0.1, retry_delay=0.01),
                 APIEndpoint("patch_ok", server.url + slow.format("q9"), "POST", body={},
                             timeout=0.1, retry_count=2, retry_delay=0.01, idempotent=True),
                 APIEndpoint("by_method", server.url + slow.format("r9"), "POST", body={},
                             timeout=0.1, retry_count=1, retry_delay=0.01,
                             retry_methods=["POST"]),
                 APIEndpoint("get", server.url + slow.format("g9"), timeout=0.1,
                             retry_count=2, retry_delay=0.01))
    errors = result["errors"]
    assert errors["post"]["attempts"] == 1 and server.hits["/slow/p9"] == 1
    assert errors["patch_ok"]["attempts"] == 3 and server.hits["/slow/q9"] == 3
    assert errors["by_method"]["attempts"] == 2 and server.hits["/slow/r9"] == 2
    assert errors["get"]["attempts"] == 3 and server.hits["/slow/g9"] == 3


def test_a_post_whose_connection_was_refused_is_retried(server):
    result = run(APIEndpoint("post", "http://127.0.0.1:1/x", "POST", body={}, retry_count=2,
                             retry_delay=0.01))
    assert result["errors"]["post"]["attempts"] == 3
