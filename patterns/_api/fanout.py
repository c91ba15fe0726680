"""FANOUT as a job kind of the job layer: one endpoint over many input items.

The input is a list (or any iterable, read lazily) of items, or a mapping holding one under
the config's ``fanout_key`` (the mapping's other keys are the templates' ``input``). Tasks are
slices of ``batch_size`` items of one partition (``items``, seq = slice number); the step is
``FanoutStep`` on the job layer's async worker actors (``api/<run id>/worker/<i>``). Without
a sink the slices' results come back through ``on_result`` and are put in input order;
with a ``sink`` each slice is a part in the sink's format and ``commit`` joins them into the
file atomically. ``checkpoint_id`` makes the run resumable (results are staged as parts).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from fsm_actors.platform.io import (
    FormatError,
    normalize_compression,
    normalize_format,
    split_extensions,
)
from fsm_actors.platform.jobs.model import DoneSet, JobKind, PartitionTotal, Task, TaskResult
from fsm_actors.platform.jobs.parts import Staging, atomic_write
from fsm_actors.platform.jobs.parts import commit as join_parts
from patterns._api.config import APIOrchestrationConfig
from patterns._api.errors import PATTERN, APIConfigError
from patterns._api.fanout_step import (
    OUTCOMES_DIR,
    PARTITION,
    VALUES_EXT,
    FanoutStepSpec,
    RequestCounter,
    SinkSpec,
)
from patterns._api.metrics import Totals
from patterns.errors import ErrorThresholdExceeded, PatternError
from resource_actors.http import safe_url

_MIN_BATCH, _MAX_BATCH = 64, 2000


def split_input(config: APIOrchestrationConfig, data: Any) -> tuple[Iterable[Any], Any]:
    """``(items, context input)`` of a FANOUT input; ``APIConfigError`` if there are none."""
    if isinstance(data, Mapping):
        if config.fanout_key not in data:
            raise APIConfigError(
                f"FANOUT {config.name!r}: the input mapping has no {config.fanout_key!r} list "
                f"(keys: {sorted(data)[:10]}); pass the items as a list or set fanout_key",
                endpoint=config.endpoints[0].name)
        rest = {k: v for k, v in data.items() if k != config.fanout_key}
        return data[config.fanout_key], rest
    if data is None or isinstance(data, str | bytes) or not isinstance(data, Iterable):
        raise APIConfigError(f"FANOUT {config.name!r}: the input must be a list or iterable of "
                             f"items, got {type(data).__name__}",
                             endpoint=config.endpoints[0].name)
    return data, None


def sink_spec(config: APIOrchestrationConfig) -> SinkSpec | None:
    if config.sink is None:
        return None
    fmt, compression = split_extensions(config.sink)
    try:
        fmt = normalize_format(config.sink_format or fmt or "")
        compression = normalize_compression(compression)
    except FormatError as exc:
        raise APIConfigError(f"FANOUT {config.name!r}: sink {config.sink!r}: {exc}; set "
                             "sink_format", endpoint=config.endpoints[0].name) from None
    if fmt in ("text", "log"):
        raise APIConfigError(f"FANOUT {config.name!r}: sink format {fmt!r} holds no records; "
                             "use jsonl, json, csv, tsv, xml or parquet",
                             endpoint=config.endpoints[0].name)
    return SinkSpec(fmt, compression)


class FanoutJob(JobKind):
    """One FANOUT run (driver side, plain core)."""

    pattern = "api"
    async_step = True

    def __init__(self, orchestrator: Any, data: Any) -> None:
        config: APIOrchestrationConfig = orchestrator.config
        self.config = config
        self.call = orchestrator.calls[0]
        items, self.context_input = split_input(config, data)
        self.size = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        self.items = items
        self.batch = config.batch_size or _batch_size(self.size)
        self.sink = sink_spec(config)
        self.run_id = config.checkpoint_id or f"{config.name}-{uuid.uuid4().hex[:8]}"
        self.label = f"api {config.name}"
        self.staged = self.sink is not None or config.checkpoint_id is not None
        base = (Path(config.sink).absolute().parent if config.sink
                else Path(tempfile.gettempdir()))
        state = base / ".fsm_actors" / f"api-{self.run_id}"
        #: a finished checkpointed run's result, kept so running it again sends nothing
        self.done_file = state.with_name(f"api-{self.run_id}.result.json")
        self.count_dir = state / "requests"
        if self.staged:
            self.staging = state / "staging"
            self.checkpoint_dir = state / "checkpoints"
            self.error_file = (Path(f"{config.sink}.errors.jsonl").absolute() if config.sink
                               else state / "errors.jsonl")
        self.max_in_flight = 2
        self.worker_concurrency = self.max_in_flight
        self._outputs: dict[int, Any] = {}
        self.totals = Totals()
        self.errors: list[dict[str, Any]] = []
        self.values: list[Any] | None = None
        self.written = 0
        self.workers_used = config.workers

    def fingerprint(self) -> dict[str, Any]:
        e = self.config.endpoints[0]
        return {"url": safe_url(e.url) if "://" in e.url else e.url, "method": e.method,
                "batch": self.batch, "sink": self.config.sink,
                "format": self.sink.format if self.sink else None, "items": self.size}

    def partitions(self) -> dict[str, dict[str, Any]]:
        return {PARTITION: {}}

    def tasks(self, done: DoneSet) -> Iterator[Task | PartitionTotal]:  # type: ignore[override]
        it = iter(self.items)
        seq = 0
        while True:
            chunk = list(itertools.islice(it, self.batch))
            if not chunk:
                break
            if not done.is_done(PARTITION, seq):
                yield Task(PARTITION, seq, payload=chunk, first_record=seq * self.batch)
            seq += 1
        yield PartitionTotal(PARTITION, seq)

    def step_spec(self) -> FanoutStepSpec:
        return FanoutStepSpec(self.config, self.call, self.context_input,
                              self.config.worker_concurrency, self.sink, self.staged,
                              str(self.count_dir))

    def workers(self, cluster_cpus: int) -> int:
        wanted = self.config.workers or max(1, cluster_cpus)
        if self.size is not None:
            wanted = min(wanted, max(1, math.ceil(self.size / self.batch)))
        self.workers_used = wanted
        return wanted

    def task_name(self, task: Task) -> str:
        return f"{self.label} items {task.first_record}-{task.first_record + len(task.payload or ()) - 1}"

    def on_result(self, result: TaskResult) -> None:
        out = result.output or {}
        self.totals.merge(out.get("totals", {}))
        self.errors.extend(out.get("errors", ()))
        if "values" in out:
            for seq in result.batches:
                self._outputs[seq] = out["values"]

    def cleanup(self) -> None:
        shutil.rmtree(self.count_dir, ignore_errors=True)

    def error(self, message: str, *, threshold: bool = False, **context: Any) -> Exception:
        cls = ErrorThresholdExceeded if threshold else PatternError
        if threshold and not context.get("error_file"):  # a run without a sink or checkpoint
            head = message.split(". The rejected records", 1)[0]
            shown = "; ".join(f"item {e['index']}: {e['reason']}"
                              for e in sorted(self.errors, key=lambda e: e["index"])[:3])
            message = (f"{head}. The first failed items: {shown or 'none reported yet'}; set "
                       "sink or checkpoint_id to keep every failed item in an error file")
        known = {k: context[k] for k in ("file", "line", "record", "error_file") if k in context}
        return cls(message, pattern=PATTERN, run_id=self.run_id, **known)

    def requests_sent(self) -> int:
        """Requests the workers sent (killed workers' and earlier runs' included)."""
        return max(RequestCounter.count(self.count_dir), self.totals.requests)

    def commit(self, counts: dict[str, int], meta: dict[str, Any]) -> dict[str, Any]:
        if self.staged:  # every slice's errors and counters, those of earlier runs included
            self.errors, self.totals = [], Totals()
            for path in sorted((self.staging / OUTCOMES_DIR).glob("*.json")):
                outcome = json.loads(path.read_text(encoding="utf-8"))
                self.errors.extend(outcome["errors"])
                self.totals.merge(outcome["totals"])
        self.totals.requests = self.requests_sent()
        self.errors.sort(key=lambda e: e["index"])
        if not self.staged:
            self.values = [v for seq in sorted(self._outputs) for v in self._outputs[seq]]
            return {}
        staging = Staging(self.staging)  # type: ignore[arg-type]
        if self.sink is None:
            self.values = []
            for part in sorted(staging.data_dir().glob(f"*{VALUES_EXT}")):
                with open(part, encoding="utf-8") as fh:
                    self.values.extend(json.loads(line) for line in fh)
            return {}
        parts = staging.data_parts(self.sink.output.ext)
        join_parts(Path(self.config.sink), parts, self.sink.format,  # type: ignore[arg-type]
                   compression=self.sink.compression)
        self.written = counts.get("written", 0)
        return {"output_path": str(Path(self.config.sink).absolute())}  # type: ignore[arg-type]


def _batch_size(size: int | None) -> int:
    if size is None:
        return 1000
    return max(_MIN_BATCH, min(_MAX_BATCH, math.ceil(size / 16)))


async def run_fanout(orchestrator: Any, data: Any) -> dict[str, Any]:
    """Run a FANOUT config as a job; the orchestrator's result dict (see the package doc)."""
    from fsm_actors.platform.jobs import run_job

    config: APIOrchestrationConfig = orchestrator.config
    job = FanoutJob(orchestrator, data)
    if config.checkpoint_id is not None:
        done = _finished(job)
        if done is not None:
            return done
    started = time.perf_counter()
    if orchestrator.limits.scope == "cluster":
        from fsm_actors.platform import runtime

        runtime.ensure_ray(orchestrator.address)
        orchestrator.limits.policies()  # the driver owns the shared policy actors
    try:
        async with asyncio.timeout(config.total_timeout):
            record = await run_job(job, resumable=config.checkpoint_id is not None,
                                   error_threshold=config.error_threshold,
                                   address=orchestrator.address)
    except TimeoutError:
        again = ("re-run with the same checkpoint_id to resume" if config.checkpoint_id
                 else "set checkpoint_id to make it resumable")
        raise PatternError(
            f"FANOUT {config.name!r} did not finish within total_timeout "
            f"({config.total_timeout:g}s); raise total_timeout (None: no bound), {again}",
            pattern=PATTERN, run_id=job.run_id) from None
    finally:
        if config.checkpoint_id is None:  # nothing resumes it: its request counters go
            job.cleanup()
    name = job.call.name
    result: dict[str, Any] = {}
    if job.sink is None:
        if job.values is None:  # the run had committed before; its staged results are gone
            raise PatternError(
                f"FANOUT {config.name!r}: run {job.run_id!r} had finished already and its "
                "results were not kept; use another checkpoint_id, or a sink to keep them",
                pattern=PATTERN, run_id=job.run_id)
        result[name] = job.values
    else:
        result[name] = {"output_path": record["output_path"],
                        "records_written": record["records_written"]}
    result["errors"] = {name: job.errors} if job.errors else {}
    metrics = {**job.totals.as_dict(),
               "duration_ms": round((time.perf_counter() - started) * 1000, 3),
               "items": record["total_processed"], "run_id": record["run_id"],
               "workers": job.workers_used,
               "error_file": record["error_file"], "job": record}
    result["_metrics"] = metrics
    if config.checkpoint_id is not None:
        _keep(job, result)
    return result


def _finished(job: FanoutJob) -> dict[str, Any] | None:
    """The kept result of the same checkpointed run (same settings) that finished, if any."""
    try:
        kept = json.loads(job.done_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if kept.get("fingerprint") != json.loads(json.dumps(job.fingerprint(), default=str)):
        return None
    result = kept["result"]
    result["_metrics"]["resumed_finished_run"] = True
    return result


def _keep(job: FanoutJob, result: dict[str, Any]) -> None:
    """Keep a checkpointed run's result, so the same run again is a no-op returning it."""
    text = json.dumps({"fingerprint": job.fingerprint(), "result": result}, default=str)
    job.done_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(job.done_file, lambda tmp: tmp.write_text(text, encoding="utf-8"))
