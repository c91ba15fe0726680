"""Per-endpoint behaviour against a real server: retries, 429, timeouts, resets, parsing,
error handlers, auth, and secrets kept out of everything we produce."""

from __future__ import annotations

import asyncio
import logging

import pytest

from patterns.api_orchestration import (
    APIEndpoint,
    APIOrchestrationConfig,
    APIOrchestrator,
    api_key,
    basic,
    bearer,
)
from tests.patterns.api_servers import API_KEY, PASSWORD, TOKEN, USER


def run(data=None, **config):
    orch = APIOrchestrator(APIOrchestrationConfig(**config))
    return asyncio.run(orch.orchestrate(data)), orch


def one(endpoint: APIEndpoint, **config):
    result, _ = run(endpoints=[endpoint], **config)
    return result


@pytest.mark.parametrize("retry", [{"retry_count": 2}, {"retry_config": {"max_attempts": 4}}])
def test_retries_seen_by_the_server_equal_the_configured_ones(server, retry):
    key = f"always{len(retry)}{list(retry)[0]}"
    result = one(APIEndpoint("flaky", f"{server.url}/flaky/{key}?fail=100", retry_delay=0.01,
                             **retry))
    attempts = 3 if "retry_count" in retry else 4
    assert server.hits[f"/flaky/{key}"] == attempts
    assert result["errors"]["flaky"]["attempts"] == attempts
    assert result["errors"]["flaky"]["status"] == 503
    assert result["_metrics"]["retries"] == attempts - 1


def test_a_5xx_then_success_is_retried_to_the_good_answer(server):
    result = one(APIEndpoint("f2", f"{server.url}/flaky/twice?fail=2&status=502",
                             retry_count=3, retry_delay=0.01))
    assert result["f2"] == {"ok": "twice"}
    assert server.hits["/flaky/twice"] == 3


def test_4xx_is_not_retried_unless_asked(server):
    result = one(APIEndpoint("nf", f"{server.url}/flaky/nf?fail=1&status=404", retry_count=3,
                             retry_delay=0.01))
    assert server.hits["/flaky/nf"] == 1
    assert result["errors"]["nf"]["status"] == 404
    asked = one(APIEndpoint("nf2", f"{server.url}/flaky/nf2?fail=1&status=409", retry_count=3,
                            retry_delay=0.01, retry_on_status=[409]))
    assert asked["nf2"] == {"ok": "nf2"} and server.hits["/flaky/nf2"] == 2


def test_timeouts_and_connection_resets_are_retried(server):
    result = one(APIEndpoint("rs", f"{server.url}/reset/r1?n=2", retry_count=2,
                             retry_delay=0.01))
    assert result["rs"] == {"ok": "r1"} and server.hits["/reset/r1"] == 3
    timed = one(APIEndpoint("to", f"{server.url}/slow/to?delay=1", timeout=0.1, retry_count=1,
                            retry_delay=0.01))
    assert server.hits["/slow/to"] == 2
    assert timed["errors"]["to"] == {"status": None, "reason": "timed out after 0.1s",
                                     "attempts": 2}


def test_429_waits_for_retry_after_and_slows_the_limiter(server):
    result, orch = run(endpoints=[APIEndpoint("lim", f"{server.url}/limited/l1?n=1&after=0.4",
                                              retry_count=2, retry_delay=0.01)],
                       rate_limit=1000, burst=5)
    assert result["lim"] == {"ok": "l1"}
    first, second = server.calls_to("/limited/l1")
    assert second.start - first.start >= 0.4
    assert result["_metrics"]["rate_limited"] == 1
    metrics = orch.limits.policies()["lim"].limiters[0].metrics()
    # with Ray running the named limiter is the cluster's: its own "granted" counts the token
    # blocks it handed out; the calls this orchestrator let through are "local_granted"
    assert metrics.get("local_granted", metrics["granted"]) == 2


def test_malformed_json_is_an_error_with_its_reason(server):
    result = one(APIEndpoint("bad", f"{server.url}/malformed", retry_delay=0.01))
    assert result["errors"]["bad"]["status"] == 200
    assert result["errors"]["bad"]["reason"].startswith("malformed response body")
    assert server.hits["/malformed"] == 1


def test_response_parser_transform_and_error_handler(server):
    result, _ = run(endpoints=[
        APIEndpoint("raw", f"{server.url}/items/p1", response_parser=lambda r: r.text),
        APIEndpoint("shaped", f"{server.url}/items/p2", transform=lambda body: body["id"]),
        APIEndpoint("handled", f"{server.url}/status/400",
                    error_handler=lambda err, data: {"fallback": err.status})])
    assert result["raw"] == '{"id": "p1", "q": null}'
    assert result["shaped"] == "p2"
    assert result["handled"] == {"fallback": 400}
    assert "handled" not in result["errors"]
    assert result["_metrics"]["handled"] == 1


def test_params_headers_and_url_templates(server):
    endpoint = APIEndpoint("tpl", f"{server.url}/items/{{kind}}-{{n:03d}}",
                           params={"q": "{query}"})
    missing = one(endpoint)
    assert "no value" in missing["errors"]["tpl"]["reason"]
    orch = APIOrchestrator(APIOrchestrationConfig(endpoints=[endpoint]))
    good = asyncio.run(orch.orchestrate({"kind": "a b", "n": 7, "query": "x&y"}))
    assert good["tpl"] == {"id": "a b-007", "q": "x&y"}


@pytest.mark.parametrize("kind,auth", [("bearer", bearer(TOKEN)), ("basic", basic(USER, PASSWORD)),
                                       ("key", api_key(API_KEY)),
                                       ("key", api_key(API_KEY, param="api_key"))])
def test_auth_kinds_reach_the_server(server, kind, auth):
    result = one(APIEndpoint("s", f"{server.url}/secret/{kind}", auth=auth))
    assert result["s"] == {"secret": "ok"}
    denied = one(APIEndpoint("s", f"{server.url}/secret/{kind}"))
    assert denied["errors"]["s"]["status"] == 401


def test_auth_from_a_mapping_and_the_config(server):
    result, _ = run(endpoints=[APIEndpoint("s", f"{server.url}/secret/basic")],
                    auth={"type": "basic", "username": USER, "password": PASSWORD})
    assert result["s"] == {"secret": "ok"}


def test_secrets_never_in_reprs_logs_errors_or_results(server, caplog):
    secret_header = "hdr-secret-" + "9" * 8
    config = APIOrchestrationConfig(
        endpoints=[APIEndpoint("s", f"{server.url}/secret/bearer", auth=bearer(TOKEN),
                               headers={"X-Api-Token": secret_header}),
                   APIEndpoint("k", f"{server.url}/status/500", retry_count=0,
                               auth=api_key(API_KEY, param="api_key")),
                   APIEndpoint("b", "http://127.0.0.1:1/nothing", retry_count=0,
                               auth=basic(USER, PASSWORD))],
        log_requests=True, log_responses=True, mode="parallel")
    orch = APIOrchestrator(config)
    with caplog.at_level(logging.INFO, logger="patterns.api_orchestration"):
        result = asyncio.run(orch.orchestrate())
    assert result["s"] == {"secret": "ok"}
    assert set(result["errors"]) == {"k", "b"}
    shown = " ".join([repr(config), repr(orch), repr(config.endpoints), caplog.text,
                      repr(result), str(orch.limits.metrics())])
    assert "127.0.0.1" in caplog.text  # the log is there, only redacted
    for secret in (TOKEN, PASSWORD, API_KEY, secret_header):
        assert secret not in shown


def test_the_breaker_opens_after_failed_calls_and_refuses_without_calling(server):
    orch = APIOrchestrator(APIOrchestrationConfig(
        endpoints=[APIEndpoint("cb", f"{server.url}/flaky/cb?fail=100", retry_count=0)],
        circuit_breaker_threshold=2, circuit_breaker_timeout=30))
    for _ in range(2):
        assert asyncio.run(orch.orchestrate())["errors"]["cb"]["status"] == 503
    refused = asyncio.run(orch.orchestrate())["errors"]["cb"]
    assert server.hits["/flaky/cb"] == 2
    assert refused["status"] is None and "CircuitOpenError" in refused["reason"]
