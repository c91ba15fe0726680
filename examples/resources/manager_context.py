"""Seed 003 (resource-management guide), section "Resource Patterns / Resource Manager as
Context Manager".

    .venv/bin/python examples/resources/manager_context.py

The block as the seed writes it (no imports to change). Defined first, as the seed assumes
them: the ``ResourceManager`` import and ``db_resource`` (this example's database,
PostgreSQL when one can be had, else SQLite, see ``_db.py``, holding a ``users`` table).
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
    """The query's ``result`` and the cluster's resource names after the ``with``."""
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.manager import ResourceManager

    DB = users_database("res_manager_context")
    db_resource = DatabaseResourceAdapter("db", backend=DB.backend, **DB.params)
    # -- seed block: "Resource Manager as Context Manager" ---------------------------------
    # Auto-cleanup with context manager
    with ResourceManager() as manager:
        manager.register_provider("db", db_resource)
        # Use resources
        with manager.resource_context("db", "owner1") as db:
            result = db.query("SELECT * FROM users")
    # Manager and all resources cleaned up automatically
    # -- end of seed block -----------------------------------------------------------------
    after = ResourceManager().resource_names()
    print(f"users: {result}; resources after the with: {after}")
    return {"result": result, "after": after}


if __name__ == "__main__":
    main()
