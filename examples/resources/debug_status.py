"""Seed 003 (resource-management guide), section "Troubleshooting / Debug Resource Status".

    .venv/bin/python examples/resources/debug_status.py

The block as the seed writes it (no imports to change). Defined first, as the seed assumes
it: ``manager`` with a pooled ``database`` (this example's database, PostgreSQL when one
can be had, else SQLite, see ``_db.py``) that ``state_dbg`` holds, and an unpooled
``settings``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from examples.resources._db import example_database  # noqa: E402


def main() -> dict[str, Any]:
    """``all_resources`` as the block read it."""
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.manager import ResourceManager
    from resource_actors.pool import PoolConfig

    DB = example_database("res_debug")
    with ResourceManager() as manager:
        manager.register_provider("database", DatabaseResourceAdapter(
            "db", backend=DB.backend, **DB.params), pool_config=PoolConfig(max_size=3))
        manager.register_from_dict("settings", {"data": {"timeout": 30}})
        manager.acquire("database", "state_dbg")
        # -- seed block: "Debug Resource Status" -------------------------------------------
        # Get detailed resource information
        all_resources = manager.get_all_resources()
        for name, status in all_resources.items():
            print(f"\nResource: {name}")
            print(f"  Has provider: {status['provider_exists']}")
            print(f"  Has pool: {status['has_pool']}")
            print(f"  Active count: {status['active_count']}")
            print(f"  Owners: {status['owners']}")
        # -- end of seed block -------------------------------------------------------------
    return {"all_resources": all_resources}


if __name__ == "__main__":
    main()
