"""Seed 000 (integration patterns), "Customizing Patterns": ``APIOrchestrationConfig``.

Changed: the import prefix (``dataknobs_fsm.patterns`` -> ``patterns``) and the endpoints'
URLs (``https://api.example.com/...`` -> the same paths on the local API that
``examples/_support.http_server`` serves on 127.0.0.1). The block ends in a top-level
``await``; here it is the body of an ``async def`` run by ``asyncio.run``.

    .venv/bin/python examples/patterns/customizing_api.py
"""

# ruff: noqa: I001 - the seed's import lines are kept as written
from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from examples._support import http_server  # noqa: E402


async def seed_block(BASE_URL: str) -> dict[str, Any]:  # noqa: N803
    # -- the seed's block ---------------------------------------------------------------------
    from patterns.api_orchestration import APIOrchestrator, APIOrchestrationConfig
    from patterns.api_orchestration import OrchestrationMode, APIEndpoint

    # Create custom configuration
    config = APIOrchestrationConfig(
        name="custom_api_workflow",
        mode=OrchestrationMode.HYBRID,
        endpoints=[
            APIEndpoint(
                name="auth",
                url=f"{BASE_URL}/auth",
                method="POST",
                headers={"Content-Type": "application/json"},
                retry_config={"max_attempts": 5}
            ),
            APIEndpoint(
                name="data",
                url=f"{BASE_URL}/data",
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
    # -----------------------------------------------------------------------------------------
    return result


def main() -> dict[str, Any]:
    """Run the block against the local API; returns its result and the requests served."""
    with http_server() as api:
        result = asyncio.run(seed_block(api.url))
        served = list(api.calls)
    print(f"auth: {result['auth']}, data: {result['data']}, errors: {result['errors']}")
    return {"result": result, "served": served}


if __name__ == "__main__":
    main()
