"""The contract of the job layer (plain core, no Ray).

A job moves many records: a ``JobKind`` (driver side) plans partitions and yields ``Task``s
lazily; a ``Step`` (worker side, built in each worker actor from the kind's picklable
``StepSpec``) runs one task per actor call and returns a ``TaskResult``. The driver
(``fsm_actors.platform.jobs.driver.run_job``) maps tasks over the one ``ActorPool``, records done
batches in the checkpoint, enforces the error threshold, reports progress and calls the
kind's ``commit`` at the end.

The exactly-once contract: a step's work is idempotent per ``(partition, seq)`` (an item whose
actor died is sent again) and durable before it returns (parts fsynced, or a database batch
committed together with its checkpoint row); the driver records a batch as done only after
that, and saves the checkpoint only over durable work.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

#: The counters every step reports per batch; the result's key sets are built from them.
COUNT_KEYS = ("read", "processed", "written", "skipped", "errors")


@dataclass
class Task:
    """One unit of work = one actor call.

    ``partition`` is the stable id of a partition (an input file, a key range, an input
    slice); ``seq`` the batch number within it (the same on every run), or ``None`` when the
    worker reads the whole partition itself and reports each batch. ``payload`` is small
    data or a batch (the driver puts batches in the object store once).
    """

    partition: str
    seq: int | None
    payload: Any = None
    first_record: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskResult:
    """What one task made durable: ``batches`` maps batch number -> counts (``COUNT_KEYS``).

    ``total_batches`` is set when the task learned how many batches its partition has.
    ``output`` is small data for ``JobKind.on_result`` (e.g. API results); ``side`` is
    kind-specific (file jobs: batch number -> the stage's side result)."""

    partition: str
    batches: dict[int, dict[str, int]]
    total_batches: int | None = None
    output: Any = None
    side: Any = None


@dataclass(frozen=True)
class PartitionTotal:
    """Yielded by ``JobKind.tasks`` once a partition was read to its end: it has ``total``
    batches."""

    partition: str
    total: int


class Step(Protocol):
    """Worker-side runner of tasks; not thread-safe (an actor runs one call at a time)."""

    def run(self, task: Task) -> TaskResult | Awaitable[TaskResult]: ...

    def close(self) -> None: ...


class StepSpec(Protocol):
    """Picklable recipe of a step, shipped once to each worker actor."""

    def build(self, context: StepContext) -> Step: ...


@dataclass(frozen=True)
class StepContext:
    """What a worker tells its step: the run, its index and the staging directory."""

    run_id: str
    worker_index: int
    staging: str | None


class DoneSet(Protocol):
    """Which batches are durable already (the checkpoint's view)."""

    def is_done(self, partition: str, seq: int) -> bool: ...

    def complete(self, partition: str) -> bool: ...


class JobKind(ABC):
    """Driver-side description of one job; subclasses override what they need.

    Contract: ``partitions`` is known before any task runs; ``tasks`` is lazy and skips
    batches ``done`` reports durable; ``commit`` runs once, after every task finished, and
    turns the staged work into the final output atomically (``abort`` leaves the old output
    untouched).
    """

    pattern: str = "job"
    run_id: str = ""
    #: a label for progress and actor task names
    label: str = ""
    #: where staged parts go (``None``: the kind writes no parts)
    staging: Path | None = None
    #: where the checkpoint documents go
    checkpoint_dir: Path | None = None
    #: the run's one error file (JSON Lines, ``RowError`` schema)
    error_file: Path | None = None
    max_in_flight: int = 2
    #: steps whose ``run`` is a coroutine run on an async worker actor
    async_step: bool = False
    #: calls one async worker runs at once (``async_step`` only)
    worker_concurrency: int = 1
    #: steps a local run (``run_job(local=True)``) runs at once on threads, each built from
    #: its own copy of ``step_spec()`` as a worker's is; more than 1 only for steps that run
    #: no user Python (Arrow kernels release the GIL, and a user's function may not be
    #: thread-safe)
    local_lanes: int = 1
    #: processes forked from this one (``forked_lanes``) a run the CLI asked to go
    #: in-process may run steps on; for steps that run the user's Python (held by the GIL)
    forked_lanes: int = 1

    def local_paths(self) -> list[str]:
        """The local (not object-store) paths the workers read or write; a cluster with
        nodes other than the driver's is warned about them before the run."""
        return []

    def fingerprint(self) -> dict[str, Any]:
        """Settings the checkpoint depends on; a resume with others is refused."""
        return {}

    def partitions(self) -> dict[str, dict[str, Any]]:
        """Partition id -> its source fingerprint (a changed source is re-done)."""
        return {}

    @abstractmethod
    def tasks(self, done: DoneSet) -> Iterator[Task]:
        """The tasks not yet done, lazily (``PartitionTotal`` once a partition ends)."""

    @abstractmethod
    def step_spec(self) -> StepSpec:
        """The picklable recipe of this job's step."""

    def workers(self, cluster_cpus: int) -> int:
        """How many worker actors this job wants."""
        return max(1, cluster_cpus)

    def on_result(self, result: TaskResult) -> None:  # noqa: B027 - an optional hook
        """Called on the driver for each result, after it was recorded."""

    def partition_changed(self, partition: str) -> None:  # noqa: B027 - an optional hook
        """A partition's source changed since the checkpoint: drop its staged work."""

    def commit(self, counts: dict[str, int], meta: dict[str, Any]) -> dict[str, Any]:
        """Make the output final; returns the kind's own result keys."""
        return {}

    def abort(self) -> None:  # noqa: B027 - an optional hook
        """The run failed: drop what cannot be resumed, keep the old output."""

    def cleanup(self) -> None:  # noqa: B027 - an optional hook
        """After a commit (or a resumed run found committed): drop staged work."""

    def task_name(self, task: Task) -> str:
        """The Ray task name of a call, shown in the dashboard's task views."""
        seq = "" if task.seq is None else f" batch {task.seq}"
        return f"{self.label or self.pattern} {task.partition}{seq}"[:200]

    def error(self, message: str, *, threshold: bool = False, **context: Any) -> Exception:
        """The exception to raise for a job failure (kinds map it to their package's)."""
        from fsm_actors.platform.jobs.errors import JobError, ThresholdExceeded

        cls = ThresholdExceeded if threshold else JobError
        return cls(message, **context)


def result_record(
    counts: dict[str, int],
    *,
    duration: float,
    run_id: str,
    output_path: str | None,
    error_file: str | None,
) -> dict[str, Any]:
    """One result record with both key sets.

    ``total_processed`` = records read (good + malformed), ``successful`` = read minus
    errors, ``failed`` = errors; ``lines_read``, ``records_processed``, ``records_written``,
    ``errors``, ``skipped`` are the file-processing names of the same counters.
    """
    read, errors = counts.get("read", 0), counts.get("errors", 0)
    return {
        "total_processed": read,
        "successful": max(0, read - errors),
        "failed": errors,
        "lines_read": read,
        "records_processed": counts.get("processed", 0),
        "records_written": counts.get("written", 0),
        "errors": errors,
        "skipped": counts.get("skipped", 0),
        "duration": duration,
        "throughput": read / duration if duration > 0 else 0.0,
        "output_path": output_path,
        "error_file": error_file,
        "run_id": run_id,
    }
