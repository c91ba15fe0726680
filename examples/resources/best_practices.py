"""Seed 003 (resource-management guide), "Best Practices" 1 (Always Release Resources),
2 (Use Owner IDs) and 4 (Configure Appropriate Pools); 3 is ``monitor_thread.py``, 5 is
``error_handling.py``.

    .venv/bin/python examples/resources/best_practices.py

The blocks as the seed writes them, the import prefix of ``PoolConfig`` changed
(``dataknobs_fsm.resources`` -> ``resource_actors``). Defined first, as the seed assumes
them: ``manager`` with a ``database`` (this example's database, PostgreSQL when one can be
had, else SQLite, see ``_db.py``), ``owner_id``, ``sql``, ``use_resource``, ``state_name``
and ``execution_id``. After block 4, each of its two pool configs serves a database of its
own, to show the pool each one makes.
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
    """Block 1's ``result``, the owners block 2 leaves, block 4's configs and the metrics of
    the pools they make."""
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.manager import ResourceManager

    DB = users_database("res_best_practices")
    seen: dict[str, Any] = {}
    with ResourceManager() as manager:
        manager.register_provider("database", DB.adapter())
        owner_id, sql = "state_bp_1", "SELECT count(*) AS n FROM users"

        def use_resource(db: Any) -> Any:
            return db.query(sql)

        # -- seed block: "1. Always Release Resources" -------------------------------------
        # Good - automatic cleanup
        with manager.resource_context("database", owner_id) as db:
            result = db.query(sql)
        # Also good - explicit cleanup
        resource = manager.acquire("database", owner_id)
        try:
            result = use_resource(resource)
        finally:
            manager.release("database", owner_id)
        # -- end of seed block -------------------------------------------------------------
        seen.update(result=result, owners_after_1=manager.get_resource_owners("database"))
        state_name, execution_id = "load", "e42"

        # -- seed block: "2. Use Owner IDs" ------------------------------------------------
        # Good - traceable owner
        owner_id = f"state_{state_name}_{execution_id}"
        resource = manager.acquire("database", owner_id)
        # Bad - generic owner
        resource = manager.acquire("database", "state")
        # -- end of seed block -------------------------------------------------------------
        seen["owners_after_2"] = manager.get_resource_owners("database")
        manager.release_all(owner_id)
        manager.release_all("state")

        configs: dict[str, Any] = {}
        # -- seed block: "4. Configure Appropriate Pools" ----------------------------------
        from resource_actors.pool import PoolConfig
        # High-throughput configuration
        pool_config = PoolConfig(
            min_size=5,
            max_size=20,
            acquire_timeout=10
        )
        configs["high"] = pool_config
        # Low-throughput configuration
        pool_config = PoolConfig(
            min_size=1,
            max_size=5,
            max_idle_time=600  # Longer idle time
        )
        configs["low"] = pool_config
        # -- end of seed block -------------------------------------------------------------
        pools: dict[str, Any] = {}
        for workload, config in configs.items():
            name = f"database_{workload}"
            manager.register_provider(name, DatabaseResourceAdapter(
                name, backend=DB.backend, **DB.params), pool_config=config)
            pools[workload] = manager.get_metrics(f"{name}_pool")[f"{name}_pool"]
        seen.update(pool_configs=configs, pools=pools)
    print(f"1. {seen['result']}, owners after: {seen['owners_after_1']}")
    print(f"2. owners: {sorted(seen['owners_after_2'])}")
    for workload, metrics in pools.items():
        print(f"4. {workload}-throughput pool: size {metrics.size}, available {metrics.available}")
    return seen


if __name__ == "__main__":
    main()
