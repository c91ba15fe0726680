"""Seed 003 (resource-management guide), section "Async Cleanup".

    .venv/bin/python examples/resources/async_cleanup.py

The block as the seed writes it (no imports to change). Defined first, as the seed assumes
it: ``manager`` with a ``database`` (this example's database, PostgreSQL when one can be
had, else SQLite, see ``_db.py``) that one owner holds; the cleanup ends both.
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
    """The cluster's resource names before and after the cleanup."""
    from resource_actors.manager import ResourceManager

    DB = example_database("res_async_cleanup")
    manager = ResourceManager()
    manager.register_provider("database", DB.adapter())
    manager.acquire("database", "state_1")
    before = manager.resource_names()
    # -- seed block: "Async Cleanup" -------------------------------------------------------
    import asyncio

    async def cleanup_resources():
        # Async cleanup of all resources
        await manager.cleanup()
    # Run cleanup
    asyncio.run(cleanup_resources())
    # -- end of seed block -----------------------------------------------------------------
    after = ResourceManager().resource_names()  # a new manager sees the cluster's resources
    print(f"resources before the cleanup: {before}, after: {after}")
    return {"before": before, "after": after}


if __name__ == "__main__":
    main()
