"""Seed 003 (resource-management guide), section "Resource Patterns / Shared Resource
Manager".

    .venv/bin/python examples/resources/shared_manager.py

The seed's ``SharedResources`` as written, except the adapter's ``backend="postgresql"``:
``backend=DB.backend, **DB.params``, this example's database (PostgreSQL when one can be
had, else SQLite, see ``_db.py``). Defined first, as the seed assumes them: the
``ResourceManager`` and ``DatabaseResourceAdapter`` imports.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from examples.resources._db import ExampleDatabase, example_database  # noqa: E402
from resource_actors.database import DatabaseResourceAdapter  # noqa: E402
from resource_actors.manager import ResourceManager  # noqa: E402

DB: ExampleDatabase  # main() sets it before the first get_manager()


# -- seed block: "Shared Resource Manager" -------------------------------------------------
# Singleton pattern for shared resources
class SharedResources:
    _instance = None
    _manager = None

    @classmethod
    def get_manager(cls):
        if cls._instance is None:
            cls._instance = cls()
            cls._manager = ResourceManager()
            cls._setup_resources()
        return cls._manager

    @classmethod
    def _setup_resources(cls):
        # Register shared resources
        cls._manager.register_provider(
            "database",
            DatabaseResourceAdapter("db", backend=DB.backend, **DB.params)
        )
# -- end of seed block ---------------------------------------------------------------------


def main() -> dict[str, Any]:
    """Whether two ``get_manager()`` calls gave one manager, and what its database answered."""
    global DB
    DB = example_database("res_shared")
    manager = SharedResources.get_manager()
    try:
        same = SharedResources.get_manager() is manager
        with manager.resource_context("database", "state_shared") as db:
            answer = db.query("SELECT 1 AS x")
    finally:
        manager.close()
        SharedResources._instance = SharedResources._manager = None
    print(f"one shared manager: {same}; its database answered {answer}")
    return {"same": same, "answer": answer}


if __name__ == "__main__":
    main()
