"""The job kinds of pipeline files: how each is built from its mapping and run.

Each kind turns its (already resolved) mapping into the pattern's own config, so a pipeline
file accepts exactly the fields of ``FileProcessingConfig`` (``file_processing``),
``ETLConfig`` (``etl``), ``APIOrchestrationConfig`` (``api``) and ``process_stream``
(``fsm``), plus ``name``, ``retry`` (a ``RetryConfig`` mapping: the whole job is retried)
and ``description``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from patterns._pipeline.values import function, loc, relative
from patterns.errors import PatternError

COMMON = ("kind", "name", "description", "retry")
FILE_PATHS = ("input_path", "output_path", "error_file", "checkpoint_dir")
FSM_KEYS = (
    "config", "functions", "resources", "input", "output", "chunk_size", "input_format",
    "output_format", "error_threshold", "checkpoint_id", "actors", "workers", "local",
    "data_mode", "csv_delimiter", "csv_has_header", "text_field_name",
)
ENDPOINT_FUNCTIONS = ("transform", "response_parser", "transform_input", "error_handler",
                      "condition")
Progress = Callable[[Any], Any] | None


def prepare(kind: str, job: dict[str, Any], base: Path, where: str) -> dict[str, Any]:
    """``job`` with paths made relative to ``base`` and functions resolved."""
    job = {k: v for k, v in job.items() if k not in COMMON}
    if kind == "file_processing":
        for key in FILE_PATHS:
            if job.get(key) is not None:
                job[key] = relative(base, job[key])
        for key in ("transformations", "filters"):
            if key in job:
                job[key] = [function(f, loc(where, f"{key}[{i}]"))
                            for i, f in enumerate(job[key] or [])]
        if isinstance(job.get("validation_schema"), str):
            job["validation_schema"] = function(job["validation_schema"],
                                                loc(where, "validation_schema"))
    elif kind == "fsm":
        unknown = sorted(set(job) - set(FSM_KEYS))
        if unknown:
            raise PatternError(f"{where}: unknown keys {unknown} for kind fsm; known: "
                               f"{', '.join(FSM_KEYS)}")
        if "config" not in job:
            raise PatternError(f"{where}: kind fsm needs 'config' (an FSM config file or "
                               "mapping)")
        for key in ("input", "output"):
            if job.get(key) is None:
                raise PatternError(f"{where}: kind fsm needs '{key}'")
            job[key] = relative(base, job[key])
        if isinstance(job["config"], str):
            job["config"] = relative(base, job["config"])
        job["functions"] = {name: function(f, loc(where, f"functions.{name}"))
                            for name, f in (job.get("functions") or {}).items()}
    elif kind == "etl":
        for side in ("source", "target"):
            spec = job.get(side)
            if isinstance(spec, dict) and spec.get("type") == "file" and "path" in spec:
                job[side] = {**spec, "path": relative(base, spec["path"])}
            elif isinstance(spec, dict) and isinstance(spec.get("connection"), str):
                job[side] = {**spec, "connection": _sqlite_relative(base, spec["connection"])}
            elif isinstance(spec, str):
                job[side] = _sqlite_relative(base, spec)
        if "transformations" in job:
            job["transformations"] = [function(f, loc(where, f"transformations[{i}]"))
                                      for i, f in enumerate(job["transformations"] or [])]
        if "filters" in job:
            job["filters"] = [function(f, loc(where, f"filters[{i}]"))
                              for i, f in enumerate(job["filters"] or [])]
    elif kind == "api":
        if job.get("output") is not None:
            job["output"] = relative(base, job["output"])
        if job.get("sink") is not None:
            job["sink"] = relative(base, job["sink"])
        endpoints = []
        for i, endpoint in enumerate(job.get("endpoints") or []):
            endpoint = dict(endpoint)
            for key in ENDPOINT_FUNCTIONS:
                if isinstance(endpoint.get(key), str):
                    endpoint[key] = function(endpoint[key], loc(where, f"endpoints[{i}].{key}"))
            endpoints.append(endpoint)
        job["endpoints"] = endpoints
    return job


def _sqlite_relative(base: Path, url: str) -> str:
    """A relative SQLite file URL made relative to the pipeline file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix:
        rest = url[len(prefix):]
        if rest != ":memory:":
            return prefix + relative(base, rest)
    return url


def build(kind: str, job: dict[str, Any], where: str) -> Any:
    """The pattern's config object for ``job`` (errors name the file and the key)."""
    try:
        if kind == "file_processing":
            from patterns.file_processing import FileProcessingConfig

            return FileProcessingConfig(**job)
        if kind == "etl":
            from patterns.etl import ETLConfig

            return ETLConfig(**job)
        if kind == "api":
            from patterns.api_orchestration import APIOrchestrationConfig

            fields = {k: v for k, v in job.items() if k not in ("input", "output")}
            return APIOrchestrationConfig.from_dict(fields)
    except ValidationError as exc:
        raise PatternError(f"{where}: invalid {kind} job: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise PatternError(f"{where}: invalid {kind} job: {exc}") from exc
    return job


async def run(
    kind: str,
    job: dict[str, Any],
    config: Any,
    *,
    on_progress: Progress,
    address: str | None,
    checkpoint_id: str | None,
) -> dict[str, Any]:
    """Run one built job; its result dict."""
    if kind == "file_processing":
        from patterns.file_processing import FileProcessor

        return await FileProcessor(config, address=address).process(checkpoint_id, on_progress)
    if kind == "etl":
        from patterns.etl import DatabaseETL

        return await DatabaseETL(config, address=address).run(checkpoint_id, on_progress)
    if kind == "api":
        return await _run_api(job, config, address)
    return await _run_fsm(job, on_progress, address, checkpoint_id)


async def _run_fsm(job: dict[str, Any], on_progress: Progress, address: str | None,
                   checkpoint_id: str | None) -> dict[str, Any]:
    from fsm_actors import AsyncSimpleFSM

    options = {k: job[k] for k in ("actors", "local", "data_mode") if k in job}
    fsm = AsyncSimpleFSM(job["config"], resources=job.get("resources"),
                         custom_functions=job["functions"], address=address, **options)
    try:
        stream = {k: job[k] for k in ("chunk_size", "input_format", "output_format",
                                      "csv_delimiter", "csv_has_header", "text_field_name",
                                      "error_threshold", "workers") if k in job}
        return await fsm.process_stream(
            job["input"], job["output"], on_progress=on_progress,
            checkpoint_id=checkpoint_id or job.get("checkpoint_id"), **stream,
        )
    finally:
        await fsm.close()


async def _run_api(job: dict[str, Any], config: Any, address: str | None) -> dict[str, Any]:
    from fsm_actors.platform.io import atomic_write
    from patterns.api_orchestration import APIOrchestrator

    results = await APIOrchestrator(config, address=address).orchestrate(job.get("input"))
    output = job.get("output")
    if output:
        data = json.dumps(results, default=str, ensure_ascii=False, indent=2).encode()
        atomic_write(output, lambda tmp: tmp.write_bytes(data))
    errors = results.get("errors") or {}
    return {
        "results": results,
        "errors": sum(len(v) if isinstance(v, list) else 1 for v in errors.values()),
        "output_path": str(output) if output else None,
        "endpoints": len(config.endpoints),
    }
