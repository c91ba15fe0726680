"""Serializable handles to resources leased inside a ``ProviderActor``.

Live resources cannot cross processes, so across processes ``acquire`` returns a handle. Its
method calls run on the provider actor against the leased resource (one actor call each);
generator methods (``read_batches``) stream their items; other public attributes are read
remotely. A handle can be passed to other tasks and actors; it stops working when its lease
ends, or when the provider's process dies (the lease is then broken): ``ResourceError``. Plain data resources are never wrapped: they travel by value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import ray
from ray.exceptions import RayActorError, RayTaskError

from resource_actors.errors import ResourceError
from resource_actors.host import LeaseInfo

T = TypeVar("T")


def cause_of(exc: BaseException) -> BaseException:
    """The user-level exception inside a Ray task error (nested ones unwrapped)."""
    while isinstance(exc, RayTaskError):
        cause = getattr(exc, "cause", None)
        if not isinstance(cause, BaseException):
            break
        exc = cause
    return exc


def remote_get(thunk: Callable[[], T], resource_name: str | None, operation: str) -> T:
    """Run ``thunk`` (a ``ray.get``), re-raising the remote exception itself, and a dead actor
    as ``ResourceError``."""
    try:
        return thunk()
    except RayTaskError as exc:
        raise cause_of(exc) from None
    except RayActorError as exc:
        raise ResourceError(
            f"the provider actor of resource {resource_name!r} died during {operation!r} "
            f"({type(exc).__name__}): this lease is broken (its resource and any open "
            "transaction are gone); acquire the resource again (a provider that is still "
            "registered restarts by itself)", resource_name, operation) from None


class ResourceHandle:
    """Stand-in for a resource leased in a provider actor (see the module docstring)."""

    def __init__(self, info: LeaseInfo, actor: Any) -> None:
        self._info = info
        self._actor = actor

    @property
    def resource_name(self) -> str:
        return self._info.resource_name

    @property
    def owner_id(self) -> str:
        return self._info.owner_id

    @property
    def lease_id(self) -> str:
        return self._info.lease_id

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        ref = self._actor.call.remote(self._info.lease_id, method, args, kwargs)
        return remote_get(lambda: ray.get(ref), self._info.resource_name, method)

    def _stream(self, method: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        refs = self._actor.stream.remote(self._info.lease_id, method, args, kwargs)
        name = self._info.resource_name
        for ref in remote_get(lambda: refs, name, method):
            yield remote_get(lambda r=ref: ray.get(r), name, method)

    def offers(self, method: str) -> bool:
        """True when the leased resource has a public method ``method`` (no actor call)."""
        return method in self._info.methods or method in self._info.generators

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        info: LeaseInfo = self.__dict__["_info"]
        if name in info.methods:
            return _Bound(self, name, streaming=False)
        if name in info.generators:
            return _Bound(self, name, streaming=True)
        ref = self._actor.get_attribute.remote(info.lease_id, name)
        return remote_get(lambda: ray.get(ref), info.resource_name, name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | self._info.methods | self._info.generators)

    def __repr__(self) -> str:
        info = self._info
        return (f"<{type(self).__name__} {info.resource_name!r} ({info.type_name}) "
                f"owner={info.owner_id!r} lease={info.lease_id[:8]}>")


class _Bound:
    """A remote method of a handle; calling it runs the method on the provider actor."""

    def __init__(self, handle: ResourceHandle, name: str, streaming: bool) -> None:
        self._handle = handle
        self._name = name
        self._streaming = streaming

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._streaming:
            return self._handle._stream(self._name, *args, **kwargs)
        return self._handle._call(self._name, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<remote method {self._name} of {self._handle!r}>"


class DatabaseHandle(ResourceHandle):
    """Handle to a ``DatabaseConnection``; adds the client side of ``transaction()``."""

    @contextmanager
    def transaction(self) -> Iterator[DatabaseHandle]:
        """``with db.transaction():`` commits on success, rolls back on error."""
        self._call("begin")
        try:
            yield self
        except BaseException:
            self._call("rollback")
            raise
        self._call("commit")


HANDLE_CLASSES: dict[str, type[ResourceHandle]] = {"database": DatabaseHandle}


def build_handle(info: LeaseInfo, actor: Any) -> Any:
    """The value of a plain-data lease, or the handle class for its kind."""
    if info.by_value:
        return info.value
    return HANDLE_CLASSES.get(info.kind, ResourceHandle)(info, actor)
