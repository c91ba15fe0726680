"""The in-process modes against a real aiohttp server: what each mode's name says."""

from __future__ import annotations

import asyncio

import pytest

from patterns.api_orchestration import (
    APICallError,
    APIEndpoint,
    APIOrchestrationConfig,
    APIOrchestrator,
    OrchestrationMode,
)


def run(config: APIOrchestrationConfig, data=None):
    return asyncio.run(APIOrchestrator(config).orchestrate(data))


def slow(server, name, delay=0.3, **kw):
    return APIEndpoint(name=name, url=f"{server.url}/slow/{name}?delay={delay}", **kw)


def test_parallel_calls_overlap_at_the_server(server):
    tag = "par"
    result = run(APIOrchestrationConfig(
        mode=OrchestrationMode.PARALLEL, endpoints=[slow(server, f"{tag}{i}") for i in range(3)]))
    assert [result[f"{tag}{i}"] for i in range(3)] == [{"name": f"{tag}{i}"} for i in range(3)]
    calls = server.calls_to(f"/slow/{tag}")
    assert len(calls) == 3
    # every call started before any ended: they ran at the same time
    assert max(c.start for c in calls) < min(c.end for c in calls)


def test_parallel_respects_max_concurrent(server):
    result = run(APIOrchestrationConfig(
        mode="parallel", max_concurrent=2,
        endpoints=[slow(server, f"mc{i}", 0.2) for i in range(4)]))
    assert not result["errors"]
    calls = sorted(server.calls_to("/slow/mc"), key=lambda c: c.start)
    for call in calls:
        running = [c for c in calls if c.start <= call.start < c.end]
        assert len(running) <= 2


def test_sequential_runs_in_listed_order_one_at_a_time(server):
    names = ["seqc", "seqa", "seqb"]
    run(APIOrchestrationConfig(endpoints=[slow(server, n, 0.05) for n in names]))
    calls = [c for c in server.calls if c.key in names]
    assert [c.key for c in calls] == names
    for before, after in zip(calls, calls[1:], strict=False):
        assert before.end <= after.start


def test_hybrid_respects_the_dag_and_runs_each_endpoint_once(server):
    # a -> (b, c) -> d ; e independent
    eps = [slow(server, "hya", 0.1), slow(server, "hyb", 0.1, depends_on=["hya"]),
           slow(server, "hyc", 0.2, depends_on=["hya"]),
           slow(server, "hyd", 0.05, depends_on=["hyb", "hyc"]), slow(server, "hye", 0.1)]
    result = run(APIOrchestrationConfig(mode=OrchestrationMode.HYBRID, endpoints=eps))
    assert not result["errors"]
    calls = {c.key: c for c in server.calls_to("/slow/hy")}
    assert sorted(server.hits[f"/slow/hy{x}"] for x in "abcde") == [1] * 5
    assert calls["hyb"].start >= calls["hya"].end and calls["hyc"].start >= calls["hya"].end
    assert calls["hyd"].start >= max(calls["hyb"].end, calls["hyc"].end)
    assert calls["hye"].start < calls["hya"].end          # independent: not held back
    assert calls["hyb"].start < calls["hyc"].end          # siblings overlap


def test_hybrid_dependents_see_results_and_skip_after_a_failure(server):
    eps = [APIEndpoint("login", f"{server.url}/auth", "POST", body={"user": "{user}"}),
           APIEndpoint("data", f"{server.url}/data", headers={"X-Token": "{login.token}"},
                       depends_on=["login"], transform=lambda r: r["token_seen"]),
           APIEndpoint("broken", f"{server.url}/status/404"),
           APIEndpoint("after_broken", f"{server.url}/items/x", depends_on=["broken"])]
    result = run(APIOrchestrationConfig(mode="hybrid", endpoints=eps), {"user": "bob"})
    assert result["login"] == {"token": "tok-bob"}
    assert result["data"] == "tok-bob"
    assert result["errors"]["broken"]["status"] == 404
    assert "after_broken" not in result
    assert result["_metrics"]["skipped"] == {"after_broken": "dependency 'broken' failed"}


def test_pipeline_feeds_each_output_to_the_next(server):
    eps = [APIEndpoint("first", f"{server.url}/echo", "POST"),
           APIEndpoint("second", f"{server.url}/echo", "POST",
                       transform_input=lambda prev: {"got": prev["json"]}),
           APIEndpoint("third", f"{server.url}/items/{{json.got.n}}")]
    result = run(APIOrchestrationConfig(mode="pipeline", endpoints=eps), {"n": 5})
    assert result["first"] == {"method": "POST", "json": {"n": 5}}
    assert result["second"] == {"method": "POST", "json": {"got": {"n": 5}}}
    assert result["third"]["id"] == "5"


def test_conditional_runs_only_what_holds(server):
    eps = [APIEndpoint("c_users", f"{server.url}/users"),
           APIEndpoint("c_posts", f"{server.url}/posts",
                       condition=lambda data, res: data["want_posts"]),
           APIEndpoint("c_more", f"{server.url}/items/more",
                       condition=lambda data, res: len(res["c_users"]["users"]) > 0)]
    before = server.hits["/posts"]
    result = run(APIOrchestrationConfig(mode="conditional", endpoints=eps), {"want_posts": False})
    assert server.hits["/posts"] == before
    assert "c_posts" not in result and result["c_more"]["id"] == "more"
    assert result["_metrics"]["skipped"] == {"c_posts": "condition is false"}


def test_post_bodies_come_back(server):
    result = run(APIOrchestrationConfig(endpoints=[
        APIEndpoint("create", f"{server.url}/echo", "POST", body={"n": "{n}", "tag": "x-{n}"}),
        APIEndpoint("update", f"{server.url}/echo", "PUT", body={"from": "{create.json.tag}"})]),
        {"n": 3})
    assert result["create"] == {"method": "POST", "json": {"n": 3, "tag": "x-3"}}
    assert result["update"] == {"method": "PUT", "json": {"from": "x-3"}}
    assert result["_metrics"]["write_count"] == 2


def test_fail_fast_stops_at_the_first_failure(server):
    eps = [APIEndpoint("ff_bad", f"{server.url}/status/400"),
           APIEndpoint("ff_next", f"{server.url}/items/ffnext")]
    with pytest.raises(APICallError) as info:
        run(APIOrchestrationConfig(endpoints=eps, fail_fast=True))
    assert info.value.endpoint == "ff_bad" and info.value.status == 400
    assert server.hits["/items/ffnext"] == 0


def test_fail_fast_in_parallel_cancels_the_rest(server):
    eps = [APIEndpoint("pf_bad", f"{server.url}/status/400"), slow(server, "pflong", 2.0)]
    with pytest.raises(APICallError) as info:
        run(APIOrchestrationConfig(mode="parallel", endpoints=eps, fail_fast=True))
    assert info.value.endpoint == "pf_bad"


def test_total_timeout_reports_unfinished_endpoints(server):
    result = run(APIOrchestrationConfig(endpoints=[slow(server, "tt", 1.0)], total_timeout=0.2))
    assert "tt" not in result
    assert "total_timeout" in result["errors"]["tt"]["reason"]


def test_result_merger_and_transformer(server):
    result = run(APIOrchestrationConfig(
        mode="parallel",
        endpoints=[APIEndpoint("m_users", f"{server.url}/users", transform=lambda r: r["users"]),
                   APIEndpoint("m_posts", f"{server.url}/posts", transform=lambda r: r["posts"])],
        result_merger=lambda parts: [x for part in parts for x in part],
        result_transformer=lambda r: {**r, "count": len(r["merged"])}))
    assert result["merged"] == [{"id": 1}, {"id": 7}]
    assert result["count"] == 2
