"""Seed 003 (resource-management guide), section "Resource Patterns / Resource with FSM".

    .venv/bin/python examples/resources/fsm_resources.py

Changed from the seed: the import prefix (``dataknobs_fsm.api.simple`` -> ``fsm_actors``) and
the ``database`` entry's values: ``"backend": DB.backend`` and ``**DB.params`` after the
seed's ``"host": "localhost"`` (this example's database, PostgreSQL when one can be had,
else SQLite, see ``_db.py``). Defined first, as the seed assumes it: ``config``, an FSM
whose ``lookup`` state uses ``database`` and whose ``cached`` state uses ``cache``.
There is no ``redis`` resource type, so the ``cache`` entry registers as a resource that
fails with a message saying so when a state asks for it (the FSM itself builds).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from examples.resources._db import users_database  # noqa: E402

LOOKUP = ("rows = context.resources['database'].query("
          "'SELECT name FROM users WHERE id = :id', {'id': data['id']})\n"
          "data['name'] = rows[0]['name']")

#: Records with ``cached: true`` go to the state that needs ``cache``, the others to ``lookup``.
config = {
    "name": "fsm_resources",
    "states": [
        {"name": "start", "is_start": True},
        {"name": "lookup", "resources": ["database"], "transform": {"code": LOOKUP}},
        {"name": "cached", "resources": ["cache"], "transform": {"code": "data['cached'] = 1"}},
        {"name": "done", "is_end": True},
    ],
    "arcs": [
        {"from": "start", "to": "cached", "condition": "data.get('cached', False)",
         "priority": 1},
        {"from": "start", "to": "lookup"},
        {"from": "lookup", "to": "done"},
        {"from": "cached", "to": "done"},
    ],
}


def main() -> dict[str, Any]:
    """The FSM's resource names and the results of a lookup and of a cached record."""
    DB = users_database("res_fsm")
    # -- seed block: "Resource with FSM" ---------------------------------------------------
    from fsm_actors import SimpleFSM
    # Pass resources to FSM
    fsm = SimpleFSM(
        config,
        resources={
            "database": {"backend": DB.backend, "host": "localhost", **DB.params},
            "cache": {"type": "redis", "host": "localhost"}
        }
    )
    # Resources are automatically registered and available in states
    # -- end of seed block -----------------------------------------------------------------
    try:
        seen = {"resources": fsm.get_resources(),
                "lookup": fsm.process({"id": 1}),
                "cached": fsm.process({"id": 2, "cached": True})}
    finally:
        fsm.close()
    print(f"resources: {seen['resources']}")
    print(f"lookup: {seen['lookup']['success']}, {seen['lookup']['data']}")
    print(f"cached: {seen['cached']['success']}, {seen['cached'].get('error')}")
    return seen


if __name__ == "__main__":
    main()
