"""Seed 003 (resource-management guide), section "Resource Pooling".

    .venv/bin/python examples/resources/resource_pooling.py

Changed from the seed: the import prefix (``dataknobs_fsm.resources`` -> ``resource_actors``);
the adapter's ``backend="postgresql"`` is ``backend=DB.backend, **DB.params``, this example's
database (PostgreSQL when one can be had, else SQLite, see ``_db.py``). Defined first, as
the seed assumes them: ``manager`` and the ``DatabaseResourceAdapter`` import.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from examples.resources._db import example_database  # noqa: E402


def main() -> dict[str, Any]:
    """The pool's metrics right after registration (``pool_metrics``)."""
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.manager import ResourceManager

    DB = example_database("res_pooling")
    with ResourceManager() as manager:
        # -- seed block: "Resource Pooling" ------------------------------------------------
        from resource_actors.pool import ResourcePool, PoolConfig  # noqa: F401, I001
        # Configure pool
        pool_config = PoolConfig(
            min_size=2,
            max_size=10,
            max_idle_time=300,  # 5 minutes
            acquire_timeout=30
        )
        # Register pooled resource
        db_resource = DatabaseResourceAdapter(name="db", backend=DB.backend, **DB.params)
        manager.register_provider("database", db_resource, pool_config=pool_config)
        # Pool metrics
        pool_metrics = manager.get_metrics("database_pool")
        print(f"Pool size: {pool_metrics['database_pool'].size}")
        print(f"Available: {pool_metrics['database_pool'].available}")
        # -- end of seed block -------------------------------------------------------------
    return {"pool_metrics": pool_metrics}


if __name__ == "__main__":
    main()
