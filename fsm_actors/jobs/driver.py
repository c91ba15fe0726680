"""The one driver of every job (Ray): tasks over the actor pool, checkpoint, threshold, commit.

``run_job`` reads the kind's tasks on a thread a bounded number ahead (batches go into the
object store once, by reference), maps them over one ``ActorPool`` of job workers
(``<pattern>/<run id>/worker/<i>``), records each durable batch in the checkpoint (saved at
most every ``SAVE_EVERY`` seconds, always over durable work only), stops past the error
threshold with the rejected records in the error file, and at the end has the kind commit
its output atomically. A run with a checkpoint id that finished already returns its result.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import ray

from fsm_actors import runtime
from fsm_actors.checkpoint import CheckpointStore
from fsm_actors.jobs.commit import concat_errors
from fsm_actors.jobs.model import JobKind, PartitionTotal, StepContext, Task, result_record
from fsm_actors.jobs.parts import Staging
from fsm_actors.jobs.prefetch import Prefetch
from fsm_actors.jobs.progress import JobProgress
from fsm_actors.jobs.state import JobState, threshold_verdict
from fsm_actors.jobs.worker import RemoteAsyncJobWorker, RemoteSyncJobWorker
from fsm_actors.pool import ActorPool, pool_actor_name

log = logging.getLogger(__name__)
SAVE_EVERY = 1.0
#: payloads at least this big travel through the object store by reference
PUT_BYTES = 64 << 10


async def run_job(
    kind: JobKind,
    *,
    resumable: bool = False,
    restart: bool = False,
    error_threshold: float | None = None,
    on_progress: Callable[[JobProgress], Any] | None = None,
    address: str | None = None,
    workers: int | None = None,
    on_phase: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Run ``kind`` to the end and return its result record (see ``result_record``).

    ``resumable``: keep a checkpoint under ``kind.checkpoint_dir`` so a re-run with the same
    run id resumes; otherwise a failed run drops its staged work. ``restart``: a checkpoint
    made with other settings is discarded instead of refused. ``on_phase`` hears
    ``"connecting"``, ``"starting workers"``, ``"running"`` and ``"committing"``.
    """
    started = time.time()
    store = CheckpointStore(kind.checkpoint_dir) if resumable and kind.checkpoint_dir else None
    state = JobState(kind, store, restart=restart, error=kind.error)
    if state.committed:  # crashed after the commit, before cleaning up
        result = dict(state.cp.meta["result"])
        _finish_run(kind, state, Staging(kind.staging) if kind.staging else None)
        return result
    staging = Staging(kind.staging) if kind.staging is not None else None
    if on_phase is not None:
        on_phase("connecting")
    runtime.ensure_ray(address)
    if on_phase is not None:
        on_phase("starting workers")
    pool = _pool(kind, workers or kind.workers(runtime.cluster_cpus()), staging)
    totals: dict[str, int] = {}
    lock = threading.Lock()
    items = Prefetch(_put(kind.tasks(state), totals, lock), pool.size * kind.max_in_flight)
    progress = JobProgress(partitions_total=len(kind.partitions()), start_time=started)
    last_save = time.time()

    def apply_totals() -> None:
        with lock:
            pending = dict(totals)
        for partition, total in pending.items():
            state.set_total(partition, total)

    def call(actor, item):
        task, ref = item
        return actor.run.options(name=kind.task_name(task)).remote(task, ref)

    if on_phase is not None:
        on_phase("running")
    try:
        async for _, result in pool.map(call, items, ordered=False):
            state.record(result)
            apply_totals()
            kind.on_result(result)
            if on_progress is not None:
                _report(progress, state, on_progress)
            _check(kind, state, staging, error_threshold, final=False)
            if store is not None and time.time() - last_save >= SAVE_EVERY:
                state.save()
                last_save = time.time()
        items.close()
        pool.shutdown()
        apply_totals()
        state.save()
        _check(kind, state, staging, error_threshold, final=True)
    except BaseException:
        items.close()
        pool.shutdown()
        kind.abort()
        if store is None and staging is not None:  # nothing can resume this run
            staging.remove()
            kind.cleanup()
        raise
    unfinished = state.unfinished()
    if unfinished:
        raise kind.error(
            f"internal: partitions {unfinished[:5]} were not finished; re-run with the same "
            "checkpoint_id to resume",
            run_id=kind.run_id,
        )
    if on_phase is not None:
        on_phase("committing")
    counts = state.counts()
    error_file = _write_errors(kind, staging)
    extra = kind.commit(counts, state.cp.meta)
    result = result_record(
        counts,
        duration=time.time() - started,
        run_id=kind.run_id,
        output_path=extra.pop("output_path", None),
        error_file=str(error_file) if error_file else None,
    )
    result.update(extra)
    state.mark_committed(result)
    _finish_run(kind, state, staging)
    return result


def _finish_run(kind: JobKind, state: JobState, staging: Staging | None) -> None:
    if staging is not None:
        staging.remove()
    state.delete()
    kind.cleanup()


def _pool(kind: JobKind, size: int, staging: Staging | None) -> ActorPool:
    base = f"{kind.pattern}/{kind.run_id}/worker"
    spec_ref = ray.put(kind.step_spec())
    remote = RemoteAsyncJobWorker if kind.async_step else RemoteSyncJobWorker
    extra = {"max_concurrency": kind.worker_concurrency} if kind.async_step else {}

    def make_actor(index: int, generation: int):
        name = pool_actor_name(base, index, generation)
        options = runtime.actor_options("worker", name=name, **extra)
        context = StepContext(kind.run_id, index, str(staging.root) if staging else None)
        return remote.options(**options).remote(spec_ref, context, name)

    return ActorPool(make_actor, size, max_in_flight=kind.max_in_flight, name=base)


def _put(
    tasks: Iterator[Any], totals: dict[str, int], lock: threading.Lock
) -> Iterator[tuple[Task, Any]]:
    """Tasks with their big payloads in the object store; partition totals set aside."""
    for item in tasks:
        if isinstance(item, PartitionTotal):
            with lock:
                totals[item.partition] = item.total
            continue
        payload, item.payload = item.payload, None
        if isinstance(payload, pa.RecordBatch | pa.Table) or _big(payload):
            ref = ray.put(payload)
            del payload
            pa.default_memory_pool().release_unused()
            yield item, ref
        else:
            item.payload = payload
            yield item, None


def _big(payload: Any) -> bool:
    return isinstance(payload, list) and len(payload) >= 256


def _report(progress: JobProgress, state: JobState, on_progress: Callable) -> None:
    counts = state.counts()
    progress.partitions_done = sum(1 for p in state.cp.partitions.values() if p.complete)
    progress.batches_done = sum(
        p.next_batch + len(p.done) for p in state.cp.partitions.values()
    )
    progress.lines_read = counts["read"]
    progress.records_processed = counts["processed"]
    progress.records_written = counts["written"]
    progress.skipped = counts["skipped"]
    progress.errors = counts["errors"]
    on_progress(progress)


def _check(
    kind: JobKind,
    state: JobState,
    staging: Staging | None,
    limit: float | None,
    *,
    final: bool,
) -> None:
    verdict = threshold_verdict(limit, state.counts(), final=final)
    if verdict is None:
        return
    state.save()
    error_file = _write_errors(kind, staging)
    raise kind.error(
        f"{kind.pattern} stopped: {verdict}. The rejected records, with file, line and "
        f"reason, are in {error_file}",
        threshold=True,
        run_id=kind.run_id,
        error_file=str(error_file) if error_file else None,
    )


def _write_errors(kind: JobKind, staging: Staging | None):
    """Join the error parts into the run's error file; no errors: no (stale) error file."""
    if kind.error_file is None or staging is None:
        return None
    parts = staging.error_parts()
    if not parts:
        kind.error_file.unlink(missing_ok=True)
        return None
    concat_errors(kind.error_file, parts)
    return kind.error_file
