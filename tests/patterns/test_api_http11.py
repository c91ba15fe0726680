"""The lean HTTP client (FANOUT's hot path) against a real server: framing, encodings,
keep-alive, and the same retry/timeout/429 behaviour as the aiohttp path."""

from __future__ import annotations

import asyncio

import pytest

from patterns._api.wire import LeanClient
from patterns.api_orchestration import (
    APIEndpoint,
    APIOrchestrationConfig,
    APIOrchestrator,
    bearer,
)
from tests.patterns.api_servers import TOKEN, APITestServer


@pytest.fixture(scope="module")
def server():
    srv = APITestServer().start()
    yield srv
    srv.stop()


def lean(*endpoints, data=None, **config):
    orch = APIOrchestrator(APIOrchestrationConfig(endpoints=list(endpoints), http_client="lean",
                                                  mode=config.pop("mode", "parallel"), **config))
    return asyncio.run(orch.orchestrate(data))


def test_framings_and_encodings(server):
    result = lean(APIEndpoint("len", f"{server.url}/items/w1?x=1", params={"q": "a b&c"}),
                  APIEndpoint("chunk", f"{server.url}/chunked/w2"),
                  APIEndpoint("gz", f"{server.url}/gzip/w3"),
                  APIEndpoint("close", f"{server.url}/close/w4"),
                  APIEndpoint("head", f"{server.url}/items/w5", method="HEAD"),
                  APIEndpoint("post", f"{server.url}/echo", "POST", body={"n": "{n}"}),
                  APIEndpoint("put", f"{server.url}/echo", "PUT", body='{{"raw": true}}',
                              headers={"Content-Type": "application/json"}),
                  data={"n": 4})
    assert result["errors"] == {}
    assert result["len"] == {"id": "w1", "q": "a b&c"}
    assert result["chunk"] == {"chunked": "w2"}
    assert result["gz"]["gzip"] == "w3" and len(result["gz"]["pad"]) == 2000
    assert result["close"] == {"closed": "w4"}
    assert result["head"] is None
    assert result["post"] == {"method": "POST", "json": {"n": 4}}
    assert result["put"] == {"method": "PUT", "json": {"raw": True}}


def test_keep_alive_and_a_connection_the_server_closed(server):
    async def go():
        client = LeanClient(limit=2)
        try:
            answers = [await client.fetch("GET", f"{server.url}/items/k{i}") for i in range(5)]
            closed = await client.fetch("GET", f"{server.url}/close/k")
            after = await client.fetch("GET", f"{server.url}/items/k9")
            return answers, closed, after, sum(len(q) for q in client._idle.values())
        finally:
            await client.close()

    answers, closed, after, idle = asyncio.run(go())
    assert [a[0] for a in answers] == [200] * 5 and closed[0] == 200 and after[0] == 200
    assert closed[1]["connection"] == "close"
    assert idle == 1  # one connection carried the sequential requests


def test_retries_timeouts_resets_and_429_as_with_aiohttp(server):
    result = lean(
        APIEndpoint("flaky", f"{server.url}/flaky/wf?fail=100", retry_count=2, retry_delay=0.01),
        APIEndpoint("four", f"{server.url}/flaky/w4?fail=1&status=404", retry_count=2),
        APIEndpoint("reset", f"{server.url}/reset/wr?n=2", retry_count=2, retry_delay=0.01),
        APIEndpoint("slow", f"{server.url}/slow/ws?delay=1", timeout=0.1, retry_count=0),
        APIEndpoint("lim", f"{server.url}/limited/wl?n=1&after=0.3", retry_count=1,
                    retry_delay=0.01),
        APIEndpoint("bad", f"{server.url}/malformed"),
        APIEndpoint("secret", f"{server.url}/secret/bearer", auth=bearer(TOKEN)),
        APIEndpoint("nohost", "http://127.0.0.1:1/x", retry_count=0))
    errors = result["errors"]
    assert server.hits["/flaky/wf"] == 3 and errors["flaky"]["status"] == 503
    assert server.hits["/flaky/w4"] == 1 and errors["four"]["status"] == 404
    assert result["reset"] == {"ok": "wr"} and server.hits["/reset/wr"] == 3
    assert errors["slow"]["reason"] == "timed out after 0.1s"
    first, second = server.calls_to("/limited/wl")
    assert result["lim"] == {"ok": "wl"} and second.start - first.start >= 0.3
    assert errors["bad"]["reason"].startswith("malformed response body")
    assert result["secret"] == {"secret": "ok"}
    assert errors["nohost"]["status"] is None and "Connect" in errors["nohost"]["reason"]
    assert TOKEN not in repr(result)
