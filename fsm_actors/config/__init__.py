"""FSM configs: the pydantic models, the loader and the JSON schema.

``load_config`` accepts a dict or a YAML/JSON file in the simple form (top-level
``states`` + ``arcs``) or the canonical form (``networks``) and returns an ``FSMConfig``
in canonical form, or raises ``FSMConfigError`` naming the file and key path.
"""

from fsm_actors.config.loader import load_config
from fsm_actors.config.models import (
    ArcConfig,
    DataHandlingMode,
    DataModeConfig,
    FSMConfig,
    FunctionRef,
    FunctionSpec,
    NetworkConfig,
    ResourceDefinition,
    SimpleArcConfig,
    StateConfig,
    StateFunctions,
)


def config_json_schema() -> dict:
    """The JSON schema of an FSM config (``FSMConfig.json_schema()``)."""
    return FSMConfig.json_schema()


__all__ = [
    "ArcConfig",
    "DataHandlingMode",
    "DataModeConfig",
    "FSMConfig",
    "FunctionRef",
    "FunctionSpec",
    "NetworkConfig",
    "ResourceDefinition",
    "SimpleArcConfig",
    "StateConfig",
    "StateFunctions",
    "config_json_schema",
    "load_config",
]
