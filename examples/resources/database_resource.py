"""Seed 003 (resource-management guide), section "Built-in Resource Adapters / Database
Resource", including its "Use in FSM" lines.

    .venv/bin/python examples/resources/database_resource.py

Changed from the seed: the import prefixes (``dataknobs_fsm.resources`` -> ``resource_actors``,
``dataknobs_fsm.api.simple`` -> ``fsm_actors``); the adapter's backend and connection values
are those of this example's database (``DB``: PostgreSQL when one can be had, else SQLite,
see ``_db.py``). The names the seed leaves undefined are defined first: ``manager``,
``db_config`` and an FSM ``config`` whose ``lookup`` state uses the ``database`` resource
(declared nowhere in the config: the first FSM's state reaches the one registered with the
manager, the second FSM's its own from ``resources=``). Each FSM processes one record
before the next line replaces it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from examples.resources._db import users_database  # noqa: E402


def users_fsm_config() -> dict[str, Any]:
    """The FSM the seed's ``SimpleFSM(config)`` runs: its ``lookup`` state reads the user's
    name from the ``database`` resource."""
    return {
        "name": "users",
        "states": [
            {"name": "lookup", "is_start": True, "resources": ["database"],
             "transform": {"code": (
                 "rows = context.resources['database'].query("
                 "'SELECT name FROM users WHERE id = :id', {'id': data['id']})\n"
                 "data['name'] = rows[0]['name'] if rows else None")}},
            {"name": "done", "is_end": True},
        ],
        "arcs": [{"from": "lookup", "to": "done"}],
    }


def main() -> dict[str, Any]:
    """The records both FSMs produced, what the manager's resource answered, and the repr."""
    from resource_actors.manager import ResourceManager

    DB = users_database("res_database")
    db_config = {"backend": DB.backend, **DB.params}
    config = users_fsm_config()
    seen: dict[str, Any] = {}
    manager = ResourceManager()
    try:
        # -- seed block: "Database Resource" -----------------------------------------------
        from resource_actors.database import DatabaseResourceAdapter
        # Create database resource
        db_resource = DatabaseResourceAdapter(
            name="postgres_db",
            backend=DB.backend,
            host=DB.host,
            port=DB.port,
            database=DB.database,
            user=DB.user,
            password=DB.password
        )
        # Register with manager
        manager.register_provider("database", db_resource)
        # Use in FSM
        from fsm_actors import SimpleFSM
        fsm = SimpleFSM(config)
        seen["manager_resource"] = fsm.process({"id": 1})  # the manager's "database"
        fsm.close()
        # Resources can be passed to SimpleFSM constructor
        fsm = SimpleFSM(config, resources={"database": db_config})
        # -- end of seed block -------------------------------------------------------------
        seen["own_resource"] = fsm.process({"id": 2})  # the FSM's own "database"
        seen["fsm_resources"] = fsm.get_resources()
        fsm.close()
        with manager.resource_context("database", "state_db") as db:
            seen["query"] = db.query("SELECT name FROM users WHERE id = :id", {"id": 1})
        seen["repr"] = repr(db_resource)
    finally:
        manager.close()
    for key in ("manager_resource", "own_resource"):
        print(f"{key}: {seen[key]['data']}")
    return seen


if __name__ == "__main__":
    main()
