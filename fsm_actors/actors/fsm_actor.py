"""``FSMActor``: a Ray actor hosting one ``FSMWorker``; named ``fsm/<fsm name>/<index>``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import ray
from ray.util.metrics import Counter, Histogram

from fsm_actors._wire import pack, unpack
from fsm_actors.engine import DataHandlingMode
from fsm_actors.worker import ChunkOutcome, FSMWorker, batch_summary


@ray.remote
class FSMActor:
    """Thin shell: every method delegates to the hosted ``FSMWorker``."""

    def __init__(
        self,
        config: Any,
        custom_functions: Mapping[str, Callable[..., Any]] | None = None,
        label: str = "",
        resource_spec: Mapping[str, Any] | None = None,
    ) -> None:
        resources = None
        if resource_spec is not None:
            from resource_actors.binder import binder_from_spec

            resources = binder_from_spec(resource_spec)
        self._worker = FSMWorker(
            config, custom_functions, resources=resources, label=label, owns_inputs=True
        )
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
        return self._worker.process(record, initial_state, data_mode, execution_id)

    def process_batch(
        self,
        records: list[dict[str, Any]],
        data_mode: DataHandlingMode = DataHandlingMode.COPY,
        execution_id_prefix: str | None = None,
    ) -> list[dict[str, Any]]:
        started = time.perf_counter()
        results = self._worker.process_batch(records, data_mode, execution_id_prefix)
        self._batch_seconds.observe(time.perf_counter() - started)
        failed = sum(1 for r in results if not r["success"])
        self._records.inc(len(results) - failed, {"outcome": "success"})
        if failed:
            self._records.inc(failed, {"outcome": "failure"})
        return results

    def process_packed(
        self,
        payload: bytes,
        data_mode: DataHandlingMode = DataHandlingMode.COPY,
        execution_id_prefix: str | None = None,
    ) -> tuple[int, int, str | None, bytes]:
        """``process_batch`` with records and results as packed bytes (see ``_wire``);
        returns ``(records, failed, last final state, packed results)``."""
        results = self.process_batch(unpack(payload), data_mode, execution_id_prefix)
        return (*batch_summary(results), pack(results))

    def process_chunk(
        self,
        chunk: Any,
        data_mode: DataHandlingMode = DataHandlingMode.COPY,
        execution_id_prefix: str | None = None,
    ) -> ChunkOutcome:
        started = time.perf_counter()
        outcome = self._worker.process_chunk(chunk, data_mode, execution_id_prefix)
        self._batch_seconds.observe(time.perf_counter() - started)
        self._records.inc(outcome.successful, {"outcome": "success"})
        if outcome.failed:
            self._records.inc(outcome.failed, {"outcome": "failure"})
        return outcome

    def snapshot(self) -> dict[str, Any]:
        return self._worker.snapshot()

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        self._worker.restore(snapshot)

    def __repr__(self) -> str:
        return f"FSMActor({self._worker.describe()})"
