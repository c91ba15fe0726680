"""Seed 003 (resource-management guide), section "Resource Interface".

    .venv/bin/python examples/resources/resource_interface.py

The block as the seed writes it, the import prefix changed (``dataknobs_fsm.resources`` ->
``resource_actors``). It imports the library's ``IResourceProvider`` and then restates the
protocol under the same name; ``main()`` checks that the built-in adapters satisfy both.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# -- seed block: "Resource Interface" ------------------------------------------------------
from resource_actors.base import IResourceProvider, ResourceHealth, ResourceMetrics  # noqa: E402, I001
from typing import Any, Protocol, runtime_checkable  # noqa: E402


@runtime_checkable
class IResourceProvider(Protocol):  # noqa: F811 - the seed restates the imported protocol
    """Interface for resource providers."""
    def acquire(self, **kwargs) -> Any:
        """Acquire a resource."""
        ...

    def release(self, resource: Any) -> None:
        """Release a resource."""
        ...

    def validate(self, resource: Any) -> bool:
        """Validate that a resource is still valid."""
        ...

    def health_check(self) -> ResourceHealth:
        """Check the health of the resource provider."""
        ...

    def get_metrics(self) -> ResourceMetrics:
        """Get resource metrics."""
        ...
# -- end of seed block ---------------------------------------------------------------------


class NotAProvider:
    """Has ``acquire`` but none of the rest: neither protocol accepts it."""

    def acquire(self, **kwargs: Any) -> None:
        return None


def main() -> dict[str, dict[str, bool]]:
    """``{adapter class: {"seed": isinstance of the seed's protocol, "library": of the
    library's}}`` for the three built-in adapters and one object that is not a provider."""
    from examples._support import out
    from resource_actors import base
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.filesystem import FileSystemResourceAdapter
    from resource_actors.http import HTTPResourceAdapter

    candidates = [
        DatabaseResourceAdapter("d", backend="memory"),
        FileSystemResourceAdapter("f", base_path=str(out("interface"))),
        HTTPResourceAdapter("h", base_url="http://127.0.0.1:1"),
        NotAProvider(),
    ]
    checks = {type(c).__name__: {"seed": isinstance(c, IResourceProvider),
                                 "library": isinstance(c, base.IResourceProvider)}
              for c in candidates}
    for name, answer in checks.items():
        print(f"{name}: IResourceProvider (seed) {answer['seed']}, (library) {answer['library']}")
    for candidate in candidates[:-1]:
        candidate.close()
    return checks


if __name__ == "__main__":
    main()
