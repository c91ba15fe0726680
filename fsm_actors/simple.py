"""``SimpleFSM``: the synchronous face of ``AsyncSimpleFSM`` (no second engine).

Every method runs the async implementation on the project's sync bridge.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from fsm_actors.async_simple import AsyncSimpleFSM, ConfigSource
from fsm_actors.config import FSMConfig
from fsm_actors.engine import DataHandlingMode
from fsm_actors.platform.event_loop import run_sync

P = ParamSpec("P")
T = TypeVar("T")


def _same(attribute: str) -> Any:
    """A read-only attribute of ``SimpleFSM`` that is its ``AsyncSimpleFSM``'s property,
    with its docstring."""
    return property(lambda self: getattr(self._async, attribute),
                    doc=getattr(AsyncSimpleFSM, attribute).__doc__)


def _sync(
    method: Callable[Concatenate[AsyncSimpleFSM, P], Awaitable[T] | T], last: str | None = None
) -> Callable[Concatenate[SimpleFSM, P], T]:
    """``SimpleFSM``'s form of a method of ``AsyncSimpleFSM``: same arguments, docstring and
    signature (``last`` moves that positional parameter after the others); a coroutine is
    run to completion on the project's sync bridge."""
    name = method.__name__
    signature = inspect.signature(method)
    if last is not None:
        params = list(signature.parameters.values())
        moved = next(p for p in params if p.name == last)
        keyword = [p for p in params if p.kind is p.KEYWORD_ONLY]
        positional = [p for p in params if p is not moved and p.kind is not p.KEYWORD_ONLY]
        signature = signature.replace(parameters=[*positional, moved, *keyword])
    blocking = inspect.iscoroutinefunction(method)

    @functools.wraps(method)
    def call(self: SimpleFSM, *args: P.args, **kwargs: P.kwargs) -> T:
        if last is not None:  # bind by the sync order, pass by name
            bound = signature.bind(self, *args, **kwargs).arguments
            del bound["self"]
            out = getattr(self._async, name)(**bound)
        else:
            out = getattr(self._async, name)(*args, **kwargs)
        return run_sync(out) if blocking else out

    call.__signature__ = signature  # type: ignore[attr-defined]
    call.__module__, call.__qualname__ = __name__, f"SimpleFSM.{name}"
    return call


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

    #: the async implementation's own (see ``AsyncSimpleFSM``)
    config: FSMConfig = _same("config")
    name: str = _same("name")
    data_mode: DataHandlingMode = _same("data_mode")
    runtime_info: Any = _same("runtime_info")

    @property
    def async_fsm(self) -> AsyncSimpleFSM:
        """The async implementation this object drives."""
        return self._async

    #: the async implementation's methods; its coroutines run to completion here
    get_states = _sync(AsyncSimpleFSM.get_states)
    get_state = _sync(AsyncSimpleFSM.get_state)
    get_resources = _sync(AsyncSimpleFSM.get_resources)
    stats = _sync(AsyncSimpleFSM.stats)
    to_mermaid = _sync(AsyncSimpleFSM.to_mermaid)
    to_dot = _sync(AsyncSimpleFSM.to_dot)
    validate = _sync(AsyncSimpleFSM.validate)
    process = _sync(AsyncSimpleFSM.process)
    process_batch = _sync(AsyncSimpleFSM.process_batch)
    # dataknobs-fsm's sync order: ``output_format`` (not in its sync API) comes last
    process_stream = _sync(AsyncSimpleFSM.process_stream, last="output_format")

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
    stream_options = {k: v for k, v in locals().items() if k in _STREAM_OPTIONS}
    with SimpleFSM(fsm_config, custom_functions=custom_functions, **kwargs) as fsm:
        return fsm.process_stream(str(input_file), output_file, **stream_options)


#: the arguments of ``process_file`` that are ``process_stream``'s own, passed on by name
_STREAM_OPTIONS = frozenset({
    "input_format", "chunk_size", "timeout", "text_field_name", "csv_delimiter",
    "csv_has_header", "skip_empty_lines", "use_streaming"})


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
