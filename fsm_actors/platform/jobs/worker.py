"""The job worker actor: a thin shell around the step a job kind ships (Ray).

One class for every job kind; the step does the work. ``SyncJobWorker`` runs one call at a
time in order (the pool's dead-actor accounting relies on that); ``AsyncJobWorker`` hosts
steps whose ``run`` is a coroutine (HTTP fan-out) and runs up to ``max_concurrency`` calls.
``status`` runs in its own concurrency group, so it answers while a task runs, with the
figures the step reported per batch (``progress.batch_done``). Each batch is recorded in the
metrics ``records``, ``records_written``, ``errors``, ``batches`` and ``batch_seconds``,
tagged with the job's pipeline, run id and ``role="worker"``.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import ray

from fsm_actors.platform import metrics
from fsm_actors.platform.jobs import progress
from fsm_actors.platform.jobs.model import StepContext, StepSpec, Task, TaskResult

#: the concurrency group of ``status`` (one thread of its own)
STATUS_GROUP = {"status": 1}


class _Shell:
    def __init__(self, spec: StepSpec, context: StepContext, name: str,
                 pipeline: str = "") -> None:
        self.name = name
        self.pipeline = pipeline
        self.context = context
        self.live = progress.LIVE
        self.live.sink = self._record
        self.step = spec.build(context)
        self.tasks_done = 0

    def status(self) -> dict[str, Any]:
        """Live counters, never waiting for a running task: ``name, pipeline, run,
        tasks_done, records_read, records_written, errors, batches, current`` (task or
        None), ``input`` (what it reads), ``task_records`` and ``states`` (FSM stages:
        state -> [entered, ended, failed])."""
        out = {"name": self.name, "pipeline": self.pipeline, "run": self.context.run_id,
               "tasks_done": self.tasks_done}
        out.update(self.live.snapshot())
        if not out["states"]:
            del out["states"]
        return out

    def close(self) -> None:
        """Let the step give back what it holds (leases, connections) before the actor ends."""
        close = getattr(self.step, "close", None)
        if callable(close):
            close()

    def _start(self, task: Task, payload: Any) -> float:
        if payload is not None:
            task.payload = payload
        self.live.start_task(f"{task.partition}#{task.seq}",
                             str(task.meta.get("path", task.partition)))
        return time.monotonic()

    def _done(self, result: TaskResult, started: float) -> TaskResult:
        self.tasks_done += 1
        self.live.finish_task(result.batches, time.monotonic() - started)
        return result

    def _record(self, counts: dict[str, int], seconds: float) -> None:
        tags = {"pipeline": self.pipeline, "run": self.context.run_id, "role": "worker"}
        metrics.inc("records", counts.get("read", 0), **tags)
        metrics.inc("records_written", counts.get("written", 0), **tags)
        metrics.inc("errors", counts.get("errors", 0), **tags)
        metrics.inc("batches", 1, **tags)
        metrics.observe("batch_seconds", seconds, **tags)

    def __repr__(self) -> str:
        return f"JobWorker({self.name})"


class SyncJobWorker(_Shell):
    def run(self, task: Task, payload: Any = None) -> TaskResult:
        started = self._start(task, payload)
        return self._done(self.step.run(task), started)  # type: ignore[arg-type]

    @ray.method(concurrency_group="status")
    def status(self) -> dict[str, Any]:
        return super().status()


class AsyncJobWorker(_Shell):
    async def run(self, task: Task, payload: Any = None) -> TaskResult:
        started = self._start(task, payload)
        out = self.step.run(task)
        if inspect.isawaitable(out):
            out = await out
        return self._done(out, started)  # type: ignore[arg-type]

    @ray.method(concurrency_group="status")
    async def status(self) -> dict[str, Any]:  # type: ignore[override]
        return super().status()


RemoteSyncJobWorker = ray.remote(concurrency_groups=STATUS_GROUP)(SyncJobWorker)
RemoteAsyncJobWorker = ray.remote(concurrency_groups=STATUS_GROUP)(AsyncJobWorker)
