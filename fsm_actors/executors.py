"""Where SimpleFSM runs records: in this process, or on a pool of FSM actors.

Both executors take chunks of records and give back result lists in input order; the facade
does not know which one it drives. ``ActorExecutor`` makes one actor call per chunk.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from fsm_actors._sync import aiter_any
from fsm_actors._wire import pack, unpack
from fsm_actors.engine import DataHandlingMode
from fsm_actors.worker import ChunkOutcome, FSMWorker, WorkerCounters

#: Worker methods a chunk may be mapped onto.
CHUNK_METHODS = frozenset({"process_batch", "process_chunk"})


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
    ) -> AsyncIterator[Any]: ...

    def parallelism(self) -> int: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs the machine in this process (debugging, tiny inputs). Never imports Ray."""

    def __init__(self, config: Any, custom_functions: Mapping[str, Callable[..., Any]] | None,
                 resources: Any = None) -> None:
        self.worker = FSMWorker(config, custom_functions, resources=resources)

    async def process_one(
        self, record: dict[str, Any], initial_state: str | None, data_mode: DataHandlingMode
    ) -> dict[str, Any]:
        return self.worker.process(record, initial_state, data_mode, uuid.uuid4().hex[:12])

    async def map(
        self,
        method: str,
        chunks: Iterable[Any] | AsyncIterable[Any],
        data_mode: DataHandlingMode,
        workers: int | None = None,
    ) -> AsyncIterator[Any]:
        run = getattr(self.worker, _checked(method))
        prefix = uuid.uuid4().hex[:8]
        n = 0
        async for chunk in aiter_any(chunks):
            n += 1
            yield run(chunk, data_mode, f"{prefix}-{n}")
            await asyncio.sleep(0)

    def parallelism(self) -> int:
        return 1

    def close(self) -> None:
        """Nothing to free in-process."""


class ActorExecutor:
    """A pool of ``FSMActor``s named ``fsm/<fsm name>/<index>``, created on first use."""

    def __init__(
        self,
        config: Any,
        custom_functions: Mapping[str, Callable[..., Any]] | None,
        fsm_name: str,
        *,
        actors: int | None = None,
        address: str | None = None,
        max_in_flight: int = 2,
        resource_spec: Mapping[str, Any] | None = None,
        actor_options: Mapping[str, Any] | None = None,
    ) -> None:
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
        from fsm_actors import runtime

        # connect now, on the caller's thread: ray.init from the bridge thread cannot install
        # its signal handlers
        self.runtime_info = runtime.ensure_ray(address)

    def _ensure_pool(self):
        if self._pool is not None:
            return self._pool
        from fsm_actors import runtime
        from fsm_actors.actors.fsm_actor import FSMActor
        from fsm_actors.pool import ActorPool, pool_actor_name

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
                config_ref, self._functions, name, self._resource_spec
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
        if isinstance(result, ChunkOutcome):
            self._snapshots[index].add(result.records, result.failed, None)
        else:
            self._snapshots[index].add(*result[:3])

    @property
    def pool(self):
        """The actor pool (created on first access)."""
        return self._ensure_pool()

    async def process_one(
        self, record: dict[str, Any], initial_state: str | None, data_mode: DataHandlingMode
    ) -> dict[str, Any]:
        pool = self._ensure_pool()
        execution_id = uuid.uuid4().hex[:12]
        async for _, result in pool.map(
            lambda actor, rec: actor.process.remote(rec, initial_state, data_mode, execution_id),
            [record],
        ):
            return result
        raise RuntimeError("actor pool returned no result")  # map yields once per item

    async def map(
        self,
        method: str,
        chunks: Iterable[Any] | AsyncIterable[Any],
        data_mode: DataHandlingMode,
        workers: int | None = None,
    ) -> AsyncIterator[Any]:
        pool = self._ensure_pool()
        prefix = uuid.uuid4().hex[:8]
        if _checked(method) == "process_batch":
            # dict batches travel packed: the GC-paused unpack is 3x cheaper (see _wire)
            async for _, (_n, _failed, _last, packed) in pool.map(
                lambda actor, chunk: actor.process_packed.remote(chunk, data_mode, prefix),
                (pack(chunk) async for chunk in aiter_any(chunks)),
                actors=workers,
                on_complete=self._account,
            ):
                yield unpack(packed)
            return
        async for _, result in pool.map(
            lambda actor, chunk: actor.process_chunk.remote(chunk, data_mode, prefix),
            chunks,
            actors=workers,
            on_complete=self._account,
        ):
            yield result

    def parallelism(self) -> int:
        return self._ensure_pool().size

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


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

    from fsm_actors import runtime

    candidate, n = base, 1
    while True:
        try:
            ray.get_actor(f"{candidate}/0", namespace=runtime.namespace())
        except ValueError:
            return candidate
        n += 1
        candidate = f"{base}#{n}"
