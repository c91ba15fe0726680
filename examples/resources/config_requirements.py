"""Seed 003 (resource-management guide), section "Resource Requirements in FSM /
Configuration-Based Requirements".

    .venv/bin/python examples/resources/config_requirements.py

The seed's YAML is kept as written (``SEED_YAML``). It is a fragment: an FSM config also
needs a ``name`` and a start state, so ``main()`` adds ``name`` and marks the one state as
start and end; it then gives the two resources the network names (this example's database,
PostgreSQL when one can be had, else SQLite, see ``_db.py``; a directory under
``examples/out/``) and the ``process_with_db`` function the state names.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from examples._support import out  # noqa: E402
from examples.resources._db import users_database  # noqa: E402

# -- seed block: "Configuration-Based Requirements" ----------------------------------------
SEED_YAML = """\
networks:
  - name: main
    resources:
      - database
      - filesystem
    states:
      - name: process_data
        resources:
          - database  # This state needs database
        functions:
          transform:
            type: custom
            name: process_with_db
"""
# -- end of seed block ---------------------------------------------------------------------


def process_with_db(data: dict[str, Any], context: Any) -> dict[str, Any]:
    """Look the user up in ``database`` and write it to ``user_<id>.json`` in ``filesystem``
    (the state's own resource and the one its network adds)."""
    rows = context.resources["database"].query("SELECT name FROM users WHERE id = :id",
                                               {"id": data["id"]})
    user = {**data, "name": rows[0]["name"]}
    context.resources["filesystem"].write(f"user_{data['id']}.json", user)
    return {**user, "resources": sorted(context.resources)}


def main() -> dict[str, Any]:
    """The processed records and the directory the ``filesystem`` resource wrote to."""
    from fsm_actors import SimpleFSM

    DB = users_database("res_config_req")
    files = out("config_requirements")
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir()
    config = {"name": "config_requirements", **yaml.safe_load(SEED_YAML)}
    (state,) = config["networks"][0]["states"]
    state.update(is_start=True, is_end=True)
    resources = {"database": {"backend": DB.backend, **DB.params},
                 "filesystem": {"type": "filesystem", "base_path": str(files)}}
    with SimpleFSM(config, resources=resources,
                   custom_functions={"process_with_db": process_with_db}) as fsm:
        results = [fsm.process({"id": i}) for i in (1, 2)]
    for result in results:
        print(f"{result['final_state']}: {result['data']}")
    return {"results": results, "files": str(files)}


if __name__ == "__main__":
    main()
