"""``ResourceBinder``: how the engine obtains the resources a state declares."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ResourceBinder(Protocol):
    """Leases resources by name to an owner id.

    The engine calls ``acquire`` with every resource a state needs before the state's
    functions run (owner ``state_<state>_<execution id>``), ``release`` with the same names
    after the state, and ``release_all`` when anything in between failed. ``acquire``
    returns ``{name: resource}`` for every requested name or raises. Implementations used
    by concurrent runs must be thread-safe.
    """

    def acquire(
        self, names: list[str], owner_id: str, timeout: float | None = None
    ) -> dict[str, Any]: ...

    def release(self, names: list[str], owner_id: str) -> None: ...

    def release_all(self, owner_id: str) -> None: ...
