"""Where SimpleFSM runs records: in this process, or on a pool of FSM actors.

Both executors take chunks of records and give back result lists in input order; the facade
does not know which one it drives. ``ActorExecutor`` makes one actor call per chunk.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from fsm_actors.engine import DataHandlingMode
from fsm_actors.engine.counts import ChunkResults
from fsm_actors.engine.resources import ResourceSpec
from fsm_actors.platform.errors import WorkerError
from fsm_actors.platform.event_loop import aiter_any
from fsm_actors.platform.pickling import pack, unpack_results
from fsm_actors.worker import FSMWorker, WorkerCounters, pop_traces

#: Worker methods a chunk may be mapped onto.
CHUNK_METHODS = frozenset({"process_batch"})


def _checked(method: str) -> str:
    if method not in CHUNK_METHODS:
        raise ValueError(f"unknown chunk method {method!r}; expected one of {sorted(CHUNK_METHODS)}")
    return method


class Executor(Protocol):
    """Runs records through the machine; results keep input order."""

    async def process_one(
        self, record: dict[str, Any], initial_state: str | None, data_mode: DataHandlingMode
    ) -> dict[str, Any]: ...

    def map(
        self,
        method: str,
        chunks: Iterable[Any] | AsyncIterable[Any],
        data_mode: DataHandlingMode,
        workers: int | None = None,
        trace: int = 0,
    ) -> AsyncIterator[Any]: ...

    def parallelism(self) -> int: ...

    async def ready(self) -> None: ...

    def status(self) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs the machine in this process (debugging, tiny inputs). Never imports Ray.

    The work runs on one private thread, so the caller's event loop stays free: a timeout
    is honoured while a record runs (the call returns at the timeout; the record it was
    running finishes on that thread and its result is dropped, and no later chunk of that
    call starts), concurrent calls are served one after another, and async user functions
    can be driven by the sync bridge.
    """

    def __init__(self, config: Any, custom_functions: Mapping[str, Callable[..., Any]] | None,
                 resources: Any = None, count_states: bool = True) -> None:
        self.worker = FSMWorker(config, custom_functions, resources=resources,
                                count_states=count_states)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsm-local")

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.wrap_future(self._thread.submit(fn, *args))

    async def process_one(
        self, record: Any, initial_state: str | None, data_mode: DataHandlingMode
    ) -> dict[str, Any]:
        return await self._run(
            self.worker.process, record, initial_state, data_mode, uuid.uuid4().hex[:12]
        )

    async def map(
        self,
        method: str,
        chunks: Iterable[Any] | AsyncIterable[Any],
        data_mode: DataHandlingMode,
        workers: int | None = None,
        trace: int = 0,
    ) -> AsyncIterator[Any]:
        run = getattr(self.worker, _checked(method))
        prefix = uuid.uuid4().hex[:8]

        def counted(chunk: Any, mode: DataHandlingMode, name: str, traced: Any) -> ChunkResults:
            results = run(chunk, mode, name, traced)
            traces = None if traced is None else pop_traces(results)
            return ChunkResults(results, self.worker.last_counts, traces)

        async for n, first, _, chunk in _numbered(chunks, None):
            yield await self._run(
                counted, chunk, data_mode, f"{prefix}-{n + 1}", sampled(trace, first)
            )

    def parallelism(self) -> int:
        return 1

    async def ready(self) -> None:
        """Nothing to start in-process."""

    def status(self) -> list[dict[str, Any]]:
        """The in-process worker's live counters (as ``FSMActor.status``)."""
        return [self.worker.status()]

    def close(self) -> None:
        """Let the private thread end once its current work is done."""
        self._thread.shutdown(wait=False)


class ActorExecutor:
    """A pool of ``FSMActor``s named ``fsm/<fsm name>/<index>``, started at construction
    (placement overlaps the caller's own work before the first batch)."""

    def __init__(
        self,
        config: Any,
        custom_functions: Mapping[str, Callable[..., Any]] | None,
        fsm_name: str,
        *,
        actors: int | None = None,
        address: str | None = None,
        max_in_flight: int = 2,
        resource_spec: ResourceSpec | None = None,
        actor_options: Mapping[str, Any] | None = None,
        count_states: bool = True,
    ) -> None:
        self._count_states = count_states
        self._config = config
        self._functions = dict(custom_functions or {})
        self._fsm_name = fsm_name
        self._actors = actors
        self._address = address
        self._max_in_flight = max_in_flight
        self._resource_spec = resource_spec
        self._actor_options = dict(actor_options or {})
        self._pool = None
        self._base_name: str | None = None
        self._calls = 0
        from fsm_actors.platform import runtime

        # connect now, on the caller's thread: ray.init from the bridge thread cannot install
        # its signal handlers
        self.runtime_info = runtime.ensure_ray(address)
        self._ensure_pool()

    def _ensure_pool(self):
        if self._pool is not None:
            return self._pool
        from fsm_actors.actors.fsm_actor import FSMActor
        from fsm_actors.platform import runtime
        from fsm_actors.platform.actor_pool import ActorPool, pool_actor_name

        runtime.ensure_ray(self._address)
        ship_user_modules_by_value(self._functions.values())
        size = self._actors or runtime.cluster_cpus()
        self._base_name = _free_base_name(f"fsm/{self._fsm_name}")
        config_ref = self._config
        base = self._base_name

        def make(index: int, generation: int):
            name = pool_actor_name(base, index, generation)
            opts = runtime.actor_options("worker", name=name, **self._actor_options)
            return FSMActor.options(**opts).remote(
                config_ref, self._functions, name, self._resource_spec, index,
                self._count_states,
            )

        self._snapshots = [WorkerCounters() for _ in range(size)]
        self._pool = ActorPool(
            make, size, max_in_flight=self._max_in_flight, name=base, on_replace=self._restore
        )
        return self._pool

    def _restore(self, index: int, actor: Any) -> None:
        """A replacement actor continues the counters of the one that died."""
        actor.restore.remote(asdict(self._snapshots[index]))

    def _account(self, index: int, result: Any) -> None:
        """Keep the driver's copy of slot ``index``'s counters (the actor's die with it)."""
        self._snapshots[index].add(*result[:3])

    @property
    def pool(self):
        """The actor pool."""
        return self._ensure_pool()

    async def process_one(
        self, record: Any, initial_state: str | None, data_mode: DataHandlingMode
    ) -> dict[str, Any]:
        pool = self._ensure_pool()
        execution_id = uuid.uuid4().hex[:12]
        task = f"{self._fsm_name} record {execution_id}"
        with self._worker_errors(task):
            return await pool.call(
                lambda actor, rec: actor.process.options(name=task).remote(
                    rec, initial_state, data_mode, execution_id
                ),
                record,
            )

    async def map(
        self,
        method: str,
        chunks: Iterable[Any] | AsyncIterable[Any],
        data_mode: DataHandlingMode,
        workers: int | None = None,
        trace: int = 0,
    ) -> AsyncIterator[Any]:
        pool = self._ensure_pool()
        self._calls += 1
        prefix = f"{uuid.uuid4().hex[:6]}{self._calls}"
        fsm = self._fsm_name
        _checked(method)
        # each call is named for the dashboard's task views: "<fsm> chunk 3 rows 512-767"
        items = _numbered(chunks, pack)

        def call(actor: Any, item: tuple[int, int, int, Any]) -> Any:
            n, first, rows, payload = item
            remote = actor.process_packed
            name = f"{fsm} chunk {n} rows {first}-{first + rows - 1}"
            return remote.options(name=name).remote(
                payload, data_mode, f"{prefix}-{n}", sampled(trace, first)
            )

        with self._worker_errors(f"{fsm} {method}"):
            async for _, result in pool.map(
                call, items, actors=workers, on_complete=self._account
            ):
                # dict batches travel packed, results column-wise (see platform.pickling)
                yield ChunkResults(unpack_results(result[3]), result[4], result[5])

    @contextmanager
    def _worker_errors(self, what: str) -> Iterator[None]:
        """A whole call that failed on an actor arrives as ``WorkerError`` (not Ray's)."""
        from ray.exceptions import RayTaskError

        try:
            yield
        except RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
            raise WorkerError(
                f"FSM {self._fsm_name!r}: an actor failed while running {what}: "
                f"{type(cause).__name__}: {cause}. Records are not at fault here; this is "
                "a bug or a broken environment on the worker (the cause is chained below).",
                fsm=self._fsm_name,
                call=what,
                cause_type=type(cause).__name__,
            ) from cause

    def parallelism(self) -> int:
        return self._ensure_pool().size

    async def ready(self) -> None:
        """Wait until every actor is placed and constructed (``PoolError`` if one cannot
        be, with the reason)."""
        await self._ensure_pool().wait_ready()

    def status(self) -> list[dict[str, Any]]:
        """Each actor's live counters (``FSMActor.status``); a dead actor reports an error."""
        import ray

        refs = [actor.status.remote() for actor in self._ensure_pool().actors]
        out = []
        for index, ref in enumerate(refs):
            try:
                out.append(ray.get(ref, timeout=10))
            except Exception as exc:  # a dead or busy-past-timeout actor is still listed
                out.append({"index": index, "error": f"{type(exc).__name__}: {exc}"})
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def sampled(trace: int, first: int) -> range | None:
    """The indices to trace in a chunk starting at record ``first`` of a ``trace=N`` run
    (its share of the first N records; failed records are traced besides), or ``None``
    when not tracing (records run untraced)."""
    return range(max(0, trace - first)) if trace else None


async def _numbered(
    chunks: Iterable[Any] | AsyncIterable[Any], encode: Callable[[Any], Any] | None
) -> AsyncIterator[tuple[int, int, int, Any]]:
    """``(chunk number, first row, rows, payload)`` for each chunk."""
    first = 0
    n = 0
    async for chunk in aiter_any(chunks):
        rows = len(chunk) if hasattr(chunk, "__len__") else getattr(chunk, "num_rows", 0)
        yield n, first, rows, (encode(chunk) if encode is not None else chunk)
        n += 1
        first += rows


_OWN_PACKAGES = frozenset({"fsm_actors", "resource_actors", "patterns"})


def ship_user_modules_by_value(functions: Iterable[Callable[..., Any]]) -> None:
    """Pickle the modules of user functions by value, so actors need not import them.

    A function defined in a script directory or a notebook module is importable in the
    driver only; by reference, the actor fails with ModuleNotFoundError. Modules of installed
    packages (site-packages, the standard library, this project) stay by reference.
    """
    import sys
    import sysconfig

    from ray import cloudpickle

    installed = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib")}
    for fn in functions:
        module = sys.modules.get(getattr(fn, "__module__", "") or "")
        path = getattr(module, "__file__", None)
        if module is None or module.__name__ == "__main__" or path is None:
            continue
        top = module.__name__.split(".")[0]
        resolved = Path(path).resolve()
        if top in _OWN_PACKAGES or any(resolved.is_relative_to(p) for p in installed):
            continue
        cloudpickle.register_pickle_by_value(module)


def _free_base_name(base: str) -> str:
    """``base`` if no actor uses ``base/0`` in the namespace yet, else ``base#2``, ``base#3``…"""
    import ray

    from fsm_actors.platform import runtime

    candidate, n = base, 1
    while True:
        try:
            ray.get_actor(f"{candidate}/0", namespace=runtime.namespace())
        except ValueError:
            return candidate
        n += 1
        candidate = f"{base}#{n}"
