"""The pydantic models of an FSM config, in the shapes users write them.

Both the simple form (top-level ``states`` and ``arcs``) and the canonical form
(``networks``) validate against ``FSMConfig``; after validation every ``FSMConfig`` is in
canonical form (the simple form becomes one network named ``main``) and has passed the
semantic checks of ``fsm_actors.config.checks``. Unknown keys are errors everywhere.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)

from fsm_actors.config.checks import check_semantics, check_unknown_keys, join_path
from fsm_actors.platform.errors import FSMConfigError


class DataHandlingMode(StrEnum):
    """What the engine does with the dict a caller passes in.

    * ``COPY`` (default): the caller's dict is never mutated. The engine works on a copy:
      a shallow one when every value is an immutable scalar (str, int, float, bool, bytes,
      None), a deep copy otherwise.
    * ``REFERENCE``: the engine works on a shallow copy. Top-level keys the functions set
      stay private to the run, but nested objects (lists, dicts) are shared with the caller,
      so mutating them in place shows through.
    * ``DIRECT``: the engine works on the caller's dict itself; in-place changes made by
      functions are visible to the caller (a transform that returns a new dict replaces the
      record in the result, not the caller's object).
    """

    COPY = "copy"
    REFERENCE = "reference"
    DIRECT = "direct"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FunctionSpec(_Model):
    """A function reference written as a mapping.

    ``registered``: ``name`` is a key of ``custom_functions``. ``custom``: ``name`` is
    imported from ``module`` when one is given, else taken from ``custom_functions`` (the
    seed's ``{type: custom, name: process_with_db}``). ``inline``: ``code`` is Python
    source (an expression, a lambda, or statements). ``type`` may be left out when ``code`` (inline), ``module``
    (custom) or only ``name`` (registered) makes it clear. ``params`` are passed to a
    registered or custom function as keyword arguments.
    """

    type: Literal["registered", "custom", "inline"] | None = None
    name: str | None = None
    module: str | None = None
    code: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _infer_type(self) -> FunctionSpec:
        if self.type is None:
            self.type = "inline" if self.code else "custom" if self.module else "registered"
        needed = {"registered": ("name",), "custom": ("name",), "inline": ("code",)}
        missing = [key for key in needed[self.type] if not getattr(self, key)]
        if missing:
            raise ValueError(f"a function of type '{self.type}' needs {', '.join(missing)}")
        if self.params and self.type == "inline":
            raise ValueError("params apply to registered and custom functions, not inline code")
        return self


FunctionRef = str | FunctionSpec
"""A string is a registered function name, a dotted import path, or inline code."""

FunctionRefs = FunctionRef | list[FunctionRef]


class StateFunctions(_Model):
    """The ``functions:`` block of a state (an alternative to the state's own keys)."""

    transform: FunctionRefs | None = None
    validate_: FunctionRefs | None = Field(None, alias="validate")
    validator: FunctionRefs | None = None
    pre_validate: FunctionRefs | None = None


class ArcFields(_Model):
    """What every arc may carry; a push arc also names ``target_network``.

    A push arc runs ``target_network`` from its start state to an end state, then the
    record continues at ``return_state`` (default: the arc's target). ``data_isolation``
    says what the sub-network works on (``copy``/``serialize``: a deep copy,
    ``reference``: a shallow copy, ``direct``: the record itself). ``data_mapping``
    ``{parent_key: child_key}`` builds the sub-network's input from only those keys;
    ``result_mapping`` ``{child_key: parent_key}`` copies those keys of its result into the
    record, otherwise its result replaces the record. ``target_network: "sub:state"`` starts
    the sub-network at ``state`` instead of its start state. ``pre_test`` is the legacy
    name of ``condition`` (also written ``{test: <ref>}``); give one or the other.
    """

    condition: FunctionRef | None = None
    pre_test: FunctionRef | None = None
    transform: FunctionRefs | None = None
    priority: int = 0
    name: str | None = None
    resources: list[str] | dict[str, str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    target_network: str | None = None
    return_state: str | None = None
    data_isolation: Literal["copy", "reference", "direct", "serialize"] = "copy"
    data_mapping: dict[str, str] = Field(default_factory=dict)
    result_mapping: dict[str, str] = Field(default_factory=dict)

    _key_path: str = PrivateAttr(default="")
    _target_key: str = PrivateAttr(default="target")


class ArcConfig(ArcFields):
    """An arc of the canonical form, declared under its source state."""

    target: str


class SimpleArcConfig(ArcFields):
    """An arc of the simple form: ``{from, to, ...}`` at the top level."""

    from_: str = Field(alias="from")
    to: str


class StateConfig(_Model):
    """A state. Functions run in this order on entry: pre-validators, validators, the
    ``schema`` check, transforms; then the outgoing arcs are tried by priority.
    ``data_mode: copy`` makes the state work on a copy of the record, so a failure in it
    leaves the record as it entered (other modes work on the record as it comes)."""

    name: str
    data_schema: dict[str, Any] | None = Field(
        None,
        validation_alias=AliasChoices("schema", "data_schema"),
        serialization_alias="schema",
    )
    pre_validators: FunctionRefs | None = None
    validators: FunctionRefs | None = None
    validator: FunctionRefs | None = None
    transforms: FunctionRefs | None = None
    transform: FunctionRefs | None = None
    functions: StateFunctions | None = None
    arcs: list[ArcConfig] = Field(default_factory=list)
    resources: list[str] = Field(default_factory=list)
    data_mode: DataHandlingMode | None = None
    is_start: bool = False
    is_end: bool = False
    emit_output: bool = True
    run_on_failure: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)

    _key_path: str = PrivateAttr(default="")

    def function_refs(self, role: str) -> list[tuple[str, FunctionRef]]:
        """``[(key path, ref)]`` of one role (``pre_validate``, ``validate``, ``transform``),
        in run order: the state's own keys first, then its ``functions:`` block."""
        keys = {
            "pre_validate": (("pre_validators", None), ("functions", "pre_validate")),
            "validate": (
                ("validators", None),
                ("validator", None),
                ("functions", "validate"),
                ("functions", "validator"),
            ),
            "transform": (("transforms", None), ("transform", None), ("functions", "transform")),
        }[role]
        found: list[tuple[str, FunctionRef]] = []
        for outer, inner in keys:
            value: Any = getattr(self, outer)
            path = f"{self._key_path}.{outer}"
            if inner is not None:
                value = getattr(value, "validate_" if inner == "validate" else inner, None)
                path = f"{path}.{inner}"
            found.extend(_flatten(value, path))
        return found


def _flatten(value: FunctionRefs | None, path: str) -> list[tuple[str, FunctionRef]]:
    if value is None:
        return []
    if isinstance(value, list):
        return [(f"{path}[{i}]", item) for i, item in enumerate(value)]
    return [(path, value)]


class NetworkConfig(_Model):
    """A named state graph. ``resources`` are added to those of every state that declares
    resources of its own. Arcs are declared under their source state (``arcs: [{target}]``)
    or here as ``arcs: [{from, to}]`` (dataknobs-fsm's network form); after validation they
    all sit under their states (network arcs after the state's own)."""

    name: str
    states: list[StateConfig]
    arcs: list[SimpleArcConfig] | None = None
    resources: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    _key_path: str = PrivateAttr(default="")


class ResourceDefinition(_Model):
    """A resource the config declares for the runtime to register."""

    name: str
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    connection_pool_size: int = Field(10, ge=1)
    timeout_seconds: float = Field(30, gt=0)
    retry_attempts: int = Field(3, ge=0)
    retry_delay_seconds: float = Field(1.0, ge=0)
    health_check_interval: float | None = Field(None, gt=0)


class DataModeConfig(_Model):
    """``data_mode`` as a mapping: the run default and per-state modes."""

    default: DataHandlingMode = DataHandlingMode.COPY
    state_overrides: dict[str, DataHandlingMode] = Field(default_factory=dict)


class FSMConfig(_Model):
    """A whole FSM config. ``max_transitions`` is enforced per record; ``timeout_seconds``
    is for the runners that host the engine; traversal is always depth-first (one path per
    record), so ``execution_strategy`` is recorded but changes nothing."""

    name: str
    version: str = "1.0.0"
    description: str | None = None
    data_mode: DataHandlingMode | DataModeConfig | None = None
    resources: list[ResourceDefinition] = Field(default_factory=list)
    states: list[StateConfig] | None = None
    arcs: list[SimpleArcConfig] | None = None
    networks: list[NetworkConfig] = Field(default_factory=list)
    main_network: str | None = None
    execution_strategy: Literal[
        "depth_first", "breadth_first", "resource_optimized", "stream_optimized"
    ] = "depth_first"
    max_transitions: int = Field(1000, ge=1)
    timeout_seconds: float | None = Field(None, gt=0)
    metadata: dict[str, Any] = Field(default_factory=dict)

    _source: str | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _check_keys(cls, raw: Any, info: ValidationInfo) -> Any:
        raw = unwrap_pre_tests(raw)
        check_unknown_keys(cls, raw, _source_of(info))
        return raw

    @model_validator(mode="after")
    def _normalize(self, info: ValidationInfo) -> FSMConfig:
        self._source = _source_of(info)
        to_canonical(self)
        check_semantics(self)
        return self

    @property
    def source(self) -> str | None:
        """The file this config was loaded from, if any."""
        return self._source

    @property
    def default_data_mode(self) -> DataHandlingMode:
        """The run mode used when a caller does not choose one."""
        if isinstance(self.data_mode, DataModeConfig):
            return self.data_mode.default
        return self.data_mode or DataHandlingMode.COPY

    def network(self, name: str) -> NetworkConfig | None:
        """The network called ``name``, or ``None``."""
        return next((net for net in self.networks if net.name == name), None)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON schema of the accepted input (what the CLI ``schema`` command prints)."""
        return cls.model_json_schema(by_alias=True, mode="validation")


def _source_of(info: ValidationInfo) -> str | None:
    context = info.context or {}
    return context.get("source")


def to_canonical(config: FSMConfig) -> None:
    """Rewrite the simple form into one network ``main``, move network-level arcs under
    their source states, turn ``pre_test`` into ``condition``, and record every key path."""
    source = config.source
    if config.states is None:
        if config.arcs is not None:
            raise FSMConfigError(
                "'arcs' given without 'states'; list the states too", key_path="arcs", source=source
            )
        for index, network in enumerate(config.networks):
            _set_paths(network, f"networks[{index}]")
            _attach_arcs(network, network.arcs or [], f"networks[{index}].arcs", source)
            network.arcs = None
        _conditions_from_pre_tests(config)
        return
    if config.networks:
        raise FSMConfigError(
            "give either top-level 'states'/'arcs' (simple form) or 'networks' "
            "(canonical form), not both",
            key_path="networks",
            source=source,
        )
    network = NetworkConfig.model_construct(
        name="main", states=config.states, resources=[], arcs=None
    )
    _set_paths(network, "")
    _attach_arcs(network, config.arcs or [], "arcs", source)
    config.networks = [network]
    config.main_network = config.main_network or "main"
    config.states = None
    config.arcs = None
    _conditions_from_pre_tests(config)


def _attach_arcs(
    network: NetworkConfig, arcs: list[SimpleArcConfig], where: str, source: str | None
) -> None:
    """Append each ``{from, to}`` arc to its source state as a canonical arc."""
    by_name = {state.name: state for state in network.states}
    for index, arc in enumerate(arcs):
        key_path = f"{where}[{index}]"
        state = by_name.get(arc.from_)
        if state is None:
            raise FSMConfigError(
                f"arc source '{arc.from_}' is not a state of network '{network.name}'; known "
                f"states: {', '.join(by_name)}",
                key_path=f"{key_path}.from",
                source=source,
            )
        canonical = ArcConfig.model_construct(
            target=arc.to, **{name: getattr(arc, name) for name in ArcFields.model_fields}
        )
        canonical._key_path = key_path
        canonical._target_key = "to"
        state.arcs.append(canonical)


def _conditions_from_pre_tests(config: FSMConfig) -> None:
    for network in config.networks:
        for state in network.states:
            for arc in state.arcs:
                if arc.pre_test is None:
                    continue
                if arc.condition is not None:
                    raise FSMConfigError(
                        "an arc has both 'condition' and the legacy 'pre_test'; keep only "
                        "'condition'",
                        key_path=f"{arc._key_path}.pre_test",
                        source=config.source,
                    )
                arc.condition, arc.pre_test = arc.pre_test, None


def unwrap_pre_tests(raw: Any) -> Any:
    """A copy of ``raw`` where every arc's legacy ``pre_test: {test: ref}`` is ``pre_test:
    ref`` (``raw`` itself when there is none)."""
    if not isinstance(raw, dict):
        return raw

    def arcs_of(holder: Any) -> Any:
        arcs = holder.get("arcs") if isinstance(holder, dict) else None
        if not isinstance(arcs, list) or not any(_wrapped(a) for a in arcs):
            return holder
        return {**holder, "arcs": [_unwrapped(a) for a in arcs]}

    def states_of(holder: Any) -> Any:
        states = holder.get("states") if isinstance(holder, dict) else None
        if not isinstance(states, list):
            return holder
        new = [arcs_of(state) for state in states]
        changed = any(a is not b for a, b in zip(new, states, strict=True))
        return {**holder, "states": new} if changed else holder

    result = states_of(arcs_of(raw))
    networks = result.get("networks")
    if isinstance(networks, list):
        new = [states_of(arcs_of(net)) for net in networks]
        if any(a is not b for a, b in zip(new, networks, strict=True)):
            result = {**result, "networks": new}
    return result


def _wrapped(arc: Any) -> bool:
    return (
        isinstance(arc, dict)
        and isinstance(arc.get("pre_test"), dict)
        and set(arc["pre_test"]) == {"test"}
    )


def _unwrapped(arc: Any) -> Any:
    return {**arc, "pre_test": arc["pre_test"]["test"]} if _wrapped(arc) else arc


def _set_paths(network: NetworkConfig, path: str) -> None:
    network._key_path = path
    for index, state in enumerate(network.states):
        state._key_path = join_path(join_path(path, "states") if path else "states", index)
        for arc_index, arc in enumerate(state.arcs):
            arc._key_path = f"{state._key_path}.arcs[{arc_index}]"
