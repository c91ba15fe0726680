"""``kind: file_processing``: a ``FileProcessingConfig`` run by ``FileProcessor``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from patterns._pipeline.registry import PipelineKind, RunContext, register_kind
from patterns._pipeline.values import function, loc, output_base, relative, storage_config
from patterns.errors import PatternError

FILE_PATHS = ("input_path", "output_path", "error_file", "checkpoint_dir")


def prepare(job: dict[str, Any], base: Path, where: str) -> dict[str, Any]:
    """Paths relative to the pipeline file; transformations, filters and a string
    ``validation_schema`` resolved to functions."""
    for key in FILE_PATHS:
        if job.get(key) is not None:
            job[key] = relative(base if key == "input_path" else output_base(base), job[key])
    if job.get("storage") is not None:  # the object store's filesystem arguments
        job["storage_options"] = storage_config(job.pop("storage"), loc(where, "storage"))
    for key in ("transformations", "filters"):
        if key in job:
            job[key] = [function(f, loc(where, f"{key}[{i}]"))
                        for i, f in enumerate(job[key] or [])]
    if isinstance(job.get("validation_schema"), str):
        job["validation_schema"] = function(job["validation_schema"],
                                            loc(where, "validation_schema"))
    return job


def problems(job: Any) -> list[tuple[list[Any], str]]:
    """Aggregation specs that would fail at run time."""
    from patterns._files.aggregate import parse_aggregations

    config = getattr(job, "config", job)
    found: list[tuple[list[Any], str]] = []
    for name, spec in (getattr(config, "aggregations", None) or {}).items():
        try:
            parse_aggregations({name: spec})
        except ValueError as exc:
            found.append((["aggregations", name], str(exc)))
    return found


def check_options(spec: dict[str, Any], options: Any, error_handling: Any, where: str) -> None:
    """Refuse what would contradict the job: ``stream`` against its ``mode``, and
    ``backpressure: false``."""
    if options is None:
        return
    mode = str(spec.get("mode") or "stream").lower()
    if options.stream is not None and "mode" in spec and (mode == "whole") == options.stream:
        raise PatternError(f"{where}: options.stream={str(options.stream).lower()} contradicts "
                           f"mode={mode!r}; give one of them")
    if options.backpressure is False:
        raise PatternError(
            f"{where}: options.backpressure: false is not supported by kind file_processing: "
            "reading always waits for the workers (unbounded read-ahead would hold the whole "
            "input in memory); bound it with memory_limit, or remove backpressure")


async def run(spec: dict[str, Any], config: Any, context: RunContext) -> dict[str, Any]:
    from patterns._files.job import FileJob

    job = FileJob(config, checkpoint_id=context.checkpoint_id, on_progress=context.on_progress,
                  address=context.address, options=context.options,
                  error_handling=context.error_handling)
    return await job.run()


def _model() -> Any:
    from patterns.file_processing import FileProcessingConfig

    return FileProcessingConfig


class _LazyModel:
    """The config model, imported when first used (keeps ``import patterns.pipeline`` light)."""

    def __call__(self, **spec: Any) -> Any:
        return _model()(**spec)

    def model_json_schema(self, **kw: Any) -> dict[str, Any]:
        return _model().model_json_schema(**kw)


register_kind(PipelineKind(
    name="file_processing", run=run, model=_LazyModel(), prepare=prepare, problems=problems,
    input_key="input_path", unsupported={},
    option_fields={"batch_size": "chunk_size", "parallel_workers": "workers"},
    check_options=check_options,
    description="read files of any format, filter, transform, aggregate, write once",
))
