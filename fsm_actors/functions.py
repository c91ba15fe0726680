"""What user functions import: the context they receive, the results they may return,
the errors they may raise, and ``ResourceConfig`` (the seed's ``functions.base``).

The resource names (``ResourceConfig``, ``ResourceError``) are loaded on first use, so
importing this module does not bring in the resource adapters' SQLAlchemy and aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fsm_actors.engine.context import ExecutionResult, FunctionContext, FunctionType
from fsm_actors.errors import (
    FSMConfigError,
    FSMError,
    FunctionError,
    StateTransitionError,
    TransformError,
    ValidationError,
)

if TYPE_CHECKING:
    from resource_actors.errors import ResourceError
    from resource_actors.requirements import ResourceConfig

_LAZY = {"ResourceError": "resource_actors.errors", "ResourceConfig": "resource_actors.requirements"}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fsm_actors.functions' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
