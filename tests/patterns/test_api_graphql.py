"""GraphQL: batched and unbatched queries, variables from the input, errors from the body."""

from __future__ import annotations

import asyncio

from patterns.api_orchestration import create_graphql_orchestrator
from tests.patterns.api_servers import TOKEN

QUERIES = [
    {"name": "user", "query": "query U($id: ID!) { user(id: $id) { id } }",
     "variables": {"id": "{user_id}"}},
    {"name": "bad", "query": "{ broken }"},
    {"query": "{ plain }"},
]


def test_batched_queries_go_in_one_post_and_split_per_query(server):
    before = server.count("/graphql")
    orch = create_graphql_orchestrator(f"{server.url}/graphql", QUERIES, auth_token=TOKEN)
    result = asyncio.run(orch.orchestrate({"user_id": 42}))
    assert server.count("/graphql") == before + 1
    assert result["user"] == {"echo": {"id": 42}}
    assert result["query_2"] == {"echo": {}}
    assert "bad" not in result
    assert result["errors"]["bad"]["reason"] == "GraphQL errors: Cannot query field 'broken'"
    assert result["errors"]["bad"]["status"] == 200
    assert TOKEN not in repr(result)


def test_unbatched_queries_run_one_post_each(server):
    before = server.count("/graphql")
    orch = create_graphql_orchestrator(f"{server.url}/graphql", QUERIES, batch_queries=False)
    result = asyncio.run(orch.orchestrate({"user_id": "u1"}))
    assert server.count("/graphql") == before + 3
    assert result["user"] == {"echo": {"id": "u1"}}
    assert result["errors"]["bad"]["reason"].startswith("GraphQL errors: Cannot query")
    assert result["errors"]["bad"]["attempts"] == 1  # a GraphQL error is not retried


def test_a_failed_batch_fails_every_query(server):
    orch = create_graphql_orchestrator(f"{server.url}/status/502", QUERIES[:1], retry_delay=0)
    result = asyncio.run(orch.orchestrate({"user_id": 1}))
    assert result["errors"]["user"]["status"] == 502
