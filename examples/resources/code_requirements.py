"""Seed 003 (resource-management guide), section "Resource Requirements in FSM / Code-Based
Requirements".

    .venv/bin/python examples/resources/code_requirements.py

Changed from the seed: the import prefix (``dataknobs_fsm.functions.base`` ->
``fsm_actors.functions``). Defined first, as the seed assumes it: ``manager`` with a
``database`` registered (this example's database, PostgreSQL when one can be had, else
SQLite, see ``_db.py``); no ``cache`` is registered, and the optional requirement is skipped.
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
    """``resources`` the requirements gave, and the ``users`` count read through them."""
    from resource_actors.manager import ResourceManager

    DB = users_database("res_code_req")
    with ResourceManager() as manager:
        manager.register_provider("database", DB.adapter())
        # -- seed block: "Code-Based Requirements" -----------------------------------------
        from fsm_actors.functions import ResourceConfig
        # Define resource requirements
        requirements = [
            ResourceConfig(name="database", required=True, timeout=30),
            ResourceConfig(name="cache", required=False)
        ]
        # Configure resources from requirements
        resources = manager.configure_from_requirements(requirements, owner_id="state_123")
        # -- end of seed block -------------------------------------------------------------
        users = resources["database"].query("SELECT count(*) AS n FROM users")[0]["n"]
        owners = manager.get_resource_owners("database")
        manager.release_all("state_123")
    print(f"resources: {sorted(resources)}, users: {users}, database owners: {owners}")
    return {"resources": resources, "users": users, "owners": owners,
            "ResourceConfig": ResourceConfig}


if __name__ == "__main__":
    main()
