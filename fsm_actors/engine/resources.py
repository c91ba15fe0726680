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


class BatchLeases:
    """A ``ResourceBinder`` that holds each resource once for a whole batch.

    Acquiring through a cluster broker costs actor round trips; doing it for every record of
    a 10k-record batch would dominate the run. Within ``batch(owner_id)``, the first state
    that needs a resource leases it to that batch owner, later states and records reuse it,
    per-state releases are deferred, and everything is released when the batch ends (also
    on error). Records of one batch run one after another, so sharing the lease is safe.
    Not thread-safe: one batch at a time.
    """

    def __init__(self, inner: ResourceBinder) -> None:
        self.inner = inner
        self._owner: str | None = None
        self._held: dict[str, Any] = {}

    def batch(self, owner_id: str) -> BatchLeases:
        """Start a batch whose leases belong to ``owner_id``; use as a context manager."""
        self._owner = owner_id
        return self

    def __enter__(self) -> BatchLeases:
        return self

    def __exit__(self, *exc: object) -> None:
        owner, self._owner = self._owner, None
        held, self._held = self._held, {}
        if owner is not None and held:
            self.inner.release_all(owner)

    def acquire(
        self, names: list[str], owner_id: str, timeout: float | None = None
    ) -> dict[str, Any]:
        if self._owner is None:
            return self.inner.acquire(names, owner_id, timeout)
        missing = [n for n in names if n not in self._held]
        if missing:
            self._held.update(self.inner.acquire(missing, self._owner, timeout))
        return {n: self._held[n] for n in names}

    def release(self, names: list[str], owner_id: str) -> None:
        if self._owner is None:
            self.inner.release(names, owner_id)

    def release_all(self, owner_id: str) -> None:
        if self._owner is None:
            self.inner.release_all(owner_id)
