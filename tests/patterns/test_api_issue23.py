"""Issue 23's defects, each against a real aiohttp server on 127.0.0.1 (server-side counts
where requests are involved)."""

from __future__ import annotations

import asyncio

import pytest

from patterns.api_orchestration import APIEndpoint, APIOrchestrationConfig, APIOrchestrator
from tests.helpers.api import run_endpoints as run
from tests.patterns.api_servers import APITestServer
from tests.servers import serving


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


def fanout(server, path, **config):
    endpoint = APIEndpoint("item", f"{server.url}{path}", retry_delay=0.01,
                           **config.pop("endpoint", {}))
    return APIOrchestrator(APIOrchestrationConfig(mode="fanout", endpoints=[endpoint], **config))


def distinct(server, prefix):
    return len({c.path for c in server.calls_to(prefix)})


@pytest.mark.ray
def test_failing_items_of_a_fanout_do_not_refuse_the_healthy_ones(ray_session, server):
    n = 5_000
    result = fanout(server, "/nth/a/{item}", workers=2).run([f"{i}" for i in range(n)])
    errors = result["errors"]["item"]
    assert [e["index"] for e in errors] == list(range(0, n, 20))
    assert {e["status"] for e in errors} == {500}
    assert sum(v is not None for v in result["item"]) == n - n // 20
    assert distinct(server, "/nth/a/") == n


@pytest.mark.ray
def test_a_fanout_breaker_the_user_set_reports_the_items_it_refused(ray_session, server):
    n = 2_000
    orch = fanout(server, "/nth/b/{item}?every=1", workers=1, circuit_breaker_threshold=3,
                  endpoint={"retry_count": 0})
    errors = orch.run([f"{i}" for i in range(n)])["errors"]["item"]
    refused = [e for e in errors if e["reason"].startswith("not sent: refused by")]
    assert refused and all(e["attempts"] == 0 and e["status"] is None for e in refused)
    assert len(errors) - len(refused) == len([c for c in server.calls_to("/nth/b/")
                                              if c.status == 500])
    assert distinct(server, "/nth/b/") < n  # the breaker did refuse items


@pytest.mark.ray
def test_a_resumed_fanout_reports_every_error_and_every_request(ray_session, server, tmp_path,
                                                                monkeypatch):
    import tempfile

    from patterns.errors import PatternError

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    n = 2_000
    settings = {"workers": 1, "worker_concurrency": 8, "batch_size": 64,
                "checkpoint_id": "resume-23-6"}
    with pytest.raises(PatternError, match="total_timeout"):
        fanout(server, "/nth/c/{item}?delay=0.03", total_timeout=5, **settings).run(
            [f"{i}" for i in range(n)])
    before = server.count("/nth/c/")
    assert 0 < before < n
    result = fanout(server, "/nth/c/{item}?delay=0.03", total_timeout=None,
                    **settings).run([f"{i}" for i in range(n)])
    errors = result["errors"]["item"]
    assert [e["index"] for e in errors] == list(range(0, n, 20))
    assert [i for i, v in enumerate(result["item"]) if v is None] == list(range(0, n, 20))
    sent = server.count("/nth/c/")
    assert sent >= n + 2 * (n // 20)  # every item, and two retries of each failing one
    assert sent <= result["_metrics"]["requests"] <= sent + 8  # + what a cut-off run had in flight
    # (11) the finished run again: nothing is sent, the same result comes back
    again = fanout(server, "/nth/c/{item}?delay=0.03", **settings).run(
        [f"{i}" for i in range(n)])
    assert server.count("/nth/c/") == sent
    assert again["item"] == result["item"] and again["errors"] == result["errors"]


def test_a_charset_is_honoured_and_binary_bodies_are_bytes(server):
    result = run(APIEndpoint("latin", f"{server.url}/text/iso-8859-1"),
                 APIEndpoint("utf16", f"{server.url}/text/utf-16"),
                 APIEndpoint("bin", f"{server.url}/binary"))
    assert result["latin"] == "café naïve" and result["utf16"] == "café naïve"
    assert result["bin"] == bytes(range(256))


def test_a_503_retry_after_is_waited_for(server):
    result = run(APIEndpoint("busy", f"{server.url}/flaky/b503?fail=1&status=503&after=0.5",
                             retry_count=1, retry_delay=0.01))
    first, second = server.calls_to("/flaky/b503")
    assert result["busy"] == {"ok": "b503"}
    assert second.start - first.start >= 0.5


def test_an_endpoint_cut_off_by_total_timeout_reports_the_request_it_sent(server):
    result = run(APIEndpoint("slow", f"{server.url}/slow/tt8?delay=2", retry_count=0),
                 total_timeout=0.5)
    assert server.count("/slow/tt8") == 1
    assert result["errors"]["slow"]["attempts"] == 1
    assert "total_timeout" in result["errors"]["slow"]["reason"]


def test_a_url_that_does_not_parse_is_refused_at_construction():
    from patterns.api_orchestration import APIConfigError

    with pytest.raises(APIConfigError, match="not a valid URL") as caught:
        APIEndpoint("bad", "http://u:p@[::1/x")
    assert "u:p" not in str(caught.value)
    assert "u:p" not in repr(APIEndpoint("ok", "http://u:p@[::1]/x"))


def test_an_unknown_keyword_of_the_rest_factory_is_a_config_error(server):
    from patterns.api_orchestration import APIConfigError, create_rest_api_orchestrator

    with pytest.raises(APIConfigError, match=r"unknown keyword\(s\) \['retries'\]"):
        create_rest_api_orchestrator(server.url, [{"name": "a", "path": "/x"}], retries=3)


def test_a_redirect_left_over_is_not_a_success(server, tmp_path):
    from fsm_actors.platform.jobs.model import StepContext, Task
    from patterns._api.fanout_step import FanoutStepSpec

    orch = fanout(server, "/status/{item}")
    spec = FanoutStepSpec(orch.config, orch.calls[0], None, 8, None, False)

    async def go():
        worker = spec.build(StepContext("t", 0, None))
        try:
            return await worker.run(Task("items", 0, payload=[200, 302], first_record=0))
        finally:
            await worker.aclose()

    out = asyncio.run(go()).output
    assert out["values"] == [{"status": "as asked"}, None]
    assert out["errors"][0]["status"] == 302


@pytest.mark.ray
def test_the_threshold_message_without_an_error_file_names_failed_items(ray_session, server):
    from patterns.errors import ErrorThresholdExceeded

    with pytest.raises(ErrorThresholdExceeded) as caught:
        fanout(server, "/status/{item}", workers=1, error_threshold=2).run([404] * 300)
    message = str(caught.value)
    assert "are in None" not in message and ": HTTP 404" in message, message


SECRET = "config-level-secret-9876"


def test_config_credential_headers_are_scrubbed_everywhere(server, tmp_path):
    from patterns.api_orchestration import APICallError

    result = run(APIEndpoint("echo", f"{server.url}/reflect/500", retry_count=0),
                 headers={"X-API-Key": SECRET})
    assert server.count("/reflect/500") == 1
    assert "x-api-key" in result["errors"]["echo"]["reason"].lower()  # the server echoed it
    assert SECRET not in repr(result)
    with pytest.raises(APICallError) as caught:
        run(APIEndpoint("echo", f"{server.url}/reflect/400"), headers={"X-API-Key": SECRET},
            fail_fast=True)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.reason)


@pytest.mark.ray
def test_config_credential_headers_stay_out_of_the_fanout_error_file(ray_session, server,
                                                                     tmp_path):
    import json

    sink = tmp_path / "out.jsonl"
    result = fanout(server, "/reflect/{item}", headers={"X-API-Key": SECRET}, sink=str(sink),
                    workers=1, endpoint={"retry_count": 0}).run([200, 500, 404])
    error_file = result["_metrics"]["error_file"]
    rows = [json.loads(line) for line in open(error_file)]
    assert len(rows) == 2 and all("x-api-key" in r["reason"].lower() for r in rows)
    assert SECRET not in open(error_file).read() and SECRET not in repr(result)


@pytest.fixture(scope="module")
def other():
    yield from serving(APITestServer())


def test_credentials_do_not_follow_a_redirect_to_another_origin(server, other):
    from patterns.api_orchestration import api_key, bearer

    result = run(
        APIEndpoint("away", f"{server.url}/redirect?to={other.url}/seen/away",
                    auth=api_key(SECRET), headers={"X-Session-Token": "tok-12345"}),
        APIEndpoint("bear", f"{server.url}/redirect?to={other.url}/seen/bear",
                    auth=bearer(SECRET)),
        APIEndpoint("home", f"{server.url}/redirect?to=/seen/home", auth=api_key(SECRET)),
        headers={"X-Api-Token": "cfg-tok-999"})
    assert result["errors"] == {}
    away, bear = other.headers_seen["away"], other.headers_seen["bear"]
    assert "X-API-Key" not in away and "X-Session-Token" not in away
    assert "X-Api-Token" not in away and "Authorization" not in bear
    assert server.headers_seen["home"]["X-API-Key"] == SECRET  # same origin: kept
