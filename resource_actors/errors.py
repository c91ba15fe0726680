"""The resource layer's errors: ``ResourceError`` (defined with the project's error root, so
user functions can import it from ``fsm_actors``) and its subclasses."""

from __future__ import annotations

from fsm_actors.platform.errors import ResourceError

__all__ = ["NotAProviderError", "RegistrationConflict", "ResourceError"]


class RegistrationConflict(ResourceError, ValueError):
    """A name is taken by another provider (or pool config). Also a ``ValueError``, as the
    registration calls raised before it existed."""


class NotAProviderError(ResourceError, TypeError):
    """An object registered as a provider lacks ``acquire``/``release``. Also a ``TypeError``."""
