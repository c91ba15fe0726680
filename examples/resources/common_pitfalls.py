"""Seed 003 (resource-management guide), section "Common Pitfalls" (1. Resource Leaks,
2. Not Tracking Owners, 3. Ignoring Health Checks).

    .venv/bin/python examples/resources/common_pitfalls.py

The blocks as the seed writes them (no imports to change); block 1's ``return`` lines need a
function around them, so its bad and good halves are ``leaky()`` and ``tidy()``. Defined
first, as the seed assumes them: ``manager`` with a ``database`` (``db_resource``, this
example's database, PostgreSQL when one can be had, else SQLite, see ``_db.py``) and an
``api`` whose resources have ``call()`` (``CallableProvider``), ``owner_id`` and
``process``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from examples.resources._db import example_database  # noqa: E402
from resource_actors.base import BaseResourceProvider  # noqa: E402


class CallableResource:
    """A service client with the ``call()`` the seed's third pitfall uses."""

    def call(self) -> str:
        return "called"


class CallableProvider(BaseResourceProvider):
    """Provides ``CallableResource`` objects."""

    def acquire(self, **kwargs: Any) -> CallableResource:
        return CallableResource()

    def release(self, resource: Any) -> None:
        """Nothing to give back: the resource holds no connection."""


def main() -> dict[str, Any]:
    """What each half returned and whether block 1's bad half left its lease behind."""
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.manager import ResourceManager

    DB = example_database("res_pitfalls")
    seen: dict[str, Any] = {}
    with ResourceManager() as manager:
        db_resource = DatabaseResourceAdapter("db", backend=DB.backend, **DB.params)
        manager.register_provider("database", db_resource)
        manager.register_provider("api", CallableProvider("api"))
        owner_id = "state_p1"

        def process(resource: Any) -> Any:
            return resource.query("SELECT 1 AS x")

        # -- seed block: "1. Resource Leaks" -----------------------------------------------
        def leaky():
            # ❌ Bad - resource not released
            resource = manager.acquire("database", owner_id)
            result = process(resource)
            return result  # Resource never released!

        def tidy():
            # ✅ Good - proper cleanup
            with manager.resource_context("database", owner_id) as resource:
                result = process(resource)
                return result
        # -- end of seed block -------------------------------------------------------------
        seen["leaky"] = leaky()
        seen["held_after_leaky"] = manager.has_resource("database", owner_id)
        seen["tidy"] = tidy()  # the same owner: the context ends the lease leaky() left
        seen["held_after_tidy"] = manager.has_resource("database", owner_id)

        # -- seed block: "2. Not Tracking Owners" ------------------------------------------
        # ❌ Bad - no owner tracking
        db = db_resource.acquire()  # Direct acquisition
        db_resource.release(db)  # (not in the seed: nobody else would ever release it)
        # ✅ Good - use manager with owner
        db = manager.acquire("database", "state_123")
        # -- end of seed block -------------------------------------------------------------
        seen["owners"] = manager.get_resource_owners("database")
        manager.release("database", "state_123")

        # -- seed block: "3. Ignoring Health Checks" ---------------------------------------
        # ❌ Bad - no health validation
        resource = manager.acquire("api", owner_id)
        result = resource.call()  # Might be unhealthy!
        # ✅ Good - validate health
        if manager.validate_resource("api"):
            resource = manager.acquire("api", owner_id)
            result = resource.call()
        else:
            # Handle unhealthy resource
            pass
        # -- end of seed block -------------------------------------------------------------
        seen["result"] = result
    db_resource.close()  # the engine block 2's direct acquisition opened in this process
    print(f"1. leaky() left its lease: {seen['held_after_leaky']}; "
          f"tidy() did not: {not seen['held_after_tidy']}")
    print(f"2. owners the manager knows: {seen['owners']}")
    print(f"3. api: {seen['result']}")
    return seen


if __name__ == "__main__":
    main()
