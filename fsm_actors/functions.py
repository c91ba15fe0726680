"""What user functions import: the context they receive, the results they may return,
the errors they may raise, and ``ResourceConfig`` (the seed's ``functions.base``)."""

from fsm_actors.engine.context import ExecutionResult, FunctionContext, FunctionType
from fsm_actors.errors import (
    FSMConfigError,
    FSMError,
    FunctionError,
    StateTransitionError,
    TransformError,
    ValidationError,
)
from resource_actors.errors import ResourceError
from resource_actors.requirements import ResourceConfig

__all__ = [
    "ExecutionResult",
    "FSMConfigError",
    "FSMError",
    "FunctionContext",
    "FunctionError",
    "FunctionType",
    "ResourceConfig",
    "ResourceError",
    "StateTransitionError",
    "TransformError",
    "ValidationError",
]
