"""The plain-core FSM engine (no Ray): compile a config once, run records through it.

``compile_machine(config, custom_functions)`` returns an immutable ``Machine``;
``Machine.run`` runs one record and ``Machine.run_batch`` a list of them (the hot path).
"""

from fsm_actors.config.models import DataHandlingMode
from fsm_actors.engine.context import ExecutionResult, FunctionContext, FunctionType
from fsm_actors.engine.data_modes import copier_for, fast_copy
from fsm_actors.engine.machine import Machine, compile_machine
from fsm_actors.engine.resources import BatchLeases, ResourceBinder

__all__ = [
    "DataHandlingMode",
    "ExecutionResult",
    "FunctionContext",
    "FunctionType",
    "Machine",
    "BatchLeases",
    "ResourceBinder",
    "compile_machine",
    "copier_for",
    "fast_copy",
]
