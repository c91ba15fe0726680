"""``kind: etl``: an ``ETLConfig`` run by ``DatabaseETL``.

``options.batch_size``/``parallel_workers`` are the config's ``batch_size``/
``parallel_workers``; ``error_handling`` is the retry policy of each partition task
(``patterns._pipeline.etl_tasks``): ``skip`` rejects the rest of a partition that still fails,
``compensate`` runs the named ``compensation``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from patterns._pipeline.registry import PipelineKind, RunContext, register_kind
from patterns._pipeline.values import function, loc, output_base, relative, storage_config


def prepare(job: dict[str, Any], base: Path, where: str) -> dict[str, Any]:
    """File sources/targets and relative SQLite URLs relative to the pipeline file;
    transformations and filters resolved to functions."""
    storage = job.pop("storage", None)
    if storage is not None:  # every file endpoint's store
        storage = storage_config(storage, loc(where, "storage"))
    for side in ("source", "target"):
        spec = job.get(side)
        if storage is not None and isinstance(spec, dict) and spec.get("type") == "file":
            spec = job[side] = {"storage_options": storage, **spec}
        if isinstance(spec, dict) and spec.get("type") == "file" and "path" in spec:
            folder = base if side == "source" else output_base(base)
            job[side] = {**spec, "path": relative(folder, spec["path"])}
        elif isinstance(spec, dict) and isinstance(spec.get("connection"), str):
            job[side] = {**spec, "connection": sqlite_relative(base, spec["connection"])}
        elif isinstance(spec, str):
            job[side] = sqlite_relative(base, spec)
    for key in ("transformations", "filters"):
        if key in job:
            job[key] = [function(f, loc(where, f"{key}[{i}]"))
                        for i, f in enumerate(job[key] or [])]
    return job


def sqlite_relative(base: Path, url: str) -> str:
    """A relative SQLite file URL made relative to the pipeline file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix:
        rest = url[len(prefix):]
        if rest != ":memory:":
            return prefix + relative(base, rest)
    return url


#: the spellings of ``mode`` a pipeline file may use, as the README and examples write them
MODE_SPELLINGS = ("full_refresh", "incremental", "upsert", "append")


def check_mode(value: Any, where: str) -> None:
    """Refuse an unknown ``mode`` naming the spellings users write (``full_refresh``, ...),
    with the nearest one when the value looks like a typo."""
    import difflib

    from patterns._etl.config import _MODE_ALIASES, ETLMode
    from patterns.errors import PatternError

    if not isinstance(value, str) or isinstance(value, ETLMode):
        return
    known = {m.value for m in ETLMode} | {m.name.lower() for m in ETLMode} | set(_MODE_ALIASES)
    if value.lower() in known:
        return
    near = difflib.get_close_matches(value.lower(), sorted(known), n=1, cutoff=0.6)
    hint = ""
    if near:
        meant = near[0] if near[0] in MODE_SPELLINGS else next(
            (m for m in MODE_SPELLINGS if _canonical(m) == _canonical(near[0])), near[0])
        hint = f"; did you mean {meant!r}?"
    error = PatternError(f"{where}: mode: {value!r} is not a mode; use one of "
                         f"{', '.join(MODE_SPELLINGS)}{hint}")
    error.key_path = "mode"  # type: ignore[attr-defined]
    raise error


def _canonical(spelling: str) -> str:
    from patterns._etl.config import _MODE_ALIASES

    return _MODE_ALIASES.get(spelling, spelling).replace("full_refresh", "full")


def build(job: dict[str, Any], where: str) -> Any:
    from patterns.etl import ETLConfig

    check_mode(job.get("mode"), where)
    return ETLConfig(**job)


def schema() -> dict[str, Any]:
    from patterns._etl.config import _MODE_ALIASES, ETLConfig, ETLMode
    from patterns._pipeline.generator import model_schema

    out = model_schema(ETLConfig)
    names = [m.value for m in ETLMode] + [m.name.lower() for m in ETLMode]
    out["$defs"]["ETLMode"]["enum"] = sorted({*names, *_MODE_ALIASES})
    return out


async def run(spec: dict[str, Any], config: Any, context: RunContext) -> dict[str, Any]:
    from functools import partial

    from patterns._pipeline.etl_tasks import RetriedStepSpec
    from patterns._task_policy import TaskRetry
    from patterns.errors import PatternError
    from patterns.etl import DatabaseETL

    policy = TaskRetry.of(context.error_handling)
    wrapper = partial(RetriedStepSpec, retry=policy) if policy is not None else None
    etl = DatabaseETL(config, address=context.address, step_wrapper=wrapper)
    try:
        return await etl.run(context.checkpoint_id, context.on_progress)
    except PatternError as exc:
        function = getattr(context.error_handling, "compensation", None)
        if policy is None or policy.on_failure != "compensate" or not callable(function):
            raise
        function({"run_id": context.checkpoint_id, "source": spec.get("source"),
                  "target": spec.get("target"), "error": exc.message})
        raise PatternError(f"{exc.message}; compensated: ran "
                           f"{getattr(function, '__name__', 'the compensation')}",
                           pattern="etl") from None


def check_options(spec: dict[str, Any], options: Any, error_handling: Any, where: str) -> None:
    """``error_handling.timeout`` and a ``compensate`` without a ``compensation`` are refused,
    saying why."""
    from patterns.errors import PatternError

    if error_handling is None:
        return
    if error_handling.timeout is not None:
        raise PatternError(
            f"{where}: error_handling.timeout is not supported by kind etl: a partition's "
            "batches commit while it runs, so an attempt cannot be abandoned (it would go on "
            "writing beside its retry); bound the source's statements in its connection "
            "settings, or remove timeout")
    if error_handling.on_failure == "compensate" and error_handling.compensation is None:
        raise PatternError(
            f"{where}: error_handling.on_failure: compensate needs 'compensation' for kind "
            "etl: batches committed into the target cannot be told from its other rows, so "
            "there is no partial output to remove (a failed FULL_REFRESH never touches the "
            "target); name a function that undoes the load, or use on_failure: fail")


#: what this kind cannot honour, and why (a pipeline file giving it is refused)
UNSUPPORTED = {
    "options.memory_limit": ("an ETL batch is batch_size rows read by key range and written "
            "in one transaction; bound its memory with batch_size"),
    "options.stream": ("an ETL job always reads its source in batch_size pieces by key "
            "range; there is no whole-source read to switch off"),
    "options.buffer_size": ("an ETL source is read by queries (or by the file reader's own "
            "batches), not in byte blocks; use batch_size"),
    "options.backpressure": ("ETL readers always wait for the writers (each worker reads and "
            "writes its own key ranges)"),
}


register_kind(PipelineKind(
    name="etl", unsupported=UNSUPPORTED,
    option_fields={"batch_size": "batch_size", "parallel_workers": "parallel_workers"},
    check_options=check_options,
    run=run, build=build, prepare=prepare, schema=schema, input_key="source",
    description="extract from a database or file, transform, load into a database or file",
))
