"""HTTP/1.1 against real servers through the one HTTP stack (aiohttp): framings, encodings,
an unexpected ``100 Continue``, a reused connection the server closes after reading a POST
(never sent twice), a 100 MB chunked body, retries, timeouts, resets and 429."""

from __future__ import annotations

import pytest

from patterns.api_orchestration import (
    APIEndpoint,
    bearer,
)
from tests.helpers.api import run_endpoints as run
from tests.patterns.api_servers import TOKEN, RawHTTPServer
from tests.servers import serving


@pytest.fixture
def raw():
    yield from serving(RawHTTPServer())


def test_framings_and_encodings(server):
    result = run(APIEndpoint("len", f"{server.url}/items/w1?x=1", params={"q": "a b&c"}),
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


def test_an_unexpected_100_continue_is_skipped(raw):
    result = run(APIEndpoint("c", f"{raw.url}/continue"),
                 APIEndpoint("p", f"{raw.url}/continue", "POST", body={"a": 1}),
                 mode="sequential")
    assert result["errors"] == {}
    assert result["c"] == {"path": "/continue", "method": "GET", "body": ""}
    assert result["p"] == {"path": "/continue", "method": "POST", "body": '{"a": 1}'}


def test_a_post_on_a_reused_connection_the_server_closed_is_not_sent_again(raw):
    result = run(APIEndpoint("get", f"{raw.url}/drop-post"),
                 APIEndpoint("post", f"{raw.url}/drop-post", "POST", body={"n": 1},
                             depends_on=["get"]),
                 mode="sequential", max_concurrent=1)
    assert result["get"]["method"] == "GET"
    assert result["errors"]["post"]["status"] is None
    assert raw.posts == 1 and raw.requests == 2  # the server read the POST exactly once


def test_a_100_mb_chunked_body_arrives_whole(server):
    result = run(APIEndpoint("big", f"{server.url}/big/100", timeout=120))
    assert result["errors"] == {}
    body = result["big"]
    assert isinstance(body, bytes) and len(body) == 100 * 2**20
    assert body[:256] == bytes(range(256)) and body[-256:] == bytes(range(256))


def test_retries_timeouts_resets_and_429(server):
    result = run(
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
