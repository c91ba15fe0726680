"""``SimpleFSM``: the synchronous face of ``AsyncSimpleFSM`` (no second engine).

Every method runs the async implementation on the project's sync bridge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from fsm_actors.async_simple import AsyncSimpleFSM, ConfigSource
from fsm_actors.config import FSMConfig
from fsm_actors.engine import DataHandlingMode
from fsm_actors.platform.event_loop import run_sync
from fsm_actors.platform.jobs.progress import StreamProgress
from fsm_actors.platform.progress import BatchProgress


class SimpleFSM:
    """Synchronous FSM runner; arguments as for ``AsyncSimpleFSM``. On actors, the
    constructor returns once the actors are ready (``PoolError`` if they cannot start).

    >>> fsm = SimpleFSM(config, custom_functions={"double": double}, local=True)
    >>> fsm.process({"x": 7})["final_state"]
    """

    def __init__(
        self,
        config: ConfigSource,
        data_mode: DataHandlingMode | str | None = None,
        resources: Mapping[str, Any] | None = None,
        custom_functions: Mapping[str, Callable[..., Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        self._async = AsyncSimpleFSM(
            config, data_mode, resources=resources, custom_functions=custom_functions, **kwargs
        )
        try:  # actors started and ready now: the first batch does not pay for their start
            run_sync(self._async.ready())
        except BaseException:
            self.close()
            raise

    @property
    def config(self) -> FSMConfig:
        return self._async.config

    @property
    def name(self) -> str:
        return self._async.name

    @property
    def data_mode(self) -> DataHandlingMode:
        """The data mode records run in: the constructor's, else the config's, else COPY."""
        return self._async.data_mode

    @property
    def runtime_info(self) -> Any:
        """The Ray connection the actors run on; None when local."""
        return self._async.runtime_info

    @property
    def async_fsm(self) -> AsyncSimpleFSM:
        """The async implementation this object drives."""
        return self._async

    def get_states(self) -> list[str]:
        return self._async.get_states()

    def get_state(self, name: str) -> Any:
        return self._async.get_state(name)

    def get_resources(self) -> list[str]:
        return self._async.get_resources()

    def stats(self) -> dict[str, Any]:
        """Per-state counts since this FSM was built; see ``AsyncSimpleFSM.stats``."""
        return self._async.stats()

    def to_mermaid(self, counts: Mapping[str, Any] | None = None) -> str:
        """The machine as a Mermaid flowchart; see ``AsyncSimpleFSM.to_mermaid``."""
        return self._async.to_mermaid(counts)

    def to_dot(self, counts: Mapping[str, Any] | None = None) -> str:
        """The machine as Graphviz DOT; see ``AsyncSimpleFSM.to_dot``."""
        return self._async.to_dot(counts)

    def validate(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return run_sync(self._async.validate(data))

    def process(
        self,
        data: Mapping[str, Any],
        initial_state: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        return run_sync(self._async.process(data, initial_state, timeout))

    def process_batch(
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
        """See ``AsyncSimpleFSM.process_batch`` (``trace=N``: the ``traces`` of N sampled
        and every failed record, written to ``trace_file`` if given)."""
        return run_sync(self._async.process_batch(
            data, batch_size, max_workers, on_progress, timeout, trace=trace,
            trace_file=trace_file))

    def process_stream(
        self,
        source: str | Path | Iterable[Mapping[str, Any]],
        sink: str | Path | None = None,
        chunk_size: int = 1000,
        on_progress: Callable[[StreamProgress], Any] | None = None,
        input_format: str = "auto",
        text_field_name: str = "text",
        csv_delimiter: str = ",",
        csv_has_header: bool = True,
        skip_empty_lines: bool = True,
        use_streaming: bool = False,
        timeout: float | None = None,
        output_format: str = "auto",
        *,
        checkpoint_id: str | None = None,
        error_threshold: float | None = None,
        workers: int | None = None,
        redrive: str | Path | bool | None = None,
        trace: int = 0,
        storage_options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """See ``AsyncSimpleFSM.process_stream``. ``skip_empty_lines`` drops lines that are
        empty or hold only whitespace (dataknobs-fsm 0.5 keeps whitespace-only text lines as
        records; here such a line carries no record in any format, so it is skipped)."""
        return run_sync(
            self._async.process_stream(
                source,
                sink,
                chunk_size=chunk_size,
                on_progress=on_progress,
                input_format=input_format,
                output_format=output_format,
                text_field_name=text_field_name,
                csv_delimiter=csv_delimiter,
                csv_has_header=csv_has_header,
                skip_empty_lines=skip_empty_lines,
                use_streaming=use_streaming,
                timeout=timeout,
                checkpoint_id=checkpoint_id,
                error_threshold=error_threshold,
                workers=workers,
                redrive=redrive,
                trace=trace,
                storage_options=storage_options,
            )
        )

    def close(self) -> None:
        run_sync(self._async.close())

    async def aclose(self) -> None:
        await self._async.close()

    def __enter__(self) -> SimpleFSM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> SimpleFSM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._async.close()


def create_fsm(
    config: ConfigSource,
    custom_functions: Mapping[str, Callable[..., Any]] | None = None,
    **kwargs: Any,
) -> SimpleFSM:
    """Build a ``SimpleFSM`` (kwargs as for the constructor)."""
    return SimpleFSM(config, custom_functions=custom_functions, **kwargs)


def process_file(
    fsm_config: ConfigSource,
    input_file: str | Path,
    output_file: str | Path | None = None,
    input_format: str = "auto",
    chunk_size: int = 1000,
    timeout: float | None = None,
    text_field_name: str = "text",
    csv_delimiter: str = ",",
    csv_has_header: bool = True,
    skip_empty_lines: bool = True,
    use_streaming: bool = False,
    custom_functions: Mapping[str, Callable[..., Any]] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Stream ``input_file`` through the FSM into ``output_file``; returns stream counts."""
    with SimpleFSM(fsm_config, custom_functions=custom_functions, **kwargs) as fsm:
        return fsm.process_stream(
            str(input_file),
            output_file,
            chunk_size=chunk_size,
            input_format=input_format,
            text_field_name=text_field_name,
            csv_delimiter=csv_delimiter,
            csv_has_header=csv_has_header,
            skip_empty_lines=skip_empty_lines,
            use_streaming=use_streaming,
            timeout=timeout,
        )


def batch_process(
    fsm_config: ConfigSource,
    data: list[Mapping[str, Any]],
    batch_size: int | None = None,
    max_workers: int | None = None,
    timeout: float | None = None,
    custom_functions: Mapping[str, Callable[..., Any]] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Run ``data`` through the FSM on actors; results in input order."""
    with SimpleFSM(fsm_config, custom_functions=custom_functions, **kwargs) as fsm:
        return fsm.process_batch(data, batch_size, max_workers, timeout=timeout)


def validate_data(
    fsm_config: ConfigSource,
    data: list[Mapping[str, Any]],
    custom_functions: Mapping[str, Callable[..., Any]] | None = None,
) -> list[dict[str, Any]]:
    """Validate each record against the start state's schema (in this process);
    ``custom_functions`` are those the config names (it must compile to be checked)."""
    from fsm_actors.engine import compile_machine

    machine = compile_machine(fsm_config, dict(custom_functions or {}))
    return [machine.validate(d) for d in data]
