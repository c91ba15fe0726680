"""``kind: fsm``: an FSM config run over a file by ``AsyncSimpleFSM.process_stream``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from patterns._pipeline.registry import PipelineKind, RunContext, register_kind
from patterns._pipeline.values import function, loc, output_base, relative
from patterns.errors import PatternError

KEYS = (
    "config", "functions", "resources", "input", "output", "chunk_size", "input_format",
    "output_format", "error_threshold", "checkpoint_id", "actors", "workers", "local",
    "data_mode", "csv_delimiter", "csv_has_header", "text_field_name",
)
STREAM_KEYS = ("chunk_size", "input_format", "output_format", "csv_delimiter",
               "csv_has_header", "text_field_name", "error_threshold", "workers")


def prepare(job: dict[str, Any], base: Path, where: str) -> dict[str, Any]:
    """Known keys only; ``config``, ``input`` and ``output`` present (paths relative to the
    pipeline file); ``functions`` resolved."""
    unknown = sorted(set(job) - set(KEYS))
    if unknown:
        raise PatternError(f"{where}: unknown keys {unknown} for kind fsm; known: "
                           f"{', '.join(KEYS)}")
    if "config" not in job:
        raise PatternError(f"{where}: kind fsm needs 'config' (an FSM config file or mapping)")
    for key in ("input", "output"):
        if job.get(key) is None:
            raise PatternError(f"{where}: kind fsm needs '{key}'")
        job[key] = relative(base if key == "input" else output_base(base), job[key])
    if isinstance(job["config"], str):
        job["config"] = relative(base, job["config"])
    job["functions"] = {name: function(f, loc(where, f"functions.{name}"))
                        for name, f in (job.get("functions") or {}).items()}
    return job


def schema() -> dict[str, Any]:
    from patterns._pipeline.generator import FUNCTION

    props: dict[str, Any] = {key: {} for key in KEYS}
    props.update({
            "config": {"description": "an FSM config: a file path (YAML/JSON) or a mapping"},
            "input": {"type": "string", "description": "the input file (any format)"},
            "output": {"type": "string", "description": "the output file"},
            "functions": {"type": "object", "additionalProperties": FUNCTION},
            "chunk_size": {"type": "integer", "minimum": 1},
            "workers": {"type": "integer", "minimum": 1},
            "actors": {"type": "integer", "minimum": 1},
            "checkpoint_id": {"type": "string"},
            "error_threshold": {"type": "number", "minimum": 0},
            "local": {"type": "boolean"},
    })
    return {"title": "FSM job", "type": "object", "properties": props,
            "required": ["config", "input", "output"], "additionalProperties": False}


async def run(spec: dict[str, Any], config: Any, context: RunContext) -> dict[str, Any]:
    from fsm_actors import AsyncSimpleFSM

    options = {k: spec[k] for k in ("actors", "local", "data_mode") if k in spec}
    fsm = AsyncSimpleFSM(spec["config"], resources=spec.get("resources"),
                         custom_functions=spec["functions"], address=context.address,
                         **options)
    try:
        stream = {k: spec[k] for k in STREAM_KEYS if k in spec}
        return await fsm.process_stream(
            spec["input"], spec["output"], on_progress=context.on_progress,
            checkpoint_id=context.checkpoint_id or spec.get("checkpoint_id"), **stream,
        )
    finally:
        await fsm.close()


#: what this kind cannot honour, and why (a pipeline file giving it is refused)
UNSUPPORTED = {
    "options.memory_limit": ("kind fsm runs AsyncSimpleFSM.process_stream, which bounds its "
            "batches by chunk_size and takes no memory limit; use "
            "batch_size"),
    "options.stream": ("kind fsm always streams its input in chunk_size pieces"),
    "options.buffer_size": ("AsyncSimpleFSM.process_stream takes no read block size"),
    "options.backpressure": ("kind fsm always reads a bounded number of chunks ahead"),
    "error_handling": ("an FSM records its own failures per record (error states, the "
            "error file); use 'retry:' to retry the whole job"),
}


register_kind(PipelineKind(
    name="fsm", unsupported=UNSUPPORTED,
    option_fields={"batch_size": "chunk_size", "parallel_workers": "workers"},
    run=run, prepare=prepare, schema=schema, input_key="input",
    description="run an FSM over every record of a file",
))
