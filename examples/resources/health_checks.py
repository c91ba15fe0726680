"""Seed 003 (resource-management guide), section "Resource Health Monitoring / Health Checks".

    .venv/bin/python examples/resources/health_checks.py

The block as the seed writes it (no imports to change). Defined first, as the seed assumes
them: ``manager`` with a ``database`` (this example's database, PostgreSQL when one can be
had, else SQLite, see ``_db.py``) and an ``api`` (a local API this example serves on
127.0.0.1, or ``main(api_url=...)``), and ``ResourceHealth``.
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
from examples.resources._db import example_database  # noqa: E402


def main(api_url: str | None = None) -> dict[str, Any]:
    """``health`` of the database and ``all_health`` of every resource."""
    from resource_actors.base import ResourceHealth
    from resource_actors.http import HTTPResourceAdapter
    from resource_actors.manager import ResourceManager

    DB = example_database("res_health")
    with ExitStack() as stack:
        API_URL = api_url or stack.enter_context(http_server()).url
        manager = stack.enter_context(ResourceManager())
        manager.register_provider("database", DB.adapter())
        manager.register_provider("api", HTTPResourceAdapter("api", base_url=API_URL))
        # -- seed block: "Health Checks" ---------------------------------------------------
        # Check specific resource health
        health = manager.health_check("database")
        if health["database"] == ResourceHealth.UNHEALTHY:
            # Handle unhealthy resource
            pass
        # Check all resources
        all_health = manager.health_check()
        for name, status in all_health.items():
            print(f"{name}: {status}")
        # -- end of seed block -------------------------------------------------------------
    return {"health": health, "all_health": all_health}


if __name__ == "__main__":
    main()
