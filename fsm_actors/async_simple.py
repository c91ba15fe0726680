"""``AsyncSimpleFSM``: the one implementation of the SimpleFSM API.

Records run on a pool of FSM actors (default) or in this process (``local=True``). Batches and
streams are cut into chunks and sent one actor call per chunk; results keep input order.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from fsm_actors.config import FSMConfig, load_config
from fsm_actors.engine import DataHandlingMode, Machine, compile_machine
from fsm_actors.executors import ActorExecutor, Executor, LocalExecutor
from fsm_actors.progress import BatchProgress, StreamProgress

ConfigSource = str | Path | dict[str, Any] | FSMConfig

#: Chunks of ``process_batch`` when ``batch_size`` is not given: enough records per actor call
#: that the call costs (~1 ms) stay small next to the work, and enough chunks to spread.
AUTO_CHUNK_MIN = 256
AUTO_CHUNK_MAX = 20_000


class AsyncSimpleFSM:
    """Run an FSM config over records, batches and streams.

    ``config`` is a dict, a YAML/JSON path or a loaded ``FSMConfig``; it is validated and
    compiled here, so a bad config fails at construction with its key path. ``resources``
    maps resource names to providers or provider dicts, registered with the resource
    manager for states that declare them. ``local=True`` runs in this process without Ray;
    otherwise ``actors`` FSM actors (default: the cluster's CPU count) on the Ray cluster
    found by ``address`` (see ``fsm_actors.runtime.ensure_ray``).
    """

    def __init__(
        self,
        config: ConfigSource,
        data_mode: DataHandlingMode | str = DataHandlingMode.COPY,
        resources: Mapping[str, Any] | None = None,
        custom_functions: Mapping[str, Callable[..., Any]] | None = None,
        *,
        local: bool = False,
        actors: int | None = None,
        address: str | None = None,
        max_in_flight: int = 2,
        actor_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._config: FSMConfig = config if isinstance(config, FSMConfig) else load_config(config)
        self._functions = dict(custom_functions or {})
        self._machine: Machine = compile_machine(self._config, self._functions)
        self._data_mode = DataHandlingMode(data_mode)
        self._local = local
        self._resource_spec = None
        self._resource_names: list[str] = []
        binder = None
        if resources:
            from resource_actors.binder import prepare_fsm_resources

            self._resource_spec, binder = prepare_fsm_resources(dict(resources), local=local)
            self._resource_names = list(resources)
        self._executor: Executor
        if local:
            self._executor = LocalExecutor(self._config, self._functions, resources=binder)
        else:
            self._executor = ActorExecutor(
                self._config,
                self._functions,
                self._machine.name,
                actors=actors,
                address=address,
                max_in_flight=max_in_flight,
                resource_spec=self._resource_spec,
                actor_options=actor_options,
            )
        self._closed = False

    # -- introspection -------------------------------------------------------------------
    @property
    def config(self) -> FSMConfig:
        """The validated config model."""
        return self._config

    @property
    def name(self) -> str:
        return self._machine.name

    def get_states(self) -> list[str]:
        """State names in declaration order."""
        return list(self._machine.state_names)

    def get_state(self, name: str) -> Any:
        """The state's definition, or None when there is no such state."""
        return self._machine.get_state(name)

    def get_resources(self) -> list[str]:
        """Names of the resources registered through ``resources=``."""
        return list(self._resource_names)

    # -- processing ----------------------------------------------------------------------
    async def validate(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``data`` against the start state's schema: ``{"valid", "errors"}``."""
        return self._machine.validate(dict(data))

    async def process(
        self,
        data: Mapping[str, Any],
        initial_state: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Run one record; never raises for record-level failures (``success: False``)."""
        self._check_open()
        record = _as_dict(data)
        if initial_state is not None and initial_state not in self._machine.state_names:
            return _failure(record, f"Unknown initial state {initial_state!r}; states: "
                            f"{', '.join(self._machine.state_names)}")
        try:
            return await asyncio.wait_for(
                self._executor.process_one(record, initial_state, self._data_mode), timeout
            )
        except TimeoutError:
            return {
                "final_state": None,
                "data": record,
                "path": [],
                "success": False,
                "error": f"FSM execution exceeded timeout of {timeout} seconds",
            }

    async def process_batch(
        self,
        data: list[Mapping[str, Any]],
        batch_size: int | None = None,
        max_workers: int | None = None,
        on_progress: Callable[[BatchProgress], Any] | None = None,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        """Run many records; results in input order, one per record.

        ``batch_size`` records go in one actor call (default: sized from the input and the
        pool); ``max_workers`` caps the actors used. Raises ``TimeoutError`` past ``timeout``.
        """
        self._check_open()
        records = [_as_dict(d) for d in data]
        if not records:
            return []
        workers = max_workers or self._executor.parallelism()
        size = batch_size or _auto_chunk(len(records), workers)
        progress = BatchProgress(total=len(records))
        out: list[dict[str, Any]] = []

        async def run() -> None:
            chunks = (records[i : i + size] for i in range(0, len(records), size))
            async for results in self._executor.map_chunks(chunks, self._data_mode, workers):
                out.extend(results)
                ok = sum(1 for r in results if r["success"])
                progress.completed += len(results)
                progress.succeeded += ok
                progress.failed += len(results) - ok
                if on_progress is not None:
                    on_progress(progress)

        try:
            await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"process_batch exceeded timeout of {timeout} seconds after "
                f"{progress.completed} of {progress.total} records"
            ) from None
        return out

    async def process_stream(
        self,
        source: str | Path | Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        sink: str | Path | None = None,
        chunk_size: int = 100,
        on_progress: Callable[[StreamProgress], Any] | None = None,
        input_format: str = "auto",
        output_format: str = "auto",
        text_field_name: str = "text",
        csv_delimiter: str = ",",
        csv_has_header: bool = True,
        skip_empty_lines: bool = True,
        use_streaming: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Stream records from a file (CSV, JSON, JSONL, TXT) or an iterator to ``sink``.

        Memory stays bounded: chunks are read only as the actors take them. Records that end
        in an emitting end state are written to ``sink``; failures go to
        ``<sink>.errors.jsonl`` with their reason. Returns ``total_processed, successful,
        failed, emitted, excluded_by_state, duration, throughput`` (+ ``error_file``).
        ``use_streaming`` is accepted for compatibility: streaming is always on.
        """
        self._check_open()
        del use_streaming
        from fsm_actors.io import RecordWriter, read_record_batches

        started = time.perf_counter()
        progress = StreamProgress()
        if isinstance(source, str | Path):
            chunks: Any = read_record_batches(
                source,
                None if input_format == "auto" else input_format,
                chunk_size=chunk_size,
                csv_delimiter=csv_delimiter,
                csv_has_header=csv_has_header,
                skip_empty_lines=skip_empty_lines,
                text_field_name=text_field_name,
            )
        else:
            chunks = _chunked(source, chunk_size)
        writer = None
        if sink is not None:
            Path(sink).parent.mkdir(parents=True, exist_ok=True)
            writer = RecordWriter(sink, None if output_format == "auto" else output_format)
        error_path = Path(f"{sink}.errors.jsonl") if sink is not None else None
        error_fh = None
        successful = failed = emitted = 0

        async def run() -> None:
            nonlocal successful, failed, emitted, error_fh
            async for results in self._executor.map_chunks(chunks, self._data_mode):
                keep = []
                for r in results:
                    if r["success"]:
                        successful += 1
                        if self._machine.emits(r["final_state"]):
                            keep.append(r["data"])
                        else:
                            state = r["final_state"]
                            progress.excluded_by_state[state] = (
                                progress.excluded_by_state.get(state, 0) + 1
                            )
                    else:
                        failed += 1
                        if error_path is not None:
                            if error_fh is None:
                                error_fh = open(error_path, "w", encoding="utf-8")  # noqa: SIM115
                            error_fh.write(json.dumps(
                                {"state": r["final_state"], "error": r["error"],
                                 "data": r["data"]}, default=str) + "\n")
                if writer is not None and keep:
                    writer.write(keep)
                emitted += len(keep)
                progress.chunks_processed += 1
                progress.records_processed += len(results)
                progress.records_emitted += len(keep)
                progress.errors = failed
                if on_progress is not None:
                    on_progress(progress)

        try:
            await asyncio.wait_for(run(), timeout)
        finally:
            if writer is not None:
                writer.close()
            if error_fh is not None:
                error_fh.close()
        duration = time.perf_counter() - started
        total = successful + failed
        result: dict[str, Any] = {
            "total_processed": total,
            "successful": successful,
            "failed": failed,
            "emitted": emitted,
            "excluded_by_state": dict(progress.excluded_by_state),
            "duration": duration,
            "throughput": total / duration if duration > 0 else 0.0,
        }
        if error_fh is not None:
            result["error_file"] = str(error_path)
        return result

    # -- lifecycle -----------------------------------------------------------------------
    async def close(self) -> None:
        """Stop the FSM actors. Idempotent."""
        if not self._closed:
            self._closed = True
            self._executor.close()

    aclose = close

    async def __aenter__(self) -> AsyncSimpleFSM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"FSM {self.name!r} is closed; create a new SimpleFSM")


async def create_async_fsm(
    config: ConfigSource, custom_functions: Mapping[str, Callable[..., Any]] | None = None,
    **kwargs: Any,
) -> AsyncSimpleFSM:
    """Build an ``AsyncSimpleFSM`` (kwargs as for the constructor)."""
    return AsyncSimpleFSM(config, custom_functions=custom_functions, **kwargs)


def _as_dict(data: Any) -> dict[str, Any]:
    if isinstance(data, dict):
        return data
    if isinstance(data, Mapping):
        return dict(data)
    to_dict = getattr(data, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    raise TypeError(f"records must be dicts (or mappings), got {type(data).__name__}")


def _failure(record: dict[str, Any], error: str) -> dict[str, Any]:
    return {"final_state": None, "data": record, "path": [], "success": False, "error": error,
            "metadata": {}}


def _auto_chunk(n: int, workers: int) -> int:
    per_call = -(-n // max(1, workers * 4))
    return max(AUTO_CHUNK_MIN, min(AUTO_CHUNK_MAX, per_call))


async def _chunked(
    source: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]], size: int
) -> AsyncIterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    if hasattr(source, "__aiter__"):
        async for item in source:  # type: ignore[union-attr]
            chunk.append(_as_dict(item))
            if len(chunk) >= size:
                yield chunk
                chunk = []
    else:
        for item in source:  # type: ignore[union-attr]
            chunk.append(_as_dict(item))
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk
