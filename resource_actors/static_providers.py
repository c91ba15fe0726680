"""Static providers: fixed data (settings, test fixtures) and placeholders for missing adapters."""

from __future__ import annotations

import copy
from typing import Any

from resource_actors.base import BaseResourceProvider, ResourceHealth, ResourceStatus
from resource_actors.errors import ResourceError


class SimpleResourceProvider(BaseResourceProvider):
    """Hands out a deep copy of ``data`` on every ``acquire``.

    The data is plain and picklable, so the manager ships it by value: callers get the data
    itself (a dict, a list, ...), not a remote handle.
    """

    def __init__(self, name: str, data: Any = None) -> None:
        super().__init__(name, {"data": data})
        self.data = {} if data is None else data

    def acquire(self, **kwargs: Any) -> Any:
        self.status = ResourceStatus.ACTIVE
        return copy.deepcopy(self.data)

    def release(self, resource: Any) -> None:
        self.status = ResourceStatus.IDLE


class UnavailableResourceProvider(BaseResourceProvider):
    """Stands for a resource that was declared but cannot be built here (``reason`` says why).

    Registration succeeds so that declaring it does not stop a pipeline that may never use it;
    every ``acquire`` raises ``ResourceError`` with the reason, and health is UNHEALTHY.
    """

    def __init__(self, name: str, reason: str, config: dict[str, Any] | None = None) -> None:
        super().__init__(name, config)
        self.reason = reason
        self.status = ResourceStatus.ERROR

    def acquire(self, **kwargs: Any) -> Any:
        raise ResourceError(f"resource {self.name!r} is unavailable: {self.reason}",
                            self.name, "acquire")

    def release(self, resource: Any) -> None:
        return None

    def health_check(self) -> ResourceHealth:
        return ResourceHealth.UNHEALTHY
