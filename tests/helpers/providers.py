"""Resource providers for tests: live objects handed out through the resource manager."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from resource_actors import BaseResourceProvider


class FactoryProvider(BaseResourceProvider):
    """Hands out a new ``factory()`` on each acquire; release drops it.

    ``factory`` must be importable by Ray workers (a class of a test module is).
    """

    def __init__(self, name: str, factory: Callable[[], Any]) -> None:
        super().__init__(name)
        self.factory = factory

    def acquire(self, **kwargs: Any) -> Any:
        return self.factory()

    def release(self, resource: Any) -> None:
        return None
