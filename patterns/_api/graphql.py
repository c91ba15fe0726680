"""GraphQL over the orchestrator: queries with variables, batched into one POST or one each.

Batched (``batch_queries=True``): one endpoint ``graphql`` POSTs the list
``[{"query", "variables", "operationName"?}, ...]`` and the answer list is split back into one
result per query name. Unbatched: one POST endpoint per query, run in PARALLEL. Either way a
query whose answer carries ``errors`` (GraphQL reports them with HTTP 200) is an error of that
query, with the messages as its reason; its ``data`` (partial results) is dropped. Variables
are templates (``{"id": "{user_id}"}`` takes ``user_id`` from the input).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from patterns._api.call import PermanentCallError
from patterns._api.config import APIEndpoint
from patterns._api.errors import APIConfigError
from patterns._api.templates import Literal
from resource_actors.http import HTTPResponse

BATCH_ENDPOINT = "graphql"


def query_specs(queries: Sequence[Mapping[str, Any] | str]) -> list[dict[str, Any]]:
    """Queries as ``{name, query, variables, operationName}``; names default to
    ``query_<i>`` and must be unique."""
    specs = []
    for i, q in enumerate(queries):
        spec = {"query": q} if isinstance(q, str) else dict(q)
        name = spec.pop("name", None) or f"query_{i}"
        if not isinstance(spec.get("query"), str) or not spec["query"].strip():
            raise APIConfigError(f"GraphQL query {name!r}: needs a non-empty 'query' string",
                                 endpoint=name)
        unknown = set(spec) - {"query", "variables", "operationName", "operation_name"}
        if unknown:
            raise APIConfigError(f"GraphQL query {name!r}: unknown key(s) {sorted(unknown)}",
                                 endpoint=name)
        op = spec.get("operationName", spec.get("operation_name"))
        specs.append({"name": name, "query": spec["query"],
                      "variables": spec.get("variables") or {}, "operationName": op})
    names = [s["name"] for s in specs]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise APIConfigError(f"GraphQL query {duplicate!r} is named twice", endpoint=duplicate)
    return specs


def _payload(spec: Mapping[str, Any]) -> dict[str, Any]:
    payload = {"query": Literal(spec["query"]), "variables": spec["variables"]}
    if spec["operationName"]:
        payload["operationName"] = spec["operationName"]
    return payload


def _messages(errors: Any) -> str:
    if isinstance(errors, list):
        parts = [e.get("message", str(e)) if isinstance(e, Mapping) else str(e) for e in errors]
        return "; ".join(parts)
    return str(errors)


def parse_one(response: HTTPResponse) -> Any:
    """The ``data`` of one GraphQL answer; ``errors`` in the body make the call fail."""
    body = response.json()
    if not isinstance(body, Mapping):
        raise PermanentCallError(f"GraphQL answer is not an object: {str(body)[:100]}",
                                 response.status)
    if body.get("errors"):
        raise PermanentCallError(f"GraphQL errors: {_messages(body['errors'])}", response.status)
    return body.get("data")


def parse_batch(response: HTTPResponse) -> Any:
    """The answer list of a batch (an object answer is the server refusing the batch)."""
    body = response.json()
    if isinstance(body, Mapping):
        reason = _messages(body.get("errors")) if body.get("errors") else "not a list"
        raise PermanentCallError(f"GraphQL batch refused: {reason}", response.status)
    return body


#: ``APIEndpoint`` fields a GraphQL factory passes on to its endpoints.
ENDPOINT_OPTIONS = ("headers", "timeout", "retry_config", "retry_count", "retry_delay",
                    "retry_on_status", "rate_limit", "burst_limit", "error_handler")


def endpoints(url: str, specs: list[dict[str, Any]], batch: bool,
              options: Mapping[str, Any]) -> list[APIEndpoint]:
    """The endpoints that run ``specs`` against ``url`` (``options``: ``ENDPOINT_OPTIONS``)."""
    if batch:
        safe = not any(_mutation(s) for s in specs)
        return [APIEndpoint(BATCH_ENDPOINT, url, "POST", body=[_payload(s) for s in specs],
                            response_parser=parse_batch, idempotent=safe, **options)]
    return [APIEndpoint(s["name"], url, "POST", body=_payload(s), response_parser=parse_one,
                        idempotent=not _mutation(s), **options) for s in specs]


def _mutation(spec: Mapping[str, Any]) -> bool:
    """A query that may change data is not sent twice (queries are safe to retry)."""
    return str(spec["query"]).lstrip().lower().startswith("mutation")


def split_batch(specs: list[dict[str, Any]]):
    """A ``result_transformer`` that turns the batch answer into one key per query."""
    names = [s["name"] for s in specs]

    def split(result: dict[str, Any]) -> dict[str, Any]:
        errors = dict(result.get("errors", {}))
        out: dict[str, Any] = {}
        batch_error = errors.pop(BATCH_ENDPOINT, None)
        answers = result.get(BATCH_ENDPOINT)
        ran = result.get("_metrics", {}).get("endpoints", {}).get(BATCH_ENDPOINT, {})
        attempts = ran.get("attempts", 1)
        if batch_error is not None:
            errors.update({name: dict(batch_error) for name in names})
        elif not isinstance(answers, list) or len(answers) != len(names):
            got = len(answers) if isinstance(answers, list) else type(answers).__name__
            errors.update({name: {"status": ran.get("status"), "attempts": attempts, "reason":
                                  f"GraphQL batch answered {got} item(s) for {len(names)} "
                                  "queries"} for name in names})
        else:
            for name, answer in zip(names, answers, strict=True):
                if isinstance(answer, Mapping) and answer.get("errors"):
                    errors[name] = {"status": ran.get("status"), "attempts": attempts,
                                    "reason": f"GraphQL errors: {_messages(answer['errors'])}"}
                else:
                    out[name] = answer.get("data") if isinstance(answer, Mapping) else answer
        for key, value in result.items():
            if key not in (BATCH_ENDPOINT, "errors"):
                out[key] = value
        out["errors"] = errors
        return out

    return split
