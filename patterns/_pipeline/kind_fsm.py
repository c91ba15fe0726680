"""``kind: fsm``: an FSM config run over a file by ``AsyncSimpleFSM.process_stream``.

The job's ``options:`` and ``error_handling:`` take effect through
``process_stream(settings=StreamSettings(...))``: chunk size, workers, the memory bound, whole-file
tasks (``stream: false``), the CSV read block, the retry policy of each chunk and what a
chunk that still fails does (``fail``, ``skip`` to the error file, ``compensate``).
"""

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
    from fsm_actors.platform.errors import FSMError

    options = {k: spec[k] for k in ("actors", "local", "data_mode") if k in spec}
    fsm = AsyncSimpleFSM(spec["config"], resources=spec.get("resources"),
                         custom_functions=spec["functions"], address=context.address,
                         **options)
    try:
        stream = {k: spec[k] for k in STREAM_KEYS if k in spec}
        checkpoint_id = context.checkpoint_id or spec.get("checkpoint_id")
        return await fsm.process_stream(
            spec["input"], spec["output"], on_progress=context.on_progress,
            checkpoint_id=checkpoint_id, settings=settings(spec, context, checkpoint_id),
            **stream,
        )
    except FSMError as exc:
        if context.error_handling is None:
            raise
        cause = getattr(exc, "cause", None)  # a worker's error, as Ray wrapped it
        message = getattr(cause, "message", None) or getattr(exc, "message", None) or str(exc)
        raise PatternError(message, pattern="fsm") from None
    finally:
        await fsm.close()


def settings(spec: dict[str, Any], context: RunContext, run_id: str | None) -> Any:
    """The stream settings of the job's ``options:`` and ``error_handling:`` (``None``: none
    given): ``batch_size``/``parallel_workers`` are already ``chunk_size``/``workers``."""
    from fsm_actors.stream import StreamSettings
    from patterns._task_policy import TaskRetry, compensator

    options, handling = context.options, context.error_handling
    if options is None and handling is None:
        return None
    limit = getattr(options, "memory_limit", None)
    info = {"run_id": run_id, "input": str(spec["input"]), "output": str(spec["output"])}
    return StreamSettings(
        memory_limit=int(limit) if limit else None,
        whole=getattr(options, "stream", None) is False,
        csv_block_size=getattr(options, "buffer_size", None),
        retry=TaskRetry.of(handling),
        compensate=compensator(handling, info),
    )


def check_options(spec: dict[str, Any], options: Any, error_handling: Any, where: str) -> None:
    """Refuse ``backpressure: false`` and a ``buffer_size`` for an input that is not CSV."""
    if options is None:
        return
    if options.backpressure is False:
        raise PatternError(
            f"{where}: options.backpressure: false is not supported by kind fsm: reading "
            "always waits for the workers (unbounded read-ahead would hold the whole input "
            "in memory); bound it with memory_limit, or remove backpressure")
    if options.buffer_size is not None:
        fmt = str(spec.get("input_format") or "auto").lower()
        suffixes = set(Path(str(spec["input"]).lower()).suffixes)
        if not (fmt in ("csv", "tsv") or (fmt == "auto" and suffixes & {".csv", ".tsv"})):
            raise PatternError(
                f"{where}: options.buffer_size sets the block size of CSV reads; "
                f"{spec['input']} is not CSV (its reader has no block size): remove "
                "buffer_size")


register_kind(PipelineKind(
    name="fsm", unsupported={},
    option_fields={"batch_size": "chunk_size", "parallel_workers": "workers"},
    check_options=check_options,
    run=run, prepare=prepare, schema=schema, input_key="input",
    description="run an FSM over every record of a file",
))
