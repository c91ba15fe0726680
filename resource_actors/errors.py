"""The base exception of the resource layer."""

from __future__ import annotations


class ResourceError(Exception):
    """A resource could not be registered, acquired, used or released.

    ``resource_name``, ``owner_id`` and ``operation`` say which resource, for whom, doing
    what. The message says what was wrong and what to do; it never contains credentials.
    Accepts the seed's ``ResourceError(message, resource_name, operation)`` positional form.
    """

    def __init__(
        self,
        message: str,
        resource_name: str | None = None,
        operation: str | None = None,
        *,
        owner_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.resource_name = resource_name
        self.operation = operation
        self.owner_id = owner_id

    def __reduce__(self):  # keep the context attributes when Ray ships the error
        return (
            _rebuild,
            (self.__class__, str(self), self.resource_name, self.operation, self.owner_id),
        )


def _rebuild(cls, message, resource_name, operation, owner_id):
    return cls(message, resource_name, operation, owner_id=owner_id)


class RegistrationConflict(ResourceError, ValueError):
    """A name is taken by another provider (or pool config). Also a ``ValueError``, as the
    registration calls raised before it existed."""


class NotAProviderError(ResourceError, TypeError):
    """An object registered as a provider lacks ``acquire``/``release``. Also a ``TypeError``."""
