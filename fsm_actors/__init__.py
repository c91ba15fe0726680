"""fsm-actors: finite-state-machine pipelines on Ray actors.

The seed's ``dataknobs_fsm.api.simple`` surface lives here: ``SimpleFSM``, ``AsyncSimpleFSM``,
``create_fsm``, ``process_file``, ``batch_process``, ``validate_data``, ``DataHandlingMode``.
Names are imported on first use, so ``import fsm_actors.platform.runtime`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AsyncSimpleFSM": "fsm_actors.async_simple",
    "create_async_fsm": "fsm_actors.async_simple",
    "SimpleFSM": "fsm_actors.simple",
    "create_fsm": "fsm_actors.simple",
    "process_file": "fsm_actors.simple",
    "batch_process": "fsm_actors.simple",
    "validate_data": "fsm_actors.simple",
    "DataHandlingMode": "fsm_actors.engine",
    "FSMError": "fsm_actors.platform.errors",
    "BatchProgress": "fsm_actors.platform.progress",
    "StreamProgress": "fsm_actors.platform.jobs.progress",
    # the seed's ``dataknobs_fsm.functions.base`` names
    "ResourceConfig": "fsm_actors.functions",
    "ResourceError": "fsm_actors.functions",
}

__all__ = [
    "AsyncSimpleFSM",
    "BatchProgress",
    "DataHandlingMode",
    "FSMError",
    "ResourceConfig",
    "ResourceError",
    "SimpleFSM",
    "StreamProgress",
    "batch_process",
    "create_async_fsm",
    "create_fsm",
    "process_file",
    "validate_data",
]

if TYPE_CHECKING:
    from fsm_actors.async_simple import AsyncSimpleFSM, create_async_fsm
    from fsm_actors.engine import DataHandlingMode
    from fsm_actors.functions import ResourceConfig, ResourceError
    from fsm_actors.platform.errors import FSMError
    from fsm_actors.platform.jobs.progress import StreamProgress
    from fsm_actors.platform.progress import BatchProgress
    from fsm_actors.simple import (
        SimpleFSM,
        batch_process,
        create_fsm,
        process_file,
        validate_data,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fsm_actors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
