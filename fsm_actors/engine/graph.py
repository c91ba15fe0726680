"""The compiled graph: states and arcs with every lookup resolved, built once per config.

Everything a record needs at run time is a direct attribute here (the next state object,
the ready callables, the arc's usage-counter key), so the run loop does no name lookups.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fsm_actors.config.checks import split_target
from fsm_actors.config.models import (
    ArcConfig,
    DataHandlingMode,
    FSMConfig,
    NetworkConfig,
    StateConfig,
)
from fsm_actors.config.schema import compile_schema
from fsm_actors.engine.data_modes import copier_for
from fsm_actors.engine.functions import CompiledFunction, FunctionCompiler


class Push:
    """What a push arc does around the sub-network run: build its input, merge its result."""

    __slots__ = ("start", "_isolate", "_data_mapping", "_result_mapping")

    def __init__(self, start: State, arc: ArcConfig) -> None:
        self.start = start
        isolation = arc.data_isolation
        self._isolate = copier_for("copy" if isolation == "serialize" else isolation)
        self._data_mapping = tuple(arc.data_mapping.items())
        self._result_mapping = tuple(arc.result_mapping.items())

    def enter(self, data: dict[str, Any]) -> dict[str, Any]:
        """The sub-network's input: the mapped keys only, or the whole record, isolated."""
        if self._data_mapping:
            data = {child: data[parent] for parent, child in self._data_mapping if parent in data}
        return self._isolate(data)

    def leave(self, parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
        """The record after the sub-network: mapped result keys merged in, or its result."""
        if not self._result_mapping:
            return child
        merged = dict(parent)
        for child_key, parent_key in self._result_mapping:
            if child_key in child:
                merged[parent_key] = child[child_key]
        return merged


class Arc:
    """A compiled arc. ``next_state`` is where the record goes after it (the push arc's
    return state); ``roles`` maps context keys to the resource names the arc leases."""

    __slots__ = (
        "config", "source", "label", "usage_key", "condition", "transforms", "resources",
        "roles", "push", "next_state",
    )  # fmt: skip

    def __init__(self, source: str, arc: ArcConfig, compiler: FunctionCompiler) -> None:
        self.config = arc
        self.source = source
        self.label = arc.name or f"{source}->{arc.target}"
        self.usage_key = f"arc_{source}_{arc.target}_usage"
        self.condition = (
            None
            if arc.condition is None
            else compiler.compile(arc.condition, f"{arc._key_path}.condition", condition=True)
        )
        refs = arc.transform if isinstance(arc.transform, list) else [arc.transform]
        self.transforms = tuple(
            compiler.compile(
                ref, f"{arc._key_path}.transform" + (f"[{i}]" if len(refs) > 1 else "")
            )
            for i, ref in enumerate(refs)
            if ref is not None
        )
        roles = arc.resources if isinstance(arc.resources, dict) else {n: n for n in arc.resources}
        self.roles = roles
        self.resources = list(dict.fromkeys(roles.values()))
        self.push: Push | None = None
        self.next_state: State | None = None


class State:
    """A compiled state. ``validates``: it has validators or a schema; ``needs_context``:
    one of its (or its arcs') functions takes a context; ``prepares``: there is work
    before its transforms (resources, context, copy on entry, validation); ``passes``:
    nothing runs in it and it always leaves by ``default_arc`` (``None`` for an end
    state)."""

    __slots__ = (
        "name", "network", "config", "is_end", "emit", "run_on_failure", "pre_validators",
        "validators", "schema", "transforms", "arcs", "failure_arc", "resources",
        "copy_on_entry", "needs_context", "validates", "prepares", "default_arc", "passes",
    )  # fmt: skip

    def __init__(
        self,
        config: StateConfig,
        network: NetworkConfig,
        compiler: FunctionCompiler,
        mode: DataHandlingMode | None,
        source: str | None,
    ) -> None:
        self.name = config.name
        self.network = network.name
        self.config = config
        self.is_end = config.is_end
        self.emit = config.is_end and config.emit_output
        self.run_on_failure = config.run_on_failure
        compiled: dict[str, tuple[CompiledFunction, ...]] = {
            role: tuple(compiler.compile(ref, path) for path, ref in config.function_refs(role))
            for role in ("pre_validate", "validate", "transform")
        }
        self.pre_validators = compiled["pre_validate"]
        self.validators = compiled["validate"]
        self.transforms = compiled["transform"]
        self.schema: Callable[[Any], list[str]] | None = (
            None
            if config.data_schema is None
            else compile_schema(config.data_schema, f"{config._key_path}.schema", source)
        )
        ordered = sorted(config.arcs, key=lambda arc: -arc.priority)  # stable: ties keep order
        self.arcs = tuple(Arc(self.name, arc, compiler) for arc in ordered)
        self.failure_arc: Arc | None = None
        own = config.resources
        self.resources = list(dict.fromkeys([*own, *network.resources])) if own else []
        self.copy_on_entry = mode is DataHandlingMode.COPY
        entry = [*self.pre_validators, *self.validators, *self.transforms]
        on_arcs = [f for arc in self.arcs for f in (arc.condition, *arc.transforms) if f]
        self.needs_context = any(f.takes_context for f in entry + on_arcs)
        self.validates = bool(self.pre_validators or self.validators or self.schema)
        self.prepares = bool(
            self.resources or self.needs_context or self.copy_on_entry or self.validates
        )
        self.default_arc: Arc | None = None  # both set once the arcs are linked
        self.passes = False


class Network:
    """The compiled states of one network; ``start`` is its start state."""

    __slots__ = ("name", "states", "start")

    def __init__(self, name: str, states: dict[str, State]) -> None:
        self.name = name
        self.states = states
        self.start = next(state for state in states.values() if state.config.is_start)


def build_networks(
    config: FSMConfig, custom_functions: dict[str, Callable[..., Any]] | None
) -> dict[str, Network]:
    """Compile every network of ``config``; raises ``FSMConfigError`` for bad functions or
    schemas, at their key paths."""
    compiler = FunctionCompiler(custom_functions, config.source)
    overrides = getattr(config.data_mode, "state_overrides", {})
    networks: dict[str, Network] = {}
    for net in config.networks:
        states = {
            s.name: State(s, net, compiler, overrides.get(s.name, s.data_mode), config.source)
            for s in net.states
        }
        networks[net.name] = Network(net.name, states)
    for network in networks.values():
        for state in network.states.values():
            for arc in state.arcs:
                arc.next_state = network.states[arc.config.return_state or arc.config.target]
                if arc.config.target_network is not None:
                    name, entry = split_target(arc.config.target_network)
                    sub = networks[name]
                    arc.push = Push(sub.start if entry is None else sub.states[entry], arc.config)
            state.failure_arc = next(
                (a for a in state.arcs if a.push is None and a.next_state.run_on_failure), None
            )
            _set_default_arc(state)
    return networks


def _set_default_arc(state: State) -> None:
    first = state.arcs[0] if state.arcs else None
    if state.is_end:
        state.passes = not (state.prepares or state.transforms)
    elif first is not None and first.condition is None and not first.transforms:
        state.default_arc = first
        state.passes = not (state.prepares or state.transforms)
