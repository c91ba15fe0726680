"""Bad configs fail at construction, naming the endpoint; templates; both name sets."""

from __future__ import annotations

import pickle

import pytest

from patterns._api.templates import Scope, TemplateError, compile_value
from patterns.api_orchestration import (
    APIConfigError,
    APIEndpoint,
    APIOrchestrationConfig,
    APIOrchestrator,
    OrchestrationMode,
    create_graphql_orchestrator,
    create_rest_api_orchestrator,
)

URL = "http://127.0.0.1:9/x"


def ep(name, **kw):
    return APIEndpoint(name=name, url=kw.pop("url", URL), **kw)


@pytest.mark.parametrize("build,endpoint,words", [
    (lambda: APIOrchestrationConfig(mode="hybrid", endpoints=[ep("a", depends_on=["zz"])]),
     "a", "unknown endpoint 'zz'"),
    (lambda: APIOrchestrationConfig(mode="hybrid", endpoints=[
        ep("a", depends_on=["c"]), ep("b", depends_on=["a"]), ep("c", depends_on=["b"])]),
     "a", "cycle a -> c -> b -> a"),
    (lambda: APIOrchestrationConfig(endpoints=[ep("a", depends_on="a")]), "a", "itself"),
    (lambda: APIOrchestrationConfig(endpoints=[ep("a"), ep("a")]), "a", "listed twice"),
    (lambda: APIOrchestrationConfig(endpoints=[ep("a", depends_on=["b"]), ep("b")]),
     "a", "listed after it"),
    (lambda: APIOrchestrationConfig(mode="parallel", endpoints=[ep("b"), ep("a", depends_on=["b"])]),
     "a", "use HYBRID"),
    (lambda: ep("m", method="FETCH"), "m", "method"),
    (lambda: ep("t", timeout=-1), "t", "timeout"),
    (lambda: ep("r", retry_count=-1), "r", "retry_count"),
    (lambda: ep("r", retry_config={"max_attempts": 0}), "r", "max_attempts"),
    (lambda: APIOrchestrator(APIOrchestrationConfig(endpoints=[
        ep("r", retry_config={"initial_delay": 5, "max_delay": 1})])), "r", "max_delay"),
    (lambda: APIOrchestrator(APIOrchestrationConfig(endpoints=[
        ep("r", retry_config={"backoff_strategy": "sideways"})])), "r", "sideways"),
    (lambda: ep("u", url="http://h/{a"), "u", "malformed"),
    (lambda: ep("b", body={"x": "{}"}), "b", "empty placeholder"),
    (lambda: ep("c", condition="yes"), "c", "callable"),
    (lambda: ep("errors"), "errors", "reserved"),
    (lambda: ep("au", auth={"type": "basic", "username": "u"}), "endpoint 'au'", "password"),
    (lambda: ep("au", auth={"type": "oauth9"}), "endpoint 'au'", "unknown auth type"),
    (lambda: APIOrchestrationConfig(mode="fanout", endpoints=[ep("f1"), ep("f2")]), "f2",
     "one endpoint"),
    (lambda: APIEndpoint.from_dict({"name": "d", "url": URL, "retries": 3}), "d", "retries"),
])
def test_bad_configs_fail_at_construction_naming_the_endpoint(build, endpoint, words):
    with pytest.raises(APIConfigError) as info:
        build()
    message = str(info.value)
    assert endpoint in message and words in message, message
    assert info.value.pattern == "api_orchestration"


def test_config_level_errors():
    with pytest.raises(APIConfigError, match="unknown mode 'sideways'"):
        APIOrchestrationConfig(mode="sideways", endpoints=[ep("a")])
    with pytest.raises(APIConfigError, match="non-empty list"):
        APIOrchestrationConfig(endpoints=[])
    with pytest.raises(APIConfigError, match="max_concurrent"):
        APIOrchestrationConfig(endpoints=[ep("a")], max_concurrent=0)
    with pytest.raises(APIConfigError, match="cache_ttl"):
        APIOrchestrator({"endpoints": [ep("a")], "cache_ttl": 5})
    with pytest.raises(APIConfigError, match="named twice"):
        create_graphql_orchestrator(URL, [{"query": "{a}", "name": "q"},
                                          {"query": "{b}", "name": "q"}])


def test_errors_survive_pickling():
    with pytest.raises(APIConfigError) as info:
        APIOrchestrationConfig(endpoints=[ep("a", depends_on=["q"])])
    again = pickle.loads(pickle.dumps(info.value))
    assert again.endpoint == "a" and str(again) == str(info.value)


def test_both_name_sets_and_the_rate_units():
    seed = APIOrchestrationConfig(name="w", endpoints=[ep("a")], rate_limit=100, timeout=5.0)
    peer = APIOrchestrationConfig(endpoints=[ep("a")], global_rate_limit=600,
                                  rate_limit_window=60, total_timeout=10, max_concurrent=3,
                                  fail_fast=True, result_merger=list)
    assert seed.global_rate() == 100.0 and peer.global_rate() == 10.0
    assert seed.mode is OrchestrationMode.SEQUENTIAL
    assert OrchestrationMode("hybrid") is OrchestrationMode.HYBRID
    endpoint = APIEndpoint("p", URL, retry_count=2, retry_delay=0.5, transform_input=dict,
                           response_parser=lambda r: r.text, error_handler=lambda e, d: None)
    assert endpoint.method == "GET"
    rest = create_rest_api_orchestrator("http://127.0.0.1:9/api", [
        {"name": "users", "path": "/users", "method": "get"}], auth_token="t0ken-value",
        rate_limit=100, mode=OrchestrationMode.PARALLEL)
    assert rest.config.endpoints[0].url == "http://127.0.0.1:9/api/users"
    assert rest.config.global_rate() == 100.0
    assert "t0ken-value" not in repr(rest.config) + repr(rest.config.auth)


def test_templates_render_values_paths_and_urls():
    scope = Scope({"user": "a b", "n": 5, "items": [{"id": 9}]}, {"auth": {"token": "t"}})
    assert compile_value("{n}").render(scope) == 5  # a lone placeholder keeps its type
    assert compile_value("{items.0.id}-{auth.token}").render(scope) == "9-t"
    assert compile_value("{results.auth.token}{{x}}").render(scope) == "t{x}"
    assert compile_value('{{"raw": 1}}').render(scope) == '{"raw": 1}'
    assert compile_value("/u/{user}", url=True).render(scope) == "/u/a%20b"
    assert compile_value({"k": ["{n:03d}", 1]}).render(scope) == {"k": ["005", 1]}
    assert compile_value(lambda data, results: data["n"] + 1).render(scope) == 6
    item = Scope(None, {}, {"id": 4})
    assert compile_value("/i/{id}/{item.id}", url=True).render(item) == "/i/4/4"
    with pytest.raises(TemplateError, match="no value"):
        compile_value("{missing.key}").render(scope)
