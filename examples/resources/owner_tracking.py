"""Seed 003 (resource-management guide), section "Resource Lifecycle / Owner Tracking".

    .venv/bin/python examples/resources/owner_tracking.py

The block as the seed writes it (no imports to change). Defined first, as the seed assumes
it: ``manager`` with a ``database`` (this example's database, PostgreSQL when one can be
had, else SQLite, see ``_db.py``) that ``state_123`` holds.
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
    """What ``db`` answered, the owners, whether ``state_123`` still holds it after, and
    what using ``db`` after the release gives."""
    from resource_actors.errors import ResourceError
    from resource_actors.manager import ResourceManager

    DB = users_database("res_owners")
    with ResourceManager() as manager:
        manager.register_provider("database", DB.adapter())
        manager.acquire("database", "state_123")
        # -- seed block: "Owner Tracking" --------------------------------------------------
        # Check if owner has resource
        if manager.has_resource("database", "state_123"):
            db = manager.get_resource("database", "state_123")
        answer = db.query("SELECT 2 AS two")  # use it while it is held
        # Get all owners of a resource
        owners = manager.get_resource_owners("database")
        print(f"Database is used by: {owners}")
        # Release all resources for an owner
        manager.release_all("state_123")
        # -- end of seed block -------------------------------------------------------------
        still_held = manager.has_resource("database", "state_123")
        try:  # a released lease is refused, not served
            db.query("SELECT 2 AS two")
            after_release = "served"
        except ResourceError as exc:
            after_release = str(exc)
    print(f"query after release_all: {after_release}")
    return {"answer": answer, "owners": owners, "still_held": still_held,
            "after_release": after_release}


if __name__ == "__main__":
    main()
