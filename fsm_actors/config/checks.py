"""Config checks that pydantic's field validation cannot express.

Run by ``FSMConfig``'s validators: unknown keys (before field validation, so a typo is
reported by its own key path with the allowed keys), the simple-form-to-canonical rewrite,
the graph checks (one start state, known arc targets and target networks, unique names) and
state schemas (a malformed JSON schema fails here, at load, not in a worker). Every failure is
an ``FSMConfigError`` naming the file and the key path.
"""

from __future__ import annotations

import difflib
import types
from functools import cache
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

from pydantic import BaseModel

from fsm_actors.config.schema import compile_schema
from fsm_actors.platform.errors import FSMConfigError

if TYPE_CHECKING:
    from fsm_actors.config.models import FSMConfig, NetworkConfig


def join_path(path: str, key: str | int) -> str:
    """``states[2]`` + ``functions`` -> ``states[2].functions``; an int key indexes."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def check_unknown_keys(model: type[BaseModel], raw: Any, source: str | None) -> None:
    """Raise ``FSMConfigError`` at the first key of ``raw`` that ``model`` does not accept."""
    _check_mapping(model, raw, "", source)


@cache
def _accepted_keys(model: type[BaseModel]) -> tuple[dict[str, Any], tuple[str, ...]]:
    accepted: dict[str, Any] = {}
    shown: list[str] = []
    for name, field in model.model_fields.items():
        aliases = [name]
        if field.alias:
            aliases.insert(0, field.alias)
        if field.validation_alias is not None and hasattr(field.validation_alias, "choices"):
            aliases[:0] = [c for c in field.validation_alias.choices if isinstance(c, str)]
        shown.append(aliases[0])
        for alias in aliases:
            accepted[alias] = field.annotation
    return accepted, tuple(sorted(shown))


def _check_mapping(model: type[BaseModel], raw: Any, path: str, source: str | None) -> None:
    if not isinstance(raw, dict):
        return
    accepted, shown = _accepted_keys(model)
    for key, value in raw.items():
        key_path = join_path(path, str(key))
        if key not in accepted:
            close = difflib.get_close_matches(str(key), shown, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise FSMConfigError(
                f"unknown key '{key}'{hint}; allowed keys here: {', '.join(shown)}",
                key_path=key_path,
                source=source,
            )
        _check_value(accepted[key], value, key_path, source)


def _check_value(annotation: Any, value: Any, path: str, source: str | None) -> None:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        for member in get_args(annotation):
            _check_value(member, value, path, source)
    elif origin is list and isinstance(value, list):
        (item_type,) = get_args(annotation)
        for index, item in enumerate(value):
            _check_value(item_type, item, join_path(path, index), source)
    elif origin is dict and isinstance(value, dict):
        value_type = get_args(annotation)[1]
        for key, item in value.items():
            _check_value(value_type, item, join_path(path, str(key)), source)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        _check_mapping(annotation, value, path, source)


def check_semantics(config: FSMConfig) -> None:
    """Check names, start and end states, arc targets and data-mode overrides."""
    source = config.source
    if not config.networks:
        raise FSMConfigError(
            "the config has no states; give 'states' (simple form) or 'networks'", source=source
        )
    network_names = _unique([n.name for n in config.networks], "network", "networks", source)
    if config.main_network is None:
        if len(network_names) > 1:
            raise FSMConfigError(
                f"several networks ({', '.join(network_names)}) and no main_network; "
                "set main_network to the one runs start in",
                key_path="main_network",
                source=source,
            )
        config.main_network = network_names[0]
    elif config.main_network not in network_names:
        raise FSMConfigError(
            f"main_network '{config.main_network}' is not a network; known networks: "
            f"{', '.join(network_names)}",
            key_path="main_network",
            source=source,
        )
    _unique([r.name for r in config.resources], "resource", "resources", source)
    all_states: set[str] = set()
    for network in config.networks:
        all_states.update(_check_network(network, network_names, config))
    overrides = getattr(config.data_mode, "state_overrides", {})
    for state_name in overrides:
        if state_name not in all_states:
            raise FSMConfigError(
                f"data_mode override for unknown state '{state_name}'; known states: "
                f"{', '.join(sorted(all_states))}",
                key_path=f"data_mode.state_overrides.{state_name}",
                source=source,
            )


def _check_network(
    network: NetworkConfig, network_names: list[str], config: FSMConfig
) -> list[str]:
    source = config.source
    where = join_path(network._key_path, "states") if network._key_path else "states"
    names = _unique([s.name for s in network.states], "state", where, source)
    starts = [s.name for s in network.states if s.is_start]
    label = f"network '{network.name}'"
    if len(starts) != 1:
        problem = "has no start state" if not starts else f"has {len(starts)} start states"
        raise FSMConfigError(
            f"{label} {problem} ({', '.join(starts) or 'none marked'}); mark exactly one "
            "state with is_start: true",
            key_path=where,
            source=source,
        )
    if not any(s.is_end for s in network.states):
        raise FSMConfigError(
            f"{label} has no end state, so no record could finish; mark at least one state "
            "with is_end: true",
            key_path=where,
            source=source,
        )
    for state in network.states:
        if state.data_schema is not None:
            compile_schema(state.data_schema, f"{state._key_path}.schema", source)
        for arc in state.arcs:
            checks = [(arc._target_key, arc.target), ("return_state", arc.return_state)]
            if arc.target_network is not None:
                _check_target_network(arc, config)
            for key, name in checks:
                if name is not None and name not in names:
                    raise FSMConfigError(
                        f"arc {key} '{name}' is not a state of {label}; known states: "
                        f"{', '.join(names)}",
                        key_path=f"{arc._key_path}.{key}",
                        source=source,
                    )
    return names


def split_target(target_network: str) -> tuple[str, str | None]:
    """``"sub"`` -> ``("sub", None)``; ``"sub:second"`` -> ``("sub", "second")`` (the
    sub-network run starts at state ``second``)."""
    network, colon, state = target_network.partition(":")
    return network, (state if colon else None)


def _check_target_network(arc: Any, config: FSMConfig) -> None:
    name, entry = split_target(arc.target_network)
    key_path = f"{arc._key_path}.target_network"
    target = config.network(name)
    if target is None:
        raise FSMConfigError(
            f"target_network '{arc.target_network}' names no network '{name}'; known networks: "
            f"{', '.join(n.name for n in config.networks)} (write 'network' or "
            "'network:state')",
            key_path=key_path,
            source=config.source,
        )
    known = [s.name for s in target.states]
    if entry is not None and entry not in known:
        raise FSMConfigError(
            f"target_network '{arc.target_network}': '{entry}' is not a state of network "
            f"'{name}'; known states: {', '.join(known)}",
            key_path=key_path,
            source=config.source,
        )


def _unique(names: list[str], kind: str, where: str, source: str | None) -> list[str]:
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise FSMConfigError(
                f"duplicate {kind} name '{name}' (first declared at {where}[{seen[name]}]); "
                f"{kind} names must be unique",
                key_path=f"{where}[{index}].name",
                source=source,
            )
        seen[name] = index
    return names
