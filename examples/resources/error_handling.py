"""Seed 003 (resource-management guide), "Best Practices" 5 (Handle Resource Errors).

    .venv/bin/python examples/resources/error_handling.py

The block as the seed writes it, the import prefix changed (``dataknobs_fsm.functions.base``
-> ``fsm_actors.functions``), inside a function that returns ``resource`` (None when the
acquisition failed). Defined first, as the seed assumes them: ``logger``, ``owner_id`` and
``manager``. ``main()`` runs it three times: with no ``database`` registered, with one that
cannot connect (PostgreSQL on port 1 of 127.0.0.1, with a password), and with this
example's database (PostgreSQL when one can be had, else SQLite, see ``_db.py``).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from examples.resources._db import example_database  # noqa: E402
from examples.resources._logs import collect_logs  # noqa: E402

logger = logging.getLogger("examples.resources.errors")
UNREACHABLE_PASSWORD = "not-in-any-message"


def acquire_database(manager: Any, owner_id: str) -> Any:
    """The seed's block: the leased ``database``, or None after logging why not."""
    resource = None
    # -- seed block: "5. Handle Resource Errors" -------------------------------------------
    from fsm_actors.functions import ResourceError
    try:
        resource = manager.acquire("database", owner_id, timeout=30)
    except ResourceError as e:
        logger.error(f"Failed to acquire {e.resource_name}: {e}")
        # Use fallback or retry
    # -- end of seed block -----------------------------------------------------------------
    return resource


def main() -> dict[str, Any]:
    """What each attempt gave (None or the resource) and the errors logged."""
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.manager import ResourceManager

    DB = example_database("res_errors")
    seen: dict[str, Any] = {}
    with collect_logs(logger) as logged, ResourceManager() as manager:
        seen["unregistered"] = acquire_database(manager, "state_e1")
        manager.register_provider("database", DatabaseResourceAdapter(
            "database", backend="postgresql", host="127.0.0.1", port=1, user="app",
            password=UNREACHABLE_PASSWORD, connect_timeout=1))
        seen["unreachable"] = acquire_database(manager, "state_e2")
        manager.unregister_provider("database")
        manager.register_provider("database", DB.adapter())
        resource = acquire_database(manager, "state_e3")
        seen["registered"] = resource.query("SELECT 1 AS ok") if resource else None
    seen["logged"] = list(logged)
    return seen


if __name__ == "__main__":
    main()
