"""What user functions receive and may return: ``FunctionContext`` and ``ExecutionResult``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from fsm_actors.platform.errors import TransformError


class FunctionType(Enum):
    """The roles a user function can play in a state machine."""

    VALIDATION = "validation"
    TRANSFORM = "transform"
    STATE_TEST = "state_test"
    END_STATE_TEST = "end_state_test"


@dataclass
class FunctionContext:
    """The second argument of a function declared as ``f(data, context)``.

    ``resources`` holds the resources acquired for the current state (by name, or by role
    for an arc's ``{role: name}`` resources); ``variables`` are the run's variables, shared
    by every function of one record; ``metadata`` holds ``state`` and, in a state entered
    after a failure, ``error``. One context is made per state entered and is not shared
    between records.
    """

    state_name: str
    function_name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    network_name: str | None = None

    def require_resource(self, name: str) -> Any:
        """Return the resource ``name``; raise ``TransformError`` naming what is held if absent."""
        try:
            return self.resources[name]
        except KeyError:
            held = sorted(self.resources) or "none"
            raise TransformError(
                f"Function '{self.function_name}' in state '{self.state_name}' needs resource "
                f"'{name}', but the state holds {held}; declare it under the state's "
                "'resources' in the config",
                state_name=self.state_name,
                function_name=self.function_name,
            ) from None


@dataclass
class ExecutionResult:
    """An explicit outcome a function may return instead of plain data.

    A transform returning ``ExecutionResult(success=True, data=d)`` yields ``d`` (``None``
    keeps the record); ``success=False`` fails the record with ``error``.
    """

    success: bool
    data: Any = None
    error: str | None = None
    metadata: dict[str, Any] | None = None

    @classmethod
    def success_result(cls, data: Any, metadata: dict[str, Any] | None = None) -> ExecutionResult:
        """A successful result carrying ``data``."""
        return cls(True, data, None, metadata)

    @classmethod
    def failure_result(cls, error: str, metadata: dict[str, Any] | None = None) -> ExecutionResult:
        """A failed result with the reason ``error``."""
        return cls(False, None, error, metadata)

    def to_dict(self) -> dict[str, Any]:
        """``{success, data, error, metadata}`` (``metadata`` is ``{}`` when unset)."""
        return {
            "success": self.success,
            "data": self.data,
            "error": self.error,
            "metadata": dict(self.metadata or {}),
        }
