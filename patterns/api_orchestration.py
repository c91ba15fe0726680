"""API orchestration: many HTTP calls as one run, in six real modes, FANOUT on actors.

Public API (the names of dataknobs-fsm's ``patterns.api_orchestration``)::

    from patterns.api_orchestration import (
        APIOrchestrator, APIOrchestrationConfig, OrchestrationMode, APIEndpoint,
        create_rest_api_orchestrator, create_graphql_orchestrator)

    config = APIOrchestrationConfig(
        name="workflow", mode=OrchestrationMode.HYBRID, rate_limit=100, timeout=30.0,
        endpoints=[APIEndpoint(name="auth", url="https://api.example.com/auth", method="POST",
                               retry_config={"max_attempts": 5}),
                   APIEndpoint(name="data", url="https://api.example.com/data?t={auth.token}",
                               depends_on=["auth"], transform=lambda r: r.get("data", []))])
    result = await APIOrchestrator(config).orchestrate({"user": "test"})  # or .run(...)

The result is ``{<endpoint>: parsed body, ..., "errors": {<endpoint>: {"status", "reason",
"attempts"}}, "_metrics": {...}}``; an endpoint that failed or was skipped has no result key
(and is under ``errors`` or ``_metrics["skipped"]``). FANOUT returns ``{<endpoint>: [one
result per input item, in input order; None where it failed], "errors": {<endpoint>:
[{"index", "status", "reason", "attempts"}, ...]}, ...}`` or, with a ``sink``, writes the
results there. Retries, rate limits and breakers are ``patterns.error_recovery``'s; secrets
(``auth``, credential headers) never appear in reprs, logs, errors or results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from patterns._api import graphql
from patterns._api.auth import Auth, Secret, api_key, basic, bearer
from patterns._api.config import (
    APIEndpoint,
    APIOrchestrationConfig,
    OrchestrationMode,
    config_fields,
)
from patterns._api.errors import APICallError, APIConfigError
from patterns._api.orchestrator import APIOrchestrator
from patterns.errors import PatternError

__all__ = [
    "APICallError",
    "APIConfigError",
    "APIEndpoint",
    "APIOrchestrationConfig",
    "APIOrchestrator",
    "Auth",
    "OrchestrationMode",
    "PatternError",
    "Secret",
    "api_key",
    "basic",
    "bearer",
    "create_graphql_orchestrator",
    "create_rest_api_orchestrator",
]


def create_rest_api_orchestrator(
    base_url: str,
    endpoints: Sequence[Mapping[str, Any] | APIEndpoint],
    auth_token: str | None = None,
    rate_limit: float | None = None,
    mode: OrchestrationMode | str = OrchestrationMode.SEQUENTIAL,
    **config: Any,
) -> APIOrchestrator:
    """An orchestrator of REST endpoints under ``base_url``.

    ``endpoints``: mappings with ``name``, ``path`` (or ``url``) and any ``APIEndpoint``
    field (``method``, ``headers``, ``params``, ``body``, ``depends_on``, ...).
    ``auth_token`` is sent as a bearer token; ``rate_limit`` is requests per second for the
    whole run. Other keywords are ``APIOrchestrationConfig`` fields.
    """
    _check_keywords("create_rest_api_orchestrator", config,
                    {"endpoints", "base_url", "rate_limit", "mode"})
    return APIOrchestrator(APIOrchestrationConfig(
        endpoints=list(endpoints), base_url=base_url, auth=config.pop("auth", auth_token),
        rate_limit=rate_limit, mode=mode, **config))


def create_graphql_orchestrator(
    endpoint: str,
    queries: Sequence[Mapping[str, Any] | str],
    auth_token: str | None = None,
    batch_queries: bool = True,
    **config: Any,
) -> APIOrchestrator:
    """An orchestrator of GraphQL ``queries`` (``{"query", "variables"?, "name"?}``) at the
    URL ``endpoint``; the result has one key per query name (default ``query_<i>``).

    ``batch_queries`` sends them in one POST (a JSON list); otherwise one POST each, in
    PARALLEL. GraphQL ``errors`` in an answer make that query an error. Keywords among
    ``headers``, ``timeout``, ``retry_config``, ``retry_count``, ``retry_delay``,
    ``retry_on_status``, ``rate_limit``, ``burst_limit``, ``error_handler`` apply to each
    request; the others are ``APIOrchestrationConfig`` fields.
    """
    specs = graphql.query_specs(queries)
    options = {k: config.pop(k) for k in graphql.ENDPOINT_OPTIONS if k in config}
    if batch_queries:
        config.setdefault("result_transformer", graphql.split_batch(specs))
    config.setdefault("mode", OrchestrationMode.SEQUENTIAL if batch_queries
                      else OrchestrationMode.PARALLEL)
    config.setdefault("name", "graphql")
    _check_keywords("create_graphql_orchestrator", config, {"endpoints"})
    return APIOrchestrator(APIOrchestrationConfig(
        endpoints=graphql.endpoints(endpoint, specs, batch_queries, options),
        auth=config.pop("auth", auth_token), **config))


def _check_keywords(factory: str, given: Mapping[str, Any], taken: set[str]) -> None:
    """``APIConfigError`` naming keywords that are no config field (or set by ``factory``)."""
    known = config_fields() - taken
    unknown = sorted(set(given) - known)
    if unknown:
        raise APIConfigError(f"{factory}: unknown keyword(s) {unknown}; retries are set per "
                             "endpoint (retry_count, retry_config); config keywords are "
                             f"{sorted(known)}")
