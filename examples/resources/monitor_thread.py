"""Seed 003 (resource-management guide), "Best Practices" 3 (Monitor Resource Health).

    .venv/bin/python examples/resources/monitor_thread.py

The block as the seed writes it (no imports to change). Defined first, as the seed assumes
them: ``logger``, ``ResourceHealth`` and ``manager``, with a healthy ``database`` (this
example's database, PostgreSQL when one can be had, else SQLite, see ``_db.py``) and a
``broken`` one (PostgreSQL on port 1 of 127.0.0.1, where nothing listens). The seed's
monitor never stops, so it watches an in-process manager (``local=True``): after
``close()`` that has nothing left to check, where a cluster manager would go on asking the
cluster every minute for as long as the process lives. ``main()`` returns once the monitor
has logged its first warning.
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

logger = logging.getLogger("examples.resources.monitor")


def main(wait: float = 30.0) -> dict[str, Any]:
    """The warnings the monitor logged in its first round (waits up to ``wait`` s for one)."""
    from resource_actors.base import ResourceHealth
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.manager import ResourceManager

    DB = example_database("res_monitor")
    with collect_logs(logger) as warnings, ResourceManager(local=True) as manager:
        manager.register_provider("database", DB.adapter())
        manager.register_provider("broken", DatabaseResourceAdapter(
            "broken", backend="postgresql", host="127.0.0.1", port=1, connect_timeout=1))
        # -- seed block: "3. Monitor Resource Health" --------------------------------------
        # Periodic health check
        import threading
        import time

        def monitor_resources():
            while True:
                health = manager.health_check()
                for name, status in health.items():
                    if status != ResourceHealth.HEALTHY:
                        logger.warning(f"Resource {name} is {status}")
                time.sleep(60)
        monitor_thread = threading.Thread(target=monitor_resources, daemon=True)
        monitor_thread.start()
        # -- end of seed block -------------------------------------------------------------
        deadline = time.monotonic() + wait
        while not warnings and time.monotonic() < deadline:
            time.sleep(0.05)
    return {"warnings": list(warnings), "alive": monitor_thread.is_alive()}


if __name__ == "__main__":
    main()
