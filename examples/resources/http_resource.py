"""Seed 003 (resource-management guide), section "Built-in Resource Adapters / HTTP Service
Resource".

    .venv/bin/python examples/resources/http_resource.py

Changed from the seed: the import prefix (``dataknobs_fsm.resources`` -> ``resource_actors``)
and ``base_url``: a local API this example serves on 127.0.0.1 (``examples._support
.http_server``), or ``main(api_url=...)``, instead of ``https://api.example.com``. Defined
first, as the seed assumes it: ``manager``.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from examples._support import http_server  # noqa: E402


def main(api_url: str | None = None) -> dict[str, Any]:
    """``data`` the block read and the adapter's ``repr``; serves its own API unless given."""
    from resource_actors.manager import ResourceManager

    with ExitStack() as stack:
        API_URL = api_url or stack.enter_context(http_server()).url
        manager = stack.enter_context(ResourceManager())
        # -- seed block: "HTTP Service Resource" -------------------------------------------
        from resource_actors.http import HTTPResourceAdapter
        # Create HTTP resource
        http_resource = HTTPResourceAdapter(
            name="api_service",
            base_url=API_URL,
            timeout=30,
            headers={"Authorization": "Bearer token"},
            retry_count=3
        )
        manager.register_provider("api", http_resource)
        # Use in state
        with manager.resource_context("api", "state_123") as api:
            response = api.get("/users/123")
            data = response.json()
        # -- end of seed block -------------------------------------------------------------
    print(f"GET /users/123 -> {data}")
    return {"data": data, "repr": repr(http_resource)}


if __name__ == "__main__":
    main()
