"""``ResourceBinder``: how the engine obtains the resources a state declares."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ResourceSpec(Protocol):
    """What a worker receives to reach an FSM's resources: ``bind()`` gives its binder there
    (``resource_actors.binder.BinderSpec``)."""

    def bind(self) -> ResourceBinder: ...


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
    that needs a resource leases it to that batch owner and later states and records reuse
    it; everything is released when the batch ends (also on error).

    Each record still sees a resource as a fresh lease would: where a per-state lease would
    end (the state's ``release``, or ``release_all`` after a failure) the held resource is
    reset instead, when it has a ``reset()`` (a database connection rolls back what the
    state left open, so one record's open or failed transaction never reaches the next;
    what a record committed stays). Records of one batch run one after another, so sharing
    the lease is safe. Not thread-safe: one batch at a time.
    """

    def __init__(self, inner: ResourceBinder) -> None:
        self.inner = inner
        self._owner: str | None = None
        self._held: dict[str, Any] = {}
        self._by_owner: dict[str, list[str]] = {}
        self._resetters: dict[str, Any] = {}

    def batch(self, owner_id: str) -> BatchLeases:
        """Start a batch whose leases belong to ``owner_id``; use as a context manager."""
        self._owner = owner_id
        return self

    def __enter__(self) -> BatchLeases:
        return self

    def __exit__(self, *exc: object) -> None:
        owner, self._owner = self._owner, None
        held, self._held = self._held, {}
        self._by_owner.clear()
        self._resetters.clear()
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
        self._by_owner.setdefault(owner_id, []).extend(names)
        return {n: self._held[n] for n in names}

    def release(self, names: list[str], owner_id: str) -> None:
        if self._owner is None:
            self.inner.release(names, owner_id)
            return
        taken = self._by_owner.get(owner_id, [])
        for name in names:
            if name in taken:
                taken.remove(name)
        if not taken:
            self._by_owner.pop(owner_id, None)
        self._reset(names)

    def release_all(self, owner_id: str) -> None:
        if self._owner is None:
            self.inner.release_all(owner_id)
            return
        self._reset(self._by_owner.pop(owner_id, []))

    def _reset(self, names: list[str]) -> None:
        """What ending a per-state lease would do to the shared resources ``names``."""
        for name in dict.fromkeys(names):
            if name not in self._resetters:
                resource = self._held.get(name)
                # plain data (dicts, values) has nothing to reset; ask once per batch
                try:
                    reset = None if isinstance(resource, dict | list | str | int | float) else (
                        getattr(resource, "reset", None))
                except Exception:  # a remote handle that cannot say: nothing to reset
                    reset = None
                self._resetters[name] = reset if callable(reset) else None
            reset = self._resetters[name]
            if reset is not None:
                reset()
