"""The one driver of every job (Ray): tasks over the actor pool, checkpoint, threshold, commit.

``run_job`` reads the kind's tasks on a thread a bounded number ahead (batches go into the
object store once, by reference), maps them over one ``ActorPool`` of job workers
(``<pattern>/<run id>/worker/<i>``), records each durable batch in the checkpoint (saved at
most every ``SAVE_EVERY`` seconds, always over durable work only), stops past the error
threshold with the rejected records in the error file, and at the end has the kind commit
its output atomically. A run with a checkpoint id that finished already returns its result.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from fsm_actors.platform.errors import FSMError
from fsm_actors.platform.io import storage
from fsm_actors.platform.jobs.checkpoint import CheckpointStore, JobState, threshold_verdict
from fsm_actors.platform.jobs.errors import JobError
from fsm_actors.platform.jobs.forked_lanes import ForkedLanes
from fsm_actors.platform.jobs.forked_lanes import available as can_fork
from fsm_actors.platform.jobs.heartbeat import Heartbeat, notice, pipeline_of
from fsm_actors.platform.jobs.model import (
    JobKind,
    PartitionTotal,
    StepContext,
    Task,
    TaskResult,
    result_record,
)
from fsm_actors.platform.jobs.parts import Staging, concat_errors
from fsm_actors.platform.jobs.progress import JobProgress, in_process

log = logging.getLogger(__name__)
SAVE_EVERY = 1.0
#: Seconds the idle workers of a finished job get to close their steps before they are killed.
CLOSE_WAIT = 5.0
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
    local: bool = False,
    memory_limit: int | None = None,
) -> dict[str, Any]:
    """Run ``kind`` to the end and return its result record (see ``result_record``).

    ``resumable``: keep a checkpoint under ``kind.checkpoint_dir`` so a re-run with the same
    run id resumes; otherwise a failed run drops its staged work. ``restart``: a checkpoint
    made with other settings is discarded instead of refused. ``on_phase`` hears
    ``"connecting"``, ``"running"`` and ``"committing"``. ``local=True`` runs the same
    step in this process, one task at a time, without Ray. ``memory_limit``: the bytes of
    batches in flight (read and not yet finished) stay under it — reading waits — and each
    worker asks Ray for its share as ``memory``; a single batch bigger than the limit runs
    alone. The result's ``peak_bytes_in_flight`` is the most there ever were.
    """
    started = time.time()
    store = CheckpointStore(kind.checkpoint_dir) if resumable and kind.checkpoint_dir else None
    state = JobState(kind, store, restart=restart, error=kind.error)
    if state.committed:  # crashed after the commit, before cleaning up
        result = dict(state.cp.meta["result"])
        _finish_run(kind, state, Staging(kind.staging) if kind.staging else None)
        return result
    staging = Staging(kind.staging) if kind.staging is not None else None
    totals: dict[str, int] = {}
    lock = threading.Lock()
    progress = JobProgress(partitions_total=len(kind.partitions()), start_time=started)
    last_save = time.time()

    def apply_totals() -> None:
        with lock:
            pending = dict(totals)
        for partition, total in pending.items():
            state.set_total(partition, total)

    local = local or in_process()  # a small CLI run that names no cluster
    if local:  # the CLI's in-process runs may fork lanes; the API's local=True never does
        forked = kind.forked_lanes > 1 and not kind.async_step and in_process() and can_fork()
        runner: Any = _LocalRunner(kind, staging, forked=forked)
    else:
        runner = _PoolRunner(kind, staging, memory_limit)
    if on_phase is not None:
        on_phase("connecting" if not local else "starting")
    await runner.start(address, workers)
    if on_phase is not None:
        on_phase("running")
    items = Prefetch(runner.prepare(kind.tasks(state), totals, lock), runner.depth)
    beat = Heartbeat(kind, runner).start()  # live figures: status, progress lines
    try:
        async for result in runner.results(items):
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
        beat.stop()
        runner.close()
        apply_totals()
        state.save()
        _check(kind, state, staging, error_threshold, final=True)
    except BaseException as exc:
        items.close()
        beat.stop()
        runner.close()
        kind.abort()
        if store is None and staging is not None:  # nothing can resume this run
            staging.remove()
            kind.cleanup()
        cause = getattr(exc, "cause", exc)  # a worker's error arrives wrapped by Ray
        if isinstance(cause, FSMError) and not isinstance(cause, JobError):
            raise kind.error(
                f"{kind.pattern} stopped: {cause.message or cause}"
                + (f" ({cause.source})" if getattr(cause, "source", None) else ""),
                run_id=kind.run_id,
            ) from None
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
    result["peak_bytes_in_flight"] = getattr(runner, "budget", None) and runner.budget.peak
    if state.resumed:  # records an earlier, stopped run of this checkpoint had done
        result["resumed"] = state.resumed
    state.mark_committed(result)
    _finish_run(kind, state, staging)
    return result


def _finish_run(kind: JobKind, state: JobState, staging: Staging | None) -> None:
    if staging is not None:
        staging.remove()
    state.delete()
    kind.cleanup()


class _PoolRunner:
    """Tasks on an ``ActorPool`` of job workers (``<pattern>/<run id>/worker/<i>``)."""

    def __init__(self, kind: JobKind, staging: Staging | None,
                 memory_limit: int | None = None) -> None:
        self.kind = kind
        self.staging = staging
        self.pool: Any = None
        self.depth = 1
        self.memory_limit = memory_limit
        self.budget = _ByteBudget(memory_limit)
        # bytes each batch in flight holds: by id(task) under a limit (released when its call
        # ends: the pool may be waiting for the next batch), else by (partition, batch)
        self._sizes: dict[Any, int] = {}

    async def start(self, address: str | None, workers: int | None) -> None:
        import ray

        from fsm_actors.platform import runtime
        from fsm_actors.platform.actor_pool import ActorPool, pool_actor_name
        from fsm_actors.platform.jobs.worker import RemoteAsyncJobWorker, RemoteSyncJobWorker

        kind, staging = self.kind, self.staging
        runtime.ensure_ray(address)
        notice = storage.local_paths_notice(kind.local_paths(), _other_nodes())
        if notice:
            log.warning("%s", notice)
        size = workers or kind.workers(runtime.cluster_cpus())
        base = f"{kind.pattern}/{kind.run_id}/worker"
        spec_ref = ray.put(kind.step_spec())
        remote = RemoteAsyncJobWorker if kind.async_step else RemoteSyncJobWorker
        extra = {"max_concurrency": kind.worker_concurrency} if kind.async_step else {}
        if self.memory_limit:
            extra["memory"] = max(1, self.memory_limit // size)

        def make_actor(index: int, generation: int):
            name = pool_actor_name(base, index, generation)
            _evict_leftover(name)
            options = runtime.actor_options("worker", name=name, **extra)
            context = StepContext(kind.run_id, index, str(staging.root) if staging else None)
            return remote.options(**options).remote(spec_ref, context, name, pipeline_of(kind))

        self.pool = ActorPool(make_actor, size, max_in_flight=kind.max_in_flight, name=base)
        self.depth = size * kind.max_in_flight

    def prepare(
        self, tasks: Iterator[Any], totals: dict[str, int], lock: threading.Lock
    ) -> Iterator[tuple[Task, Any]]:
        """Tasks with their big payloads in the object store; partition totals set aside."""
        import ray

        for item in _tasks(tasks, totals, lock):
            payload, item.payload = item.payload, None
            if isinstance(payload, pa.RecordBatch | pa.Table) or _big(payload):
                size = _nbytes(payload)
                self._sizes[id(item) if self.memory_limit else (item.partition, item.seq)] = size
                if not self.budget.acquire(size):
                    return  # the run stopped while reading waited
                ref = ray.put(payload)
                del payload
                pa.default_memory_pool().release_unused()
                yield item, ref
            else:
                item.payload = payload
                yield item, None

    async def results(self, items: Prefetch) -> AsyncIterator[TaskResult]:
        kind = self.kind

        def call(actor, item):
            task, ref = item
            out = actor.run.options(name=kind.task_name(task)).remote(task, ref)
            size = self._sizes.pop(id(task), 0) if self.memory_limit else 0
            if size:  # the batch leaves the budget when its call ends, whoever awaits it
                out.future().add_done_callback(lambda _: self.budget.release(size))
            return out

        async for _, result in self.pool.map(call, items, ordered=False):
            if not self.memory_limit:  # measured only: released as results arrive
                for seq in result.batches:
                    self.budget.release(self._sizes.pop((result.partition, seq), 0))
            yield result

    def close(self) -> None:
        self.budget.close()
        if self.pool is None:
            return
        import ray

        if self.pool.busy == 0:
            # idle steps release their leases themselves (else providers reclaim them once
            # they see the killed actors gone, and warn); busy ones (a cancelled run) are
            # killed at once and reclaimed
            refs = [actor.close.remote() for actor in self.pool.actors]
            try:
                ray.wait(refs, num_returns=len(refs), timeout=CLOSE_WAIT)
            except Exception:  # a dead worker holds nothing: the kill below is all it needs
                pass
        self.pool.shutdown()


class _LocalRunner:
    """Tasks run without Ray (``local=True``): one at a time in this process, or on
    ``kind.local_lanes`` threads at once, each with its own step (built from its own copy of
    the spec, as each worker builds its own), or, for a run the CLI asked to go in-process,
    on ``kind.forked_lanes`` processes forked from this one (``forked_lanes``). Results come
    as they finish, like the pool's."""

    def __init__(self, kind: JobKind, staging: Staging | None, forked: bool = False) -> None:
        self.kind = kind
        self.staging = staging
        self.steps: list[Callable[[Task], Any]] = []  # one ``run`` per lane
        self._built: list[Any] = []  # the steps of this process's lanes
        self.forked: ForkedLanes | None = None
        self._forked = forked
        if kind.async_step:
            self.lanes = 1
        else:
            self.lanes = max(1, kind.forked_lanes if forked else kind.local_lanes)
        self.depth = 2 * self.lanes
        # joined on close: a cancelled run must not write after its clean-up
        self._thread = ThreadPoolExecutor(self.lanes, thread_name_prefix="job-local")

    async def start(self, address: str | None, workers: int | None) -> None:
        spec = self.kind.step_spec()
        root = str(self.staging.root) if self.staging else None
        if self._forked:  # before the run starts threads of its own
            self.forked = ForkedLanes(spec, self.kind.run_id, root, self.lanes)
            self.steps = [functools.partial(self.forked.run, i) for i in range(self.lanes)]
            notice(f"its tasks run on {self.lanes} processes forked from this one")
            return
        if self.lanes > 1:
            notice(f"its tasks run on {self.lanes} threads (Arrow kernels only)")
        for index in range(self.lanes):
            own = spec if index == 0 else copy.deepcopy(spec)
            self._built.append(own.build(StepContext(self.kind.run_id, index, root)))
        self.steps = [step.run for step in self._built]

    def prepare(
        self, tasks: Iterator[Any], totals: dict[str, int], lock: threading.Lock
    ) -> Iterator[Task]:
        return _tasks(tasks, totals, lock)

    async def results(self, items: Prefetch) -> AsyncIterator[TaskResult]:
        if self.kind.async_step:
            async for task in items:
                yield await self.steps[0](task)
            return
        loop = asyncio.get_running_loop()
        free = list(self.steps)
        running: dict[asyncio.Future[TaskResult], Any] = {}

        async def finished() -> AsyncIterator[TaskResult]:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                free.append(running.pop(future))
                yield future.result()

        async for task in items:
            if not free:
                async for result in finished():
                    yield result
            step = free.pop()
            running[loop.run_in_executor(self._thread, step, task)] = step
        while running:
            async for result in finished():
                yield result

    def close(self) -> None:
        if self.forked is not None:  # busy children are killed: their calls end at once
            self.forked.close()
        self._thread.shutdown(wait=True)
        for step in self._built:
            step.close()
        self._built, self.steps = [], []


def _other_nodes() -> list[str]:
    """Addresses of the alive nodes with CPUs other than this driver's."""
    import ray

    here = ray.get_runtime_context().get_node_id()
    return sorted(
        {
            n.get("NodeManagerAddress", "?") + f" ({n['NodeID'][:8]})"
            for n in ray.nodes()
            if n.get("Alive") and n.get("NodeID") != here and n.get("Resources", {}).get("CPU")
        }
    )


def _evict_leftover(name: str, wait: float = 15.0) -> None:
    """Stop a worker of this name left by an earlier attempt of the same run (one cut short
    while its calls still ran, or whose driver died) so the new one can take the name."""
    import ray

    from fsm_actors.platform import runtime

    try:
        old = ray.get_actor(name, namespace=runtime.namespace())
    except ValueError:
        return
    log.warning("worker %r is left from an earlier attempt of this run: stopping it", name)
    ray.kill(old, no_restart=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            ray.get_actor(name, namespace=runtime.namespace())
        except ValueError:
            return
        time.sleep(0.05)


_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch:
    """Pulls ``items`` on a daemon thread into a queue of at most ``depth`` items, so the
    reader starts while the workers are still starting and keeps reading while the event loop
    handles results; memory stays flat in input size.

    Iterate it once with ``async for``; an exception of the iterator is re-raised there.
    ``close`` stops the thread (it finishes the item it is producing, then exits).
    """

    def __init__(self, items: Iterator[Any], depth: int) -> None:
        self._items = items
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="file-reader", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(_Failed(exc))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            item = await asyncio.to_thread(self._queue.get)
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop reading and drop what was read ahead."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return


def _tasks(tasks: Iterator[Any], totals: dict[str, int], lock: threading.Lock) -> Iterator[Task]:
    for item in tasks:
        if isinstance(item, PartitionTotal):
            with lock:
                totals[item.partition] = item.total
            continue
        yield item


class _ByteBudget:
    """Bytes of batches in flight, bounded by ``limit`` (``None``: only measured).

    ``acquire`` (the reading thread) waits while taking ``n`` would pass the limit and
    something is in flight; ``release`` (the event loop) gives bytes back; ``close`` wakes a
    waiting reader for good. ``peak`` is the most bytes ever in flight."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._closed = False
        self._cond = threading.Condition()

    def acquire(self, n: int) -> bool:
        with self._cond:
            while (self.limit and self.used and self.used + n > self.limit
                   and not self._closed):
                self._cond.wait(0.5)
            if self._closed:
                return False
            self.used += n
            self.peak = max(self.peak, self.used)
            return True

    def release(self, n: int) -> None:
        if n:
            with self._cond:
                self.used = max(0, self.used - n)
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _nbytes(payload: Any) -> int:
    """The bytes a batch holds (Arrow buffers; a list of records: its JSON-ish size)."""
    if isinstance(payload, pa.RecordBatch | pa.Table):
        return int(payload.nbytes)
    import sys

    return sum(sys.getsizeof(r) for r in payload)


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
        storage.delete(str(kind.error_file))
        return None
    concat_errors(kind.error_file, parts)
    return storage.redact(kind.error_file) if storage.is_remote(kind.error_file) else (
        kind.error_file
    )
