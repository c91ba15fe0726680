"""Pipeline files: one YAML or JSON format for every job kind.

::

    kind: file_processing            # or: fsm, etl, api, steps (a top-level
    input_path: data/*.csv           #  ``file_processing:`` mapping works too)
    output_path: out/clean.jsonl     # relative paths are relative to this file
    transformations:
      - "lambda r: {**r, 'total': r['price'] * r['qty']}"   # inline lambda
      - mypackage.cleaning.normalize                          # dotted path (or module:attr)
      - {vectorized: mypackage.fast.add_columns}              # takes and returns a pyarrow.Table
    filters:
      - "lambda r: r['active']"
      - {expression: "pc.field('price') > 100"}               # a pyarrow compute expression
    aggregations: {rows: count, revenue: "sum:total"}
    error_threshold: 0.01

Within one job the order is fixed, whatever the order of the keys: validation, then
filters, then transformations (so a filter sees the input's columns, not the ones a
transformation adds; to filter on a computed value, compute and filter in a later job of
``kind: steps``).

The other kinds take their pattern's fields: ``kind: fsm`` (``config`` — an FSM config file
or mapping —, ``functions``, ``resources``, ``input``, ``output``, ``chunk_size``,
``checkpoint_id``, ``error_threshold``...), ``kind: etl`` (``ETLConfig``: ``source``,
``target``, ``mode``, ``key_columns``, ``field_mappings``, ``transformations``...),
``kind: api`` (``APIOrchestrationConfig``: ``base_url``, ``endpoints``, ``mode``,
``rate_limit``... plus ``input`` and an ``output`` JSON file). ``kind: steps`` runs
``steps:`` (a list of jobs, each with a ``name``) in order; a later step names an earlier
step's result as ``${steps.NAME.KEY}`` (e.g. ``${steps.to_json.output_path}``). Any job may
carry ``retry:`` (``RetryConfig`` fields, e.g. ``{max_attempts: 3, backoff_strategy:
exponential}``): the whole job is retried by ``patterns.error_recovery``. Credentials come
from ``${ENV_VAR}`` or ``${file:/path/to/secret}``, never written in the file.

Any job may also carry the seed's common sections (``patterns._pipeline.options``)::

    options: {batch_size: 1000, parallel_workers: 4, memory_limit: "1GB"}
    options: {stream: true, buffer_size: 8192, backpressure: true}
    error_handling: {strategy: exponential_backoff, max_retries: 3, timeout: 30,
                     on_failure: compensate}          # fail (default), skip, compensate

``file_processing`` honours them all; ``etl``, ``fsm`` and ``api`` take ``batch_size`` and
``parallel_workers`` and refuse the others, saying why. On ``steps`` they are every step's
defaults.

Kinds are registered (``patterns._pipeline.registry``): each built-in kind is one module
``patterns/_pipeline/kind_<name>.py``; another package adds one with ``register_kind(
PipelineKind(...))`` in a module named by an ``fsm_actors.pipeline_kinds`` entry point.

Inline code is evaluated with ``pa`` (pyarrow), ``pc`` (pyarrow.compute), ``re``, ``math``,
``json`` and ``datetime`` in scope: a pipeline file is code, run it only from sources you
trust.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fsm_actors.platform.event_loop import run_sync
from fsm_actors.platform.extensions import register
from patterns._pipeline.options import ErrorHandling, JobOptions, parse_sections
from patterns._pipeline.registry import (
    PipelineKind,
    RunContext,
    get_kind,
    kind_names,
    register_kind,
    unregister_kind,
)
from patterns._pipeline.values import substitute
from patterns.errors import PatternError

__all__ = [
    "ErrorHandling", "JobOptions", "Pipeline", "PipelineFiles", "PipelineJob", "PipelineKind",
    "RunContext", "load_pipeline", "load_pipeline_file", "register_kind", "run_pipeline",
    "run_pipeline_file", "unregister_kind",
]

#: keys every job takes besides its kind's own
COMMON = ("kind", "name", "description", "retry", "options", "error_handling")


def __getattr__(name: str) -> Any:
    if name == "KINDS":  # the job kinds a pipeline file may declare (the registered ones)
        return kind_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class PipelineJob:
    """One job of a pipeline file, loaded and checked (not run).

    ``spec`` is the job's mapping with paths and functions resolved (``${steps...}``
    references still open); ``config`` the pattern's config object when it could be built
    at load time. ``input_path`` and ``csv_has_header`` are what a progress display needs.
    """

    kind: str
    name: str
    spec: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)  # as written: may hold storage credentials
    base: Path
    where: str
    config: Any = None
    retry: dict[str, Any] | None = None
    options: JobOptions | None = None
    error_handling: ErrorHandling | None = None
    input_path: Any = None
    csv_has_header: bool = True


@dataclass
class Pipeline:
    """A loaded pipeline file: its jobs in order (one, or the steps of ``kind: steps``)."""

    path: Path
    kind: str
    jobs: list[PipelineJob] = field(default_factory=list)


def load_pipeline(path: str | os.PathLike) -> Pipeline:
    """Load and check ``path``; raises ``PatternError`` naming the file and the key."""
    path = Path(path)
    spec = _read(path)
    name, job = _job_section(spec, path)
    kind = get_kind(name)
    pipeline = Pipeline(path, name)
    if kind.expand is None:
        pipeline.jobs.append(_load_job(kind, job, path, str(path)))
        return pipeline
    shared = {k: job[k] for k in ("options", "error_handling") if k in job}
    for step_kind, step, where in kind.expand(job, path):
        step = {**shared, **step}  # the pipeline's options are every step's defaults
        pipeline.jobs.append(_load_job(get_kind(step_kind), step, path, where))
    return pipeline


def load_pipeline_file(path: str | os.PathLike) -> Any:
    """The job of a one-job pipeline file: a ``FileProcessingConfig`` for
    ``kind: file_processing``, else its ``PipelineJob`` (for ``steps``: the first step)."""
    pipeline = load_pipeline(path)
    job = pipeline.jobs[0]
    if pipeline.kind == "file_processing":
        return job.config
    return job


async def run_pipeline(
    path: str | os.PathLike,
    on_progress: Callable[[Any], Any] | None = None,
    *,
    address: str | None = None,
    checkpoint_id: str | None = None,
) -> dict[str, Any]:
    """Load and run ``path``. One job: its result dict. Steps: ``{"steps": {name: result},
    "output_path": <last step's>, ...}`` with the counts summed."""
    pipeline = load_pipeline(path)
    results: dict[str, dict[str, Any]] = {}
    for job in pipeline.jobs:
        cid = checkpoint_id and (checkpoint_id if len(pipeline.jobs) == 1
                                 else f"{checkpoint_id}-{job.name}")
        results[job.name] = await _run_job(job, results, on_progress, address, cid)
    if pipeline.kind != "steps":
        return results[pipeline.jobs[0].name]
    last = results[pipeline.jobs[-1].name]
    total: dict[str, Any] = {"steps": results, "output_path": last.get("output_path")}
    first = results[pipeline.jobs[0].name]
    for key in ("lines_read", "total_processed"):  # what went in: the first step's input
        total[key] = int(first.get(key) or 0)
    for key in ("records_processed", "records_written", "errors", "failed", "skipped"):
        total[key] = sum(int(r.get(key) or 0) for r in results.values())
    total["duration"] = sum(float(r.get("duration") or 0) for r in results.values())
    return total


def run_pipeline_file(
    path: str | os.PathLike,
    on_progress: Callable[[Any], Any] | None = None,
    *,
    address: str | None = None,
    checkpoint_id: str | None = None,
) -> dict[str, Any]:
    """Synchronous ``run_pipeline``."""
    return run_sync(run_pipeline(path, on_progress, address=address,
                                 checkpoint_id=checkpoint_id))


async def _run_job(
    job: PipelineJob,
    earlier: dict[str, dict[str, Any]],
    on_progress: Callable[[Any], Any] | None,
    address: str | None,
    checkpoint_id: str | None,
) -> dict[str, Any]:
    kind = get_kind(job.kind)
    spec, config = job.spec, job.config
    if config is None or _has_step_refs(job.raw):
        raw = substitute(job.raw, job.where, earlier)
        spec = _prepare(kind, raw, job.base, job.where)
        config = kind.make(spec, job.where)
    if kind.run is None:
        raise PatternError(f"{job.where}: kind {job.kind} cannot run on its own")
    context = RunContext(on_progress=on_progress, address=address, checkpoint_id=checkpoint_id,
                         options=job.options, error_handling=job.error_handling)

    async def once() -> dict[str, Any]:
        return await kind.run(spec, config, context)

    if not job.retry:
        return await once()
    from patterns.error_recovery import create_retry_workflow

    retry = dict(job.retry)
    workflow = create_retry_workflow(retry.pop("max_attempts", 3),
                                     retry.pop("backoff_strategy", "exponential"),
                                     name=f"pipeline-{job.name}", **retry)
    return await workflow.execute(once)


def _load_job(kind: PipelineKind, job: dict[str, Any], path: Path, where: str) -> PipelineJob:
    raw = substitute(dict(job), where)
    retry = raw.get("retry")
    if retry is not None and not isinstance(retry, dict):
        raise PatternError(f"{where}: retry: a mapping of RetryConfig fields is needed",
                           file=str(path))
    options, error_handling = parse_sections(raw, where, dict(kind.unsupported), kind.name)
    raw = _apply_options(kind, raw, options, where)
    if error_handling is not None and error_handling.compensation is not None:
        from patterns._pipeline.values import function, loc

        fn = function(error_handling.compensation, loc(where, "error_handling.compensation"))
        error_handling = error_handling.model_copy(update={"compensation": fn})
    spec = _prepare(kind, raw, path.parent, where)
    if kind.check_options is not None and (options or error_handling):
        kind.check_options(spec, options, error_handling, where)
    config = None if _has_step_refs(raw) else kind.make(spec, where)
    name = str(raw.get("name") or path.stem)
    return PipelineJob(
        kind=kind.name, name=name, spec=spec, raw=raw, base=path.parent, where=where,
        config=config, retry=retry, options=options, error_handling=error_handling,
        input_path=spec.get(kind.input_key),
        csv_has_header=bool(spec.get("csv_has_header", True)),
    )


def _apply_options(kind: PipelineKind, raw: dict[str, Any], options: JobOptions | None,
                   where: str) -> dict[str, Any]:
    """``raw`` with the options that are the kind's own fields set (a different value given
    both ways is an error naming both)."""
    if options is None:
        return raw
    raw = dict(raw)
    for name, key in kind.option_fields.items():
        value = getattr(options, name)
        if value is None:
            continue
        if raw.get(key) is not None and raw[key] != value:
            raise PatternError(f"{where}: options.{name}={value!r} and {key}={raw[key]!r} "
                               "disagree; give one of them")
        raw[key] = value
    return raw


def _prepare(kind: PipelineKind, raw: dict[str, Any], base: Path, where: str) -> dict[str, Any]:
    job = {k: v for k, v in raw.items() if k not in COMMON}
    return kind.prepare(job, base, where) if kind.prepare is not None else job


def _has_step_refs(value: Any) -> bool:
    return "${steps." in json.dumps(value, default=str)


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise PatternError(f"{path}: cannot read pipeline file: {exc}", file=str(path)) from exc


def _job_section(spec: Any, path: Path) -> tuple[str, dict[str, Any]]:
    if not isinstance(spec, dict):
        raise PatternError(f"{path}: expected a mapping at the top level", file=str(path))
    if isinstance(spec.get("file_processing"), dict):
        return "file_processing", spec["file_processing"]
    kind = spec.get("kind")
    if kind in kind_names():
        return str(kind), spec
    raise PatternError(
        f"{path}: set 'kind:' to one of {', '.join(kind_names())} (or put a file-processing job "
        "under a 'file_processing:' key)",
        file=str(path),
    )


class _Kinds:
    """The registered kinds' names, read when asked (kinds may register later)."""

    def __get__(self, obj: Any, owner: Any = None) -> tuple[str, ...]:
        return kind_names()


class PipelineFiles:
    """The hooks the command line looks up as ``"pipeline_files"`` (it sits below this
    package and never imports it): the kinds, load, run, static problems and schemas.
    Everything comes from the kind registry (``patterns._pipeline.registry``)."""

    kinds = _Kinds()
    load = staticmethod(load_pipeline_file)
    run = staticmethod(run_pipeline_file)
    register_kind = staticmethod(register_kind)

    @staticmethod
    def problems(job: Any) -> list[tuple[list[Any], str]]:
        """What ``job`` (as ``load`` returns it) would fail on at run time that can be seen
        now, as ``(key path, message)`` pairs (the input files are checked by the caller)."""
        kind = get_kind(job.kind if isinstance(job, PipelineJob) else "file_processing")
        return list(kind.problems(job)) if kind.problems is not None else []

    @staticmethod
    def redrive(path: str | os.PathLike, run: str, *, address: str | None = None,
                local: bool = False) -> dict[str, Any]:
        """Re-run the rows run ``run`` of the one-job pipeline file ``path`` rejected, with the
        file's current config: ``etl`` (``DatabaseETL.run(redrive=run)``: a run id or its
        error file) or ``file_processing`` (``FileProcessor.redrive``: ``run`` may name the
        error file). Returns the redrive's summary."""
        job = load_pipeline_file(path)
        if isinstance(job, PipelineJob) and job.kind == "etl" and job.config is not None:
            from patterns.etl import DatabaseETL

            return DatabaseETL(job.config, address=address, local=local).run_sync(redrive=run)
        if not isinstance(job, PipelineJob):  # kind: file_processing
            from patterns.file_processing import FileProcessor

            errors = run if str(run).endswith(".errors.jsonl") else None
            return FileProcessor(job, address=address).redrive(errors)
        raise PatternError(f"{path}: redrive re-runs the rejects of etl and file_processing "
                           f"pipeline files and FSM configs, not kind {job.kind!r}")

    @staticmethod
    def schema(kind: str | None = None) -> dict[str, Any]:
        """The JSON schema of every pipeline file (``kind=None``) or of one kind's."""
        from patterns._pipeline.schema import kind_schema, pipeline_schema

        return pipeline_schema() if kind is None else kind_schema(kind)


register("pipeline_files", PipelineFiles)
