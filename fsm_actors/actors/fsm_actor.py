"""``FSMActor``: a Ray actor hosting one ``FSMWorker``; named ``fsm/<fsm name>/<index>``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import ray
from ray.util.metrics import Counter, Histogram

from fsm_actors.engine import DataHandlingMode
from fsm_actors.engine.resources import ResourceSpec
from fsm_actors.platform.gc_pause import gc_paused
from fsm_actors.platform.pickling import pack_results, unpack
from fsm_actors.worker import FSMWorker


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
        tags = {"fsm": self._worker.machine.name}
        self._records = Counter(
            "fsm_actors_records", "Records run through an FSM", tag_keys=("fsm", "outcome")
        )
        self._records.set_default_tags(tags)
        self._batch_seconds = Histogram(
            "fsm_actors_batch_seconds",
            "Time to run one batch through an FSM actor",
            boundaries=[0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
            tag_keys=("fsm",),
        )
        self._batch_seconds.set_default_tags(tags)

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
    ) -> list[dict[str, Any]]:
        self._named()
        started = time.perf_counter()
        results = self._worker.process_batch(records, data_mode, execution_id_prefix)
        self._batch_seconds.observe(time.perf_counter() - started)
        _, failed, _ = self._worker.last_summary
        self._count(len(results) - failed, failed)
        return results

    def _count(self, succeeded: int, failed: int) -> None:
        # Ray's Counter refuses inc(0): a chunk where every record failed is still a result
        if succeeded:
            self._records.inc(succeeded, {"outcome": "success"})
        if failed:
            self._records.inc(failed, {"outcome": "failure"})

    def process_packed(
        self,
        payload: bytes,
        data_mode: DataHandlingMode = DataHandlingMode.COPY,
        execution_id_prefix: str | None = None,
    ) -> tuple[int, int, str | None, bytes, dict[str, Any] | None]:
        """``process_batch`` with records and results as packed bytes (see ``_wire``);
        returns ``(records, failed, last final state, packed results, the chunk's per-state
        counts)`` (``engine.counts.StateCounts.dump()``, ``None`` with counting off). The cyclic GC is
        held for the whole call (records in, results out): collections over the just-made
        results cost more than packing them."""
        with gc_paused():
            results = self.process_batch(unpack(payload), data_mode, execution_id_prefix)
            packed = pack_results(results)
            return (*self._worker.last_summary, packed, self._worker.last_counts)

    def snapshot(self) -> dict[str, Any]:
        return self._worker.snapshot()

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        self._worker.restore(snapshot)

    def status(self) -> dict[str, Any]:
        """Live counters (records, failed, batches, busy, ...) for ``fsm-actors status``,
        with the actor's process id (to profile it: ``py-spy dump --pid``)."""
        return {**self._worker.status(), "last_task": self._last_task, "pid": os.getpid()}

    def __repr__(self) -> str:
        return self._identity
