"""Seed 003 (resource-management guide), sections "Resource Manager" and "Resource Status
and Metrics".

    .venv/bin/python examples/resources/resource_manager.py

Changed from the seed: the import prefix (``dataknobs_fsm.resources`` -> ``resource_actors``);
the connection string and backend are those of this example's database (``DB.url``,
``DB.backend``: PostgreSQL when one can be had, else SQLite, see ``_db.py``); the two
``...`` the seed leaves to the reader are filled in with a query, and one owner holds the
database while the status is read (so it has something to show).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from examples.resources._db import users_database  # noqa: E402


def main() -> dict[str, Any]:
    """What the blocks saw: query results, owners, status, metrics and health."""
    DB = users_database("res_manager")
    seen: dict[str, Any] = {}

    # -- seed block: "Resource Manager" ----------------------------------------------------
    from resource_actors.manager import ResourceManager  # noqa: I001 - in the seed's order
    from resource_actors.database import DatabaseResourceAdapter
    # Create resource manager
    manager = ResourceManager()
    try:
        # Register a database resource
        db_resource = DatabaseResourceAdapter(
            name="main_db",
            backend=DB.backend,
            connection_string=DB.url
        )
        manager.register_provider("database", db_resource)
        # Acquire resource with owner tracking
        resource = manager.acquire("database", owner_id="state_123")
        # Use resource...
        seen["one"] = resource.query("SELECT 1 AS one")
        # Release when done
        manager.release("database", owner_id="state_123")
        # Or use context manager
        with manager.resource_context("database", owner_id="state_456") as db:
            # Use database
            seen["users"] = db.query("SELECT count(*) AS n FROM users")
            pass  # Automatically released
        # -- end of seed block -------------------------------------------------------------
        seen["owners_after_context"] = manager.get_resource_owners("database")
        manager.acquire("database", owner_id="state_789")  # a holder for the status to show

        # -- seed block: "Resource Status and Metrics" -------------------------------------
        # Get resource status
        status = manager.get_resource_status("database")
        print(f"Active connections: {status['active_count']}")
        print(f"Current owners: {status['owners']}")
        # Get metrics
        metrics = manager.get_metrics("database")
        print(f"Total acquisitions: {metrics['database'].total_acquisitions}")
        print(f"Average hold time: {metrics['database'].average_hold_time}s")
        # Health check
        health = manager.health_check("database")
        print(f"Database health: {health['database']}")  # ResourceHealth.HEALTHY
        # -- end of seed block -------------------------------------------------------------
        seen.update(status=status, metrics=metrics, health=health)
    finally:
        manager.close()
    return seen


if __name__ == "__main__":
    main()
