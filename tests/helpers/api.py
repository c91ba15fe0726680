"""Helpers of the API tests: a GET of JSON, and one orchestration run of some endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from patterns.api_orchestration import APIEndpoint, APIOrchestrationConfig, APIOrchestrator


async def get_json(url: str) -> dict[str, Any]:
    """The JSON body of a GET; an HTTP error status raises ``aiohttp.ClientResponseError``."""
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        resp.raise_for_status()
        return await resp.json()


def run_endpoints(*endpoints: APIEndpoint, data: Any = None, **config: Any) -> dict[str, Any]:
    """Orchestrate ``endpoints`` once (``mode`` parallel unless given) and return the result."""
    orch = APIOrchestrator(APIOrchestrationConfig(endpoints=list(endpoints),
                                                  mode=config.pop("mode", "parallel"), **config))
    return asyncio.run(orch.orchestrate(data))
