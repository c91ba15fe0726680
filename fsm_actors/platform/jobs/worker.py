"""The job worker actor: a thin shell around the step a job kind ships (Ray).

One class for every job kind; the step does the work. ``SyncJobWorker`` runs one call at a
time in order (the pool's dead-actor accounting relies on that); ``AsyncJobWorker`` hosts
steps whose ``run`` is a coroutine (HTTP fan-out) and runs up to ``max_concurrency`` calls.
"""

from __future__ import annotations

import inspect
from typing import Any

import ray

from fsm_actors.platform.jobs.model import StepContext, StepSpec, Task, TaskResult


class _Shell:
    def __init__(self, spec: StepSpec, context: StepContext, name: str) -> None:
        self.name = name
        self.context = context
        self.step = spec.build(context)
        self.tasks_done = 0
        self.records_read = 0
        self.current: str | None = None

    def status(self) -> dict[str, Any]:
        """Live counters: ``tasks_done``, ``records_read``, ``current`` (task or None)."""
        return {
            "name": self.name,
            "tasks_done": self.tasks_done,
            "records_read": self.records_read,
            "current": self.current,
        }

    def close(self) -> None:
        """Let the step give back what it holds (leases, connections) before the actor ends."""
        close = getattr(self.step, "close", None)
        if callable(close):
            close()

    def _done(self, result: TaskResult) -> TaskResult:
        self.tasks_done += 1
        self.records_read += sum(c.get("read", 0) for c in result.batches.values())
        self.current = None
        return result

    def __repr__(self) -> str:
        return f"JobWorker({self.name})"


class SyncJobWorker(_Shell):
    def run(self, task: Task, payload: Any = None) -> TaskResult:
        if payload is not None:
            task.payload = payload
        self.current = f"{task.partition}#{task.seq}"
        return self._done(self.step.run(task))  # type: ignore[arg-type]


class AsyncJobWorker(_Shell):
    async def run(self, task: Task, payload: Any = None) -> TaskResult:
        if payload is not None:
            task.payload = payload
        self.current = f"{task.partition}#{task.seq}"
        out = self.step.run(task)
        if inspect.isawaitable(out):
            out = await out
        return self._done(out)


RemoteSyncJobWorker = ray.remote(SyncJobWorker)
RemoteAsyncJobWorker = ray.remote(AsyncJobWorker)
