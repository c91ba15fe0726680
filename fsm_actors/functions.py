"""What user functions import: the context they receive, the results they may return,
the errors they may raise, and ``ResourceConfig`` (the seed's ``functions.base``).

``ResourceConfig`` (what a state or caller needs from the resource manager) is defined here,
below the resource layer that reads it, so importing this module loads neither SQLAlchemy
nor aiohttp.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fsm_actors.engine.context import ExecutionResult, FunctionContext, FunctionType
from fsm_actors.platform.errors import (
    FSMConfigError,
    FSMError,
    FunctionError,
    ResourceError,
    StateTransitionError,
    TransformError,
    ValidationError,
)

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


class ResourceConfig(BaseModel):
    """A resource requirement: ``ResourceConfig(name, required=True, timeout=30)``.

    The seed's fields are ``name``, ``required`` and ``timeout`` (seconds to wait for a
    lease). The fields of dataknobs-fsm 0.5 (``type``, ``connection_params``, ``pool_size``,
    ``retry_policy``, ``health_check_interval``) are accepted too, and used when the manager
    has to create the provider itself.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    required: bool = True
    timeout: float | None = None
    type: str | None = None
    connection_params: dict[str, Any] = Field(default_factory=dict)
    pool_size: int | None = None
    retry_policy: dict[str, Any] | None = None
    health_check_interval: float | None = None

    def __init__(self, name: str | None = None, /, **data: Any) -> None:
        if name is not None:
            data["name"] = name
        super().__init__(**data)
