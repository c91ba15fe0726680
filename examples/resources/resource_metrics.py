"""Seed 003 (resource-management guide), section "Resource Health Monitoring / Resource
Metrics".

    .venv/bin/python examples/resources/resource_metrics.py

The block as the seed writes it, the import prefix changed (``dataknobs_fsm.resources`` ->
``resource_actors``). Defined first, as the seed assumes it: ``manager`` with a ``database``
(this example's database, PostgreSQL when one can be had, else SQLite, see ``_db.py``) that
one owner has used once, so the metrics have something to count.
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
    """``db_metrics`` of the database and ``all_metrics``."""
    from resource_actors.manager import ResourceManager

    DB = example_database("res_metrics")
    with ResourceManager() as manager:
        manager.register_provider("database", DB.adapter())
        with manager.resource_context("database", "state_1") as db:
            db.query("SELECT 1")
        # -- seed block: "Resource Metrics" ------------------------------------------------
        from resource_actors.base import ResourceMetrics  # noqa: F401
        # Get metrics for specific resource
        metrics = manager.get_metrics("database")
        db_metrics = metrics["database"]
        print(f"Total acquisitions: {db_metrics.total_acquisitions}")
        print(f"Active connections: {db_metrics.active_connections}")
        print(f"Failed acquisitions: {db_metrics.failed_acquisitions}")
        print(f"Average hold time: {db_metrics.average_hold_time}s")
        print(f"Average acquisition time: {db_metrics.average_acquisition_time}s")
        # Get all metrics
        all_metrics = manager.get_metrics()
        # -- end of seed block -------------------------------------------------------------
    return {"db_metrics": db_metrics, "all_metrics": all_metrics}


if __name__ == "__main__":
    main()
