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
    compiled here, so a bad config fails at construction with its key path. ``data_mode``
    defaults to the config's ``data_mode``, else COPY. ``resources``
    maps resource names to providers or provider dicts, registered with the resource
    manager for states that declare them. ``local=True`` runs in this process without Ray;
    otherwise ``actors`` FSM actors (default: the cluster's CPU count) on the Ray cluster
    found by ``address`` (see ``fsm_actors.runtime.ensure_ray``).
    """

    def __init__(
        self,
        config: ConfigSource,
        data_mode: DataHandlingMode | str | None = None,
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
        self._data_mode = DataHandlingMode(
            data_mode or self._config.default_data_mode or DataHandlingMode.COPY
        )
        self._local = local
        self._resource_spec = None
        self._resource_names: list[str] = []
        binder = None
        self._binder = None
        if resources:
            from resource_actors.binder import prepare_fsm_resources

            self._resource_spec, binder = prepare_fsm_resources(dict(resources), local=local)
            self._binder = binder
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

    @property
    def runtime_info(self) -> Any:
        """The Ray connection (``runtime.RuntimeInfo``) the actors run on; None when local."""
        return getattr(self._executor, "runtime_info", None)

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
        """Run one record; never raises for record-level failures (``success: False``),
        a record that is not a mapping included. Past ``timeout`` the result is a failure
        saying so; the work of that call alone is cancelled (a record already running
        finishes where it runs, and its result is dropped)."""
        self._check_open()
        record = _record(data)
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
                "metadata": {},
            }

    async def process_batch(
        self,
        data: list[Mapping[str, Any]],
        batch_size: int | None = None,
        max_workers: int | None = None,
        on_progress: Callable[[BatchProgress], Any] | None = None,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        """Run many records; results in input order, one per record (a record that is not
        a mapping is a failure of that record only).

        ``batch_size`` records go in one actor call (default: sized from the input and the
        pool); ``max_workers`` caps the actors used. Raises ``TimeoutError`` past
        ``timeout``; the call's outstanding chunks are cancelled and the FSM stays usable.
        Concurrent calls on one instance are served together (they share the actors).
        """
        self._check_open()
        records = [_record(d) for d in data]
        if not records:
            return []
        workers = max_workers or self._executor.parallelism()
        size = batch_size or _auto_chunk(len(records), workers)
        progress = BatchProgress(total=len(records))
        out: list[dict[str, Any]] = []

        async def run() -> None:
            chunks = (records[i : i + size] for i in range(0, len(records), size))
            async for results in self._executor.map(
                "process_batch", chunks, self._data_mode, workers
            ):
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

    def status(self) -> list[dict[str, Any]]:
        """Live counters of each worker: ``fsm, actor, records, failed, batches, busy``."""
        self._check_open()
        return self._executor.status()

    async def process_stream(
        self,
        source: str | Path | Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        sink: str | Path | None = None,
        chunk_size: int = 1000,
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
        """Stream records from a file or an iterator to ``sink``, in bounded memory.

        Files (CSV/TSV, JSON, JSON Lines, XML, Parquet, TXT; gzip/zstd) are read as Arrow
        batches of ``chunk_size`` rows and sent to the actors as such; only what the actors
        emit comes back, as Arrow, for the writer (format from ``output_format`` or the sink's
        extension). Records ending in an emitting end state are written; failures and
        malformed input rows go to ``<sink>.errors.jsonl`` with their reason. Returns
        ``total_processed, successful, failed, emitted, excluded_by_state, duration,
        throughput`` (+ ``error_file`` when there were errors). ``use_streaming`` is accepted
        for compatibility: this path always streams.
        """
        self._check_open()
        del use_streaming
        started = time.perf_counter()
        progress = StreamProgress()
        row_errors: list[Any] = []
        if isinstance(source, str | Path):
            from fsm_actors.io import read_arrow_batches

            chunks: Any = read_arrow_batches(
                source,
                None if input_format == "auto" else input_format,
                chunk_size=chunk_size,
                on_error=row_errors.append,
                csv_delimiter=None if csv_delimiter == "," else csv_delimiter,
                csv_has_header=csv_has_header,
                skip_empty_lines=skip_empty_lines,
                text_field_name=text_field_name,
            )
        else:
            chunks = _chunked(source, chunk_size)
        sink_writer = _StreamSink(sink, output_format)
        successful = failed = 0

        async def run() -> None:
            nonlocal successful, failed
            async for outcome in self._executor.map("process_chunk", chunks, self._data_mode):
                sink_writer.write(outcome, row_errors)
                successful += outcome.successful
                failed += outcome.failed + len(row_errors)
                row_errors.clear()
                for state, n in outcome.excluded_by_state.items():
                    progress.excluded_by_state[state] = progress.excluded_by_state.get(state, 0) + n
                progress.chunks_processed += 1
                progress.records_processed = successful + failed
                progress.records_emitted = sink_writer.emitted
                progress.errors = failed
                if on_progress is not None:
                    on_progress(progress)
            if row_errors:  # malformed rows after the last good chunk
                failed += len(row_errors)
                sink_writer.write_errors(row_errors)

        try:
            await asyncio.wait_for(run(), timeout)
        finally:
            sink_writer.close()
        duration = time.perf_counter() - started
        total = successful + failed
        result: dict[str, Any] = {
            "total_processed": total,
            "successful": successful,
            "failed": failed,
            "emitted": sink_writer.emitted,
            "excluded_by_state": dict(progress.excluded_by_state),
            "duration": duration,
            "throughput": total / duration if duration > 0 else 0.0,
        }
        if sink_writer.error_path is not None and sink_writer.errors_written:
            result["error_file"] = str(sink_writer.error_path)
        return result

    # -- lifecycle -----------------------------------------------------------------------
    async def close(self) -> None:
        """Stop the FSM actors. Idempotent."""
        if not self._closed:
            self._closed = True
            self._executor.close()
            if self._binder is not None:
                self._binder.close()

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


class _StreamSink:
    """The sink of ``process_stream``: emitted Arrow tables to the output file, failures and
    malformed rows to ``<sink>.errors.jsonl`` (opened on the first error)."""

    def __init__(self, sink: str | Path | None, output_format: str) -> None:
        self.emitted = 0
        self.errors_written = 0
        self._writer = None
        self._errors = None
        self.error_path = Path(f"{sink}.errors.jsonl") if sink is not None else None
        if sink is not None:
            from fsm_actors.io import ArrowWriter, FormatError, split_extensions

            fmt, compression = split_extensions(sink)
            if output_format not in (None, "auto"):
                fmt = output_format
            if fmt is None:
                raise FormatError(f"cannot tell the output format of {str(sink)!r}: pass "
                                  "output_format=", str(sink))
            Path(sink).parent.mkdir(parents=True, exist_ok=True)
            self._writer = ArrowWriter(sink, fmt, compression=compression)

    def write(self, outcome: Any, row_errors: list[Any]) -> None:
        if outcome.table is not None:
            self.emitted += outcome.table.num_rows
            if self._writer is not None:
                self._writer.write(outcome.table)
        self.write_errors(row_errors)
        for failure in outcome.failures:
            self._error_line({"stage": "fsm", **failure})

    def write_errors(self, row_errors: list[Any]) -> None:
        for error in row_errors:
            self._error_line(error.to_dict())

    def _error_line(self, doc: dict[str, Any]) -> None:
        if self.error_path is None:
            return
        if self._errors is None:
            self._errors = open(self.error_path, "w", encoding="utf-8")  # noqa: SIM115
        self._errors.write(json.dumps(doc, default=str) + "\n")
        self.errors_written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._errors is not None:
            self._errors.close()


def _as_dict(data: Any) -> dict[str, Any]:
    if isinstance(data, dict):
        return data
    if isinstance(data, Mapping):
        return dict(data)
    to_dict = getattr(data, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    raise TypeError(f"records must be dicts (or mappings), got {type(data).__name__}")


def _record(data: Any) -> Any:
    """A mapping as a dict; anything else as is, for the engine to fail alone."""
    if isinstance(data, dict):
        return data
    if isinstance(data, Mapping):
        return dict(data)
    to_dict = getattr(data, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else data


def _failure(record: Any, error: str) -> dict[str, Any]:
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
