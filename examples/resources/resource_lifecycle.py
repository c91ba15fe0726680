"""Seed 003 (resource-management guide), section "Resource Lifecycle / Acquisition and
Release Flow".

    .venv/bin/python examples/resources/resource_lifecycle.py

The seed's ``StateExecution`` class as written (it has no imports to change). ``main()``
gives it what it assumes: ``manager`` with a ``database`` (this example's database,
PostgreSQL when one can be had, else SQLite, see ``_db.py``), and a ``state`` and a
``context`` of its own making; then runs a state whose transform reads the database and
one whose transform fails, and shows that both leave no lease behind.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from examples.resources._db import users_database  # noqa: E402

manager: Any = None  # the seed's module-level manager; main() sets it


# -- seed block: "Acquisition and Release Flow" --------------------------------------------
# Resource lifecycle in state execution
class StateExecution:
    def execute(self, state, context):
        owner_id = f"state_{state.name}_{context.id}"
        # 1. Acquire required resources
        for resource_name in state.resources:
            resource = manager.acquire(resource_name, owner_id)
            context.resources[resource_name] = resource
        try:
            # 2. Execute state with resources
            result = state.transform(context.data, context.resources)
            # 3. Release resources on success
            for resource_name in state.resources:
                manager.release(resource_name, owner_id)
            return result
        except Exception as e:  # noqa: F841 - as the seed writes it
            # 4. Cleanup on error
            manager.release_all(owner_id)
            raise
# -- end of seed block ---------------------------------------------------------------------


@dataclass
class State:
    """What ``StateExecution`` reads of a state."""

    name: str
    transform: Any
    resources: list[str] = field(default_factory=lambda: ["database"])


@dataclass
class Context:
    """What ``StateExecution`` reads and fills in of an execution context."""

    id: str
    data: dict[str, Any]
    resources: dict[str, Any] = field(default_factory=dict)


def lookup(data: dict[str, Any], resources: dict[str, Any]) -> dict[str, Any]:
    return resources["database"].query("SELECT name FROM users WHERE id = :id", data)[0]


def broken(data: dict[str, Any], resources: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("transform failed")


def main() -> dict[str, Any]:
    """The lookup's result, the failure's text, and the database's owners after each."""
    global manager
    from resource_actors.manager import ResourceManager

    DB = users_database("res_lifecycle")
    seen: dict[str, Any] = {}
    with ResourceManager() as manager:
        manager.register_provider("database", DB.adapter())
        seen["result"] = StateExecution().execute(State("lookup", lookup), Context("e1", {"id": 2}))
        seen["owners_after_success"] = manager.get_resource_owners("database")
        try:
            StateExecution().execute(State("broken", broken), Context("e2", {"id": 1}))
        except RuntimeError as exc:
            seen["error"] = str(exc)
        seen["owners_after_error"] = manager.get_resource_owners("database")
    print(f"lookup -> {seen['result']}; owners after: {seen['owners_after_success']}")
    print(f"broken -> {seen['error']!r}; owners after: {seen['owners_after_error']}")
    return seen


if __name__ == "__main__":
    main()
