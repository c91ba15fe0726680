"""``FSMWorker``: the plain core an FSM actor hosts (also used in-process by local mode).

Holds one compiled ``Machine`` and the counters a person wants to see in the dashboard.
Not thread-safe; an actor runs one call at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from fsm_actors.engine import BatchLeases, DataHandlingMode, Machine, compile_machine
from fsm_actors.io import records_to_table


@dataclass
class ChunkOutcome:
    """What one stream chunk produced: emitted records as Arrow, counts, and failures.

    ``failures`` holds ``{"state", "error", "data"}`` per failed record, for the error sink.
    """

    table: pa.Table | None
    successful: int
    failed: int
    excluded_by_state: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def records(self) -> int:
        return self.successful + self.failed


class FSMWorker:
    """Runs batches of records through one compiled machine and counts them.

    ``owns_inputs=True`` says the records handed in belong to nobody else (an actor gets
    freshly deserialized copies), so COPY mode need not copy them again.
    """

    def __init__(
        self,
        config: Any,
        custom_functions: Mapping[str, Callable[..., Any]] | None = None,
        *,
        resources: Any = None,
        label: str = "",
        owns_inputs: bool = False,
    ) -> None:
        self.machine: Machine = compile_machine(config, dict(custom_functions or {}))
        self.resources = resources
        self._batch_leases = BatchLeases(resources) if resources is not None else None
        self.label = label or self.machine.name
        self.owns_inputs = owns_inputs
        self.records_done = 0
        self.records_failed = 0
        self.batches_done = 0
        self.batches_started = 0
        self.last_state: str | None = None
        self.running: str | None = None

    def process(
        self,
        record: dict[str, Any],
        initial_state: str | None = None,
        data_mode: DataHandlingMode = DataHandlingMode.COPY,
        execution_id: str | None = None,
    ) -> dict[str, Any]:
        """One record; the result has ``final_state, data, path, success, error, metadata``."""
        self.running = "1 record"
        try:
            result = self.machine.run(
                record,
                initial_state=initial_state,
                data_mode=self._top_mode(data_mode),
                execution_id=execution_id,
                resources=self.resources,
            )
        finally:
            self.running = None
        self._count([result])
        return result

    def process_batch(
        self,
        records: list[dict[str, Any]],
        data_mode: DataHandlingMode = DataHandlingMode.COPY,
        execution_id_prefix: str | None = None,
    ) -> list[dict[str, Any]]:
        """Many records in one call; results in input order, failures as ``success: False``."""
        self.running = f"batch of {len(records)}"
        self.batches_started += 1
        try:
            if self._batch_leases is None:
                results = self.machine.run_batch(
                    records,
                    data_mode=self._top_mode(data_mode),
                    execution_id_prefix=execution_id_prefix,
                )
            else:
                # one lease per resource for the whole batch (see BatchLeases)
                owner = f"batch_{self.label}_{execution_id_prefix}_{self.batches_started}"
                with self._batch_leases.batch(owner) as leases:
                    results = self.machine.run_batch(
                        records,
                        data_mode=self._top_mode(data_mode),
                        resources=leases,
                        execution_id_prefix=execution_id_prefix,
                    )
        finally:
            self.running = None
        self._count(results)
        self.batches_done += 1
        return results

    def process_chunk(
        self,
        chunk: pa.RecordBatch | pa.Table | list[dict[str, Any]],
        data_mode: DataHandlingMode = DataHandlingMode.COPY,
        execution_id_prefix: str | None = None,
    ) -> ChunkOutcome:
        """Run a stream chunk; records ending in an emitting end state come back as Arrow.

        Arrow in and out keeps the driver's cost per record near zero (no pickled dicts).
        """
        records = chunk if isinstance(chunk, list) else chunk.to_pylist()
        mode = data_mode
        if not isinstance(chunk, list):  # dicts made here from Arrow belong to nobody else
            mode = DataHandlingMode.DIRECT if data_mode is DataHandlingMode.COPY else data_mode
        results = self.process_batch(records, mode, execution_id_prefix)
        emitted: list[dict[str, Any]] = []
        excluded: dict[str, int] = {}
        failures: list[dict[str, Any]] = []
        emits = self.machine.emits
        for r in results:
            if not r["success"]:
                failures.append({"state": r["final_state"], "error": r["error"], "data": r["data"]})
            elif emits(r["final_state"]):
                emitted.append(r["data"])
            else:
                excluded[r["final_state"]] = excluded.get(r["final_state"], 0) + 1
        return ChunkOutcome(
            table=records_to_table(emitted) if emitted else None,
            successful=len(results) - len(failures),
            failed=len(failures),
            excluded_by_state=excluded,
            failures=failures,
        )

    def _top_mode(self, mode: DataHandlingMode) -> DataHandlingMode:
        if self.owns_inputs and DataHandlingMode(mode) is DataHandlingMode.COPY:
            return DataHandlingMode.DIRECT
        return mode

    def _count(self, results: list[dict[str, Any]]) -> None:
        self.records_done += len(results)
        self.records_failed += sum(1 for r in results if not r["success"])
        if results:
            self.last_state = results[-1]["final_state"]

    def snapshot(self) -> dict[str, Any]:
        """Counters to restore into a replacement worker."""
        return {
            "records_done": self.records_done,
            "records_failed": self.records_failed,
            "batches_done": self.batches_done,
            "last_state": self.last_state,
        }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Continue from a snapshot taken from a previous worker."""
        self.records_done = int(snapshot.get("records_done", 0))
        self.records_failed = int(snapshot.get("records_failed", 0))
        self.batches_done = int(snapshot.get("batches_done", 0))
        self.last_state = snapshot.get("last_state")

    def describe(self) -> str:
        state = self.running or f"idle, last final state {self.last_state!r}"
        return (
            f"{self.label}: {self.records_done} records ({self.records_failed} failed), "
            f"{self.batches_done} batches, {state}"
        )
