"""``FSMActor``: a Ray actor hosting one ``FSMWorker``; named ``fsm/<fsm name>/<index>``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import ray

from fsm_actors.engine import DataHandlingMode
from fsm_actors.engine.resources import ResourceSpec
from fsm_actors.platform import metrics
from fsm_actors.platform.gc_pause import gc_paused
from fsm_actors.platform.pickling import pack_results, unpack
from fsm_actors.worker import FSMWorker, pop_traces


@ray.remote
class FSMActor:
    """Thin shell: every method delegates to the hosted ``FSMWorker``."""

    def __init__(
        self,
        config: Any,
        custom_functions: Mapping[str, Callable[..., Any]] | None = None,
        label: str = "",
        resource_spec: ResourceSpec | None = None,
        index: int = 0,
        count_states: bool = True,
    ) -> None:
        resources = None
        if resource_spec is not None:
            resources = resource_spec.bind()
        self._worker = FSMWorker(
            config, custom_functions, resources=resources, label=label, owns_inputs=True,
            count_states=count_states,
        )
        config_source = getattr(self._worker.machine.config, "source", None)
        # identity only: Ray's dashboard captures the repr once, when the actor starts
        self._identity = (
            f"FSMActor(fsm={self._worker.machine.name!r}, index={index}"
            + (f", config={config_source!r})" if config_source else ")")
        )
        self._last_task: str | None = None
        # the catalog's metrics (fsm_actors.platform.metrics), as job workers record them
        self._tags = {"pipeline": self._worker.machine.name, "run": "", "role": "fsm"}

    def process(
        self,
        record: dict[str, Any],
        initial_state: str | None = None,
        data_mode: DataHandlingMode = DataHandlingMode.COPY,
        execution_id: str | None = None,
    ) -> dict[str, Any]:
        self._named()
        return self._worker.process(record, initial_state, data_mode, execution_id)

    def _named(self) -> None:
        """Remember the task name the driver gave this call (``status()['last_task']``)."""
        self._last_task = ray.get_runtime_context().get_task_name()

    def process_batch(
        self,
        records: list[dict[str, Any]],
        data_mode: DataHandlingMode = DataHandlingMode.COPY,
        execution_id_prefix: str | None = None,
        trace: Any = None,
    ) -> list[dict[str, Any]]:
        self._named()
        started = time.perf_counter()
        results = self._worker.process_batch(records, data_mode, execution_id_prefix, trace)
        metrics.observe("batch_seconds", time.perf_counter() - started, **self._tags)
        _, failed, _ = self._worker.last_summary
        self._count(len(results) - failed, failed)
        return results

    def _count(self, succeeded: int, failed: int) -> None:
        metrics.inc("records", succeeded + failed, **self._tags)  # zero counts are skipped
        metrics.inc("errors", failed, **self._tags)
        metrics.inc("batches", 1, **self._tags)

    def process_packed(
        self,
        payload: bytes,
        data_mode: DataHandlingMode = DataHandlingMode.COPY,
        execution_id_prefix: str | None = None,
        trace: Any = None,
    ) -> tuple[int, int, str | None, bytes, dict[str, Any] | None, dict[int, Any] | None]:
        """``process_batch`` with records and results as packed bytes (see ``_wire``);
        returns ``(records, failed, last final state, packed results, the chunk's per-state
        counts, traces)``: counts as ``engine.counts.StateCounts.dump()`` (``None`` with
        counting off), traces as ``worker.pop_traces`` (``None`` unless ``trace``, the chunk
        indices to sample, is given). The cyclic GC is held for the whole call (records in,
        results out): collections over the just-made results cost more than packing them."""
        with gc_paused():
            results = self.process_batch(unpack(payload), data_mode, execution_id_prefix, trace)
            traces = None if trace is None else pop_traces(results)
            packed = pack_results(results)
            return (*self._worker.last_summary, packed, self._worker.last_counts, traces)

    def snapshot(self) -> dict[str, Any]:
        return self._worker.snapshot()

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        self._worker.restore(snapshot)

    def status(self) -> dict[str, Any]:
        """Live counters (records, failed, batches, busy, ...) for ``fsm-actors status``,
        with the actor's process id (to profile it: ``py-spy dump --pid``) and the CPU
        seconds its process has used (``cpu_seconds``, ``time.process_time``)."""
        return {**self._worker.status(), "last_task": self._last_task, "pid": os.getpid(),
                "cpu_seconds": time.process_time()}

    def __repr__(self) -> str:
        return self._identity
