"""``AsyncSimpleFSM``: the one implementation of the SimpleFSM API.

Records run on a pool of FSM actors (default) or in this process (``local=True``). Batches and
streams are cut into chunks and sent one actor call per chunk; results keep input order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsm_actors.config import FSMConfig, load_config
from fsm_actors.config.resources import needed_resources, resolve_resources
from fsm_actors.engine import DataHandlingMode, Machine, compile_machine
from fsm_actors.engine.counts import BatchResults, StateCounts
from fsm_actors.executors import ActorExecutor, Executor, LocalExecutor
from fsm_actors.platform import extensions, metrics
from fsm_actors.platform.gc_pause import gc_paused
from fsm_actors.platform.progress import BatchProgress

if TYPE_CHECKING:
    from fsm_actors.stream import StreamSettings

ConfigSource = str | Path | dict[str, Any] | FSMConfig

#: Chunks of ``process_batch`` when ``batch_size`` is not given: enough records per actor call
#: that the call costs (~1 ms) stay small next to the work, and enough chunks to spread. The
#: cap keeps a chunk of small records and its results under Ray's 100 KB inline limit (no
#: object-store round trip): measured on 2 cores, 100k records, 2 actors: 2,500 per call
#: 0.25 s, 5,000 0.29 s, 12,500 0.37 s (best of 4).
AUTO_CHUNK_MIN = 256
AUTO_CHUNK_MAX = 2_500
_SUCCESS = itemgetter("success")


class AsyncSimpleFSM:
    """Run an FSM config over records, batches and streams.

    ``config`` is a dict, a YAML/JSON path or a loaded ``FSMConfig``; it is validated and
    compiled here, so a bad config fails at construction with its key path. ``data_mode``
    defaults to the config's ``data_mode``, else COPY (DIRECT: in local mode the caller's
    dict itself is worked on and changed; on actors each record is a copy that crossed the
    process boundary, so the caller's dict is never changed and the result carries the new
    data). ``resources`` maps resource names to providers or provider dicts; with the
    config's own ``resources:`` declarations (credentials as ``${ENV_VAR}``) they are
    registered for the states that use them, and a used resource that is neither declared
    nor given fails here, naming it. ``local=True`` runs in this process without Ray;
    otherwise ``actors`` FSM actors (default: the cluster's CPU count) on the Ray cluster
    found by ``address`` (see ``fsm_actors.platform.runtime.ensure_ray``).
    ``count_states`` (default on) keeps per-state counts (``stats()``; see
    ``fsm_actors.engine.counts``).
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
        count_states: bool = True,
    ) -> None:
        self._config: FSMConfig = config if isinstance(config, FSMConfig) else load_config(config)
        self._functions = dict(custom_functions or {})
        self._machine: Machine = compile_machine(self._config, self._functions)
        self._data_mode = DataHandlingMode(
            data_mode or self._config.default_data_mode or DataHandlingMode.COPY
        )
        self._local = local
        self._count_states = count_states
        self._counts = StateCounts()
        self._address = address
        self._resource_spec = None
        self._resource_names: list[str] = []
        binder = None
        self._binder = None
        # the config's own, then given, then (on the cluster) registered by name
        specs = resolve_resources(self._config, resources, None if local else _registered(address))
        if specs or needed_resources(self._config):
            hooks = extensions.lookup("fsm_resources")
            self._resource_spec, binder = hooks.prepare_fsm_resources(specs, local=local)
            self._binder = binder
            self._resource_names = list(specs)
        self._executor: Executor
        if local:
            self._executor = LocalExecutor(
                self._config, self._functions, resources=binder, count_states=count_states
            )
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
                count_states=count_states,
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
    def data_mode(self) -> DataHandlingMode:
        """The data mode records run in: the constructor's, else the config's, else COPY."""
        return self._data_mode

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

    def stats(self) -> dict[str, Any]:
        """Per-state counts of every record run since this FSM was built (batches and
        streams): ``{"states": {state: {entered, ended, failed, seconds[, errors]}}, "arcs":
        {"a->b": n}}``. ``failed`` counts the records that failed in the state, ``errors``
        splits them by error type; ``seconds`` is estimated from sampled records. Exact
        across actors: each chunk is counted once, when its result is accepted."""
        return self._counts.to_dict(self._machine.state_names)

    def to_mermaid(self, counts: Mapping[str, Any] | None = None) -> str:
        """The compiled machine as a Mermaid flowchart: every network, state (start/end
        marked, transforms, validators and resources listed), arc (condition, priority,
        transform) and sub-network call. ``counts`` (``stats()`` or a run result holding
        ``states``) labels each state with its counts and colours it by failures."""
        from fsm_actors.engine.diagram import to_mermaid

        return to_mermaid(self._machine, counts)

    def to_dot(self, counts: Mapping[str, Any] | None = None) -> str:
        """The compiled machine as Graphviz DOT (as ``to_mermaid``); render it with
        ``dot -Tsvg``."""
        from fsm_actors.engine.diagram import to_dot

        return to_dot(self._machine, counts)

    def get_resources(self) -> list[str]:
        """Names of the resources registered through ``resources=``."""
        return list(self._resource_names)

    async def ready(self) -> AsyncSimpleFSM:
        """Wait until the FSM actors are placed and constructed (a cluster without room, or
        an actor that cannot start, raises ``PoolError`` saying why). The first batch then
        runs on started actors; ``SimpleFSM`` and ``create_async_fsm`` wait for this."""
        self._check_open()
        await self._executor.ready()
        return self

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
        *,
        trace: int = 0,
        trace_file: str | Path | None = None,
    ) -> list[dict[str, Any]]:
        """Run many records; results in input order, one per record (a record that is not
        a mapping is a failure of that record only). The list's ``stats`` attribute holds
        this call's per-state counts (shaped as ``stats()``).

        ``batch_size`` records go in one actor call (default: sized from the input and the
        pool); ``max_workers`` caps the actors used. Raises ``TimeoutError`` past
        ``timeout``; the call's outstanding chunks are cancelled and the FSM stays usable.
        Concurrent calls on one instance are served together (they share the actors).

        ``trace=N`` keeps the path with a copy of the data after each state for the first
        N records and for every failed record: the list's ``traces`` holds their trace
        lines in input order (shaped as ``process_stream``'s ``<sink>.trace.jsonl`` lines,
        ``record`` being the 1-based position in ``data``; see ``fsm_actors.trace``), and
        with ``trace_file`` they are also written there as JSON Lines (``fsm-actors trace
        FILE --record N`` reads it; ``trace_file`` on the list says where).
        """
        self._check_open()
        trace = _trace_count(trace, trace_file)
        records = [d if type(d) is dict else _record(d) for d in data]
        if not records:
            return _traced(BatchResults([], {"states": {}, "arcs": {}}), trace, [], trace_file)
        workers = max_workers or self._executor.parallelism()
        size = batch_size or _auto_chunk(len(records), workers)
        progress = BatchProgress(total=len(records))
        out: list[dict[str, Any]] = []
        counts = StateCounts()
        exported = _MetricsBatcher(self._machine.name)
        lines: list[dict[str, Any]] = []

        async def run() -> None:
            chunks = (records[i : i + size] for i in range(0, len(records), size))
            async for results in self._executor.map(
                "process_batch", chunks, self._data_mode, workers, trace
            ):
                if results.traces:
                    lines.extend(_trace_lines(results, len(out), records))
                out.extend(results)
                chunk_counts = getattr(results, "counts", None)
                if chunk_counts is not None:  # accepted once: a re-sent chunk is not here twice
                    counts.merge(chunk_counts)
                    self._counts.merge(chunk_counts)
                    exported.add(chunk_counts)
                ok = sum(map(_SUCCESS, results))
                progress.completed += len(results)
                progress.succeeded += ok
                progress.failed += len(results) - ok
                if on_progress is not None:
                    on_progress(progress)

        try:
            with gc_paused():  # 100k results alive: collections would cost a third of the call
                await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"process_batch exceeded timeout of {timeout} seconds after "
                f"{progress.completed} of {progress.total} records"
            ) from None
        finally:
            exported.flush()
        return _traced(BatchResults(out, counts.to_dict(self._machine.state_names)), trace,
                       lines, trace_file)

    def status(self) -> list[dict[str, Any]]:
        """Live counters of each worker: ``fsm, actor, records, failed, batches, busy``."""
        self._check_open()
        return self._executor.status()

    async def process_stream(
        self,
        source: str | Path | Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        sink: str | Path | None = None,
        chunk_size: int = 1000,
        on_progress: Callable[[Any], Any] | None = None,
        input_format: str = "auto",
        output_format: str = "auto",
        text_field_name: str = "text",
        csv_delimiter: str = ",",
        csv_has_header: bool = True,
        skip_empty_lines: bool = True,
        use_streaming: bool = False,
        timeout: float | None = None,
        *,
        checkpoint_id: str | None = None,
        error_threshold: float | None = None,
        workers: int | None = None,
        redrive: str | Path | bool | None = None,
        trace: int = 0,
        storage_options: Mapping[str, Any] | None = None,
        settings: StreamSettings | None = None,
    ) -> dict[str, Any]:
        """Stream records from a file or an iterator through the FSM to ``sink``.

        A job of the one job layer (``fsm_actors.stream``): chunks of ``chunk_size`` records
        run on job workers (``fsm/<run id>/worker/<i>``; in this process with
        ``local=True``); records ending in an emitting end state are written to ``sink``
        (format from ``output_format`` or its extension), exactly once, through a temp file
        renamed at the end, so a failed or timed-out stream leaves the old output as it was.
        Records reach the FSM as given (JSON inputs are not passed through Arrow). Failures
        and malformed rows go to ``<sink>.errors.jsonl`` (file, line/record, raw, stage,
        state, reason). ``checkpoint_id`` makes the stream resumable after a crash;
        ``error_threshold`` (a count, or a share < 1) stops it. ``source == sink`` is
        refused. Returns the job result: ``total_processed, successful, failed, emitted,
        excluded_by_state, lines_read, records_processed, records_written, errors, skipped,
        duration, throughput, output_path, error_file, run_id``. ``use_streaming`` is
        accepted for compatibility: this path always streams. ``skip_empty_lines`` drops
        lines that are empty or hold only whitespace (dataknobs-fsm 0.5 keeps
        whitespace-only text lines as records; here such a line carries no record in any
        format, so it is skipped). ``redrive`` (``True`` or an
        error file) re-runs only the records of the error file a finished stream into
        ``sink`` wrote, adding those that now succeed to ``sink`` (``fsm_actors.redrive``).
        ``trace=N`` writes ``<sink>.trace.jsonl``: the path and the data after each state of
        the first N records and of every failed record (``fsm_actors.trace``).
        ``storage_options``: the object store's filesystem arguments for ``s3://``... source
        and sink (``FileProcessingConfig.storage_options``); never shown. ``settings``
        (``fsm_actors.stream.StreamSettings``): what a pipeline file's ``options:`` and
        ``error_handling:`` set -- the bound on bytes in flight, whole-file tasks, the CSV
        read block, each chunk's retry policy and the compensation of a failed job.
        """
        from fsm_actors.stream import FSMStage, stream_job

        self._check_open()
        if redrive:
            from fsm_actors.redrive import redrive_stream

            return await redrive_stream(
                self, source, sink, redrive, chunk_size=chunk_size,
                output_format=None if output_format in (None, "auto") else output_format,
                input_format=None if input_format == "auto" else input_format,
                csv_delimiter=csv_delimiter, workers=workers,
            )
        del use_streaming
        stage = FSMStage(
            self._config,
            self._functions,
            self._data_mode,
            resource_spec=self._resource_spec,
            binder=self._binder if self._local else None,
        )
        job = stream_job(
            stage,
            self._machine.name,
            source,
            sink,
            chunk_size=chunk_size,
            input_format=None if input_format == "auto" else input_format,
            output_format=None if output_format in (None, "auto") else output_format,
            text_field_name=text_field_name,
            csv_delimiter=None if csv_delimiter == "," else csv_delimiter,
            csv_has_header=csv_has_header,
            skip_empty_lines=skip_empty_lines,
            checkpoint_id=checkpoint_id,
            error_threshold=error_threshold,
            on_progress=on_progress,
            address=self._address,
            workers=workers or (None if self._local else self._executor.parallelism()),
            local=self._local,
            trace=trace,
            storage_options=storage_options,
            settings=settings,
        )
        try:
            result = await asyncio.wait_for(job, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"process_stream exceeded timeout of {timeout} seconds; the old output (if "
                "any) was left as it was"
            ) from None
        counted = StateCounts.load(result.pop("state_counts", None))
        self._counts.merge(counted)
        result.update(counted.to_dict(self._machine.state_names))
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
    """Build an ``AsyncSimpleFSM`` (kwargs as for the constructor) whose actors are ready."""
    fsm = AsyncSimpleFSM(config, custom_functions=custom_functions, **kwargs)
    try:
        return await fsm.ready()
    except BaseException:
        await fsm.close()
        raise


def _trace_count(trace: Any, trace_file: str | Path | None) -> int:
    """``trace`` checked: a number of records >= 0 (0 with a ``trace_file`` is refused)."""
    if isinstance(trace, bool) or not isinstance(trace, int) or trace < 0:
        raise ValueError(f"trace={trace!r}: give the number of records to trace (an int >= 0; "
                         "failed records are traced besides)")
    if trace_file is not None and not trace:
        raise ValueError("trace_file is given but trace=0: pass trace=N (N sampled records "
                         "and every failed record are traced)")
    return trace


def _trace_lines(results: Any, first: int, records: list[Any]) -> Iterable[dict[str, Any]]:
    """The trace lines of a chunk starting at record ``first`` (0-based) of ``records``."""
    from fsm_actors import trace

    for i, steps in sorted(results.traces.items()):
        yield trace.line(results[i], first + i + 1, None, records[first + i], steps)


def _traced(out: BatchResults, trace: int, lines: list[dict[str, Any]],
            trace_file: str | Path | None) -> BatchResults:
    """``out`` with its traces (and written to ``trace_file``) when tracing."""
    if trace:
        out.traces = lines
        if trace_file is not None:
            from fsm_actors import trace as traces

            out.trace_file = str(traces.write(trace_file, lines))
    return out


class _MetricsBatcher:
    """Per-state counts on their way to the ``state_*`` metrics: chunks are summed and sent
    at most every ``EVERY`` seconds and at ``flush`` (each send is a dozen metric calls)."""

    EVERY = 1.0

    def __init__(self, fsm: str) -> None:
        self.fsm = fsm
        self.pending = StateCounts()
        self.sent = time.monotonic()

    def add(self, counts: Mapping[str, Any]) -> None:
        if not metrics.on_ray():
            return
        self.pending.merge(counts)
        if time.monotonic() - self.sent >= self.EVERY:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            metrics.record_states(self.fsm, self.pending.dump())
            self.pending = StateCounts()
        self.sent = time.monotonic()


def _registered(address: str | None) -> Callable[[list[str]], set[str]]:
    """``names -> those registered with the cluster's ResourceManager`` (a state reaches them
    by name)."""
    def found(names: list[str]) -> set[str]:
        return extensions.lookup("fsm_resources").registered_names(address, names)

    return found


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
