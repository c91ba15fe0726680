"""The seed's API orchestration blocks (shared/seeds/000), run as written.

Only the import prefix (``dataknobs_fsm.patterns.`` -> ``patterns.``) and the service URL
(``https://api.example.com`` -> the local test server) are changed; the server logs what it
was asked, so each block is checked against what really went over the wire.
"""

from __future__ import annotations

import ast
import asyncio

import pytest

from tests.patterns.api_servers import APITestServer

QUICK_START = '''
# API Orchestration
from dataknobs_fsm.patterns.api_orchestration import create_rest_api_orchestrator
from dataknobs_fsm.patterns.api_orchestration import OrchestrationMode

api_orchestrator = create_rest_api_orchestrator(
    base_url="https://api.example.com",
    endpoints=[
        {"name": "users", "path": "/users", "method": "GET"},
        {"name": "posts", "path": "/posts", "method": "GET"}
    ],
    auth_token="your-api-token",
    rate_limit=100,  # requests per second
    mode=OrchestrationMode.PARALLEL
)
'''

CUSTOMIZING = '''
from dataknobs_fsm.patterns.api_orchestration import APIOrchestrator, APIOrchestrationConfig
from dataknobs_fsm.patterns.api_orchestration import OrchestrationMode, APIEndpoint

# Create custom configuration
config = APIOrchestrationConfig(
    name="custom_api_workflow",
    mode=OrchestrationMode.HYBRID,
    endpoints=[
        APIEndpoint(
            name="auth",
            url="https://api.example.com/auth",
            method="POST",
            headers={"Content-Type": "application/json"},
            retry_config={"max_attempts": 5}
        ),
        APIEndpoint(
            name="data",
            url="https://api.example.com/data",
            method="GET",
            depends_on=["auth"],  # Sequential dependency
            transform=lambda resp: resp.get("data", [])
        )
    ],
    rate_limit=100,
    timeout=30.0
)

# Create orchestrator with custom config
orchestrator = APIOrchestrator(config)
result = await orchestrator.orchestrate({"user": "test"})
'''

IMPORTS = '''
from dataknobs_fsm.patterns.api_orchestration import (
    APIOrchestrator, APIOrchestrationConfig, OrchestrationMode,
    APIEndpoint, create_rest_api_orchestrator, create_graphql_orchestrator
)
'''


@pytest.fixture(scope="module")
def server():
    srv = APITestServer().start()
    yield srv
    srv.stop()


def run_block(block: str, server: APITestServer) -> dict:
    source = block.replace("dataknobs_fsm.patterns.", "patterns.").replace(
        "https://api.example.com", server.url)
    code = compile(source, "<seed>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    scope: dict = {}

    async def go() -> None:
        made = eval(code, scope)
        if made is not None:
            await made

    asyncio.run(go())
    return scope


def test_quick_start_block(server):
    scope = run_block(QUICK_START, server)
    result = asyncio.run(scope["api_orchestrator"].orchestrate())
    assert result["users"]["users"] == [{"id": 1}] and result["users"]["auth"] is True
    assert result["posts"] == {"posts": [{"id": 7}]}
    assert result["errors"] == {}
    assert "your-api-token" not in repr(result) + repr(scope["api_orchestrator"].config)
    assert server.count("/users") == 1 and server.count("/posts") == 1
    assert result["_metrics"]["read_count"] == 2


def test_customizing_block(server):
    scope = run_block(CUSTOMIZING, server)
    result = scope["result"]
    assert result["auth"] == {"token": "tok-test"}  # the POST's body came back
    assert result["data"] == [1, 2, 3]              # transform applied
    auth, data = server.calls_to("/auth")[-1], server.calls_to("/data")[-1]
    assert data.start >= auth.end                  # depends_on held
    assert result["_metrics"]["read_count"] == 1 and result["_metrics"]["write_count"] == 1


def test_import_reference_block(server):
    scope = run_block(IMPORTS, server)
    assert {"APIOrchestrator", "APIOrchestrationConfig", "OrchestrationMode", "APIEndpoint",
            "create_rest_api_orchestrator", "create_graphql_orchestrator"} <= set(scope)
