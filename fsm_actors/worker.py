"""``FSMWorker``: the plain core an FSM actor hosts (also used in-process by local mode).

Holds one compiled ``Machine`` and the counters a person wants to see in the dashboard.
Not thread-safe; an actor runs one call at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from operator import itemgetter
from typing import Any

from fsm_actors.engine import BatchLeases, DataHandlingMode, Machine, compile_machine
from fsm_actors.engine.counts import StateCounts


@dataclass
class WorkerCounters:
    """What an FSM worker has run; also its snapshot, and the driver's copy of it."""

    records_done: int = 0
    records_failed: int = 0
    batches_done: int = 0
    last_state: str | None = None

    def add(self, records: int, failed: int, last_state: str | None, batch: bool = True) -> None:
        self.records_done += records
        self.records_failed += failed
        self.batches_done += batch
        if last_state is not None:
            self.last_state = last_state


_SUCCESS = itemgetter("success")


def batch_summary(results: list[dict[str, Any]]) -> tuple[int, int, str | None]:
    """``(records, failed, last final state)`` of a list of run results."""
    failed = len(results) - sum(map(bool, map(_SUCCESS, results)))
    return len(results), failed, results[-1]["final_state"] if results else None


def pop_traces(results: list[dict[str, Any]]) -> dict[int, list[Any]]:
    """Take the ``trace`` of each traced result out of it (``Machine.run_batch(trace=...)``):
    ``{index in the batch: [(state, data after it, failure or None)]}``."""
    return {i: r.pop("trace") for i, r in enumerate(results) if "trace" in r}


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
        count_states: bool = True,
    ) -> None:
        self.machine: Machine = compile_machine(config, dict(custom_functions or {}))
        # per-state counts (engine.counts): the last batch's, to send with its results, and
        # this worker's total for status()
        self.count_states = count_states
        self.last_counts: dict[str, Any] | None = None
        self.state_counts = StateCounts()
        self.resources = resources
        self._batch_leases = BatchLeases(resources) if resources is not None else None
        self.label = label or self.machine.name
        self.owns_inputs = owns_inputs
        self.counters = WorkerCounters()
        self.batches_started = 0
        self.running: str | None = None
        #: ``batch_summary`` of the last batch (one pass over its results, shared by callers)
        self.last_summary: tuple[int, int, str | None] = (0, 0, None)

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
                data_mode=self._top_mode(data_mode, self.owns_inputs),
                execution_id=execution_id,
                resources=self.resources,
            )
        finally:
            self.running = None
        self.counters.add(*batch_summary([result]), batch=False)
        return result

    def process_batch(
        self,
        records: list[dict[str, Any]],
        data_mode: DataHandlingMode = DataHandlingMode.COPY,
        execution_id_prefix: str | None = None,
        trace: Any = None,
    ) -> list[dict[str, Any]]:
        """Many records in one call; results in input order, failures as ``success: False``
        (``trace``: see ``Machine.run_batch``)."""
        return self._run_batch(records, data_mode, execution_id_prefix, self.owns_inputs, trace)

    def _run_batch(
        self,
        records: list[dict[str, Any]],
        data_mode: DataHandlingMode,
        execution_id_prefix: str | None,
        private: bool,
        trace: Any = None,
    ) -> list[dict[str, Any]]:
        self.running = f"batch of {len(records)}"
        self.batches_started += 1
        # with resources: one lease per resource for the whole batch (see BatchLeases)
        owner = f"batch_{self.label}_{execution_id_prefix}_{self.batches_started}"
        leasing = self._batch_leases.batch(owner) if self._batch_leases else nullcontext(None)
        timings: dict[str, list[float]] | None = {} if self.count_states else None
        try:
            with leasing as leases:
                results = self.machine.run_batch(
                    records,
                    data_mode=self._top_mode(data_mode, private),
                    resources=leases,
                    execution_id_prefix=execution_id_prefix,
                    timings=timings,
                    trace=trace,
                )
        finally:
            self.running = None
        self.last_summary = batch_summary(results)
        self.counters.add(*self.last_summary)
        if timings is not None:
            failed = self.last_summary[1]
            counts = StateCounts().add_results(results, failed, self.machine.success_path)
            counts.add_timings(timings)
            self.state_counts.merge(counts)
            self.last_counts = counts.dump()
        return results

    @staticmethod
    def _top_mode(mode: DataHandlingMode, private: bool) -> DataHandlingMode:
        """COPY protects the caller's records; records nobody else holds need no copy."""
        if private and DataHandlingMode(mode) is DataHandlingMode.COPY:
            return DataHandlingMode.DIRECT
        return mode

    def snapshot(self) -> dict[str, Any]:
        """Counters to restore into a replacement worker."""
        return asdict(self.counters)

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Continue from a snapshot taken from a previous worker."""
        self.counters = WorkerCounters(**snapshot)

    def status(self) -> dict[str, Any]:
        """Live counters: ``fsm, actor, records, failed, batches, busy, running,
        last_state`` (cheap: no copies of records)."""
        c = self.counters
        return {
            "fsm": self.machine.name,
            "actor": self.label,
            "records": c.records_done,
            "failed": c.records_failed,
            "batches": c.batches_done,
            "busy": self.running is not None,
            "running": self.running,
            "last_state": c.last_state,
            "states": self.state_counts.to_dict(self.machine.state_names)["states"],
        }
