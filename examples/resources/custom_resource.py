"""Seed 003 (resource-management guide), section "Custom Resources".

    .venv/bin/python examples/resources/custom_resource.py

The seed's ``RedisResourceProvider`` as written, the import prefix changed
(``dataknobs_fsm.resources`` -> ``resource_actors``). Defined first, as the seed assumes it:
``manager``. No Redis server is started (nor the ``redis`` package required): the provider
registers, reports itself UNHEALTHY and does not validate, which ``main()`` shows.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# -- seed block: "Custom Resources" (the class) --------------------------------------------
from resource_actors.base import (  # noqa: E402, I001 - in the seed's order
    BaseResourceProvider,
    ResourceHealth,
    ResourceStatus,
    ResourceMetrics  # noqa: F401
)


class RedisResourceProvider(BaseResourceProvider):
    def __init__(self, name: str, host: str, port: int = 6379):
        super().__init__(name, {"host": host, "port": port})
        self.host = host
        self.port = port
        self.client = None

    def acquire(self, **kwargs):
        import redis
        if not self.client:
            self.client = redis.Redis(host=self.host, port=self.port)
        self.status = ResourceStatus.ACTIVE
        return self.client

    def release(self, resource):
        self.status = ResourceStatus.IDLE
        # Keep connection for reuse

    def validate(self, resource):
        try:
            return resource.ping()
        except:  # noqa: E722 - as the seed writes it
            return False

    def health_check(self):
        if self.validate(self.client):
            return ResourceHealth.HEALTHY
        return ResourceHealth.UNHEALTHY

    def close(self):
        if self.client:
            self.client.close()
            self.client = None
# -- end of seed block ---------------------------------------------------------------------


def main() -> dict[str, Any]:
    """The registered provider's status, health and validation."""
    from resource_actors.manager import ResourceManager

    with ResourceManager() as manager:
        # -- seed block: "Custom Resources" (registration) ---------------------------------
        # Register custom resource
        redis = RedisResourceProvider("cache", "localhost")
        manager.register_provider("redis", redis)
        # -- end of seed block -------------------------------------------------------------
        seen = {"status": manager.get_resource_status("redis"),
                "health": manager.health_check("redis")["redis"],
                "valid": manager.validate_resource("redis")}
    print(f"redis: registered {seen['status']['provider_exists']}, health {seen['health']}, "
          f"validates {seen['valid']}")
    return seen


if __name__ == "__main__":
    main()
