"""``FSMActor``: a Ray actor hosting one ``FSMWorker``; named ``fsm/<fsm name>/<index>``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ray

from fsm_actors.engine import DataHandlingMode
from fsm_actors.worker import FSMWorker


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
        self._worker = FSMWorker(config, custom_functions, resources=resources, label=label)

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
        return self._worker.process_batch(records, data_mode, execution_id_prefix)

    def snapshot(self) -> dict[str, Any]:
        return self._worker.snapshot()

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        self._worker.restore(snapshot)

    def __repr__(self) -> str:
        return f"FSMActor({self._worker.describe()})"
