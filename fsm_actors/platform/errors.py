"""The project's exceptions: one root, ``FSMActorsError``, and the FSM layer's ``FSMError``.

``FSMActorsError`` is the root of every error the project raises on purpose: ``FSMError``
(the FSM engine and the platform), ``ResourceError`` (here, because user functions import
it with ``ResourceConfig``; ``resource_actors.errors`` adds its subclasses) and
``patterns.errors.PatternError``. ``except FSMActorsError`` catches a user's mistake or a
run that had to stop, never a bug.

Every error carries where it happened (``state_name``, ``arc``, ``function_name``, the
config file ``source`` and its ``key_path``) so a message can say what was wrong and
where. All of them survive pickling with their attributes, because Ray ships exceptions
between processes.
"""

from __future__ import annotations

from typing import Any

_CONTEXT_FIELDS = ("state_name", "arc", "function_name", "source", "key_path")


class FSMActorsError(Exception):
    """Root of every error the project raises on purpose (see the module docstring)."""


class FSMError(FSMActorsError):
    """Base of every FSM error.

    ``message`` is the text as given; ``str(error)`` may add the location (see
    ``FSMConfigError``). The context attributes default to ``None``.
    """

    def __init__(
        self,
        message: str = "",
        *,
        state_name: str | None = None,
        arc: str | None = None,
        function_name: str | None = None,
        source: str | None = None,
        key_path: str | None = None,
    ) -> None:
        super().__init__(self._format(message, source, key_path))
        self.message = message
        self.state_name = state_name
        self.arc = arc
        self.function_name = function_name
        self.source = source
        self.key_path = key_path

    @staticmethod
    def _format(message: str, source: str | None, key_path: str | None) -> str:
        return message

    def _init_kwargs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _CONTEXT_FIELDS}

    def __reduce__(self):  # keep the context attributes when Ray ships the error
        return (_rebuild, (self.__class__, self.message, self._init_kwargs()))


def _rebuild(cls: type[FSMError], message: str, kwargs: dict[str, Any]) -> FSMError:
    return cls(message, **kwargs)


class FSMConfigError(FSMError):
    """A config could not be loaded or compiled.

    ``str(error)`` starts with the file (``source``) and the key path inside it
    (``states[2].functions.transform``) when they are known.
    """

    @staticmethod
    def _format(message: str, source: str | None, key_path: str | None) -> str:
        where = ": ".join(part for part in (source, key_path) if part)
        return f"{where}: {message}" if where else message


class ValidationError(FSMError):
    """Data failed a validator or a schema; ``validation_errors`` lists the reasons."""

    def __init__(
        self, message: str = "", validation_errors: list[str] | None = None, **context: Any
    ) -> None:
        super().__init__(message, **context)
        self.validation_errors = list(validation_errors or [])

    def _init_kwargs(self) -> dict[str, Any]:
        return {**super()._init_kwargs(), "validation_errors": self.validation_errors}


class TransformError(FSMError):
    """A transform failed, or a function asked for something it was not given."""


class StateTransitionError(FSMError):
    """A transition from ``from_state`` (to ``to_state``, when known) failed."""

    def __init__(
        self,
        message: str = "",
        from_state: str | None = None,
        to_state: str | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.from_state = from_state
        self.to_state = to_state

    def _init_kwargs(self) -> dict[str, Any]:
        return {**super()._init_kwargs(), "from_state": self.from_state, "to_state": self.to_state}


FunctionError = StateTransitionError


class PoolError(FSMError):
    """An actor pool could not run its work: actors could not be placed, or an item kept
    killing the actors it was sent to. ``pool`` names the pool."""

    def __init__(self, message: str = "", pool: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.pool = pool

    def _init_kwargs(self) -> dict[str, Any]:
        return {**super()._init_kwargs(), "pool": self.pool}


class WorkerError(FSMError):
    """An FSM actor failed a whole call (not one record): ``fsm`` and ``actor`` name it,
    ``call`` says what it was running, ``cause_type`` is the original exception's type
    (the original is chained as ``__cause__`` when it could be shipped)."""

    def __init__(
        self,
        message: str = "",
        fsm: str | None = None,
        actor: str | None = None,
        call: str | None = None,
        cause_type: str | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.fsm = fsm
        self.actor = actor
        self.call = call
        self.cause_type = cause_type

    def _init_kwargs(self) -> dict[str, Any]:
        return {**super()._init_kwargs(), "fsm": self.fsm, "actor": self.actor,
                "call": self.call, "cause_type": self.cause_type}


class ResourceError(FSMActorsError):
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
            _rebuild_resource_error,
            (self.__class__, str(self), self.resource_name, self.operation, self.owner_id),
        )


def _rebuild_resource_error(cls, message, resource_name, operation, owner_id):
    return cls(message, resource_name, operation, owner_id=owner_id)
