"""``Machine``: a config compiled once, run on one record (``run``) or many (``run_batch``).

A record enters the start state and, in each state it enters, goes through: resource
acquisition (if the state declares resources), pre-validators, validators, the state's
``schema``, transforms; then the first arc (highest priority first, ties in declaration
order) whose condition holds, and that arc's transforms. It stops with success at an end
state, and with a failure (``error`` says where and why) when a function rejects or
raises, when no arc holds, or past ``max_transitions``. A record that fails in a state
follows that state's highest-priority arc into a ``run_on_failure`` state, if it has one,
and continues from there; its result stays a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from pathlib import Path
from time import perf_counter
from typing import Any
from uuid import uuid4

from fsm_actors.config import FSMConfig, StateConfig, load_config
from fsm_actors.config.models import DataHandlingMode
from fsm_actors.engine.counts import TIMING_SAMPLE, accumulate_timing
from fsm_actors.engine.data_modes import copier_for
from fsm_actors.engine.graph import Network, State, build_networks
from fsm_actors.engine.resources import ResourceBinder
from fsm_actors.engine.walk import walk
from fsm_actors.platform.errors import FSMError
from fsm_actors.platform.gc_pause import gc_paused


def compile_machine(
    config: FSMConfig | Mapping[str, Any] | str | Path,
    custom_functions: dict[str, Callable[..., Any]] | None = None,
) -> Machine:
    """Load (if needed) and compile ``config``. Raises ``FSMConfigError`` naming the file
    and key path for anything wrong, including inline code that does not compile, unknown
    function names and import paths that do not import."""
    loaded = load_config(config)
    return Machine(loaded, build_networks(loaded, custom_functions), custom_functions)


class Machine:
    """An immutable compiled FSM; build it with ``compile_machine``.

    Safe to share between threads as long as the user functions are: each ``run`` /
    ``run_batch`` call keeps its state on its own stack. Pickles as its config plus
    ``custom_functions`` and recompiles on load.
    """

    __slots__ = ("_config", "_custom", "_networks", "_start", "_max", "_states", "_emitting",
                 "_success_path")

    def __init__(
        self,
        config: FSMConfig,
        networks: dict[str, Network],
        custom_functions: dict[str, Callable[..., Any]] | None,
    ) -> None:
        self._config = config
        self._custom = dict(custom_functions or {})
        self._networks = networks
        main = networks[config.main_network]
        self._start: State = main.start
        self._max = config.max_transitions
        # main network first, so its names win over same-named states of sub-networks
        ordered = [main, *(n for n in networks.values() if n is not main)]
        self._states: dict[str, State] = {}
        for network in ordered:
            for name, state in network.states.items():
                self._states.setdefault(name, state)
        self._emitting = frozenset(name for name, s in self._states.items() if s.emit)
        self._success_path = _fixed_route(self._start, self._max)

    def __reduce__(self):  # Ray ships machines to actors: recompile there
        return (compile_machine, (self._config, self._custom))

    def __repr__(self) -> str:
        return (
            f"Machine(name={self.name!r}, states={len(self._states)}, start={self.start_state!r})"
        )

    @property
    def name(self) -> str:
        """The config's ``name``."""
        return self._config.name

    @property
    def config(self) -> FSMConfig:
        """The canonical config this machine was compiled from."""
        return self._config

    @property
    def networks(self) -> dict[str, Network]:
        """The compiled networks by name (read them, do not change them)."""
        return self._networks

    @property
    def max_transitions(self) -> int:
        """The most arcs one record may take before it fails."""
        return self._max

    @property
    def state_names(self) -> list[str]:
        """Every state name, main network first, in declaration order."""
        return list(self._states)

    @property
    def start_state(self) -> str:
        """The main network's start state."""
        return self._start.name

    @property
    def end_states(self) -> list[str]:
        """The main network's end states, in declaration order."""
        main = self._networks[self._config.main_network]
        return [name for name, state in main.states.items() if state.is_end]

    def get_state(self, name: str) -> StateConfig | None:
        """The config of state ``name``, or ``None``."""
        state = self._states.get(name)
        return None if state is None else state.config

    @property
    def success_path(self) -> tuple[str, ...] | None:
        """The path every record that succeeds from the start state takes, when that is
        fixed (from the start, each state's first arc is unconditional and calls no
        sub-network, up to an end state); else ``None``. A record that fails anywhere is a
        failure even if a ``run_on_failure`` arc takes it on, so a success never strays."""
        return self._success_path

    def emits(self, final_state: str | None) -> bool:
        """Whether a record that finished in ``final_state`` goes to the output: it is an
        end state whose ``emit_output`` is true."""
        return final_state in self._emitting

    def validate(self, data: Any) -> dict[str, Any]:
        """Check ``data`` against the start state's schema: ``{"valid", "errors"}``
        (valid when the start state has no schema)."""
        schema = self._start.schema
        errors = [] if schema is None else schema(data)
        return {"valid": not errors, "errors": errors}

    def run(
        self,
        data: dict[str, Any],
        *,
        initial_state: str | None = None,
        data_mode: DataHandlingMode | str | None = None,
        execution_id: str | None = None,
        resources: ResourceBinder | None = None,
        variables: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run one record: ``{final_state, data, path, success, error, metadata}``.

        ``metadata`` counts the arcs taken (``{"arc_<from>_<to>_usage": n}``);
        ``data_mode`` defaults to the config's ``data_mode`` (else COPY); ``resources``
        leases what states declare; ``variables`` is shared by the record's functions as
        ``context.variables``. Record failures are reported, not raised; an unknown
        ``initial_state`` raises ``FSMError``.
        """
        start = self._start if initial_state is None else self._state(initial_state)
        copy = copier_for(data_mode or self._config.default_data_mode)
        counts: dict[str, int] = {}
        if type(data) is not dict and not isinstance(data, Mapping):
            return {**_not_a_dict(data), "metadata": counts}
        result = walk(
            start,
            copy(data if type(data) is dict else dict(data)),
            self._max,
            resources,
            execution_id or uuid4().hex,
            None,
            variables,
            counts,
        )
        result["metadata"] = counts
        return result

    def run_batch(
        self,
        records: list[dict[str, Any]],
        *,
        data_mode: DataHandlingMode | str | None = None,
        resources: ResourceBinder | None = None,
        execution_id_prefix: str | None = None,
        timings: dict[str, list[float]] | None = None,
        trace: Container[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Run every record, in order: ``[{final_state, data, path, success, error}]``.

        A bad record (a failure, or not a dict at all) never stops the batch. Record ``i``
        runs as execution ``<prefix>_<i>`` (a random prefix by default). The cyclic garbage
        collector is paused for the batch: the results hold no cycles, and collections
        triggered by the many small result objects cost more than the records' own work.
        With ``timings``, one record in ``TIMING_SAMPLE`` is timed state by state into it
        (``{state: [timed entries, seconds]}``, see ``engine.counts``). With ``trace`` (the
        indices to sample), records run keeping each state's data; the result of a sampled
        or failed record gets ``trace``: ``[(state, data after it, failure or None)]``.
        """
        copy = copier_for(data_mode or self._config.default_data_mode)
        prefix = execution_id_prefix or uuid4().hex
        start, limit = self._start, self._max
        if trace is not None:
            return self._traced_batch(records, copy, resources, prefix, trace, timings)
        results: list[dict[str, Any]] = []
        with gc_paused():
            if timings is None:
                _run_span(results, records, 0, len(records), copy, start, limit, resources,
                          prefix)
                return results
            # one record in TIMING_SAMPLE is timed; the others run with no per-record check
            for first in range(0, len(records), TIMING_SAMPLE):
                clock: list[float] = []
                record = records[first]
                if type(record) is not dict:
                    _run_span(results, records, first, first + 1, copy, start, limit,
                              resources, prefix)
                else:
                    result = walk(start, copy(record), limit, resources, prefix, first, None,
                                  None, clock)
                    clock.append(perf_counter())
                    accumulate_timing(timings, result["path"], clock)
                    results.append(result)
                _run_span(results, records, first + 1, min(first + TIMING_SAMPLE, len(records)),
                          copy, start, limit, resources, prefix)
        return results

    def _traced_batch(
        self,
        records: list[dict[str, Any]],
        copy: Callable[[dict[str, Any]], dict[str, Any]],
        resources: ResourceBinder | None,
        prefix: str,
        sample: Container[int],
        timings: dict[str, list[float]] | None,
    ) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            if not isinstance(record, Mapping):
                results.append({**_not_a_dict(record), "trace": []})
                continue
            steps: list[tuple[str, Any, str | None]] = []
            data = record if type(record) is dict else dict(record)
            clock = [] if timings is not None and not index % TIMING_SAMPLE else None
            result = walk(self._start, copy(data), self._max, resources, prefix,
                          index, None, None, clock, steps)
            if clock is not None:
                clock.append(perf_counter())
                accumulate_timing(timings, result["path"], clock)  # type: ignore[arg-type]
            if index in sample or not result["success"]:
                result["trace"] = steps
            results.append(result)
        return results

    def _state(self, name: str) -> State:
        state = self._states.get(name)
        if state is None:
            raise FSMError(
                f"initial_state '{name}' is not a state of '{self.name}'; known states: "
                f"{', '.join(self._states)}",
                state_name=name,
            )
        return state


def _fixed_route(start: State, limit: int) -> tuple[str, ...] | None:
    """``Machine.success_path``: the states from ``start`` along unconditional first arcs to
    an end state (``None`` past a condition, a push, a dead end, a cycle or ``limit``)."""
    route = [start.name]
    state = start
    while not state.is_end:
        arc = state.arcs[0] if state.arcs else None
        if arc is None or arc.condition is not None or arc.push is not None:
            return None
        state = arc.next_state  # type: ignore[assignment]
        route.append(state.name)
        if len(route) > limit + 1:
            return None
    return tuple(route)


def _run_span(
    results: list[dict[str, Any]],
    records: list[Any],
    lo: int,
    hi: int,
    copy: Callable[[dict[str, Any]], dict[str, Any]],
    start: State,
    limit: int,
    resources: ResourceBinder | None,
    prefix: str,
) -> None:
    """Run ``records[lo:hi]`` (record ``i`` as execution ``<prefix>_<i>``) into ``results``."""
    append = results.append
    for index in range(lo, hi):
        record = records[index]
        if type(record) is not dict:
            if not isinstance(record, Mapping):
                append(_not_a_dict(record))
                continue
            record = dict(record)
        append(walk(start, copy(record), limit, resources, prefix, index, None, None))


def _not_a_dict(record: Any) -> dict[str, Any]:
    return {
        "final_state": None,
        "data": record,
        "path": [],
        "success": False,
        "error": f"a record must be a dict, not {type(record).__name__}",
    }
