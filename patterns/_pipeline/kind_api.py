"""``kind: api``: an ``APIOrchestrationConfig`` run by ``APIOrchestrator``; ``output`` is a
JSON file the results are written to.

``options.batch_size`` is FANOUT's items per task, ``parallel_workers`` FANOUT's worker actors
(``max_concurrent`` in the other modes). ``error_handling`` is the retry policy and
per-attempt timeout of every endpoint that gives none; calls that still fail ``fail`` the job,
are written to ``<output>.errors.jsonl`` (``skip``), or ``compensate``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from patterns._pipeline.registry import PipelineKind, RunContext, register_kind
from patterns._pipeline.values import function, loc, output_base, relative

ENDPOINT_FUNCTIONS = ("transform", "response_parser", "transform_input", "error_handler",
                      "condition")


def prepare(job: dict[str, Any], base: Path, where: str) -> dict[str, Any]:
    """``output``/``sink`` relative to the pipeline file; endpoint functions resolved."""
    for key in ("output", "sink"):
        if job.get(key) is not None:
            job[key] = relative(output_base(base), job[key])
    endpoints = []
    for i, endpoint in enumerate(job.get("endpoints") or []):
        endpoint = dict(endpoint) if isinstance(endpoint, dict) else endpoint
        if isinstance(endpoint, dict):
            for key in ENDPOINT_FUNCTIONS:
                if isinstance(endpoint.get(key), str):
                    endpoint[key] = function(endpoint[key],
                                             loc(where, f"endpoints[{i}].{key}"))
        endpoints.append(endpoint)
    job["endpoints"] = endpoints
    return job


def build(job: dict[str, Any], where: str) -> Any:
    from patterns.api_orchestration import APIOrchestrationConfig

    return APIOrchestrationConfig.from_dict(
        {k: v for k, v in job.items() if k not in ("input", "output")})


def schema() -> dict[str, Any]:
    from pydantic import TypeAdapter

    from patterns._api.config import APIOrchestrationConfig
    from patterns._pipeline.generator import Generator

    out = TypeAdapter(APIOrchestrationConfig).json_schema(schema_generator=Generator)
    out["properties"]["input"] = {"description": "the run's input (FANOUT: the items)"}
    out["properties"]["output"] = {"type": "string",
                                   "description": "a JSON file the results are written to"}
    out["additionalProperties"] = False
    endpoint = out.get("$defs", {}).get("APIEndpoint")
    if endpoint is not None:  # APIEndpoint.from_dict refuses unknown keys; so does the schema
        endpoint["properties"]["path"] = {
            "type": "string", "description": "the URL relative to base_url (instead of url)"}
        endpoint["required"] = [r for r in endpoint.get("required", []) if r != "url"]
        endpoint["additionalProperties"] = False
        # the model takes endpoint objects or mappings; a file writes mappings: endpoints
        out["properties"]["endpoints"]["items"] = {"$ref": "#/$defs/APIEndpoint"}
    return out


async def run(spec: dict[str, Any], config: Any, context: RunContext) -> dict[str, Any]:
    from fsm_actors.platform.io import atomic_write
    from patterns.api_orchestration import APIOrchestrator

    config = with_options(config, context.options, context.error_handling)
    results = await APIOrchestrator(config, address=context.address).orchestrate(
        spec.get("input"))
    output = spec.get("output")
    errors = results.get("errors") or {}
    handling = context.error_handling
    error_file = None
    if errors and handling is not None:
        error_file = _on_failure(handling, config, spec, errors)
    if output:
        data = json.dumps(results, default=str, ensure_ascii=False, indent=2).encode()
        atomic_write(output, lambda tmp: tmp.write_bytes(data))
    out = {
            "results": results,
            "errors": sum(len(v) if isinstance(v, list) else 1 for v in errors.values()),
            "output_path": str(output) if output else None,
            "endpoints": len(config.endpoints),
    }
    if error_file is not None:
        out["error_file"] = str(error_file)
    return out


def with_options(config: Any, options: Any, handling: Any) -> Any:
    """``config`` with the job's ``parallel_workers`` (FANOUT's worker actors, otherwise
    ``max_concurrent``) and ``error_handling`` (the retry policy and per-attempt timeout of
    every endpoint that sets no retry or timeout of its own)."""
    from dataclasses import replace

    from patterns._api.config import OrchestrationMode
    from patterns._task_policy import TaskRetry

    changes: dict[str, Any] = {}
    workers = getattr(options, "parallel_workers", None)
    if workers is not None:
        fanout = config.mode is OrchestrationMode.FANOUT
        changes["workers" if fanout else "max_concurrent"] = workers
    policy = TaskRetry.of(handling)
    if policy is not None:
        retry = {"max_attempts": policy.attempts, "initial_delay": policy.initial_delay,
                 "backoff_strategy": policy.config().backoff_strategy}
        endpoints = []
        for e in config.endpoints:
            own = {}
            if e.retry_config is None and e.retry_count is None and e.retry_delay is None:
                own["retry_config"] = retry
            if e.timeout is None and policy.timeout is not None:
                own["timeout"] = policy.timeout
            endpoints.append(replace(e, **own) if own else e)
        changes["endpoints"] = endpoints
    return replace(config, **changes) if changes else config


def _on_failure(handling: Any, config: Any, spec: dict[str, Any],
                errors: dict[str, Any]) -> Path | None:
    """What ``error_handling.on_failure`` does with calls that still failed: ``skip`` writes
    them to ``<output>.errors.jsonl`` (a FANOUT sink's error file holds its failed items);
    the run's results keep the rest; ``fail`` and
    ``compensate`` (after the compensation) raise ``PatternError``."""
    from fsm_actors.platform.io import atomic_write
    from patterns.errors import PatternError

    lines = []
    for name, entry in errors.items():
        for item in entry if isinstance(entry, list) else [entry]:
            lines.append({"endpoint": name, **(item if isinstance(item, dict) else
                                               {"reason": str(item)})})
    first = lines[0]
    reason = (f"{len(lines)} call(s) failed after their retries, first {first['endpoint']!r}: "
              f"{first.get('reason') or first.get('error') or first.get('status')} "
              f"(error_handling.on_failure: {handling.on_failure})")
    if handling.on_failure == "skip":
        output = spec.get("output")
        if not output:  # a FANOUT sink has its error file already
            return Path(f"{config.sink}.errors.jsonl") if config.sink else None
        path = Path(f"{output}.errors.jsonl")
        text = "".join(json.dumps(line, default=str) + "\n" for line in lines).encode()
        atomic_write(path, lambda tmp: tmp.write_bytes(text))
        return path
    if handling.on_failure == "compensate":
        reason += "; compensated: " + _compensate(handling, config, spec, reason)
    raise PatternError(f"api {config.name!r}: {reason}", pattern="api")


def _compensate(handling: Any, config: Any, spec: dict[str, Any], error: str) -> str:
    """The named compensation function, else removing what the run wrote (FANOUT's sink)."""
    function = handling.compensation
    output = spec.get("output")
    if callable(function):
        function({"name": config.name, "output": str(output) if output else None,
                  "sink": config.sink, "error": error})
        return f"ran {getattr(function, '__name__', 'the compensation')}"
    removed = [p for p in (config.sink, f"{config.sink}.errors.jsonl" if config.sink else None)
               if p and Path(p).exists()]
    for p in removed:
        Path(p).unlink()
    return ("removed the run's output " + ", ".join(removed)) if removed else \
        "nothing to remove: the output was not written"


def check_options(spec: dict[str, Any], options: Any, error_handling: Any, where: str) -> None:
    """``batch_size`` is the items per task of a FANOUT run; another mode calls each endpoint
    once. ``parallel_workers`` against a ``workers``/``max_concurrent`` of the file."""
    from patterns.errors import PatternError

    if options is None:
        return
    mode = str(spec.get("mode") or "sequential").lower()
    if options.batch_size is not None and mode != "fanout":
        raise PatternError(
            f"{where}: options.batch_size is not supported by kind api in mode {mode}: it is "
            "the items per task of a FANOUT run, and this mode calls each endpoint once; "
            "remove it, or use parallel_workers (max_concurrent)")
    if options.parallel_workers is not None:
        key = "workers" if mode == "fanout" else "max_concurrent"
        given = spec.get(key)
        if given is not None and given != options.parallel_workers:
            raise PatternError(f"{where}: options.parallel_workers={options.parallel_workers} "
                               f"and {key}={given!r} disagree; give one of them")


#: what this kind cannot honour, and why (a pipeline file giving it is refused)
UNSUPPORTED = {
    "options.memory_limit": ("an API job holds no batches of file records in flight; bound "
            "its work with parallel_workers (max_concurrent) and batch_size"),
    "options.stream": ("an API job reads no input file: its input is the file's input value"),
    "options.buffer_size": ("an API job reads no input file: its input is the file's input "
            "value"),
    "options.backpressure": ("an API job reads no input file; its calls are bounded by "
            "parallel_workers (max_concurrent)"),
}


register_kind(PipelineKind(
    name="api", unsupported=UNSUPPORTED,
    option_fields={"batch_size": "batch_size"},
    check_options=check_options,
    run=run, build=build, prepare=prepare, schema=schema,
    description="call HTTP endpoints (sequential, parallel, fan-out, pipelined)",
))
